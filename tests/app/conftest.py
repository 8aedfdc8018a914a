"""Fixtures for the app tests: a tiny seeded model bundle (32 px, milliseconds per step), a main window on it,
message boxes that record instead of blocking, and a private data folder for autosaves and settings."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from core import config
from core.config import StageSpec
from core.files import bundle
from core.model import WorkflowModel

RES = 32


def make_bundle(path: Path, seed: int = 0, stages=None, name: str = "tiny") -> Path:
    torch.manual_seed(seed)
    model = WorkflowModel(config.tiny(stages=stages, name=name, resolution=RES))
    return bundle.save(model, path)


def other_model_project(path: Path, size: tuple[int, int] = (90, 60), model_name: str = "other") -> Path:
    """A project of another model (tiny's architecture under `model_name`, other weights) whose artwork is
    width x height at full resolution: a grey square on white in every stage."""
    from core.editing.session import Session
    from core.files.project import project_from_session, save_project

    torch.manual_seed(7)
    session = Session(WorkflowModel(config.tiny(name=model_name, resolution=RES)).eval(), "cpu")
    w, h = size
    full = []
    for spec in session.config.stages:
        a = np.full((h, w, 3) if spec.channels == 3 else (h, w), 255, np.uint8)
        a[h // 4:3 * h // 4, w // 4:w // 2] = 60
        full.append(a)
    return save_project(project_from_session(session, None, full), path)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def four_stage_bundle(tmp_path_factory) -> Path:
    stages = (StageSpec("sketch", 1, "Sketch"), StageSpec("flat", 3, "Flat colours"),
              StageSpec("shading", 3, "Shading"), StageSpec("final", 3, "Final"))
    return make_bundle(tmp_path_factory.mktemp("models") / "four", seed=1, stages=stages, name="four")


@pytest.fixture(scope="session")
def artwork_png(tmp_path_factory) -> Path:
    """A small RGBA drawing (a non-square canvas, with transparency) like an artist would open."""
    img = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    a = np.zeros((40, 60, 4), np.uint8)
    yy, xx = np.mgrid[0:40, 0:60]
    disc = (xx - 30) ** 2 + (yy - 20) ** 2 < 15 ** 2
    a[disc] = (230, 160, 40, 255)
    a[(np.abs((xx - 30) ** 2 + (yy - 20) ** 2 - 15 ** 2) < 30)] = (20, 20, 20, 255)
    img = Image.fromarray(a)
    path = tmp_path_factory.mktemp("art") / "sun.png"
    img.save(path)
    return path


@pytest.fixture(scope="package", autouse=True)
def garbage_collected_on_main_thread(qapp):
    """As in the app (app/main_thread_gc): no automatic collection on the engine threads the tests start."""
    from app import main_thread_gc

    main_thread_gc.install()
    yield
    main_thread_gc.uninstall()


@pytest.fixture(autouse=True)
def collect_after_test(garbage_collected_on_main_thread):
    yield
    gc.collect()  # this test's cycles (windows, widgets) go here, on the GUI thread


class Dialogs:
    """Records message boxes. `answers` maps the static method name to what it returns."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.answers = {"question": QMessageBox.StandardButton.Discard,
                        "warning": QMessageBox.StandardButton.Close}

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]

    def texts(self) -> str:
        return "\n".join(f"{c[1]}: {c[2]}" for c in self.calls)

    def make(self, kind: str):
        def record(_parent, title, text, *args, **kwargs):
            self.calls.append((kind, str(title), str(text)))
            return self.answers.get(kind, QMessageBox.StandardButton.Ok)

        return record


@pytest.fixture(autouse=True)
def dialogs(monkeypatch, tmp_path) -> Dialogs:
    d = Dialogs()
    for kind in ("critical", "warning", "question", "information", "about"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(d.make(kind)))

    def no_file_dialog(*_a, **_k):
        raise AssertionError("a file dialog was opened in a test; pass the path explicitly")

    for name in ("getOpenFileName", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, staticmethod(no_file_dialog))
    monkeypatch.setenv("ARTFLOW_DATA_DIR", str(tmp_path / "userdata"))
    monkeypatch.setenv("ARTFLOW_REFINE_STEPS", "6")
    return d


def open_window(qtbot, model: Path | None, **kw):
    from app.application import create_window
    from app.settings import Settings

    settings = Settings.load()
    win = create_window(str(model) if model else None, device="cpu", settings=settings, **kw)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    # Window shortcuts (B, E, [ ...) need the active window; on a real X server that is not automatic.
    win.activateWindow()
    try:
        qtbot.waitUntil(win.isActiveWindow, timeout=2000)
    except AssertionError:
        pass
    if model is not None:
        qtbot.waitUntil(lambda: win.doc.has_model, timeout=20000)
        wait_idle(qtbot, win)
    return win


def wait_idle(qtbot, win, timeout: int = 30000) -> None:
    """Until the engine has answered everything the document asked for (and the answers were applied)."""
    doc = win.doc

    def idle() -> bool:
        return win.engine.is_idle() and not doc.waiting_for_engine()

    qtbot.waitUntil(idle, timeout=timeout)
    QApplication.processEvents()
    qtbot.waitUntil(idle, timeout=timeout)


@pytest.fixture
def window(qtbot, tiny_bundle):
    win = open_window(qtbot, tiny_bundle)
    yield win
    win.shutdown()


def mouse(widget, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.LeftButton,
          buttons=Qt.MouseButton.LeftButton, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, modifiers)
    QApplication.sendEvent(widget, ev)


def drag(canvas, points, modifiers=Qt.KeyboardModifier.NoModifier, button=Qt.MouseButton.LeftButton) -> None:
    """A mouse stroke through `points` given in model pixels."""
    pts = [canvas.to_widget(QPointF(x, y)) for x, y in points]
    mouse(canvas, QEvent.Type.MouseButtonPress, pts[0], button, button, modifiers)
    for p in pts[1:]:
        mouse(canvas, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, button, modifiers)
    mouse(canvas, QEvent.Type.MouseButtonRelease, pts[-1], button, Qt.MouseButton.NoButton, modifiers)


def click(canvas, x: float, y: float, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    drag(canvas, [(x, y)], modifiers)


def wait_fill(qtbot, canvas, timeout: int = 30000) -> None:
    """Until the fills clicked so far (computed on the fill worker's thread) are on the canvas."""
    qtbot.waitUntil(lambda: not canvas.fill_pending(), timeout=timeout)
