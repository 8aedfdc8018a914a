"""Python's cyclic garbage collector runs only on the GUI thread while the app is up.

Automatic collection runs on whichever thread happens to allocate when a generation fills up. In this app that is
often the engine thread (building a model, refining), and the garbage it then finds can hold Qt objects of the GUI
thread (a closed dialog, a window in a reference cycle): destroying those off the GUI thread crashes the process
(CI once died with a segmentation fault inside "Garbage-collecting" on the engine thread while it loaded a model).

So while the app runs, automatic collection is off and a timer on the GUI thread collects whenever the counts pass
the thresholds Python itself would have used. Reference counting still frees everything that is not in a cycle at
once, on any thread; only cycles wait for the timer (at most INTERVAL_MS).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

INTERVAL_MS = 500

_collector: MainThreadGarbageCollector | None = None


class MainThreadGarbageCollector(QObject):
    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.collections = 0
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start(INTERVAL_MS)

    def collect_if_due(self) -> None:
        """Collect the generations whose counts passed their thresholds, as the automatic collector would."""
        counts = gc.get_count()
        generation = -1
        for g in range(3):
            if counts[g] > self.thresholds[g]:
                generation = g
            else:
                break
        if generation >= 0:
            gc.collect(generation)
            self.collections += 1

    def stop(self) -> None:
        self._timer.stop()
        gc.enable()


def install() -> MainThreadGarbageCollector:
    """Move cyclic collection onto the GUI thread (idempotent). Call on the GUI thread, before starting threads
    that run Python code; needs the QApplication."""
    global _collector
    app = QCoreApplication.instance()
    if app is None:
        raise RuntimeError("main_thread_gc.install() needs a QApplication")
    if QThread.currentThread() != app.thread():
        raise RuntimeError("main_thread_gc.install() must be called on the GUI thread")
    if _collector is None:
        _collector = MainThreadGarbageCollector(app)
    return _collector


def installed() -> MainThreadGarbageCollector | None:
    return _collector


def uninstall() -> None:
    """Give collection back to Python. Only once no other thread runs Python code (the app leaves it installed
    until the process ends; tests give it back between tests)."""
    global _collector
    if _collector is not None:
        _collector.stop()
        _collector.deleteLater()
        _collector = None
