"""What the benchmarks that drive the real main window share: a window on the bundled (or given) model with a
drawn artwork of a given size open, waiting for the engine, and a counter of a widget's paint events."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication

from tools.draw_artwork import draw_artwork


def spin_until(app, done, timeout: float = 600, poll: float = 0.002) -> None:
    """Turn the event loop until `done()` holds (SystemExit after `timeout` seconds)."""
    t0 = time.monotonic()
    while not done():
        app.processEvents()
        time.sleep(poll)
        if time.monotonic() - t0 > timeout:
            raise SystemExit("the engine did not finish in time")


def wait_idle(app, win, timeout: float = 600) -> None:
    """Until the engine has answered everything the document asked for."""
    spin_until(app, lambda: win.engine.is_idle() and not win.doc.waiting_for_engine(), timeout, poll=0.01)
    app.processEvents()


class PaintCounter(QObject):
    """Counts a widget's paint events (install it as an event filter): proof that a measured action included its
    repaint."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def open_window(model: str | None = None):
    """(app, window): the main window (1280 x 800, no refinement after opening, settings in a temporary folder)
    on `model` (None: the bundled one), its model loaded."""
    from app.application import create_window
    from app.settings import Settings

    app = QApplication.instance() or QApplication(["bench"])
    os.environ.setdefault("ARTFLOW_DATA_DIR", tempfile.mkdtemp(prefix="artflow-bench-"))
    settings = Settings()
    settings.refine_after_open = False
    win = create_window(model, device="cpu", screenshot_mode=True, settings=settings)
    win.resize(1280, 800)
    win.show()
    while not win.doc.has_model:
        app.processEvents()
        time.sleep(0.01)
    return app, win


def open_drawn_artwork(model: str | None, width: int, height: int):
    """(app, window): open_window's window with tools/draw_artwork.py's artwork of width x height open and the
    engine idle. Prints the opening time."""
    app, win = open_window(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "art.png"
        draw_artwork(width, height).save(path)
        t0 = time.perf_counter()
        win.doc.open_image(str(path))
        wait_idle(app, win)
        print(f"opened {width} x {height} in {time.perf_counter() - t0:.1f} s (inference, encoding, full-res stages)")
    return app, win
