"""The engine thread on its own: order, merging of superseded edits, errors, cancel, shutdown."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from app.engine_worker import (
    ApplyEdits,
    EngineThread,
    LoadModel,
    PreviewLatent,
    Refine,
    Regenerate,
    Request,
    SampleLatent,
)
from tests.app.conftest import RES


class SpyEngine(EngineThread):
    """An engine thread that calls record(seen) on its own thread before each request it handles."""

    def __init__(self, record) -> None:
        super().__init__()
        self.record = record
        self.seen: dict = {}

    def handle(self, rid, req):
        self.record(self.seen)
        return super().handle(rid, req)


def start_engine(qtbot, eng: EngineThread, bundle) -> EngineThread:
    results, failures = [], []
    eng.resultReady.connect(results.append)
    eng.failed.connect(lambda rid, req, msg: failures.append((rid, req, msg)))
    eng.start()
    eng.results, eng.failures = results, failures
    with qtbot.waitSignal(eng.resultReady, timeout=20000):
        eng.submit(LoadModel(str(bundle), "cpu"))
    return eng


@pytest.fixture
def engine(qtbot, tiny_bundle):
    eng = start_engine(qtbot, EngineThread(), tiny_bundle)
    yield eng
    eng.stop()


def test_the_session_lives_on_the_engine_thread(qtbot, tiny_bundle):
    engine = start_engine(qtbot, SpyEngine(lambda seen: seen.__setitem__("thread", threading.current_thread())),
                          tiny_bundle)
    try:
        with qtbot.waitSignal(engine.resultReady, timeout=10000):
            engine.submit(Regenerate(0))
        assert engine.seen["thread"] is not threading.main_thread()
    finally:
        engine.stop()


def test_superseded_edits_are_merged(qtbot, engine):
    # Hold the thread busy with a refinement so the edits pile up behind it.
    engine.submit(Refine(steps=100000, preview_every=1000))
    qtbot.waitUntil(lambda: engine.running() != 0, timeout=10000)
    zs = [torch.full((8,), v / 10) for v in range(-20, 21)]
    rids = [engine.submit(ApplyEdits(latents={0: z})) for z in zs]
    engine.submit(ApplyEdits(latents={1: torch.ones(8)}))
    assert engine.merged == len(zs)  # every edit but the last was merged into its successor
    engine.cancel_refine()
    qtbot.waitUntil(lambda: engine.is_idle(), timeout=20000)
    qtbot.waitUntil(lambda: len(engine.results) >= 3, timeout=5000)
    last = engine.results[-1]
    assert last.rid > rids[-1]
    assert torch.equal(last.state.latents[0], zs[-1]) and torch.equal(last.state.latents[1], torch.ones(8))
    assert len(engine.results) == 3  # model, cancelled refinement, one merged edit


def test_edits_are_not_merged_across_other_requests(qtbot, engine):
    engine.submit(Refine(steps=100000, preview_every=1000))
    qtbot.waitUntil(lambda: engine.running() != 0, timeout=10000)
    engine.submit(ApplyEdits(latents={0: torch.zeros(8)}))
    engine.submit(SampleLatent(0, seed=5))
    engine.submit(ApplyEdits(latents={0: torch.ones(8)}))
    assert engine.merged == 0
    engine.cancel_refine()
    qtbot.waitUntil(lambda: engine.is_idle() and len(engine.results) == 5, timeout=20000)
    assert torch.equal(engine.results[-1].state.latents[0], torch.ones(8))


def test_stale_previews_are_dropped(qtbot, engine):
    """Queued slider previews make way for a newer preview or an edit behind them: only the latest is computed."""
    engine.submit(Refine(steps=100000, preview_every=1000))
    qtbot.waitUntil(lambda: engine.running() != 0, timeout=10000)
    zs = [torch.full((8,), v / 10) for v in range(-20, 21)]
    for z in zs:
        engine.submit(PreviewLatent(0, z))
    assert engine.dropped == len(zs) - 1
    engine.cancel_refine()
    qtbot.waitUntil(lambda: engine.is_idle() and len(engine.results) == 3, timeout=20000)
    shown = engine.results[-1]
    assert shown.request.preview and shown.state is None and torch.equal(shown.request.z, zs[-1])
    # At the artwork's size and layout (H, W, 3) uint8, as the document shows stages.
    assert shown.changed == (1, 2) and [tuple(p.shape) for p in shown.info["previews"]] == [(RES, RES, 3)] * 2
    # A preview followed by the edit sent on release: the edit's full answer is the only one.
    engine.submit(Refine(steps=100000, preview_every=1000))
    qtbot.waitUntil(lambda: engine.running() != 0, timeout=10000)
    engine.submit(PreviewLatent(0, zs[0]))
    rid = engine.submit(ApplyEdits(latents={0: zs[0]}))
    assert engine.dropped == len(zs)
    engine.cancel_refine()
    qtbot.waitUntil(lambda: engine.is_idle() and len(engine.results) == 5, timeout=20000)
    last = engine.results[-1]
    assert last.rid == rid and not last.request.preview and torch.equal(last.state.latents[0], zs[0])


def test_a_preview_leaves_the_session_unchanged(qtbot, engine):
    with qtbot.waitSignal(engine.resultReady, timeout=10000):
        engine.submit(Regenerate(0))
    before = engine.results[-1].state
    with qtbot.waitSignal(engine.resultReady, timeout=10000):
        engine.submit(PreviewLatent(1, torch.ones(8)))
    with qtbot.waitSignal(engine.resultReady, timeout=10000):
        engine.submit(Regenerate(0))
    after = engine.results[-1].state
    assert all(torch.equal(a, b) for a, b in zip(before.bases + before.latents, after.bases + after.latents))
    assert engine.results[-2].changed == (2,)


def test_errors_are_reported_not_raised(qtbot, engine):
    with qtbot.waitSignal(engine.failed, timeout=10000):
        engine.submit(ApplyEdits(latents={0: torch.zeros(3)}))  # wrong size
    assert "latent code has 8 values" in engine.failures[-1][2]
    with qtbot.waitSignal(engine.resultReady, timeout=10000):  # the thread is still alive
        engine.submit(Regenerate(0))


def test_stop_cancels_a_refinement_and_joins(qtbot, engine):
    # Not qtbot.waitSignal(engine.progress): the blocker disconnects on the first step while the next steps'
    # queued calls to it are still posted, and PySide 6.12 then crashes delivering them (seen: a segfault in
    # pytest-qt's _quit_loop_by_signal, about 1 run in 20). A connection that stays is safe.
    steps: list = []
    engine.progress.connect(steps.append)
    engine.submit(Refine(steps=100000, preview_every=1000))
    qtbot.waitUntil(lambda: bool(steps), timeout=10000)
    assert engine.stop(timeout_ms=10000)
    assert engine.isFinished()


def test_the_engine_thread_owns_torchs_threads(qtbot, tiny_bundle):
    """torch's CPU threads go to the engine thread; the GUI thread computes single-threaded, so that the process
    has one OpenMP team (see EngineThread.__init__)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        eng = SpyEngine(lambda seen: seen.__setitem__("threads", torch.get_num_threads()))
        assert eng.torch_threads == 2 and torch.get_num_threads() == 1
        eng.start()
        with qtbot.waitSignal(eng.resultReady, timeout=20000) as blocker:
            eng.submit(LoadModel(str(tiny_bundle), "cpu"))
        assert eng.seen["threads"] == 2
        assert blocker.args[0].info["model"].device_label == "CPU, 2 threads"
        eng.stop()
    finally:
        torch.set_num_threads(before)


