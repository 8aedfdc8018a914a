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

Where things are: the request and answer types in app/engine_requests.py, what each request runs (the handlers,
on this thread's session and artwork) in app/engine_handlers.py; this module is the thread: its queue with the
merge/drop rules, the dispatch table (mirrored by the document's ResultApplier, checked by a test), the idle work
and the hand-over to the preview tail. The model math is in core (Session, core.fullres).
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import torch
from PySide6.QtCore import QThread, Signal

from app import engine_handlers as handlers
from app.engine_requests import ApplyEdits as ApplyEdits
from app.engine_requests import EngineResult as EngineResult
from app.engine_requests import LoadArtwork as LoadArtwork
from app.engine_requests import LoadModel as LoadModel
from app.engine_requests import ModelInfo as ModelInfo
from app.engine_requests import NewArtwork as NewArtwork
from app.engine_requests import OpenLineArt as OpenLineArt
from app.engine_requests import OpenProject as OpenProject
from app.engine_requests import PreviewLatent as PreviewLatent
from app.engine_requests import Refine as Refine
from app.engine_requests import RefineProgress as RefineProgress
from app.engine_requests import Regenerate as Regenerate
from app.engine_requests import Request as Request
from app.engine_requests import SampleLatent as SampleLatent
from app.engine_requests import SaveProject as SaveProject
from app.preview_tail import PreviewTail
from core.errors import ArtflowError
from core.fullres.artwork import LayeredArtwork

log = logging.getLogger(__name__)
# A slider preview's torch threads (the engine's own count when smaller): all cores but one, which the GUI thread
# needs during a drag (a thread team stalls while one of its threads waits for a core; on a loaded 2-core machine a
# 2-thread preview repainted 2.5 times a second, a 1-thread one 22; benchmarks/bench_slider_app.py).
PREVIEW_THREADS = max(1, (os.cpu_count() or 1) - 1)


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
        # Work worth doing before the artist asks for it (run only while no request waits; see handlers.prime_regions).
        self._idle_work: list[Callable[[], None]] = []
        self._idle_running = False
        self.merged = 0  # edits merged into a newer one (for tests and the curious)
        self.dropped = 0  # previews dropped unseen: a newer preview or edit came behind them
        # torch threads of a slider preview (at most torch_threads): see handlers.preview_latent.
        self.preview_threads = PREVIEW_THREADS
        # A preview's later stages on their own thread, overlapped with the next value's first stage (False: one
        # after the other on this thread, for benchmarks).
        self.pipelined_previews = (os.cpu_count() or 1) > 1
        self._tail = PreviewTail()
        # The handlers take this thread as their state (handlers.EngineState: session, art, set_idle_work).
        self._handlers: dict[type[Request], Callable[[int, Any], EngineResult | None]] = {
            LoadModel: functools.partial(handlers.load_model, self),
            NewArtwork: functools.partial(handlers.new_artwork, self),
            OpenLineArt: functools.partial(handlers.open_line_art, self),
            ApplyEdits: functools.partial(handlers.apply_edits, self),
            PreviewLatent: self._preview_latent,
            Regenerate: functools.partial(handlers.regenerate, self),
            SampleLatent: functools.partial(handlers.sample_latent, self),
            LoadArtwork: functools.partial(handlers.load_artwork, self),
            Refine: self._refine,
            SaveProject: functools.partial(handlers.save_project, self),
            OpenProject: functools.partial(handlers.open_project, self),
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
                self.session.governor.apply()  # the cores other programs leave free (core/platform/threads.py)
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

    def set_idle_work(self, *work: Callable[[], None]) -> None:
        """Replace the idle work with `work` (on this thread: a handler's, for the artwork it just made)."""
        with self._cond:
            self._idle_work = list(work)
            self._cond.notify()

    @property
    def requests_handled(self) -> frozenset[type[Request]]:
        """The request types this thread runs (the Document's ResultApplier answers the same set)."""
        return frozenset(self._handlers)

    def handle(self, rid: int, req: Request) -> EngineResult | None:
        """Run one request on this thread (the dispatch table in __init__, keyed like the Document's result table in
        app/document_results.py); an ArtflowError is the request's failure. None: the preview tail answers."""
        handler = self._handlers.get(type(req))
        if handler is None:
            raise ArtflowError(f"unknown request {type(req).__name__}")
        if not isinstance(req, LoadModel) and self.session is None:
            raise ArtflowError("no model is loaded: choose one with File > Open model…")
        return handler(rid, req)

    # ----- the two handlers that use this thread's machinery -----
    def _preview_latent(self, rid: int, req: PreviewLatent) -> EngineResult | None:
        """A slider's picture; pipelined, its later stages go to the tail thread, which sends the answer."""

        def hand_over(tail_threads: int, finish: Callable[[], EngineResult]) -> None:
            self._tail.threads = tail_threads
            self._tail.put(req.transition, lambda: self._answer(rid, req, finish))

        return handlers.preview_latent(self, rid, req, self.preview_threads, self.pipelined_previews, hand_over)

    def _refine(self, rid: int, req: Refine) -> EngineResult:
        return handlers.refine(self, rid, req, self._cancel.is_set, self.progress.emit)
