"""Drawing on a stage: strokes (mouse and tablet), eraser, fill, eyedropper, clear, undo/redo, navigation."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QKeyEvent, QPointingDevice, QTabletEvent
from PySide6.QtWidgets import QApplication

from app.canvas.tools import Tool
from app.layers import layer_to_tensors
from tests.app.conftest import click, drag, wait_fill, wait_idle


def test_window_shows_the_models_stages(window):
    doc = window.doc
    assert [window.tabs.tabText(k) for k in range(window.tabs.count())] == ["Line art", "Flat colours", "Detail"]
    assert len(window.strip.cards) == 3
    assert "CPU" in window.device_label.text()
    assert [doc.status(k) for k in range(3)] == ["blank", "generated", "generated"]
    assert len(window.latent_panel.sliders) == 8


def test_a_blank_first_stage_says_what_to_draw_until_the_first_stroke(qtbot, window):
    """A new drawing's empty line art shows what to draw and what the model learned (its description); other
    stages, and the line art once drawn on, show none; the hint is painted on the page."""
    doc, canvas = window.doc, window.canvas
    window.resize(900, 700)
    canvas.fit()
    heading, details = canvas.empty_hint()
    assert heading == "Draw your line art here" and doc.config.name in details
    page = canvas.image_rect().toRect()
    with_hint = canvas.grab().toImage().copy(page)
    doc.set_current_stage(1)
    assert canvas.empty_hint() is None
    doc.set_current_stage(0)
    window.tools.set_size(4)
    drag(canvas, [(2, 2), (4, 3)])
    assert doc.status(0) == "edited" and canvas.empty_hint() is None
    wait_idle(qtbot, window)
    window.controls.act_undo.trigger()
    wait_idle(qtbot, window)
    assert doc.status(0) == "blank" and canvas.empty_hint() is not None  # undone: blank again, the hint again
    # Grey words on the white page: pixels neither white nor the picture's.
    grey = np.array([[with_hint.pixelColor(x, y).red() for x in range(0, page.width(), 2)]
                     for y in range(0, page.height(), 2)])
    assert ((grey > 60) & (grey < 220)).any()


def test_the_canvas_shows_the_stages_own_colours(qtbot, window):
    """The canvas's picture (RGB32, blue first in memory) is the stage as the document has it, channel for channel,
    and follows a new picture."""
    from app.qt_image import qimage_to_rgb

    doc, canvas = window.doc, window.canvas
    doc.set_current_stage(2)
    assert np.array_equal(qimage_to_rgb(canvas._image), doc.stage_rgb(2))
    window.tools.set_fg(3, QColor(250, 20, 60))  # distinct channels: a swap would show
    window.tools.set_size(6)
    drag(canvas, [(4, 4), (20, 12)])
    wait_idle(qtbot, window)
    shown = qimage_to_rgb(canvas._image)
    assert np.array_equal(shown, doc.stage_rgb(2))
    assert (np.abs(shown.astype(int) - (250, 20, 60)).max(axis=2) <= 2).any()  # the paint, in its colour


def test_stroke_paints_the_layer_and_regenerates_later_stages(qtbot, window):
    doc, canvas = window.doc, window.canvas
    before = [doc.stage_rgb(k).copy() for k in range(3)]
    bases_before = [b.clone() for b in doc.bases]
    strip_before = window.strip.cards[2].image.pixmap().toImage()
    results = []
    window.engine.resultReady.connect(results.append)
    window.tools.set_size(4)
    drag(canvas, [(4, 4), (10, 8), (20, 16), (28, 26)])
    # The stroke is on stage 0's own layer, and later stages are stale until the engine answers.
    assert doc.layers[0] is not None and doc.layers[0][..., 3].any()
    assert not np.array_equal(doc.stage_rgb(0), before[0])
    assert doc.status(0) == "edited"
    assert doc.status(1) == "stale" and doc.status(2) == "stale"
    wait_idle(qtbot, window)
    assert doc.status(1) == "generated" and doc.status(2) == "generated"
    assert not torch.equal(doc.bases[1], bases_before[1])
    assert not torch.equal(doc.bases[2], bases_before[2])
    assert torch.equal(doc.bases[0], bases_before[0])  # the artist's paint is a layer; the base stays
    # The strip shows the new pictures.
    assert window.strip.cards[2].image.pixmap().toImage() != strip_before
    # The engine got exactly the document's layer: its answer's snapshot holds the layer the document sent.
    engine_colour, engine_alpha = results[-1].state.layers[0]
    colour, alpha = layer_to_tensors(doc.layers[0], doc.stage_channels(0))
    assert torch.equal(engine_colour, colour) and torch.equal(engine_alpha, alpha)
    assert doc.can_undo(0)


def test_black_on_line_art_colour_elsewhere(qtbot, window):
    doc, canvas = window.doc, window.canvas
    window.tools.set_fg(3, QColor(255, 0, 0))
    window.tools.set_size(6)
    drag(canvas, [(16, 16), (17, 16)])
    wait_idle(qtbot, window)
    px = doc.layers[0][16, 16]
    assert px[3] == 255 and px[0] == px[1] == px[2] == 0  # line art: black
    doc.set_current_stage(1)
    drag(canvas, [(8, 8), (9, 8)])
    wait_idle(qtbot, window)
    assert tuple(doc.layers[1][8, 8]) == (255, 0, 0, 255)
    # A painted colour stage keeps the paint over its regenerated base.
    assert tuple(doc.stage_rgb(1)[8, 8]) == (255, 0, 0)


def test_tablet_pressure_sets_the_size(qtbot, window):
    doc, canvas = window.doc, window.canvas
    window.tools.set_size(12)

    def tablet_stroke(y: float, pressure: float) -> int:
        dev = QPointingDevice.primaryPointingDevice()
        events = []
        for kind, x in ((QEvent.Type.TabletPress, 4), (QEvent.Type.TabletMove, 16), (QEvent.Type.TabletMove, 28),
                        (QEvent.Type.TabletRelease, 28)):
            pos = canvas.to_widget(QPointF(x, y))
            buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.TabletRelease else Qt.MouseButton.LeftButton
            events.append(QTabletEvent(kind, dev, pos, canvas.mapToGlobal(pos), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
                                       Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, buttons))
        before = 0 if doc.layers[0] is None else int((doc.layers[0][..., 3] > 0).sum())
        for ev in events:
            QApplication.sendEvent(canvas, ev)
        return int((doc.layers[0][..., 3] > 0).sum()) - before

    light = tablet_stroke(6, 0.1)
    heavy = tablet_stroke(22, 1.0)
    assert light > 0 and heavy > 2 * light
    wait_idle(qtbot, window)


def test_undo_redo_per_stage_more_than_50_steps(qtbot, window):
    doc, canvas = window.doc, window.canvas
    window.tools.set_size(1)
    for i in range(55):
        drag(canvas, [(i % 30 + 1, (i // 30) * 5 + 2), (i % 30 + 1.5, (i // 30) * 5 + 3)])
    assert doc.layers.undo_depth(0) == 55
    doc.set_current_stage(1)
    drag(canvas, [(5, 5), (6, 6)])
    doc.set_current_stage(0)
    for _ in range(55):
        window.controls.act_undo.trigger()
    assert doc.layers[0] is None
    assert not doc.can_undo(0)
    assert doc.layers[1] is not None  # undo is per stage
    window.controls.act_redo.trigger()
    assert doc.layers[0] is not None
    # Ctrl+Z / Ctrl+Shift+Z shortcuts exist.
    assert "Ctrl+Z" in [s.toString() for s in window.controls.act_undo.shortcuts()]
    assert "Ctrl+Shift+Z" in [s.toString() for s in window.controls.act_redo.shortcuts()]
    wait_idle(qtbot, window)


def test_eraser_modes_fill_eyedropper_and_clear(qtbot, window):
    doc, canvas, tools = window.doc, window.canvas, window.tools
    tools.set_size(6)
    drag(canvas, [(10, 10), (20, 10)])
    assert doc.layers[0][10, 15, 3] == 255
    # On the first stage the eraser paints paper.
    tools.set_tool(Tool.ERASER)
    drag(canvas, [(10, 10), (20, 10)])
    assert tuple(doc.stage_rgb(0)[10, 15]) == (255, 255, 255)
    # On a later stage it removes the artist's paint: the generated image shows through.
    doc.set_current_stage(2)
    tools.set_tool(Tool.BRUSH)
    drag(canvas, [(5, 20), (25, 20)])
    assert doc.layers[2][20, 15, 3] == 255
    tools.set_tool(Tool.ERASER)
    assert window.controls.reveal_box.isChecked()
    drag(canvas, [(5, 20), (25, 20)])
    assert doc.layers[2] is None or doc.layers[2][20, 15, 3] == 0
    # Eyedropper (I): picks the colour under the cursor on a colour stage.
    tools.set_tool(Tool.PICKER)
    click(canvas, 3.5, 3.5)
    expected = tuple(int(v) for v in doc.stage_rgb(2)[3, 3])
    got = tools.fg(3)
    assert (got.red(), got.green(), got.blue()) == expected
    # Ctrl+click picks with any tool.
    tools.set_tool(Tool.BRUSH)
    click(canvas, 30.5, 30.5, Qt.KeyboardModifier.ControlModifier)
    got = tools.fg(3)
    assert (got.red(), got.green(), got.blue()) == tuple(int(v) for v in doc.stage_rgb(2)[30, 30])
    # Fill: a closed region gets the colour.
    doc.set_current_stage(1)
    window.clear_to_paper()
    tools.set_fg(3, QColor(10, 200, 30))
    tools.set_tool(Tool.FILL)
    click(canvas, 16.5, 16.5)
    wait_fill(qtbot, canvas)
    assert (doc.stage_rgb(1) == np.array([10, 200, 30], np.uint8)).all()
    # Remove my paint: back to the generated image.
    window.controls.act_remove_paint.trigger()
    assert doc.layers[1] is None
    wait_idle(qtbot, window)
    assert doc.status(1) == "generated"


def test_shortcuts_switch_tools_and_sizes(qtbot, window):
    tools = window.tools
    for key, tool in ((Qt.Key.Key_E, Tool.ERASER), (Qt.Key.Key_F, Tool.FILL), (Qt.Key.Key_I, Tool.PICKER),
                      (Qt.Key.Key_B, Tool.BRUSH)):
        qtbot.keyClick(window.canvas, key)
        assert tools.tool == tool
    size = tools.size
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert tools.size > size
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    assert tools.size < size
    assert window.controls.size_spin.value() == round(tools.size)


def test_zoom_and_pan(qtbot, window):
    canvas = window.canvas
    s0 = canvas.scale
    qtbot.keyClick(canvas, Qt.Key.Key_Plus)
    assert canvas.scale > s0
    qtbot.keyClick(canvas, Qt.Key.Key_Minus)
    qtbot.keyClick(canvas, Qt.Key.Key_Minus)
    assert canvas.scale < s0
    # Space-drag pans and does not paint.
    off = QPointF(canvas.offset)
    canvas.setFocus()
    QApplication.sendEvent(canvas, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier,
                                             " "))
    drag(canvas, [(10, 10), (14, 12)])
    QApplication.sendEvent(canvas, QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Space,
                                             Qt.KeyboardModifier.NoModifier, " "))
    assert canvas.offset != off
    assert window.doc.layers[0] is None
    # Middle-drag pans too.
    off = QPointF(canvas.offset)
    drag(canvas, [(10, 10), (12, 12)], button=Qt.MouseButton.MiddleButton)
    assert canvas.offset != off and window.doc.layers[0] is None
    qtbot.keyClick(canvas, Qt.Key.Key_0)  # fit
    assert canvas.image_rect().width() <= canvas.width()


def test_without_auto_regenerate_later_stages_go_stale_until_regenerate(qtbot, window):
    doc = window.doc
    window.controls.act_auto.setChecked(False)
    assert not doc.auto_regenerate
    bases = [b.clone() for b in doc.bases]
    drag(window.canvas, [(4, 4), (20, 20)])
    qtbot.wait(100)
    assert window.engine.is_idle()  # nothing was sent
    assert doc.status(1) == "stale" and doc.status(2) == "stale"
    assert "Regenerate" in doc.status_text(2)
    assert window.tabs.tabToolTip(2).endswith(doc.status_text(2))
    assert "Stale" in window.strip.cards[2].status.text()
    window.controls.act_regen.trigger()  # F5
    wait_idle(qtbot, window)
    assert doc.status(1) == "generated" and not torch.equal(doc.bases[2], bases[2])
    window.controls.act_auto.setChecked(True)