def test_every_request_has_an_engine_handler_and_a_result_handler(window):
    """The engine thread's handler table and the document's result table are keyed by the same request types."""
    kinds = set(Request.__subclasses__())
    assert window.engine.requests_handled == kinds == window.doc.results.requests_handled


def test_results_are_applied_on_the_gui_thread(qtbot, window):
    from tests.app.conftest import wait_idle

    threads = []
    window.doc.stageChanged.connect(lambda k: threads.append(threading.current_thread()))
    window.doc.set_latent(0, torch.ones(8))
    wait_idle(qtbot, window)
    assert threads and all(t is threading.main_thread() for t in threads)


@pytest.mark.parametrize("debug", [False, True])
def test_an_engine_bug_is_a_message_and_a_traceback_only_when_debugging(qtbot, tiny_bundle, monkeypatch, caplog,
                                                                         debug):
    def record(seen):
        if seen.get("broken"):
            raise ZeroDivisionError("division by zero")

    if debug:
        monkeypatch.setenv("ARTFLOW_DEBUG", "1")
    else:
        monkeypatch.delenv("ARTFLOW_DEBUG", raising=False)
    engine = start_engine(qtbot, SpyEngine(record), tiny_bundle)
    try:
        engine.seen["broken"] = True
        with caplog.at_level("DEBUG", logger="app.engine_worker"):
            with qtbot.waitSignal(engine.failed, timeout=10000):
                engine.submit(Regenerate(0))
        assert engine.failures[-1][2] == "Internal error in Regenerate: ZeroDivisionError: division by zero"
        assert any(r.exc_info for r in caplog.records) == debug
        engine.seen["broken"] = False
        with qtbot.waitSignal(engine.resultReady, timeout=10000):  # the thread goes on
            engine.submit(Regenerate(0))
    finally:
        engine.stop()


