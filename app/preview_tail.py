"""The later stages of a slider preview, on a thread of their own beside the engine thread.

A preview of transition k is two halves of about equal cost: stage k+1 from the cached content code, then the
later transitions from that picture (core.editing.session.Session.preview_split). The engine thread computes the first
half of a value and hands the second half here; while this thread finishes it (and sends the answer), the engine
thread computes the first half of the newest value. Two cores then work on a drag instead of one (issue 14: a
drag repaints at >= 25 fps on 2 cores). Each side runs its torch work on its own threads (one each on 2 cores):
two single-threaded streams, not one thread team, which stalls on a loaded machine.

The hand-over is one slot: the engine thread waits for it to be free before it starts a newer value (so it always
starts from the newest value, and at most one answer is ever behind the one being made). Anything else the engine
runs waits until this thread is idle: the second half uses the session's generators, and answers leave in the
order the requests came.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch


class PreviewTail:
    """One worker thread (started on first use) that runs the jobs the engine thread hands over, in order."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(1, threads)
        self._cond = threading.Condition()
        self._job: Callable[[], None] | None = None  # handed over, not taken yet
        self._key: object = None  # what the jobs handed over last belong to (a transition)
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ----- the engine thread -----
    def put(self, key: object, job: Callable[[], None]) -> None:
        """Hand `job` over (it runs on this thread); waits while an earlier job is still waiting."""
        with self._cond:
            while self._job is not None and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="artflow-preview-tail", daemon=True)
                self._thread.start()
            self._job, self._key = job, key
            self._cond.notify_all()

    def drop_waiting(self) -> bool:
        """Drop the job handed over and not started yet (an edit came behind it: nobody would see it)."""
        with self._cond:
            if self._job is None:
                return False
            self._job = None
            self._cond.notify_all()
            return True

    def ready_for(self, key: object | None) -> bool:
        """Whether the engine thread may start its next request now: a first half of the same key (transition)
        when the slot is free (the job in work uses other generators), anything else (key None) when idle."""
        with self._cond:
            return self._ready(key)

    def wait_ready(self, key: object | None) -> None:
        """Until ready_for(key) (or stop())."""
        with self._cond:
            while not self._stopping and not self._ready(key):
                self._cond.wait()

    def _ready(self, key: object | None) -> bool:
        return self._job is None and (not self._busy or (key is not None and key == self._key))

    def idle(self) -> bool:
        with self._cond:
            return self._job is None and not self._busy

    def stop(self, timeout: float = 60.0) -> None:
        """Drop a waiting job, let the running one finish, end the thread."""
        with self._cond:
            self._stopping = True
            self._job = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ----- this thread -----
    def _run(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            with self._cond:
                while self._job is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job, self._job = self._job, None
                self._busy = True
                self._cond.notify_all()  # the slot is free: the engine thread may start the next value
            # (torch's thread count is per thread: the engine thread's own stays as it is.)
            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
            try:
                job()  # it reports its own outcome (and catches its errors)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
