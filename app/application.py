"""Start the desktop app: `python main.py [--model DIR] [--open IMAGE|PROJECT] [--device auto|cpu|cuda|mps]
[--screenshot FILE] [--zoom PERCENT] [--tab NAME|INDEX]`.

--screenshot FILE starts the app, performs the --open (and the refinement, if the preference is on), waits until
the engine is idle, saves a PNG of the main window and exits (README pictures, tests). Errors go to stderr, one
line each, instead of dialogs; the exit status is 1 when any was shown (a model or file that failed to open).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from core.errors import one_line
from core.platform.device import DEVICE_CHOICES

log = logging.getLogger("artflow")

STYLE_SHEET = """
QMainWindow, QDockWidget { background: #2b2c30; }
QDockWidget::title { background: #323338; padding: 5px 8px; font-weight: bold; color: #d8d9de; }
QToolBar { background: #323338; border: none; border-bottom: 1px solid #1f2023; spacing: 4px; padding: 3px 6px; }
QToolBar QToolButton { padding: 3px; border-radius: 4px; }
QToolBar QToolButton:checked { background: #4a5d7e; }
QToolBar QToolButton:hover { background: #42444b; }
QLabel#toolLabel { color: #b8bac2; }
QTabBar#stageTabs { background: #323338; }
QTabBar#stageTabs::tab { padding: 7px 18px; margin-right: 1px; background: #323338; color: #b8bac2;
    border: none; border-bottom: 2px solid transparent; }
QTabBar#stageTabs::tab:selected { color: #ffffff; background: #2b2c30; border-bottom: 2px solid #5a96e6; }
QTabBar#stageTabs::tab:hover { color: #ffffff; }
QWidget#stageStrip { background: #323338; border-top: 1px solid #1f2023; }
QFrame#stageCard { background: #2b2c30; border: 1px solid #3c3e44; border-radius: 6px; }
QFrame#stageCard[current="true"] { border: 2px solid #5a96e6; background: #30343c; }
QLabel#stageCardTitle { color: #e4e5ea; font-weight: bold; }
QLabel#stageCardStatus { color: #b8bac2; }
QLabel#stageArrow { color: #8a8c94; font-size: 20px; padding: 0 4px; }
QLabel#hint { color: #9a9ca4; }
QLabel#zLabel { color: #9a9ca4; min-width: 18px; }
QPushButton { padding: 4px 10px; }
QPushButton#primary { background: #3d6db5; color: white; border: 1px solid #2f5794; border-radius: 3px; }
QPushButton#primary:disabled { background: #3a3c42; color: #7a7c84; border-color: #34363b; }
QListWidget { background: #26272b; border: 1px solid #3c3e44; }
QStatusBar { background: #323338; color: #c8c9ce; }
QStatusBar QLabel { padding: 0 6px; }
QLabel#deviceLabel { color: #9fd39f; }
QCheckBox::indicator { width: 13px; height: 13px; border: 1px solid #7a7c84; border-radius: 2px;
    background: #222326; }
QCheckBox::indicator:checked { background: #4f86d6; border-color: #4f86d6; image: url(%CHECK%); }
QCheckBox::indicator:hover { border-color: #a0a2aa; }
QLabel#refinePreview { background: #222326; border: 1px solid #3c3e44; }
QScrollArea { background: transparent; }
QScrollArea > QWidget > QWidget { background: transparent; }
"""


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor(43, 44, 48), QColor(34, 35, 38), QColor(222, 224, 230)
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, window)
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor(50, 52, 58))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, QColor(58, 60, 66))
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor(255, 90, 90))
    p.setColor(QPalette.ColorRole.Highlight, QColor(74, 120, 190))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor(255, 255, 255))
    p.setColor(QPalette.ColorRole.Link, QColor(110, 160, 235))
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor(130, 132, 140))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 122, 128))
    return p


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    from core.files import bundle

    ap = argparse.ArgumentParser(prog="artflow", description="Artflow desktop app (no sub-command). "
                                 "Sub-commands run the headless CLI: see `artflow --help`.")
    ap.add_argument("--model", metavar="DIR|NAME", help=bundle.model_argument_help())
    ap.add_argument("--open", metavar="FILE", help="an artwork image (PNG/JPEG/WebP, ...) or an .artflow project")
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where the model runs (default: auto)")
    ap.add_argument("--screenshot", metavar="FILE", help="save a PNG of the window once ready, then exit")
    ap.add_argument("--steps", type=int, help="refinement steps (default: the paper's 150, or the preference)")
    ap.add_argument("--zoom", type=float, metavar="PERCENT",
                    help="the canvas's zoom once ready (100: one image pixel per screen pixel; default: fit)")
    ap.add_argument("--tab", metavar="NAME|INDEX",
                    help="the stage shown once ready: its name or title (e.g. detail) or its index from 0")
    ap.add_argument("--timeout", type=float, default=600, help=argparse.SUPPRESS)
    return ap.parse_known_args(argv)


def apply_theme(app: QApplication) -> None:
    if "Fusion" in QStyleFactory.keys():
        app.setStyle("Fusion")
    app.setPalette(dark_palette())
    check = (Path(__file__).resolve().parent / "check.svg").as_posix()
    app.setStyleSheet(STYLE_SHEET.replace("%CHECK%", check))


def create_window(model: str | None = None, device: str = "auto", screenshot_mode: bool = False,
                  settings=None):
    """Build the main window and start loading the model: `model` (a folder or a bundled model's name), else the
    one loaded last (Settings.recent_models), else the default bundle. Used by run_app and by the tests."""
    from app import main_thread_gc
    from app.main_window import MainWindow
    from app.settings import Settings
    from core.errors import BundleError
    from core.files import bundle
    from core.platform.memory import return_large_blocks

    main_thread_gc.install()  # before the engine thread starts: see main_thread_gc
    return_large_blocks()  # resident memory follows what the artwork holds (core/platform/memory.py)
    settings = settings or Settings.load()
    win = MainWindow(settings, device=device, screenshot_mode=screenshot_mode)
    if model is None:
        model = settings.last_model()  # None: the default bundle
    try:
        path = bundle.resolve_model(model)
    except BundleError:
        path = Path(model)  # loading it fails with the message that says why
    if model is None and not (path / bundle.CONFIG_FILE).is_file():
        QTimer.singleShot(0, lambda: win.show_no_model(
            f"The bundled default model was not found in {path}."))
    else:
        win.doc.load_model(str(path))  # a broken folder ends in MainWindow.show_no_model (the message says why)
    return win


def run_app(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, qt_args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if os.environ.get("ARTFLOW_DEBUG") else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from app import qt_messages

    qt_messages.install()  # before the QApplication: the platform plugin speaks as it loads
    app = QApplication.instance()
    own_app = app is None
    if own_app:
        app = QApplication([sys.argv[0] if sys.argv else "artflow", *qt_args])
    app.setApplicationName("Artflow")
    app.setOrganizationName("Artflow")
    apply_theme(app)

    from app.settings import Settings

    settings = Settings.load()
    if args.steps:
        settings.override_steps(args.steps)
    win = create_window(args.model, args.device, screenshot_mode=bool(args.screenshot), settings=settings)
    win.show()
    if args.open:
        target = args.open

        def do_open() -> None:
            if target.endswith(".artflow"):
                win.doc.open_project(target)
            else:
                win.doc.open_image(target)

        if win.doc.has_model or win.doc.model_loading:
            do_open()
    rc = {"code": 0}
    zoom = max(1.0, float(args.zoom)) / 100 if args.zoom else None
    if zoom is not None:
        win.doc.artworkOpened.connect(lambda: win.canvas.zoom_to(zoom))
    if args.tab is not None and not args.screenshot:
        win.doc.artworkOpened.connect(lambda: _show_tab(win, args.tab))
    if args.screenshot:
        _drive_screenshot(app, win, Path(args.screenshot), args.timeout, rc, zoom, args.tab)
    app.aboutToQuit.connect(win.shutdown)  # however the loop ends, the engine thread is joined first
    _quit_on_sigint(win)
    code = app.exec()
    return rc["code"] or code


def _quit_on_sigint(win) -> None:
    """Ctrl+C in the terminal closes the window properly (Python handles signals only between Qt events, so a
    timer gives it the chance)."""
    import signal

    try:
        signal.signal(signal.SIGINT, lambda *_a: win.close())
    except ValueError:  # not the main thread (embedded use)
        return
    timer = QTimer(win)
    timer.timeout.connect(lambda: None)
    timer.start(250)


def stage_index(doc, tab: str) -> int | None:
    """The stage `tab` names: an index from 0, or a stage's name or title (case-insensitive); None if none."""
    n = doc.num_stages
    if tab.strip().lstrip("-").isdigit():
        k = int(tab)
        return k if 0 <= k < n else None
    want = tab.strip().lower()
    for k in range(n):
        spec = doc.config.stages[k]
        if want in (spec.name.lower(), spec.title.lower()):
            return k
    return None


def _show_tab(win, tab: str) -> bool:
    """Shows the stage `tab` names; False (with a one-line message on stderr) when there is no such stage."""
    if not win.doc.has_model:
        return False
    k = stage_index(win.doc, tab)
    if k is None:
        names = ", ".join(f"{i} {win.doc.config.stages[i].name}" for i in range(win.doc.num_stages))
        print(one_line(f"artflow: --tab {tab}: no such stage (this model's stages: {names})"), file=sys.stderr)
        return False
    win.doc.set_current_stage(k)
    return True


def _save_png(pixmap, out: Path) -> str | None:
    """Write `pixmap` as a PNG to `out` atomically (a full disk leaves the old file or none, never a truncated
    one). None when written, else why not (naming the file)."""
    from PySide6.QtCore import QBuffer, QIODevice

    from core.errors import ArtflowError
    from core.files.atomic import atomic_write

    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    if not pixmap.save(buf, "PNG"):
        return f"{out} (the window's picture could not be encoded as a PNG)"
    try:
        with atomic_write(out) as f:
            f.write(bytes(buf.data()))
    except ArtflowError as exc:
        return str(exc)
    return None


def _drive_screenshot(app, win, out: Path, timeout: float, rc: dict, zoom: float | None = None,
                      tab: str | None = None) -> None:
    """Poll until the engine is idle with nothing pending (model loaded, artwork opened and refined), then grab."""
    start = time.monotonic()
    state = {"quiet": 0}

    def tick() -> None:
        busy = (not win.engine.is_idle()) or win.doc.refining or win.doc.model_loading \
            or win.doc.has_unsent_edits()
        if time.monotonic() - start > timeout:
            print(f"artflow: --screenshot timed out after {timeout:.0f} s", file=sys.stderr)
            rc["code"] = 2
            busy = False
            state["quiet"] = 99
        state["quiet"] = 0 if busy else state["quiet"] + 1
        if state["quiet"] >= 3:  # idle for a few ticks: every queued signal has been handled
            timer.stop()
            if tab is not None and not _show_tab(win, tab):
                rc["code"] = 2
            app.processEvents()
            if zoom is not None:
                win.canvas.zoom_to(zoom)  # --zoom: e.g. 100 shows the artwork's true pixels
            app.processEvents()
            problem = _save_png(win.grab(), out)
            if problem:
                print(one_line(f"artflow: cannot write the screenshot {problem}"), file=sys.stderr)
                rc["code"] = 1
            else:
                print(one_line(f"artflow: screenshot saved to {out}"))
            if win.errors_shown and not rc["code"]:
                rc["code"] = 1  # what it was asked to open failed (each error is on stderr already)
            win.close()
            app.quit()

    timer = QTimer(win)
    timer.setInterval(150)
    timer.timeout.connect(tick)
    timer.start()
