"""The main window's actions (with their Krita-style shortcuts), its menus and its tool bar, and keeping them in
step with the document and the tools. The commands themselves live elsewhere: the document, the file commands
(app/file_commands.py), the canvas, the tools; this module only wires them to menus, keys and buttons."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QColor, QKeySequence
from PySide6.QtWidgets import QCheckBox, QLabel, QMessageBox, QSlider, QSpinBox, QToolBar, QToolButton

from app import icons
from app.canvas.tools import MAX_SIZE, MIN_SIZE, Tool
from app.widgets.colour_swatch import ColourSwatch
from core.files import bundle
from core.files.export import ExportFormat

if TYPE_CHECKING:
    from PySide6.QtWidgets import QDockWidget, QMenuBar

    from app.canvas.tools import ToolState
    from app.canvas.view import CanvasView
    from app.document import Document
    from app.file_commands import FileCommands
    from app.widgets.latent_panel import LatentPanel
    from app.widgets.refine_panel import RefinePanel


class ControlsHost(Protocol):
    """What the actions, menus and tool bar are built on: the main window's parts and the few commands of its own
    that they trigger. A protocol, so that this module does not import the window that owns it."""

    doc: Document
    tools: ToolState
    canvas: CanvasView
    files: FileCommands
    latent_panel: LatentPanel
    refine_panel: RefinePanel
    latent_dock: QDockWidget
    refine_dock: QDockWidget

    def channels(self) -> int: ...

    def set_compare(self, on: bool) -> None: ...

    def clear_to_paper(self) -> None: ...

    def close(self) -> bool: ...

    def menuBar(self) -> QMenuBar: ...  # noqa: N802 (Qt's names)

    def addAction(self, action: QAction) -> None: ...  # noqa: N802

    def addToolBar(self, toolbar: QToolBar) -> None: ...  # noqa: N802

SIZE_TICKS = 100

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


def slider_to_size(v: int) -> float:
    return MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** (v / SIZE_TICKS)


def size_to_slider(size: float) -> int:
    return round(SIZE_TICKS * math.log(max(MIN_SIZE, size) / MIN_SIZE) / math.log(MAX_SIZE / MIN_SIZE))


class WindowControls:
    """Builds the actions, menus and tool bar of `window` (the main window, whose canvas, panels and docks exist)."""

    def __init__(self, window: ControlsHost) -> None:
        self.window = window
        self.doc = window.doc
        self.tools = window.tools
        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self.tools.changed.connect(self.sync_tool_widgets)
        self.tools.colourChanged.connect(self.swatch.update)

    def _action(self, text: str, slot=None, shortcut=None, tip: str = "", checkable: bool = False,
                icon=None) -> QAction:
        a = QAction(text, self.window)
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
        self.window.addAction(a)  # shortcuts work whatever has focus in the window
        return a

    def _make_actions(self) -> None:
        A = self._action
        win, doc = self.window, self.doc
        files = win.files
        self.act_new = A("&New drawing…", lambda: files.ask_new_artwork(), QKeySequence.StandardKey.New,
                         "Start a new artwork from a blank first stage: choose its size and the model to draw with")
        self.act_open_image = A("&Open image…", lambda: files.open_image(), QKeySequence.StandardKey.Open,
                                "Open a finished artwork and infer its earlier stages")
        self.act_open_line_art = A("Open &line art…", lambda: files.open_line_art(), "Ctrl+Alt+O",
                                   "Your own line art (a line layer, an inked drawing, a scan) as the first stage, at "
                                   "its own size; flats and detail are generated from it")
        self.act_undo_cleanup = A("Use the line art as it was", lambda: files.use_line_art_as_it_was(), None,
                                  "Open the last line art again without the scan clean-up")
        self.act_undo_cleanup.setEnabled(False)
        doc.lineArtOpened.connect(self.act_undo_cleanup.setEnabled)
        self.act_open_project = A("Open &project…", lambda: files.open_project(), "Ctrl+Shift+O",
                                  "Open an .artflow project")
        self.act_save = A("&Save project", lambda: files.save_project(), QKeySequence.StandardKey.Save)
        self.act_save_as = A("Save project &as…", lambda: files.save_project_as(), "Ctrl+Shift+S")
        self.act_export_final = A("Final image (PNG)…", lambda: files.export(ExportFormat.PNG), "Ctrl+E",
                                  "The last stage at the model's size")
        self.act_export_up = A("Final image, enlarged (PNG)…", lambda: files.export_enlarged(),
                               tip="The last stage enlarged 2× to 16× (smooth resampling)")
        self.act_export_stages = A("Every stage as PNG…", lambda: files.export(ExportFormat.STAGES))
        self.act_export_strip = A("Workflow strip (PNG)…", lambda: files.export(ExportFormat.STRIP))
        self.act_export_ora = A("Layered OpenRaster (.ora) for Krita, GIMP, MyPaint…",
                                lambda: files.export(ExportFormat.ORA))
        self.act_export_gif = A("Animated GIF of the workflow…", lambda: files.export(ExportFormat.GIF))
        self.act_open_model = A("Open &model…", lambda: files.open_model(), "Ctrl+M",
                                "Choose another model bundle (a folder with config.json and model.safetensors)")
        # The models shipped in resources/models/, one checkable entry each (the loaded one checked).
        self.bundled_group = QActionGroup(win)
        self.bundled_actions: dict[str, QAction] = {}
        for shipped in bundle.bundled_models():
            act = A(shipped.name, tip=shipped.description, checkable=True)
            act.triggered.connect(lambda _checked=False, path=shipped.path: self._open_bundled(path))
            self.bundled_group.addAction(act)
            self.bundled_actions[str(shipped.path.resolve())] = act
        self.act_quit = A("&Quit", win.close, QKeySequence.StandardKey.Quit)

        self.act_undo = A("&Undo", lambda: doc.undo(), [QKeySequence.StandardKey.Undo])
        self.act_redo = A("&Redo", lambda: doc.redo(), ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.act_clear = A("Clear stage to paper", win.clear_to_paper, "Delete",
                           "Paint this stage over with paper white (undoable)")
        self.act_remove_paint = A("Remove my paint from this stage", lambda: doc.clear_layer(), "Shift+Delete",
                                  "Drop everything painted on this stage: the generated image shows again")
        self.act_restyle = A("Let an edit restyle the whole picture", doc.set_restyle, None,
                             "The paper's propagation: an edit may change later stages everywhere (off: only "
                             "inside the regions the edit touched, your other pixels kept)", checkable=True)
        self.act_restyle.setChecked(doc.restyle)
        self.act_keep = A("Keep unedited areas", doc.set_keep_unedited, None,
                          "With restyling on: later stages change only around the edit", checkable=True)
        self.act_keep.setChecked(doc.keep_unedited)
        self.act_auto = A("Regenerate automatically", doc.set_auto_regenerate, None,
                          "Later stages follow every edit (off: they turn stale until Regenerate)", checkable=True)
        self.act_auto.setChecked(doc.auto_regenerate)
        self.act_lines_over = A("Line art over colours", doc.set_lines_over, None,
                                "Show the line art multiplied over the later stages, and in the final PNG export, "
                                "as an inker's line layer above the colours", checkable=True)
        self.act_lines_over.setChecked(doc.lines_over)
        doc.linesOverChanged.connect(self.act_lines_over.setChecked)
        self.act_clean = A("Clean flats", doc.set_clean_flats, None,
                           "Flat colours get one colour per closed region of the line art, at the artwork's own "
                           "size (off: as the model paints them)", checkable=True)
        self.act_clean.setChecked(doc.clean_flats)
        self.act_regen = A("Regenerate later stages", doc.regenerate, "F5", icon=icons.regenerate())
        self.act_refine = A("&Refine to the artwork", lambda: doc.refine(win.refine_panel.steps.value()), "Ctrl+R")
        self.act_cancel = A("Cancel refinement", doc.cancel_refine, "Esc")
        self.act_random = A("Random variation", win.latent_panel.randomize, "R", icon=icons.dice())

        self.tool_group = QActionGroup(win)
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
        self.act_swap = A("Swap colours", lambda: self.tools.swap(win.channels()), "X")
        self.act_default_colours = A("Default colours", self._default_colours, "D")

        c = win.canvas
        self.act_zoom_in = A("Zoom in", c.zoom_in, ["+", "=", "Ctrl++", "Ctrl+="])
        self.act_zoom_out = A("Zoom out", c.zoom_out, ["-", "Ctrl+-"])
        self.act_fit = A("Fit to window", c.fit, ["0", "Ctrl+0"])
        self.act_actual = A("Actual pixels", c.reset_zoom, ["1", "Ctrl+1"])
        self.act_smooth = A("Smooth enlargement", self._set_smooth, None, checkable=True)
        self.act_smooth.setChecked(True)
        self.act_compare = A("Compare before / after", win.set_compare, "C",
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
        mb = self.window.menuBar()
        f = mb.addMenu("&File")
        for a in (self.act_new, self.act_open_image, self.act_open_line_art, self.act_open_project):
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
        bm = f.addMenu("&Bundled models")
        bm.setToolTipsVisible(True)  # each entry's tooltip says what the model is for
        bm.setEnabled(bool(self.bundled_actions))
        for a in self.bundled_actions.values():
            bm.addAction(a)
        self.bundled_menu = bm
        f.addSeparator()
        f.addAction(self.act_quit)
        e = mb.addMenu("&Edit")
        for a in (self.act_undo, self.act_redo):
            e.addAction(a)
        e.addSeparator()
        e.addAction(self.act_clear)
        e.addAction(self.act_remove_paint)
        e.addAction(self.act_undo_cleanup)
        e.addSeparator()
        e.addAction(self.act_restyle)
        e.addAction(self.act_keep)
        e.addAction(self.act_auto)
        e.addAction(self.act_clean)
        e.addAction(self.act_lines_over)
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
        v.addAction(self.window.latent_dock.toggleViewAction())
        v.addAction(self.window.refine_dock.toggleViewAction())
        h = mb.addMenu("&Help")
        h.addAction(self.act_shortcuts)
        h.addAction(self.act_about)

    def _make_toolbar(self) -> None:
        tb = QToolBar("Tools")
        tb.setObjectName("toolOptions")
        tb.setMovable(False)
        tb.setIconSize(QSize(22, 22))
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        for a in self.tool_actions.values():
            tb.addAction(a)
        tb.addSeparator()
        self.swatch = ColourSwatch(self.tools, self.window.channels)
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
        self.sync_tool_widgets()

    def _label(self, text: str) -> QLabel:
        lab = QLabel(f" {text} ")
        lab.setObjectName("toolLabel")
        return lab

    # ----- keeping in step -----
    def set_model_loaded(self, loaded: bool) -> None:
        """The actions that need a model are enabled only with one."""
        for a in (self.act_new, self.act_open_image, self.act_open_line_art, self.act_open_project, self.act_save,
                  self.act_save_as,
                  self.act_export_final, self.act_export_up, self.act_export_stages, self.act_export_strip,
                  self.act_export_ora, self.act_export_gif, self.act_regen, self.act_random, self.act_clear,
                  self.act_remove_paint, self.act_compare):
            a.setEnabled(loaded)

    def _open_bundled(self, path: Path) -> None:
        info = self.doc.model_info if self.doc.has_model else None
        if info is not None and str(Path(info.path).resolve()) == str(path.resolve()):
            return  # already the open model: nothing to reload, nothing to ask
        self.sync_bundled_models()  # the check moves once the model has loaded, not before
        self.window.files.open_model(str(path))

    def sync_bundled_models(self) -> None:
        """Check the bundled model that is loaded (none when another folder or no model is)."""
        info = self.doc.model_info if self.doc.has_model else None
        loaded = str(Path(info.path).resolve()) if info is not None else ""
        for key, act in self.bundled_actions.items():
            act.setChecked(key == loaded)
        if loaded not in self.bundled_actions:
            checked = self.bundled_group.checkedAction()
            if checked is not None:  # an exclusive group keeps one checked: lift exclusivity to clear it
                self.bundled_group.setExclusive(False)
                checked.setChecked(False)
                self.bundled_group.setExclusive(True)

    def sync_undo(self) -> None:
        d = self.doc
        self.act_undo.setEnabled(d.can_undo())
        self.act_redo.setEnabled(d.can_redo())
        if d.has_model:
            u, r = d.undo_label(), d.redo_label()
            self.act_undo.setText(f"&Undo {u}" if u else "&Undo")
            self.act_redo.setText(f"&Redo {r}" if r else "&Redo")

    def sync_tool_widgets(self) -> None:
        t = self.tools
        self.tool_actions[t.tool].setChecked(True)
        for w, v in ((self.size_slider, size_to_slider(t.size)), (self.size_spin, round(t.size)),
                     (self.opacity_spin, round(t.opacity * 100))):
            w.blockSignals(True)
            w.setValue(v)
            w.blockSignals(False)
        self.pressure_btn.setChecked(t.pressure_size)

    def sync_stage(self, k: int) -> None:
        """Stage k is the current one: its colours and its eraser mode."""
        self.swatch.update()
        self.reveal_box.blockSignals(True)
        self.reveal_box.setChecked(self.tools.eraser_reveals(k))
        self.reveal_box.blockSignals(False)
        self.sync_undo()

    def set_refine_running(self, running: bool) -> None:
        self.act_cancel.setEnabled(running)
        self.act_refine.setEnabled(self.doc.has_model and not running)

    # ----- small commands -----
    def _default_colours(self) -> None:
        ch = self.window.channels()
        self.tools.set_fg(ch, QColor(0, 0, 0))
        self.tools.set_bg(ch, QColor(255, 255, 255))

    def _set_smooth(self, on: bool) -> None:
        self.window.canvas.smooth = on
        self.window.canvas.update()

    def show_shortcuts(self) -> None:
        QMessageBox.information(self.window, "Keyboard shortcuts", SHORTCUTS_HELP)

    def show_about(self) -> None:
        QMessageBox.about(self.window, "About Artflow",
                          "<b>Artflow</b><br>Paint with a learned model of an artistic workflow.<br>"
                          "Based on <i>Modeling Artistic Workflows for Image Generation and Editing</i> "
                          "(Tseng et al., ECCV 2020).<br><br>"
                          "The bundled models learned from Fluent Emoji © Microsoft (MIT licence), and "
                          "emoji-lines-128 also from Twemoji © Twitter, Inc. and other contributors (CC BY 4.0) "
                          "and Noto Emoji © Google (Apache License 2.0). Each model's MODEL_CARD.md in "
                          "resources/models/ gives its data, training and credits.")
