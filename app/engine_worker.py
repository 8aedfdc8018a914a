"""The single engine thread: it owns the core Session (and so the torch modules) and runs every model computation.

The GUI thread never touches the Session. It builds an immutable request (the inputs are copies), `submit()`s it
and goes on; the engine thread runs core code and the outcome comes back by Qt signals, which Qt queues onto the
GUI thread (the receivers live there). This is napari's layer-slicer pattern: requests built on the main thread,
run on one worker, stale ones dropped, results applied on the main thread, no locks around the model.

Dropping superseded work: a slider drag or a quick series of strokes submits many `ApplyEdits`; each one carries
the *whole* new value of what it changes, so when the previous request is still waiting at the end of the queue
the two are merged (newer values win) and only one regeneration runs. Requests are never merged across another
kind of request, so the engine applies changes in the order the artist made them.

Full resolution (issue 12): beside the session (which works on the model's square proxy) this thread keeps the
artwork at its own size, `core.fullres.artwork.LayeredArtwork` (a full-res base and the artist's layer per
stage). Requests carry the artist's full-res layers; the proxies, the guided transfer of the model's changes and
the clean flats are computed here, and every result carries the full-res images back (read-only arrays, shared).

A slider drag asks for `PreviewLatent` pictures (small, quick, the session unchanged) and sends the full
`ApplyEdits` on release: a queued preview is dropped when a newer preview or an edit arrives behind it, so the
engine only ever computes the latest value. A preview's later stages run on a second thread
(app/preview_tail.py) while this one starts the next value's first stage: a drag uses two cores (a preview whose
later stages still wait for that thread is dropped too when the edit comes).

Long work is the core `Session.refine()` generator: each yield is a progress report (relayed to the GUI) and a
point where Cancel takes effect (the generator also polls `should_stop`). A cancelled refinement leaves the
session unchanged.

Why one module of about 520 lines: the request types, the queue's merge/drop rules and one handler per request
are one protocol (the document's ResultApplier mirrors the handler table, checked by a test); the model math is
in core (Session, core.fullres).
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from PySide6.QtCore import QThread, Signal

from app.preview_tail import PreviewTail
from core.config import WorkflowConfig
from core.errors import ArtflowError
from core.fullres import kernels
from core.fullres.artwork import RGBA, ArtworkSnapshot, LayeredArtwork, to_u8
from core.fullres.kinds import stage_kinds
from core.fullres.pipeline import line_before
from core.latent_prior import LatentPrior
from core.perceptual import PerceptualKind
from core.refine import DEFAULT_SCHEDULE
from core.session import SessionState, run_to_end

log = logging.getLogger(__name__)
# A slider preview's torch threads (the engine's own count when smaller): all cores but one, which the GUI thread
# needs during a drag (a thread team stalls while one of its threads waits for a core; on a loaded 2-core machine a
# 2-thread preview repainted 2.5 times a second, a 1-thread one 22; benchmarks/bench_slider_app.py).
PREVIEW_THREADS = max(1, (os.cpu_count() or 1) - 1)


# ----- requests (immutable inputs) -----
@dataclass(frozen=True)
class Request:
    """Base class. `label` is what the status bar shows while the request runs. `preview`: the answer is a
    stand-in, not the session's state; a full-quality answer follows (from a later request)."""

    preview: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return "Working…"


@dataclass(frozen=True)
class LoadModel(Request):
    path: str
    device: str = "auto"

    @property
    def label(self) -> str:
        return f"Loading model {Path(self.path).name}…"


@dataclass(frozen=True)
class NewArtwork(Request):
    """A blank first stage (paper white) of width x height pixels (None: the model's own size), latents at the
    prior's mean, no layers; later stages generated at that size (clean flats: the "flat" stage one colour per
    closed region of the line art)."""

    width: int | None = None
    height: int | None = None
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return "Starting a new artwork…"


