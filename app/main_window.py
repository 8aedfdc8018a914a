"""The main window: stage tabs over the canvas, the stage strip below it, the Variations and Refinement panels on
the right, menus and Krita-style shortcuts, the status bar (engine activity, zoom, device, model)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QColor, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QFileDialog,
    QFrame,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSlider,
    QSpinBox,
    QTabBar,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app import autosave, icons
from app.canvas.tools import MAX_SIZE, MIN_SIZE, Tool, ToolState
from app.canvas.view import CanvasView
from app.document import Document
from app.engine_worker import EngineThread
from app.settings import Settings
from app.widgets.colour_swatch import ColourSwatch
from app.widgets.latent_panel import LatentPanel
from app.widgets.refine_panel import RefinePanel
from app.widgets.stage_strip import StageStrip, status_icon
from core.errors import ArtflowError

log = logging.getLogger(__name__)

SIZE_TICKS = 100


def slider_to_size(v: int) -> float:
    return MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** (v / SIZE_TICKS)


def size_to_slider(size: float) -> int:
    import math

    return round(SIZE_TICKS * math.log(max(MIN_SIZE, size) / MIN_SIZE) / math.log(MAX_SIZE / MIN_SIZE))

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.bmp *.gif *.tif *.tiff);;All files (*)"
PROJECT_FILTER = "Artflow projects (*.artflow);;All files (*)"

SHORTCUTS_HELP = """<table cellspacing=4>
<tr><td><b>B</b></td><td>Brush</td><td><b>E</b></td><td>Eraser</td></tr>
<tr><td><b>F</b></td><td>Fill</td><td><b>I</b> / Ctrl+click</td><td>Eyedropper</td></tr>
<tr><td><b>[</b> / <b>]</b></td><td>Smaller / bigger brush</td><td><b>X</b></td><td>Swap colours</td></tr>
<tr><td><b>D</b></td><td>Default colours</td><td><b>Delete</b></td><td>Clear stage to paper</td></tr>
<tr><td><b>Ctrl+Z</b></td><td>Undo (this stage)</td><td><b>Ctrl+Shift+Z</b></td><td>Redo</td></tr>
<tr><td><b>Space</b>-drag</td><td>Pan</td><td><b>Ctrl+wheel</b>, <b>+</b> / <b>-</b></td><td>Zoom</td></tr>
<tr><td><b>0</b></td><td>Fit to window</td><td><b>1</b></td><td>Actual pixels</td></tr>
<tr><td><b>PgUp</b> / <b>PgDn</b></td><td>Previous / next stage</td><td><b>Alt+1..9</b></td><td>Go to stage</td></tr>
<tr><td><b>C</b></td><td>Compare before / after</td><td><b>R</b></td><td>Random variation</td></tr>
<tr><td><b>F5</b></td><td>Regenerate later stages</td><td><b>Ctrl+R</b></td><td>Refine</td></tr>
</table>"""


class MainWindow(QMainWindow):
    closed = Signal()

    def __init__(self, settings: Settings | None = None, device: str = "auto", screenshot_mode: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or Settings.load()
        self.screenshot_mode = screenshot_mode
        self.engine = EngineThread()
        self.doc = Document(self.engine, self.settings, self, device=device)
        self.tools = ToolState(self)
        self._closing = False
        self._shut_down = False
        self._recovery_checked = screenshot_mode
        self._startup_model_missing = False
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

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
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

    def _action(self, text: str, slot=None, shortcut=None, tip: str = "", checkable: bool = False,
                icon=None) -> QAction:
        a = QAction(text, self)
        if icon is not None:
            a.setIcon(icon)
        if shortcut:
            seqs = shortcut if isinstance(shortcut, list) else [shortcut]
            a.setShortcuts([QKeySequence(s) for s in seqs])
        if tip:
            a.setToolTip(tip)
            a.setStatusTip(tip)
        a.setCheckable(checkable)
        if slot is not None:
            (a.toggled if checkable else a.triggered).connect(slot)
        self.addAction(a)  # shortcuts work whatever has focus in the window
        return a

    def _make_actions(self) -> None:
        A = self._action
        doc = self.doc
        self.act_new = A("&New drawing", self.new_artwork, QKeySequence.StandardKey.New,
                         "Start a new artwork from a blank first stage")
        self.act_open_image = A("&Open image…", self.open_image, QKeySequence.StandardKey.Open,
                                "Open a finished artwork and infer its earlier stages")
        self.act_open_project = A("Open &project…", self.open_project, "Ctrl+Shift+O", "Open an .artflow project")
        self.act_save = A("&Save project", self.save_project, QKeySequence.StandardKey.Save)
        self.act_save_as = A("Save project &as…", self.save_project_as, "Ctrl+Shift+S")
        self.act_export_final = A("Final image (PNG)…", lambda: self.export("png"), "Ctrl+E",
                                  "The last stage at the model's size")
        self.act_export_up = A("Final image, enlarged (PNG)…", lambda: self.export("png-up"),
                               tip="The last stage enlarged 2× to 16× (smooth resampling)")
        self.act_export_stages = A("Every stage as PNG…", lambda: self.export("stages"))
        self.act_export_strip = A("Workflow strip (PNG)…", lambda: self.export("strip"))
        self.act_export_ora = A("Layered OpenRaster (.ora) for Krita, GIMP, MyPaint…", lambda: self.export("ora"))
        self.act_export_gif = A("Animated GIF of the workflow…", lambda: self.export("gif"))
        self.act_open_model = A("Open &model…", self.open_model, "Ctrl+M",
                                "Choose another model bundle (a folder with config.json and model.safetensors)")
        self.act_quit = A("&Quit", self.close, QKeySequence.StandardKey.Quit)

        self.act_undo = A("&Undo", lambda: doc.undo(), [QKeySequence.StandardKey.Undo])
        self.act_redo = A("&Redo", lambda: doc.redo(), ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.act_clear = A("Clear stage to paper", self.clear_to_paper, "Delete",
                           "Paint this stage over with paper white (undoable)")
        self.act_remove_paint = A("Remove my paint from this stage", lambda: doc.clear_layer(), "Shift+Delete",
                                  "Drop everything painted on this stage: the generated image shows again")
        self.act_keep = A("Keep unedited areas", doc.set_keep_unedited, None,
                          "When a stage is edited, later stages change only around the edit", checkable=True)
        self.act_keep.setChecked(doc.keep_unedited)
        self.act_auto = A("Regenerate automatically", doc.set_auto_regenerate, None,
                          "Later stages follow every edit (off: they turn stale until Regenerate)", checkable=True)
        self.act_auto.setChecked(doc.auto_regenerate)
        self.act_regen = A("Regenerate later stages", doc.regenerate, "F5", icon=icons.regenerate())
        self.act_refine = A("&Refine to the artwork", lambda: doc.refine(self.refine_panel.steps.value()), "Ctrl+R")
        self.act_cancel = A("Cancel refinement", doc.cancel_refine, "Esc")
        self.act_random = A("Random variation", self.latent_panel.randomize, "R", icon=icons.dice())

        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[Tool, QAction] = {}
        for tool, key, icon, tip in ((Tool.BRUSH, "B", icons.brush(), "Brush (B): paint on this stage"),
                                     (Tool.ERASER, "E", icons.eraser(), "Eraser (E)"),
                                     (Tool.FILL, "F", icons.fill(), "Fill (F): fill a region with the colour"),
                                     (Tool.PICKER, "I", icons.picker(), "Eyedropper (I, or Ctrl+click)")):
            a = A(tool.title, lambda _=False, t=tool: self.tools.set_tool(t), key, tip, checkable=False, icon=icon)
            a.setCheckable(True)
            self.tool_group.addAction(a)
            self.tool_actions[tool] = a
        self.tool_actions[Tool.BRUSH].setChecked(True)
        self.act_bigger = A("Bigger brush", self.tools.grow, "]")
        self.act_smaller = A("Smaller brush", self.tools.shrink, "[")
        self.act_swap = A("Swap colours", lambda: self.tools.swap(self._channels()), "X")
        self.act_default_colours = A("Default colours", self._default_colours, "D")

        c = self.canvas
        self.act_zoom_in = A("Zoom in", c.zoom_in, ["+", "=", "Ctrl++", "Ctrl+="])
        self.act_zoom_out = A("Zoom out", c.zoom_out, ["-", "Ctrl+-"])
        self.act_fit = A("Fit to window", c.fit, ["0", "Ctrl+0"])
        self.act_actual = A("Actual pixels", c.reset_zoom, ["1", "Ctrl+1"])
        self.act_smooth = A("Smooth enlargement", self._set_smooth, None, checkable=True)
        self.act_smooth.setChecked(True)
        self.act_compare = A("Compare before / after", self._set_compare, "C",
                             "Split view of the final stage: the original (or the picture before your last "
                             "change) on the left, now on the right; drag the divider", checkable=True,
                             icon=icons.compare())
        self.act_prev_stage = A("Previous stage", lambda: doc.set_current_stage(doc.current_stage - 1), "PgUp")
        self.act_next_stage = A("Next stage", lambda: doc.set_current_stage(doc.current_stage + 1), "PgDown")
        for k in range(9):
            A(f"Stage {k + 1}", lambda _=False, k=k: doc.set_current_stage(k), f"Alt+{k + 1}")
        self.act_shortcuts = A("Keyboard shortcuts", self.show_shortcuts, "F1")
        self.act_about = A("About Artflow", self.show_about)

    def _make_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        for a in (self.act_new, self.act_open_image, self.act_open_project):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self.act_save)
        f.addAction(self.act_save_as)
        ex = f.addMenu("&Export")
        for a in (self.act_export_final, self.act_export_up, self.act_export_stages, self.act_export_strip,
                  self.act_export_ora, self.act_export_gif):
            ex.addAction(a)
        f.addSeparator()
        f.addAction(self.act_open_model)
        f.addSeparator()
        f.addAction(self.act_quit)
        e = mb.addMenu("&Edit")
        for a in (self.act_undo, self.act_redo):
            e.addAction(a)
        e.addSeparator()
        e.addAction(self.act_clear)
        e.addAction(self.act_remove_paint)
        e.addSeparator()
        e.addAction(self.act_keep)
        e.addAction(self.act_auto)
        e.addAction(self.act_regen)
        t = mb.addMenu("&Tools")
        for a in self.tool_actions.values():
            t.addAction(a)
        t.addSeparator()
        for a in (self.act_bigger, self.act_smaller, self.act_swap, self.act_default_colours):
            t.addAction(a)
        w = mb.addMenu("&Workflow")
        w.addAction(self.act_random)
        w.addAction(self.act_regen)
        w.addSeparator()
        w.addAction(self.act_refine)
        w.addAction(self.act_cancel)
        v = mb.addMenu("&View")
        for a in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_actual):
            v.addAction(a)
        v.addAction(self.act_smooth)
        v.addSeparator()
        v.addAction(self.act_compare)
        v.addAction(self.act_prev_stage)
        v.addAction(self.act_next_stage)
        v.addSeparator()
        v.addAction(self.latent_dock.toggleViewAction())
        v.addAction(self.refine_dock.toggleViewAction())
        h = mb.addMenu("&Help")
        h.addAction(self.act_shortcuts)
        h.addAction(self.act_about)

    def _make_toolbar(self) -> None:
        tb = QToolBar("Tools")
        tb.setObjectName("toolOptions")
        tb.setMovable(False)
        tb.setIconSize(QSize(22, 22))
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        for a in self.tool_actions.values():
            tb.addAction(a)
        tb.addSeparator()
        self.swatch = ColourSwatch(self.tools, self._channels)
        tb.addWidget(self.swatch)
        tb.addSeparator()
        tb.addWidget(self._label("Size"))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(0, SIZE_TICKS)  # exponential: fine control of small brushes
        self.size_slider.setFixedWidth(110)
        self.size_slider.setToolTip("Brush diameter in model pixels ([ and ])")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(int(MIN_SIZE), int(MAX_SIZE))
        self.size_spin.setSuffix(" px")
        self.size_slider.valueChanged.connect(lambda v: self.tools.set_size(round(slider_to_size(v))))
        self.size_spin.valueChanged.connect(lambda v: self.tools.set_size(v))
        tb.addWidget(self.size_slider)
        tb.addWidget(self.size_spin)
        tb.addWidget(self._label("Opacity"))
        self.opacity_spin = QSpinBox()
        self.opacity_spin.setRange(1, 100)
        self.opacity_spin.setSuffix(" %")
        self.opacity_spin.setValue(100)
        self.opacity_spin.valueChanged.connect(lambda v: self.tools.set_opacity(v / 100))
        tb.addWidget(self.opacity_spin)
        self.pressure_btn = QToolButton()
        self.pressure_btn.setText("Pressure")
        self.pressure_btn.setCheckable(True)
        self.pressure_btn.setChecked(self.tools.pressure_size)
        self.pressure_btn.setToolTip("Tablet pressure changes the brush size")
        self.pressure_btn.toggled.connect(lambda on: self.tools.set_option("pressure_size", on))
        tb.addWidget(self.pressure_btn)
        self.reveal_box = QCheckBox("Eraser shows generated")
        self.reveal_box.setToolTip("On: the eraser removes your paint so the generated picture shows through.\n"
                                   "Off: the eraser paints paper white (e.g. to remove inferred lines).")
        self.reveal_box.toggled.connect(lambda on: self.tools.set_eraser_reveals(self.doc.current_stage, on))
        tb.addWidget(self.reveal_box)
        tb.addSeparator()
        self.keep_box = QCheckBox("Keep unedited areas")
        self.keep_box.setToolTip(self.act_keep.toolTip())
        self.keep_box.setChecked(self.doc.keep_unedited)
        self.keep_box.toggled.connect(self.act_keep.setChecked)
        self.act_keep.toggled.connect(self.keep_box.setChecked)
        tb.addWidget(self.keep_box)
        tb.addSeparator()
        tb.addAction(self.act_regen)
        tb.addAction(self.act_compare)
        self._sync_tool_widgets()

    def _label(self, text: str) -> QLabel:
        lab = QLabel(f" {text} ")
        lab.setObjectName("toolLabel")
        return lab

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
        d.undoChanged.connect(self._sync_undo)
        d.dirtyChanged.connect(lambda _d: self._update_title())
        d.titleChanged.connect(lambda _t: self._update_title())
        d.activityChanged.connect(self._on_activity)
        d.error.connect(self.show_error)
        d.modelFailed.connect(self._on_model_failed)
        d.message.connect(lambda m: self.statusBar().showMessage(m, 6000))
        d.readOnlyProject.connect(self._on_read_only_project)
        d.refineStateChanged.connect(self._on_refine_state)
        d.refineProgress.connect(self._on_refine_progress)
        d.refineFinished.connect(lambda ok, msg: self.statusBar().showMessage(msg, 10000))
        d.compareChanged.connect(self._sync_compare)
        d.artworkOpened.connect(self._sync_compare)
        self.tools.changed.connect(self._sync_tool_widgets)
        self.tools.colourChanged.connect(self.swatch.update)
        self.canvas.zoomChanged.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        self.canvas.cursorMoved.connect(self._on_cursor)

    # ----- model & stages -----
    def _channels(self) -> int:
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
        for a in (self.act_new, self.act_open_image, self.act_open_project, self.act_save, self.act_save_as,
                  self.act_export_final, self.act_export_up, self.act_export_stages, self.act_export_strip,
                  self.act_export_ora, self.act_export_gif, self.act_regen, self.act_random, self.act_clear,
                  self.act_remove_paint, self.act_compare):
            a.setEnabled(has)
        if has:
            info = doc.model_info
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
        self._sync_undo()
        self._on_refine_state(doc.refining)
        if has and not self._recovery_checked:
            self._recovery_checked = True
            QTimer.singleShot(0, self.offer_recovery)

    def _on_model_loading(self, path: str) -> None:
        if path:
            self.statusBar().showMessage(f"Loading model {path}…")
        self.canvas.update()

    def _on_model_failed(self, message: str) -> None:
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
        self.swatch.update()
        self.reveal_box.blockSignals(True)
        self.reveal_box.setChecked(self.tools.eraser_reveals(k))
        self.reveal_box.blockSignals(False)
        self._sync_undo()

    def _update_title(self) -> None:
        doc = self.doc
        if not doc.has_model:
            self.setWindowTitle("Artflow")
            return
        star = "*" if doc.dirty else ""
        self.setWindowTitle(f"{doc.title()}{star} — Artflow ({doc.model_info.config.name})")

    def _sync_undo(self) -> None:
        d = self.doc
        self.act_undo.setEnabled(d.can_undo())
        self.act_redo.setEnabled(d.can_redo())
        if d.has_model:
            u, r = d.undo_stacks[d.current_stage].undo_label(), d.undo_stacks[d.current_stage].redo_label()
            self.act_undo.setText(f"&Undo {u}" if u else "&Undo")
            self.act_redo.setText(f"&Redo {r}" if r else "&Redo")

    def _sync_tool_widgets(self) -> None:
        t = self.tools
        self.tool_actions[t.tool].setChecked(True)
        for w, v in ((self.size_slider, size_to_slider(t.size)), (self.size_spin, round(t.size)),
                     (self.opacity_spin, round(t.opacity * 100))):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)
        self.pressure_btn.setChecked(t.pressure_size)

    def _default_colours(self) -> None:
        ch = self._channels()
        self.tools.set_fg(ch, QColor(0, 0, 0))
        self.tools.set_bg(ch, QColor(255, 255, 255))

    def _set_smooth(self, on: bool) -> None:
        self.canvas.smooth = on
        self.canvas.update()

    def _set_compare(self, on: bool) -> None:
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
        self.act_cancel.setEnabled(running)
        self.act_refine.setEnabled(self.doc.has_model and not running)
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

    # ----- actions -----
    def clear_to_paper(self) -> None:
        doc = self.doc
        if not doc.has_model:
            return
        import numpy as np

        k = doc.current_stage
        res = doc.resolution
        doc.commit_layer(k, np.full((res, res, 4), 255, np.uint8), "Clear to paper")

    def maybe_save(self) -> bool:
        """Before the artwork is replaced or the app closes: True to go on, False to stay."""
        if self.screenshot_mode or not self.doc.has_model or not self.doc.dirty:
            return True
        answer = QMessageBox.question(
            self, "Save changes?", f"Save the changes to {self.doc.title()} before going on?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save)
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            return self.save_project(wait=True)
        return True

    def new_artwork(self) -> None:
        if self.maybe_save():
            self.doc.new_artwork()

    def _ask_open(self, title: str, filt: str) -> str:
        path, _ = QFileDialog.getOpenFileName(self, title, self.settings.last_folder, filt)
        if path:
            self.settings.last_folder = str(Path(path).parent)
        return path

    def _ask_save(self, title: str, suggested: str, filt: str) -> str:
        start = str(Path(self.settings.last_folder or Path.home()) / suggested)
        path, _ = QFileDialog.getSaveFileName(self, title, start, filt)
        if path:
            self.settings.last_folder = str(Path(path).parent)
        return path

    def open_image(self, path: str | None = None) -> None:
        if not self.maybe_save():
            return
        path = path or self._ask_open("Open an artwork", IMAGE_FILTER)
        if path:
            self.doc.open_image(path)

    def open_project(self, path: str | None = None) -> None:
        if not self.maybe_save():
            return
        path = path or self._ask_open("Open a project", PROJECT_FILTER)
        if path:
            self.doc.open_project(path)

    def save_project(self, path: str | None = None, wait: bool = False) -> bool:
        if not self.doc.has_model:
            return False
        if path is None:
            path = str(self.doc.project_path) if self.doc.project_path else None
        if path is None:
            return self.save_project_as(wait=wait)
        if not path.endswith(".artflow"):
            path += ".artflow"
        return self._save(path, wait)

    def save_project_as(self, path: str | None = None, wait: bool = False) -> bool:
        if not self.doc.has_model:
            return False
        path = path or self._ask_save("Save project", f"{self.doc.title().rsplit('.', 1)[0]}.artflow",
                                      PROJECT_FILTER)
        if not path:
            return False
        if not path.endswith(".artflow"):
            path += ".artflow"
        return self._save(path, wait)

    def _save(self, path: str, wait: bool) -> bool:
        self.doc.save_project(path)
        if not wait:
            return True
        # Wait (with the GUI alive) for the engine's answer: closing after "Save" must not lose the work.
        loop = QEventLoop()
        outcome = {"ok": False}

        def saved(p: str, auto: bool) -> None:
            if not auto:
                outcome["ok"] = True
                loop.quit()

        def failed(*_a) -> None:
            loop.quit()

        self.doc.projectSaved.connect(saved)
        self.engine.failed.connect(failed)
        loop.exec()
        self.doc.projectSaved.disconnect(saved)
        self.engine.failed.disconnect(failed)
        return outcome["ok"]

    def open_model(self, path: str | None = None) -> None:
        from core import bundle

        if path is None:
            path = QFileDialog.getExistingDirectory(self, "Open a model bundle (a folder with config.json and "
                                                    "model.safetensors)", self.settings.last_folder)
        if not path:
            return
        try:
            bundle.load_config(path)  # a quick check (no weights read) before the artist is asked to save
        except ArtflowError as exc:
            self.show_error("Cannot open the model", str(exc))
            return
        if self.maybe_save():
            self.doc.load_model(path)

    def export(self, kind: str, path: str | None = None, scale: int | None = None) -> Path | list[Path] | None:
        """Write an export; returns what was written (None if cancelled or failed: the failure is shown).
        kind: png (model size), png-up (enlarged `scale` times), stages, strip, ora, gif."""
        from core import export as ex

        doc = self.doc
        if not doc.has_model:
            return None
        if kind == "png-up" and scale is None:
            scale, ok = QInputDialog.getInt(self, "Enlarge the final image", "Enlarge by (times):", 4, 2,
                                            ex.MAX_SCALE)
            if not ok:
                return None
        doc.flush_now()
        stem = doc.title().rsplit(".", 1)[0] or "artwork"
        names = list(doc.config.stage_names)
        asks = {"png": ("Export the final image", f"{stem}.png", "PNG image (*.png)"),
                "png-up": ("Export the final image, enlarged", f"{stem}-x{scale}.png", "PNG image (*.png)"),
                "strip": ("Export the workflow strip", f"{stem}-workflow.png", "PNG image (*.png)"),
                "ora": ("Export a layered OpenRaster file", f"{stem}.ora", "OpenRaster (*.ora)"),
                "gif": ("Export an animated GIF", f"{stem}.gif", "GIF (*.gif)")}
        if path is None:
            if kind == "stages":
                path = QFileDialog.getExistingDirectory(self, "Export every stage into a folder",
                                                        self.settings.last_folder)
            else:
                path = self._ask_save(*asks[kind])
            if not path:
                return None
        if any(doc.is_stale(k) for k in range(doc.num_stages)):
            self.statusBar().showMessage("Note: some stages are still being regenerated; exported as shown", 6000)
        images = doc.stage_tensors()
        try:
            if kind == "png":
                out = ex.export_final_png(images, path)
            elif kind == "png-up":
                out = ex.export_final_png(images, path, scale=int(scale))
            elif kind == "stages":
                out = ex.export_stages(images, names, path)
            elif kind == "strip":
                out = ex.export_strip(images, names, path)
            elif kind == "ora":
                out = ex.export_ora(images, names, path)
            elif kind == "gif":
                out = ex.export_gif(images, path)
            else:
                raise ArtflowError(f"unknown export {kind!r}")
        except ArtflowError as exc:
            self.show_error("Export failed", str(exc))
            return None
        except OSError as exc:
            self.show_error("Export failed", f"{path}: {exc.strerror or exc}")
            return None
        self.statusBar().showMessage(f"Exported {path}", 6000)
        return out

    def show_error(self, title: str, text: str) -> None:
        if self.screenshot_mode:
            print(f"artflow: {title}: {text}", file=sys.stderr)
            return
        QMessageBox.critical(self, title, text)

    def show_no_model(self, reason: str) -> None:
        """The default model is missing: say so, and offer File > Open model."""
        self.statusBar().showMessage("No model is loaded: choose one with File > Open model…")
        if self.screenshot_mode:
            print(f"artflow: {reason}", file=sys.stderr)
            return
        answer = QMessageBox.warning(
            self, "No model loaded", f"{reason}\n\nArtflow needs a model bundle (a folder with config.json and "
            "model.safetensors) to draw with. Open one now?",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Close, QMessageBox.StandardButton.Open)
        if answer == QMessageBox.StandardButton.Open:
            self.open_model()

    def offer_recovery(self) -> None:
        """Autosaves left by a session that crashed: offer to recover the newest, discard or keep them."""
        if self.screenshot_mode:
            return
        found = autosave.find_recoverable()
        if not found:
            return
        rec = found[0]
        more = f"\n({len(found) - 1} older autosave(s) are kept for later.)" if len(found) > 1 else ""
        what = f" of {Path(rec.project).name}" if rec.project else ""
        answer = QMessageBox.question(
            self, "Recover unsaved work?",
            f"Artflow did not close properly last time. Recover the work{what} autosaved at {rec.when}?{more}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.Yes)
        if answer == QMessageBox.StandardButton.Yes:
            self._recovering = rec
            self.doc.open_project(str(rec.path), recovered=True)
            self.doc.projectSaved.connect(self._drop_recovered)  # once our own autosave exists, drop the old one
        elif answer == QMessageBox.StandardButton.Discard:
            autosave.remove(rec.path)

    def _drop_recovered(self, path: str, auto: bool) -> None:
        rec = getattr(self, "_recovering", None)
        if rec is not None:
            autosave.remove(rec.path)
            self._recovering = None
            self.doc.projectSaved.disconnect(self._drop_recovered)

    def _on_read_only_project(self, project) -> None:
        from core.imageio import pil_to_tensor, tensor_to_pil

        answer = QMessageBox.question(
            self, "Project made with another model",
            f"{project.warning}.\n\nOpen its final image as a new artwork with the current model instead? "
            "(Its earlier stages are inferred again.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            cfg = self.doc.config
            final = tensor_to_pil(project.stage_images()[-1])
            self.doc.open_image_tensor(pil_to_tensor(final, cfg.stages[-1].channels, cfg.resolution),
                                       f"{project.model_name}-final")

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUTS_HELP)

    def show_about(self) -> None:
        QMessageBox.about(self, "About Artflow",
                          "<b>Artflow</b><br>Paint with a learned model of an artistic workflow.<br>"
                          "Based on <i>Modeling Artistic Workflows for Image Generation and Editing</i> "
                          "(Tseng et al., ECCV 2020).")

    # ----- drag and drop -----
    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            p = urls[0]
            (self.open_project if p.endswith(".artflow") else self.open_image)(p)

    # ----- shutdown -----
    def closeEvent(self, e: QCloseEvent) -> None:  # noqa: N802
        if self._closing:
            e.accept()
            return
        if self.doc.refining:
            self.doc.cancel_refine()  # before asking: the engine must be free to save
        if not self.maybe_save():
            e.ignore()
            return
        self._closing = True
        self.shutdown()
        e.accept()
        self.closed.emit()

    def shutdown(self) -> None:
        """Stop autosaving, cancel a refinement, wait for the engine thread, drop this session's autosave.
        Safe to call more than once (closeEvent, then QApplication.aboutToQuit)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.autosave_timer.stop()
        self.doc._flush_timer.stop()
        self.engine.cancel_refine()
        if not self.engine.stop():
            log.warning("the engine thread did not stop in time")
        self.doc.discard_autosave()
        self.settings.save()