@pytest.fixture
def held_tail(monkeypatch):
    """The later stages of a preview (LaterPreview, still the model's) wait for `gate` before they run, and each
    call is recorded in `events` with the requests the engine thread starts: proof of what overlaps what."""
    from core.editing.session import LaterPreview

    gate, started, events = threading.Event(), threading.Event(), []
    call = LaterPreview.__call__

    def held(self, first):
        events.append("later")
        started.set()
        gate.wait(20)
        out = call(self, first)
        events.append("later done")
        return out

    monkeypatch.setattr(LaterPreview, "__call__", held)
    yield gate, started, events
    gate.set()


def test_a_previews_later_stages_overlap_the_next_value_and_everything_else_waits(qtbot, tiny_bundle, held_tail):
    """While the tail thread makes one value's later stages, the engine thread makes the next value's first stage
    (the pipeline); an edit waits until the tail is done, and the answers leave in request order."""
    gate, started, events = held_tail
    engine = start_engine(qtbot, SpyEngine(lambda seen: None), tiny_bundle)
    engine.record = lambda seen: events.append(engine.current)
    try:
        assert engine.pipelined_previews
        engine.current = "preview 1"
        engine.submit(PreviewLatent(0, torch.full((8,), -1.0)))
        assert started.wait(10)
        engine.current = "preview 2"
        engine.submit(PreviewLatent(0, torch.full((8,), 1.0)))
        qtbot.waitUntil(lambda: "preview 2" in events, timeout=10000)  # started while the tail holds preview 1
        engine.current = "regenerate"
        rid = engine.submit(Regenerate(0))
        qtbot.wait(200)
        assert "regenerate" not in events and not engine.is_idle() and len(engine.results) == 1  # waits
        gate.set()
        qtbot.waitUntil(lambda: engine.is_idle() and len(engine.results) == 4, timeout=20000)
        assert events == ["preview 1", "later", "preview 2", "later done", "later", "later done", "regenerate"]
        assert [r.rid for r in engine.results[1:]] == [rid - 2, rid - 1, rid]
        assert [r.request.preview for r in engine.results[1:]] == [True, True, False]
        assert torch.equal(engine.results[2].request.z, torch.full((8,), 1.0))
    finally:
        gate.set()
        engine.stop()


def test_pipelined_previews_are_the_serial_ones(qtbot, engine):
    """The same pictures with the later stages on the tail thread as one after the other on the engine thread."""
    def previews(pipelined: bool) -> list:
        engine.pipelined_previews = pipelined
        out = []
        for v in (-2.0, 0.5, 3.0):
            with qtbot.waitSignal(engine.resultReady, timeout=10000) as blocker:
                engine.submit(PreviewLatent(0, torch.full((8,), v)))
            out.append(blocker.args[0].info["previews"])
        return out

    for a, b in zip(previews(True), previews(False)):
        assert len(a) == len(b) == 2
        for x, y in zip(a, b):
            # (bit for bit on one thread each; one level apart at most where thread counts differ)
            assert x.shape == y.shape and np.abs(x.astype(int) - y.astype(int)).max() <= 1
    qtbot.waitUntil(engine.is_idle, timeout=10000)


