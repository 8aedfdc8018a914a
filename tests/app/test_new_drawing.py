"""File > New drawing at the artist's size (issue 28): the dialog's presets and fields, the model to draw with, the
last choice remembered; the sheet is made at that size and a closed shape drawn on it gets a flat and detail of its
own, only where it was drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QDialogButtonBox

from core.files import bundle
from tests.app.conftest import wait_idle


def test_the_new_drawing_dialog_makes_a_sheet_of_the_chosen_size(qtbot, window, tiny_bundle):
    doc, files = window.doc, window.files
    dialog = files.ask_new_artwork()
    assert dialog is not None and dialog.isVisible()
    # A blank sheet is drawn with the bundle made for drawn line art, until the artist picks another.
    assert Path(dialog.choice()[2]).name == bundle.DRAWING_BUNDLE
    dialog.preset.setCurrentIndex(2)  # 2048 x 1536
    assert dialog.choice()[:2] == (2048, 1536)
    dialog.width_box.setValue(200)
    dialog.height_box.setValue(150)
    assert dialog.preset.currentText() == "Custom"
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    dialog.width_box.setValue(30)
    dialog.height_box.setValue(20)
    assert not ok.isEnabled()  # 30 x 20 is smaller than Artflow works with
    dialog.width_box.setValue(200)
    dialog.height_box.setValue(150)
    assert ok.isEnabled()
    dialog.model.setCurrentIndex(dialog.model.count() - 1)  # the tiny model, open now
    assert Path(dialog.choice()[2]) == tiny_bundle.resolve()
    ok.click()
    wait_idle(qtbot, window)
    assert doc.artwork_size == (200, 150) and all(doc.stage_rgb(k).shape[:2] == (150, 200) for k in range(3))
    assert (doc.settings.new_width, doc.settings.new_height) == (200, 150)
    # The next dialog starts from the last choice.
    again = files.ask_new_artwork()
    assert again.choice() == (200, 150, str(tiny_bundle.resolve()))
    again.reject()


def test_a_shape_drawn_on_a_new_sheet_changes_only_its_own_place(qtbot, window):
    doc = window.doc
    window.files.new_artwork(160, 120)
    wait_idle(qtbot, window)
    before = [doc.stage_rgb(k).copy() for k in range(3)]
    layer = np.zeros((120, 160, 4), np.uint8)
    yy, xx = np.mgrid[0:120, 0:160]
    ring = np.abs(np.hypot(xx - 50, yy - 60) - 25) < 1.5  # a closed circle, on the left
    layer[ring] = (0, 0, 0, 255)
    doc.commit_layer(0, layer, "Circle")
    wait_idle(qtbot, window)
    inside = np.hypot(xx - 50, yy - 60) < 27
    for k in (1, 2):
        moved = np.abs(doc.stage_rgb(k).astype(int) - before[k].astype(int)).max(axis=2) > 0
        assert moved.any() and not (moved & ~inside).any()  # only inside the circle: the paper stays paper


def test_line_art_over_colours_on_a_drawing_and_in_its_final_export(qtbot, window, artwork_png, tmp_path):
    doc = window.doc
    window.files.new_artwork(160, 120)
    wait_idle(qtbot, window)
    assert doc.lines_over and window.controls.act_lines_over.isChecked()  # a drawing: on
    layer = np.zeros((120, 160, 4), np.uint8)
    layer[60, 20:140] = (0, 0, 0, 255)  # a line across the sheet
    doc.commit_layer(0, layer, "Line")
    wait_idle(qtbot, window)
    doc.set_current_stage(2)
    window.canvas.repaint()  # the overlay is drawn (multiply) without error
    out = window.files.export("png", str(tmp_path / "final.png"))
    final = np.asarray(Image.open(out).convert("RGB"))
    assert (final[60, 20:140] == 0).all()  # the ink is over the colours in the export
    assert np.array_equal(final[:50], doc.stage_rgb(2)[:50])  # elsewhere the detail as it is
    window.controls.act_lines_over.trigger()
    assert not doc.lines_over
    plain = np.asarray(Image.open(window.files.export("png", str(tmp_path / "plain.png"))).convert("RGB"))
    assert np.array_equal(plain, doc.stage_rgb(2))
    # An opened finished artwork shows its stages as they are.
    doc.settings.refine_after_open = False
    with qtbot.waitSignal(doc.artworkOpened, timeout=20000):
        window.open_image(str(artwork_png))
    wait_idle(qtbot, window)
    assert not doc.lines_over
