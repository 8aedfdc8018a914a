"""The fill tool's worker thread: app/canvas/fill.py's compute_fill off the GUI thread, one job at a time.

Not the engine thread: the engine may be busy regenerating for seconds, and a fill needs no model. The work is
numpy and scipy, which let go of the interpreter lock in their loops, so the GUI thread keeps running while a
large region is found. The result comes back by a Qt signal (queued onto the GUI thread, where the receiver
lives); the worker touches no widget and no document. A job that fails is reported with its message.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Signal

from app.canvas.fill import FillJob, compute_fill

log = logging.getLogger(__name__)


class FillWorker(QObject):
    finished = Signal(object)  # FillResult
    failed = Signal(object, str)  # FillJob, message

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, job: FillJob) -> None:
        """Run `job` on a worker thread. The caller (CanvasView) sends one job at a time: the next after the
        previous one's answer."""
        if self._closed:
            return
        self._threads = [t for t in self._threads if t.is_alive()]
        thread = threading.Thread(target=self._run, args=(job,), name="artflow-fill", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _run(self, job: FillJob) -> None:
        try:
            result = compute_fill(job)
        except Exception as e:  # reported, never raised on a thread nobody watches
            log.exception("fill failed")
            if not self._closed:
                self.failed.emit(job, f"The fill failed: {e}")
            return
        if not self._closed:
            self.finished.emit(result)

    def close(self, timeout: float = 10.0) -> None:
        """No more results; waits for a running job (it holds no lock, so this is bounded by its work)."""
        self._closed = True
        for thread in self._threads:
            thread.join(timeout)