@dataclass(frozen=True)
class OpenLineArt(Request):
    """An image made the first stage at its own size (issue 28): a drawing's line art, a Krita line layer (alpha on
    white) or a scan of pencil or ink on paper, cleaned up (paper levelled to white, lines darkened, specks removed,
    small gaps closed: core.lineart_import) unless `cleanup` is off; the later stages generated, no refinement."""

    path: str
    cleanup: bool = True
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return "Opening line art…"


@dataclass(frozen=True)
class ApplyEdits(Request):
    """Set artist layers (stage -> full-res RGBA uint8, read-only, or None) and latents (transition -> z), then
    regenerate the later stages. keep_unedited: later stages keep their pixels outside the region the layer
    edits changed. clean_flats: "flat" stages after a changed line art get one colour per closed region."""

    layers: dict[int, RGBA | None] = field(default_factory=dict)
    latents: dict[int, torch.Tensor] = field(default_factory=dict)
    keep_unedited: bool = False
    clean_flats: bool = True
    # "regions": a painted edit changes later stages only inside the regions it touched; "global": the paper's
    # propagation restyles the whole picture (Edit > Let an edit restyle the whole picture).
    propagation: str = "regions"

    def merged_with(self, newer: ApplyEdits) -> ApplyEdits:
        return ApplyEdits({**self.layers, **newer.layers}, {**self.latents, **newer.latents},
                          self.keep_unedited and newer.keep_unedited, newer.clean_flats, newer.propagation)

    def first_stage(self) -> int | None:
        ks = list(self.layers) + list(self.latents)
        return min(ks) if ks else None

    @property
    def label(self) -> str:
        return "Regenerating later stages…"


@dataclass(frozen=True)
class PreviewLatent(Request):
    """The stages after transition `transition` with its code `z`, at half the resolution and enlarged to the
    artwork's size (Session.preview, preview_to_u8): the live picture while a slider is dragged. The session is not
    changed; the document sends the value as an ApplyEdits on release, whose answer is the full picture. The
    answer's info["previews"] holds stages transition+1 .. N-1."""

    preview: ClassVar[bool] = True
    transition: int
    z: torch.Tensor

    @property
    def label(self) -> str:
        return "Previewing…"


@dataclass(frozen=True)
class Regenerate(Request):
    """Regenerate stages after `stage` with the current latents (no change of inputs)."""

    stage: int = 0
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return "Regenerating…"


@dataclass(frozen=True)
class SampleLatent(Request):
    transition: int
    seed: int
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return "New variation…"


@dataclass(frozen=True)
class LoadArtwork(Request):
    """Open an artwork: from a file (`path`) or an image already in memory (`image`, the last stage's shape)."""

    path: str = ""
    image: torch.Tensor | None = None
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return f"Inferring the stages of {Path(self.path).name or 'the artwork'}…"


@dataclass(frozen=True)
class Refine(Request):
    steps: int = 150
    preview_every: int = 5
    clean_flats: bool = True
    schedule: str = DEFAULT_SCHEDULE  # core.refine.SCHEDULES: "fast" ends a transition once its loss has flattened

    @property
    def label(self) -> str:
        return "Refining…"


@dataclass(frozen=True)
class SaveProject(Request):
    path: str
    extra: dict = field(default_factory=dict)
    autosave: bool = False

    @property
    def label(self) -> str:
        return "Autosaving…" if self.autosave else f"Saving {Path(self.path).name}…"


@dataclass(frozen=True)
class OpenProject(Request):
    """Read a project; it is applied at once when it fits the open model, else returned for the GUI to decide."""

    path: str
    recovered: bool = False

    @property
    def label(self) -> str:
        return f"Opening {Path(self.path).name}…"


# ----- what comes back -----
@dataclass(frozen=True)
class ModelInfo:
    path: str
    config: WorkflowConfig
    device_label: str
    perceptual: PerceptualKind
    latent_priors: tuple[LatentPrior, ...] = ()  # per transition (CPU copies)


