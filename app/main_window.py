"""The main window: stage tabs over the canvas, the stage strip below it, the Variations and Refinement panels on
the right, the status bar (engine activity, zoom, device, model), and a clean shutdown.

Its actions, menus and tool bar are built by app/window_controls.py (`window.controls`); its file commands
(open, save, export, recovery) are app/file_commands.py (`window.files`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QTabBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import icons
from app.canvas.tools import ToolState
from app.canvas.view import CanvasView
from app.document import Document
from app.document_results import apply_results_of
from app.engine_worker import EngineThread
from app.file_commands import FileCommands
from app.settings import Settings
from app.widgets.latent_panel import LatentPanel
from app.widgets.refine_panel import RefinePanel
from app.widgets.stage_strip import StageStrip, status_icon
from app.window_controls import WindowControls
from core.errors import one_line, shown
from core.files.export import ExportFormat

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    closed = Signal()

    def __init__(self, settings: Settings | None = None, device: str = "auto", screenshot_mode: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or Settings.load()
        self.screenshot_mode = screenshot_mode
        self.errors_shown: list[str] = []  # in screenshot mode, what went wrong (the exit status says so)
        self.engine = EngineThread()
        self.doc = Document(self.engine, self.settings, self, device=device)
        apply_results_of(self.engine, self.doc)
        self.tools = ToolState(self)
        self._closing = False
        self._asking_to_close = False
        self._shut_down = False
        self._recovery_checked = screenshot_mode
        self.setWindowIcon(icons.app_icon())
        self.setWindowTitle("Artflow")
        self.resize(1280, 800)
        self.setDockNestingEnabled(True)
        self.setAcceptDrops(True)

        self.canvas = CanvasView(self.doc, self.tools)
        self.strip = StageStrip(self.doc)
        self.tabs = QTabBar()
        self.tabs.setObjectName("stageTabs")
        self.tabs.setExpanding(False)
        self.tabs.setDrawBase(False)
        self.tabs.setDocumentMode(True)
        self.tabs.currentChanged.connect(self._on_tab)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.tabs)
        lay.addWidget(self.canvas, 1)
        lay.addWidget(self.strip)
        self.setCentralWidget(central)

        self.latent_panel = LatentPanel(self.doc)
        self.refine_panel = RefinePanel(self.doc)
        self.latent_dock = self._dock("Variations", self.latent_panel, "variationsDock")
        self.refine_dock = self._dock("Refinement", self.refine_panel, "refinementDock")
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.latent_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.refine_dock)
        self.resizeDocks([self.latent_dock], [320], Qt.Orientation.Horizontal)
        self.resizeDocks([self.latent_dock, self.refine_dock], [440, 280], Qt.Orientation.Vertical)

        self.files = FileCommands(self)
        # A project made with another model is answered by the window: screenshot mode reports it (exit 1), never
        # waiting on a dialog.
        self.doc.readOnlyProject.connect(self._on_read_only_project)
        self.controls = WindowControls(self)
        self._make_status_bar()
        self._connect()

        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(self.settings.autosave_seconds * 1000)
        self.autosave_timer.timeout.connect(self.doc.autosave)
        if not screenshot_mode:
            self.autosave_timer.start()
        self.engine.start()
        self._rebuild_for_model()

    # ----- construction -----
    def _dock(self, title: str, widget: QWidget, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        scroll = QScrollArea()  # a panel never forces the window taller than the screen
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(widget)
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        return dock

    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.activity_bar = QProgressBar()
        self.activity_bar.setRange(0, 0)
        self.activity_bar.setFixedWidth(120)
        self.activity_bar.setFixedHeight(12)
        self.activity_bar.setTextVisible(False)
        self.activity_bar.hide()
        self.activity_label = QLabel("")
        self.cancel_btn = QToolButton()
        self.cancel_btn.setText("Cancel")
        self.cancel_btn.setToolTip("Cancel the refinement (Esc)")
        self.cancel_btn.clicked.connect(self.doc.cancel_refine)
        self.cancel_btn.hide()
        self.pos_label = QLabel("")
        self.zoom_label = QLabel("")
        self.device_label = QLabel("No model loaded")
        self.device_label.setObjectName("deviceLabel")
        self.model_label = QLabel("")
        for w in (self.activity_label, self.activity_bar, self.cancel_btn, self.pos_label, self.zoom_label,
                  self.model_label, self.device_label):
            sb.addPermanentWidget(w)

    def _connect(self) -> None:
        d = self.doc
        d.modelChanged.connect(self._rebuild_for_model)
        d.modelLoading.connect(self._on_model_loading)
        d.statusChanged.connect(self._update_tab)
        d.currentStageChanged.connect(self._on_stage_selected)
        d.undoChanged.connect(self.controls.sync_undo)
        d.dirtyChanged.connect(lambda _d: self._update_title())
        d.titleChanged.connect(lambda _t: self._update_title())
        d.activityChanged.connect(self._on_activity)
        d.error.connect(self.show_error)
        d.modelFailed.connect(self._on_model_failed)
        d.message.connect(lambda m: self.statusBar().showMessage(m, 6000))
        d.refineStateChanged.connect(self._on_refine_state)
        d.refineProgress.connect(self._on_refine_progress)
        d.refineFinished.connect(lambda ok, msg: self.statusBar().showMessage(msg, 10000))
        d.compareChanged.connect(self._sync_compare)
        d.artworkOpened.connect(self._sync_compare)
        self.canvas.zoomChanged.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        self.canvas.cursorMoved.connect(self._on_cursor)

    # ----- model & stages -----
    def channels(self) -> int:
        """Colour channels of the current stage (1: a grey stage such as line art)."""
        return self.doc.stage_channels(self.doc.current_stage) if self.doc.has_model else 3

    def _rebuild_for_model(self) -> None:
        doc = self.doc
        self.tabs.blockSignals(True)
        while self.tabs.count():
            self.tabs.removeTab(0)
        for k in range(doc.num_stages):
            self.tabs.addTab(status_icon(doc.status(k)), doc.stage_title(k))
            self._update_tab(k)
        self.tabs.setCurrentIndex(doc.current_stage if doc.has_model else -1)
        self.tabs.blockSignals(False)
        has = doc.has_model
        self.controls.set_model_loaded(has)
        self.controls.sync_bundled_models()
        if has:
            info = doc.model_info
            self.settings.remember_model(info.path)  # the next start opens it (unless --model says otherwise)
            self.device_label.setText(info.device_label)
            self.device_label.setToolTip(f"Computation device. Perceptual loss for the refinement: "
                                         f"{info.perceptual}")
            self.model_label.setText(f"Model: {info.config.name}")
            self.model_label.setToolTip(f"{info.path}\n{info.config.resolution} px, stages: "
                                        + " → ".join(s.title for s in info.config.stages))
        else:
            self.device_label.setText("No model loaded")
            self.model_label.setText("")
            self.statusBar().showMessage("No model is loaded: choose one with File > Open model…")
        self._on_stage_selected(doc.current_stage)
        self._update_title()
        self.controls.sync_undo()
        self._on_refine_state(doc.refining)
        if has and not self._recovery_checked:
            self._recovery_checked = True
            QTimer.singleShot(0, self.files.offer_recovery)

    def _on_model_loading(self, path: str) -> None:
        if path:
            self.statusBar().showMessage(f"Loading model {path}…")
        self.canvas.update()

    def _on_model_failed(self, message: str) -> None:
        self.controls.sync_bundled_models()
        if self.doc.has_model:
            self.show_error("Cannot open the model", f"{message}\n\nThe current model stays loaded.")
        else:
            self.show_no_model(f"The model could not be loaded: {message}")

    def _update_tab(self, k: int) -> None:
        if 0 <= k < self.tabs.count() and self.doc.has_model:
            self.tabs.setTabIcon(k, status_icon(self.doc.status(k)))
            self.tabs.setTabToolTip(k, f"{self.doc.stage_title(k)}: {self.doc.status_text(k)}")

    def _on_tab(self, k: int) -> None:
        if k >= 0:
            self.doc.set_current_stage(k)

    def _on_stage_selected(self, k: int) -> None:
        if self.doc.has_model and self.tabs.currentIndex() != k:
            self.tabs.blockSignals(True)
            self.tabs.setCurrentIndex(k)
            self.tabs.blockSignals(False)
        self.controls.sync_stage(k)

    def _update_title(self) -> None:
        doc = self.doc
        if not doc.has_model:
            self.setWindowTitle("Artflow")
            return
        star = "*" if doc.dirty else ""
        self.setWindowTitle(f"{doc.title()}{star} — Artflow ({doc.model_info.config.name})")

    def set_compare(self, on: bool) -> None:
        if on and self.doc.has_model:
            if self.doc.compare_reference() is None:
                self.statusBar().showMessage("Nothing to compare yet: open an artwork or make a change first", 6000)
            self.doc.set_current_stage(self.doc.num_stages - 1)
        self.canvas.set_compare(on)

    def _sync_compare(self) -> None:
        self.canvas.update()

    def _on_activity(self, text: str) -> None:
        if self.doc.refining:
            return  # the refinement's own progress is shown
        self.activity_label.setText(text)
        self.activity_bar.setRange(0, 0)  # busy
        self.activity_bar.setVisible(bool(text))

    def _on_refine_state(self, running: bool) -> None:
        self.controls.set_refine_running(running)
        self.cancel_btn.setVisible(running)
        if running:
            self.activity_bar.setRange(0, 1000)
            self.activity_bar.setValue(0)
            self.activity_bar.show()
            self.activity_label.setText("Refining…")
            self.refine_dock.show()
            self.refine_dock.raise_()
        else:
            self.activity_bar.hide()
            self.activity_label.setText("")

    def _on_refine_progress(self, p) -> None:
        self.activity_bar.setValue(round(p.fraction * 1000))
        self.activity_label.setText(f"Refining {p.fraction * 100:.0f}%  ·  step {p.step}/{p.steps}  ·  "
                                    f"loss {p.loss:.3f}")

    def _on_cursor(self, x: int, y: int) -> None:
        self.pos_label.setText(f"{x}, {y}" if x >= 0 else "")

    # ----- commands (the file commands are app/file_commands.py's; these are their names on the window) -----
    def clear_to_paper(self) -> None:
        doc = self.doc
        if not doc.has_model:
            return
        import numpy as np

        k = doc.current_stage
        w, h = doc.artwork_size
        doc.commit_layer(k, np.full((h, w, 4), 255, np.uint8), "Clear to paper")

    def new_artwork(self) -> None:
        self.files.new_artwork()

    def open_image(self, path: str | None = None) -> None:
        self.files.open_image(path)

    def open_project(self, path: str | None = None) -> None:
        self.files.open_project(path)

    def open_model(self, path: str | None = None) -> None:
        self.files.open_model(path)

    def save_project(self, path: str | None = None) -> bool:
        return self.files.save_project(path)

    def export(self, fmt: ExportFormat | str, path: str | None = None, scale: int = 1) -> Path | list[Path] | None:
        return self.files.export(fmt, path, scale)

    def show_error(self, title: str, text: str) -> None:
        if self.screenshot_mode:
            self._report(f"{title}: {text}")
            return
        QMessageBox.critical(self, title, text)

    def _report(self, text: str) -> None:
        """Screenshot mode has no one to click a dialog away: the error is one line on stderr instead (control
        characters of names read from files escaped)."""
        line = one_line(" ".join(text.split()))
        self.errors_shown.append(line)
        print(f"artflow: {line}", file=sys.stderr)

    def _on_read_only_project(self, project) -> None:
        """A project made with another model (its warning names the file and both models, shortened): offer to
        open its final image, at the artwork's own size, as a new artwork of the open model. Screenshot mode: the
        warning is the error (exit 1)."""
        if self.screenshot_mode:
            self._report(project.warning)
            return
        answer = QMessageBox.question(
            self, "Project made with another model",
            f"{project.warning}.\n\nOpen its final image as a new artwork with the current model instead? "
            "(Its earlier stages are inferred again.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            last = self.doc.config.stages[-1]
            self.doc.open_image_tensor(final_image(project, last.channels, self.doc.config.resolution),
                                       f"{shown(project.model_name, 40)}-final")

    def show_no_model(self, reason: str) -> None:
        """The default model is missing: say so, and offer File > Open model."""
        self.statusBar().showMessage("No model is loaded: choose one with File > Open model…")
        if self.screenshot_mode:
            self._report(reason)
            return
        answer = QMessageBox.warning(
            self, "No model loaded", f"{reason}\n\nArtflow needs a model bundle (a folder with config.json and "
            "model.safetensors) to draw with. Open one now?",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Close, QMessageBox.StandardButton.Open)
        if answer == QMessageBox.StandardButton.Open:
            self.files.open_model()

    # ----- drag and drop -----
    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            p = urls[0]
            if p.endswith(".artflow"):
                self.open_project(p)
            elif self._on_first_tab(e.position().toPoint()):
                self.files.open_line_art(p)  # an image dropped on the Line art tab is line art (issue 28)
            else:
                self.open_image(p)

    def _on_first_tab(self, pos) -> bool:
        """Whether a point of the window lies on the first stage's (line art's) tab."""
        bar = self.tabs.tabBar()
        local = bar.mapFrom(self, pos)
        return bar.rect().contains(local) and bar.tabAt(local) == 0

    # ----- shutdown -----
    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802
        if self._shut_down:
            e.accept()
            return
        if not self._closing:
            if self.doc.refining:
                self.doc.cancel_refine()  # before asking: the engine must be free to save
            self._asking_to_close = True
            self.files.then_after_saving(self._ready_to_close)
            self._asking_to_close = False
            if not self._closing:  # Cancel, or a save on its way: the window closes once it is saved
                e.ignore()
                return
        self.shutdown()
        e.accept()
        self.closed.emit()

    def _ready_to_close(self) -> None:
        self._closing = True
        if not self._asking_to_close:  # the save the artist asked for has finished
            self.close()

    def shutdown(self) -> None:
        """Stop autosaving, cancel a refinement, wait for the engine thread, drop this session's autosave.
        Safe to call more than once (closeEvent, then QApplication.aboutToQuit); a window shut down closes
        without asking."""
        if self._shut_down:
            return
        self._shut_down = True
        self.autosave_timer.stop()
        self.canvas.fill_worker.close()
        self.engine.cancel_refine()
        if not self.engine.stop():
            log.warning("the engine thread did not stop in time")
        self.doc.discard_autosave()
        self.settings.save()


def final_image(project, channels: int, resolution: int) -> torch.Tensor:
    """A project's final image as a new artwork's (channels, H, W) in [-1, 1]: at its own size (its full-res
    stage, else its proxy), converted to `channels`. One smaller than the app opens (the proxy of a small model)
    is fitted to the model's `resolution`."""
    import numpy as np
    from PIL import Image

    from core.files.imageio import normalize_pil, pil_to_tensor, tensor_to_uint8, uint8_to_tensor
    from core.fullres.proxy import MIN_SIDE

    a = project.fullres_u8[-1] if project.fullres_u8 is not None else tensor_to_uint8(project.proxy_images()[-1])
    img = Image.fromarray(a)
    if max(img.size) < min(MIN_SIDE, resolution):
        return pil_to_tensor(img, channels, resolution)
    return uint8_to_tensor(np.asarray(normalize_pil(img, channels)))