def test_a_failure_in_the_later_stages_is_the_previews_failure(qtbot, engine, monkeypatch):
    from core.editing.session import LaterPreview

    def broken(self, first):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(LaterPreview, "__call__", broken)
    with qtbot.waitSignal(engine.failed, timeout=10000):
        rid = engine.submit(PreviewLatent(0, torch.zeros(8)))
    assert engine.failures[-1][0] == rid
    assert engine.failures[-1][2] == "Internal error in PreviewLatent: ZeroDivisionError: division by zero"
    monkeypatch.undo()
    with qtbot.waitSignal(engine.resultReady, timeout=10000):  # both threads go on
        engine.submit(PreviewLatent(0, torch.zeros(8)))
    qtbot.waitUntil(engine.is_idle, timeout=10000)


def test_stop_waits_for_the_later_stages_of_a_preview(qtbot, tiny_bundle, held_tail):
    gate, started, _events = held_tail
    engine = start_engine(qtbot, EngineThread(), tiny_bundle)
    engine.submit(PreviewLatent(0, torch.zeros(8)))
    assert started.wait(10)
    threading.Timer(0.2, gate.set).start()
    assert engine.stop(timeout_ms=20000)
    assert engine.isFinished() and engine.is_idle()


def test_an_edit_drops_a_preview_waiting_for_the_tail(qtbot, tiny_bundle, held_tail):
    """The release's edit comes behind a preview whose first stage is made and whose later stages wait for the
    tail thread: that preview is dropped (nobody would see it), the one in work is answered, then the edit."""
    gate, started, events = held_tail
    engine = start_engine(qtbot, EngineThread(), tiny_bundle)
    try:
        first = engine.submit(PreviewLatent(0, torch.full((8,), -1.0)))
        assert started.wait(10)
        engine.submit(PreviewLatent(0, torch.full((8,), 1.0)))
        qtbot.waitUntil(lambda: not engine._tail.ready_for(0), timeout=10000)  # its later stages wait
        edit = engine.submit(ApplyEdits(latents={0: torch.full((8,), 1.0)}))
        assert engine.dropped == 1
        gate.set()
        qtbot.waitUntil(lambda: engine.is_idle() and len(engine.results) == 3, timeout=20000)
        assert [r.rid for r in engine.results[1:]] == [first, edit]
        assert events == ["later", "later done"]
    finally:
        gate.set()
        engine.stop()


def test_an_opened_artworks_line_art_regions_are_found_while_the_engine_is_idle(qtbot, engine):
    from app.engine_worker import LoadArtwork
    from core.fullres.kinds import stage_kinds

    kinds = stage_kinds(engine.session.config.stages)
    line = kinds.index("line")
    image = torch.ones(3, 48, 80)
    image[:, 10:14, 5:70] = -1  # a dark bar: some line art to find regions in
    with qtbot.waitSignal(engine.resultReady, timeout=20000):
        engine.submit(LoadArtwork(image=image))
    qtbot.waitUntil(engine.is_idle, timeout=20000)
    art = engine.art
    assert not art.identity
    ready = art.cached_region_map(line)
    assert ready is not None and ready.how == "built"
    # The first stroke on the line art updates that map around the stroke instead of finding the regions again.
    layer = torch.zeros(48, 80, 4, dtype=torch.uint8).numpy()
    layer[30:33, 10:40] = (0, 0, 0, 255)
    with qtbot.waitSignal(engine.resultReady, timeout=20000):
        engine.submit(ApplyEdits(layers={line: layer}))
    qtbot.waitUntil(engine.is_idle, timeout=20000)
    assert art.cached_region_map(line).how == "updated"


class OneCoreLeft:
    """A thread governor that finds one core free (another program holds the rest) and counts its judgements."""

    def __init__(self) -> None:
        self.calls = 0

    def apply(self) -> int:
        self.calls += 1
        torch.set_num_threads(1)
        return 1


def test_the_engine_gives_each_request_the_cores_other_programs_leave(qtbot, tiny_bundle):
    from core.platform.threads import ThreadGovernor

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        eng = start_engine(qtbot, SpyEngine(lambda seen: seen.__setitem__("threads", torch.get_num_threads())),
                           tiny_bundle)
        try:
            assert isinstance(eng.session.governor, ThreadGovernor)  # the app adapts; tests of core keep it fixed
            eng.session.governor = governor = OneCoreLeft()  # (the engine is idle: nothing reads it meanwhile)
            with qtbot.waitSignal(eng.resultReady, timeout=10000):
                eng.submit(Regenerate(0))
            assert governor.calls >= 1 and eng.seen["threads"] == 1
        finally:
            eng.stop()
    finally:
        torch.set_num_threads(before)