@dataclass(frozen=True)
class EngineResult:
    rid: int
    request: Request
    state: SessionState | None  # the session after the request (a snapshot: safe to keep)
    changed: tuple[int, ...] = ()  # stages whose base was regenerated
    info: dict = field(default_factory=dict)
    art: ArtworkSnapshot | None = None  # the artwork at its own size after the request


@dataclass(frozen=True)
class RefineProgress:
    rid: int
    transition: int
    transitions: int
    step: int
    steps: int
    loss: float
    preview: torch.Tensor | None  # stage transition+1, (C, H, W) in [-1, 1] at the model's size
    preview_full: object = None  # the same at the artwork's size, uint8 (H, W) or (H, W, 3) (for display)

    @property
    def fraction(self) -> float:
        return (self.transition * self.steps + self.step) / max(1, self.transitions * self.steps)


class EngineThread(QThread):
    """One thread, one Session. Signals are emitted from this thread; Qt queues them to the GUI thread."""

    resultReady = Signal(object)  # EngineResult
    failed = Signal(int, object, str)  # rid, request, message (an ArtflowError's text, or an internal error)
    progress = Signal(object)  # RefineProgress
    activity = Signal(str)  # what runs now ("" when idle)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("artflow-engine")
        # The engine thread gets torch's threads; the creating (GUI) thread computes single-threaded from now on.
        # torch's thread count is per thread (OpenMP), and a second OpenMP team in the process, even an idle one,
        # makes libgomp stop spin-waiting: in the app, the refinement of one 128 px artwork took 24 s instead of 17.
        self.torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self._cond = threading.Condition()
        self._queue: list[tuple[int, Request]] = []
        self._ids = itertools.count(1)
        self._stopping = False
        self._cancel = threading.Event()
        self._running_rid = 0
        self.session = None  # owned by this thread: never touch it from the GUI thread
        self.art: LayeredArtwork | None = None  # the artwork at its own size, kept in step with the session
        # Work worth doing before the artist asks for it (run only while no request waits; see _prime_regions).
        self._idle_work: list[Callable[[], None]] = []
        self._idle_running = False
        self.merged = 0  # edits merged into a newer one (for tests and the curious)
        self.dropped = 0  # previews dropped unseen: a newer preview or edit came behind them
        # torch threads of a slider preview (at most torch_threads): see _preview_latent.
        self.preview_threads = PREVIEW_THREADS
        # A preview's later stages on their own thread, overlapped with the next value's first stage (False: one
        # after the other on this thread, for benchmarks).
        self.pipelined_previews = (os.cpu_count() or 1) > 1
        self._tail = PreviewTail()
        self._handlers: dict[type[Request], Callable[[int, Any], EngineResult | None]] = {
            LoadModel: self._load_model,
            NewArtwork: self._new_artwork,
            OpenLineArt: self._open_line_art,
            ApplyEdits: self._apply_edits,
            PreviewLatent: self._preview_latent,
            Regenerate: self._regenerate,
            SampleLatent: self._sample_latent,
            LoadArtwork: self._load_artwork,
            Refine: self._refine,
            SaveProject: self._save_project,
            OpenProject: self._open_project,
        }

    # ----- GUI-thread API -----
    def submit(self, request: Request) -> int:
        """Queue `request`; returns its id. Results carry the id of the request they answer."""
        with self._cond:
            rid = next(self._ids)
            if self._stopping:
                return rid
            if isinstance(request, Refine):
                self._cancel.clear()
            if (self._queue and self._queue[-1][1].preview
                    and (request.preview or isinstance(request, ApplyEdits))):
                self._queue.pop()  # nobody would see it: a newer picture is on its way
                self.dropped += 1
            if isinstance(request, ApplyEdits) and not self._queue and self._tail.drop_waiting():
                self.dropped += 1  # the same for a preview whose later stages wait for the tail thread
            if (isinstance(request, ApplyEdits) and self._queue and isinstance(self._queue[-1][1], ApplyEdits)):
                _, older = self._queue.pop()
                request = older.merged_with(request)
                self.merged += 1
            self._queue.append((rid, request))
            self._cond.notify()
        return rid

    def cancel_refine(self) -> None:
        """Ask a running (or queued) refinement to stop at its next step; the session stays as it was."""
        self._cancel.set()

    def is_idle(self) -> bool:
        with self._cond:
            return (not self._queue and self._running_rid == 0 and self._tail.idle() and not self._idle_work
                    and not self._idle_running)

    def running(self) -> int:
        """The id of the request running now (0: none)."""
        with self._cond:
            return self._running_rid

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._running_rid else 0) + (0 if self._tail.idle() else 1)

    def stop(self, timeout_ms: int = 60000) -> bool:
        """Drop queued work, cancel a refinement, let the running request finish, and wait for the thread."""
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cancel.set()
            self._cond.notify_all()
        self._tail.stop(timeout_ms / 1000)  # (also wakes this thread if it waits for the tail)
        if not self.isRunning():
            return True
        return self.wait(timeout_ms)

    # ----- the engine thread -----
    def run(self) -> None:
        torch.set_grad_enabled(False)  # per thread; refine() enables gradients for its own steps
        torch.set_num_threads(self.torch_threads)
        while True:
            work = None
            with self._cond:
                while not self._queue and not self._stopping and not self._idle_work:
                    self._cond.wait()
                if self._stopping:
                    return
                if not self._queue:
                    work = self._idle_work.pop(0)
                    self._idle_running = True
                else:
                    rid, request = self._queue[0]
                    key = request.transition if isinstance(request, PreviewLatent) else None
                    ready = self._tail.ready_for(key)
                    if ready:
                        self._queue.pop(0)
                        self._running_rid = rid
            if work is not None:  # (idle work does not touch what the preview tail uses: it may run beside it)
                self._run_idle_work(work)
                work = None  # (it holds an artwork: not kept alive while the thread waits)
                with self._cond:
                    self._idle_running = False
                continue
            if not ready:
                # The tail thread still works on a preview: a newer value's first stage waits for the hand-over
                # slot, anything else for the tail to finish. Then look again (the queue may have a newer one).
                self._tail.wait_ready(key)
                continue
            if not request.preview:  # (a drag's pictures show its progress; no status-bar flicker 30 times a second)
                self.activity.emit(request.label)
            if self.session is not None and self.session.governor is not None:
                self.session.governor.apply()  # the cores other programs leave free (core/threads.py)
            self._answer(rid, request, lambda rid=rid, request=request: self.handle(rid, request))
            # Dropped now, not when the next request replaces it: a request (an opened image) would otherwise stay
            # alive through the next request's work.
            request = None
            with self._cond:
                self._running_rid = 0
                idle = not self._queue
            if idle:
                self.activity.emit("")

    def _answer(self, rid: int, request: Request, compute: Callable[[], EngineResult | None]) -> None:
        """Send the outcome of compute() (None: it is answered later, by the preview tail) or its failure."""
        try:
            result = compute()
        except ArtflowError as exc:
            self.failed.emit(rid, request, str(exc))
        except Exception as exc:  # noqa: BLE001 - an engine bug must not kill the thread (and the app's work)
            # The dialog names the exception; the traceback is for developers (ARTFLOW_DEBUG), not the console.
            if os.environ.get("ARTFLOW_DEBUG"):
                log.exception("engine request %s failed", type(request).__name__)
            self.failed.emit(rid, request, f"Internal error in {type(request).__name__}: "
                                           f"{type(exc).__name__}: {exc}")
        else:
            if result is not None:
                self.resultReady.emit(result)

    def _run_idle_work(self, work: Callable[[], None]) -> None:
        """Idle work only saves time later: a failure is logged, never shown (the request that needs the result
        computes it again and reports its own errors)."""
        try:
            work()
        except Exception:  # noqa: BLE001
            log.warning("idle work %r failed", work, exc_info=bool(os.environ.get("ARTFLOW_DEBUG")))

    def _set_idle_work(self, *work: Callable[[], None]) -> None:
        with self._cond:
            self._idle_work = list(work)
            self._cond.notify()

    def _prime_regions(self, art: LayeredArtwork) -> Callable[[], None]:
        """Idle work: the closed regions of each line art a clean flat is made from, found for the artwork just
        opened, so that the artist's first stroke on the line art only updates them around the stroke (found from
        scratch they take ~1 s at 2048 x 1536, ~4 s at 4096 x 3072)."""

        def prime() -> None:
            if self.art is not art or self.session is None:
                return  # another artwork since
            kinds = stage_kinds(self.session.config.stages)
            for k in range(len(kinds)):
                line = line_before(kinds, k)
                if line is not None:
                    art.regions(line)

        return prime

    @property
    def requests_handled(self) -> frozenset[type[Request]]:
        """The request types this thread runs (the Document's ResultApplier answers the same set)."""
        return frozenset(self._handlers)

    def handle(self, rid: int, req: Request) -> EngineResult | None:
        """Run one request on this thread (the dispatch table below, keyed like the Document's result table in
        app/document_results.py); an ArtflowError is the request's failure. None: the preview tail answers."""
        handler = self._handlers.get(type(req))
        if handler is None:
            raise ArtflowError(f"unknown request {type(req).__name__}")
        if not isinstance(req, LoadModel) and self.session is None:
            raise ArtflowError("no model is loaded: choose one with File > Open model…")
        return handler(rid, req)

    def _result(self, rid: int, req: Request, changed=(), info: dict | None = None) -> EngineResult:
        return EngineResult(rid, req, self.session.snapshot(), tuple(sorted(set(changed))), info or {},
                            self.art.snapshot())

    def _new_artwork(self, rid: int, req: NewArtwork) -> EngineResult:
        from core.fullres.pipeline import generate_fullres
        from core.fullres.proxy import check_artwork_size

        s = self.session
        for k in range(s.num_stages):
            s.set_layer(k, None, propagate=False)
        res = s.config.resolution
        width, height = req.width or res, req.height or res
        if (width, height) == (res, res):  # the model's own size: the session's stages are the artwork
            s.start_from(torch.ones(s.config.stages[0].channels, res, res))
            self.art = LayeredArtwork.of_session(s)
        else:  # the artist's size (issue 28): the chain generated at that size, like `artflow generate`
            check_artwork_size(width, height, "new drawing")
            pm, full = generate_fullres(s, torch.ones(s.config.stages[0].channels, height, width), req.clean_flats)
            self.art = LayeredArtwork.from_stages(pm, full)
            if req.clean_flats:
                self._set_idle_work(self._prime_regions(self.art))
        return self._result(rid, req, range(1, s.num_stages))

    def _open_line_art(self, rid: int, req: OpenLineArt) -> EngineResult:
        from core.fullres.pipeline import generate_fullres
        from core.fullres.proxy import MIN_SIDE
        from core.imageio import load_artwork, tensor_to_uint8, uint8_to_tensor
        from core.lineart_import import prepare_line_art, to_grey

        s = self.session
        rgb = tensor_to_uint8(load_artwork(req.path, 3, min(MIN_SIDE, s.config.resolution)))  # alpha on white
        grey, info = prepare_line_art(rgb) if req.cleanup else (to_grey(rgb), None)
        first = uint8_to_tensor(grey)  # (1, H, W)
        if s.config.stages[0].channels != first.shape[0]:
            first = first.expand(s.config.stages[0].channels, -1, -1).clone()
        for k in range(s.num_stages):
            s.set_layer(k, None, propagate=False)
        pm, full = generate_fullres(s, first, req.clean_flats)
        self.art = LayeredArtwork.from_stages(pm, full)
        if req.clean_flats:
            self._set_idle_work(self._prime_regions(self.art))
        return self._result(rid, req, range(s.num_stages), {"lineart": None if info is None else info.as_dict()})

    def _regenerate(self, rid: int, req: Regenerate) -> EngineResult:
        s = self.session
        changed = self.art.regenerate(s, req.stage, clean_flats=req.clean_flats)
        return self._result(rid, req, changed)

    def _sample_latent(self, rid: int, req: SampleLatent) -> EngineResult:
        s = self.session
        s.sample_latent(req.transition, seed=req.seed, propagate=False)
        changed = self.art.regenerate(s, req.transition, clean_flats=req.clean_flats)
        return self._result(rid, req, changed)

    def _load_artwork(self, rid: int, req: LoadArtwork) -> EngineResult:
        from core.fullres.pipeline import fullres_stages
        from core.fullres.proxy import MIN_SIDE, to_proxy
        from core.imageio import load_artwork

        s = self.session
        last, res = s.config.stages[-1], s.config.resolution
        image = req.image if req.image is not None else load_artwork(req.path, last.channels, min(MIN_SIDE, res))
        proxy, pm = to_proxy(image, res)
        s.load_artwork(proxy)
        # At every size, the model's own included, the artwork keeps its pixels apart from the session's fit
        # (issue 27): with no edit it comes back exactly.
        full = fullres_stages(s, pm, {s.num_stages - 1: image}, req.clean_flats)
        self.art = LayeredArtwork.from_stages(pm, full, target=image)
        if req.clean_flats:
            self._set_idle_work(self._prime_regions(self.art))
        return self._result(rid, req, range(s.num_stages))

    def _save_project(self, rid: int, req: SaveProject) -> EngineResult:
        from core.project import project_from_session, save_project

        art = self.art
        if art.identity:
            project = project_from_session(self.session, req.extra)
        else:
            # The 8-bit images themselves (the bases shared, the stages as seen composited): no float copies.
            n = art.num_stages
            project = project_from_session(self.session, req.extra, [art.stage(k) for k in range(n)],
                                           list(art.layers), list(art.bases))
        path = save_project(project, req.path)
        return EngineResult(rid, req, None, (), {"path": str(path)})

    def _open_project(self, rid: int, req: OpenProject) -> EngineResult:
        from core.fullres.proxy import proxy_with
        from core.imageio import uint8_to_tensor
        from core.project import apply_project, load_project

        s = self.session
        project = load_project(req.path, config=s.config)
        if project.read_only:
            return EngineResult(rid, req, None, (), {"project": project, "applied": False})
        apply_project(s, project)
        if project.fullres_u8 is None:
            self.art = LayeredArtwork.of_session(s)
        else:
            pm = project.proxy_map()
            layers = project.fullres_layers or [None] * s.num_stages
            # The project's 8-bit images become the artwork's (shared, read-only): no float copies.
            bases = [project.fullres_bases_u8[k] if layers[k] is not None else project.fullres_u8[k]
                     for k in range(s.num_stages)]
            for k in range(s.num_stages):
                if layers[k] is None and s.layers[k] is not None:
                    # A layer only at the proxy's size (a project edited elsewhere): the full-res stage as seen
                    # holds it already; it becomes the base.
                    s.set_layer(k, None, propagate=False)
                    s.set_stage(k, proxy_with(uint8_to_tensor(project.fullres_u8[k]), pm), propagate=False)
            self.art = LayeredArtwork(pm, bases, layers)
            self._set_idle_work(self._prime_regions(self.art))
        return self._result(rid, req, range(s.num_stages), {"project": project, "applied": True})

    def _load_model(self, rid: int, req: LoadModel) -> EngineResult:
        from core import bundle
        from core.device import device_label, resolve_device
        from core.session import Session

        device = resolve_device(req.device)
        model = bundle.load(req.path)  # BundleError leaves the current session in place: nothing is lost
        session = Session(model, device=device, adapt_threads=True)
        res = session.config.resolution
        session.start_from(torch.ones(session.config.stages[0].channels, res, res))
        self.session = session
        self.art = LayeredArtwork.of_session(session)
        # Once per process, beside the app: the full-resolution passes compiled (a fresh machine: ~20 s on 2 cores)
        # or loaded from numba's disk cache, before the artist's first full-size artwork needs them.
        kernels.warm_up_in_background()
        priors = tuple(copy.deepcopy(p).cpu() for p in session.model.latent_priors)
        info = ModelInfo(str(req.path), session.config, device_label(session.device), session.perceptual_kind,
                         priors)
        return self._result(rid, req, range(session.num_stages), {"model": info})

    def _apply_edits(self, rid: int, req: ApplyEdits) -> EngineResult:
        s = self.session
        proxy_mask, full_mask = self.art.set_layers(s, req.layers, req.keep_unedited)
        for i in sorted(req.latents):
            s.set_latent(i, req.latents[i], propagate=False)
        first = req.first_stage()
        # A latent change restyles the whole picture: "keep unedited areas" applies to painted edits only.
        if req.latents:
            proxy_mask = full_mask = None
        if first is None:
            return self._result(rid, req)
        # A latent change restyles the whole picture; a painted edit follows req.propagation.
        propagation = "global" if req.latents else req.propagation
        changed = self.art.regenerate(s, first, full_mask, proxy_mask, req.clean_flats, propagation=propagation)
        return self._result(rid, req, changed)

    def _preview_latent(self, rid: int, req: PreviewLatent) -> EngineResult | None:
        from core.fullres.proxy import ProxyMap, preview_to_u8

        s, art = self.session, self.art
        res = s.config.resolution
        pm = art.pm if art is not None else ProxyMap(res, res, res)
        changed = tuple(range(req.transition + 1, s.num_stages))
        n = torch.get_num_threads()
        threads = max(1, min(n, self.preview_threads))
        pipelined = self.pipelined_previews and len(changed) > 1
        tail_threads = max(1, threads // 2)
        if pipelined:  # the cores are shared with the tail thread
            threads = max(1, threads - tail_threads)
        torch.set_num_threads(threads)
        try:
            # The quick proxy pictures at the artwork's size, as the document shows stages (enlarged in 8 bits:
            # a float enlargement to a 2048 px artwork took longer than the preview itself).
            first, later = s.preview_split(req.transition, latent=req.z)
            shown = preview_to_u8(first, pm)
            if not pipelined:
                pictures = (shown, *(preview_to_u8(p, pm) for p in later(first)))
                return EngineResult(rid, req, None, changed, {"previews": pictures})
        finally:
            torch.set_num_threads(n)

        def finish() -> EngineResult:  # on the tail thread
            pictures = (shown, *(preview_to_u8(p, pm) for p in later(first)))
            return EngineResult(rid, req, None, changed, {"previews": pictures})

        self._tail.threads = tail_threads
        self._tail.put(req.transition, lambda: self._answer(rid, req, finish))
        return None

    def _refine(self, rid: int, req: Refine) -> EngineResult:
        from core.fullres.pipeline import cleans_after_refinement
        from core.fullres.proxy import from_proxy

        s, art = self.session, self.art
        n_t = s.num_stages - 1
        old = [b.clone() for b in s.bases]
        gen = s.refine(steps=req.steps, preview_every=req.preview_every, should_stop=self._cancel.is_set,
                       schedule=req.schedule)
        t0 = time.perf_counter()

        def full_preview(p: torch.Tensor | None):
            if p is None:
                return None
            return to_u8(p if art.identity else from_proxy(p, art.pm, "bilinear"))

        report = run_to_end(gen, lambda step: self.progress.emit(RefineProgress(
            rid, step.transition, n_t, step.step, step.steps, step.loss, step.preview, full_preview(step.preview))))
        info = {"report": report, "cancelled": not report.completed, "seconds": time.perf_counter() - t0}
        changed = ()
        if report.completed:
            changed = tuple(range(1, s.num_stages))
            art.follow(s, old, 0, clean_flats=cleans_after_refinement(art.pm, req.clean_flats))
            art.pin_target()
        return self._result(rid, req, changed, info)
