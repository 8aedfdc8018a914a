"""The app at the artwork's own size (issue 12): a non-square artwork opened at full resolution, painted, filled,
picked from, shown at 100 %, saved and reopened bit-exact; the Clean flats toggle; a project from before full
resolution still opens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

from app.canvas.tools import Tool
from app.engine_worker import ApplyEdits
from tests.app.conftest import RES, click, drag, wait_fill, wait_idle

W, H = 120, 72  # a wide artwork, several times the tiny model's 32 px
OLD_PROJECT = Path(__file__).resolve().parents[1] / "data" / "tiny-project-before-fullres.artflow"


@pytest.fixture(scope="module")
def wide_png(tmp_path_factory) -> Path:
    """A disc with a dark outline, off-centre on a wide white canvas."""
    yy, xx = np.mgrid[0:H, 0:W]
    a = np.full((H, W, 3), 255, np.uint8)
    d = (xx - 40) ** 2 + (yy - 36) ** 2
    a[d < 24 ** 2] = (230, 160, 40)
    a[np.abs(np.sqrt(d) - 24) < 1.2] = (20, 20, 20)
    path = tmp_path_factory.mktemp("wide") / "wide.png"
    Image.fromarray(a).save(path)
    return path


@pytest.fixture
def opened(qtbot, window, wide_png):
    window.doc.settings.refine_after_open = False
    with qtbot.waitSignal(window.doc.artworkOpened, timeout=20000):
        window.open_image(str(wide_png))
    wait_idle(qtbot, window)
    return window


def test_an_opened_image_is_held_at_its_own_size(opened):
    doc = opened.doc
    assert doc.artwork_size == (W, H)
    assert [doc.full[k].shape[:2] for k in range(3)] == [(H, W)] * 3
    assert doc.bases[0].shape[-1] == doc.resolution == 32  # the model's proxy stays square
    assert all(doc.stage_rgb(k).shape == (H, W, 3) for k in range(3))
    # The strip shows the full-res stages (the thumbnail keeps the wide aspect).
    pix = opened.strip.cards[2].image.pixmap()
    assert pix.width() > pix.height()


def test_a_stroke_changes_pixels_only_near_it_and_shows_true_pixels_at_100_percent(qtbot, opened):
    doc, canvas = opened.doc, opened.canvas
    before = [doc.stage_rgb(k).copy() for k in range(3)]
    opened.tools.set_size(4)
    drag(canvas, [(70, 10), (80, 12), (100, 14)])
    layer = doc.layers[0]
    assert layer.shape == (H, W, 4)
    ys, xs = np.nonzero(layer[..., 3])
    # Only within the brush's reach of the stroke, at full resolution.
    assert xs.min() >= 70 - 4 and xs.max() <= 100 + 4 and ys.min() >= 10 - 4 and ys.max() <= 14 + 4
    changed = np.abs(doc.stage_rgb(0).astype(int) - before[0].astype(int)).max(axis=2) > 0
    assert changed[12, 75] and not changed[40:].any() and not changed[:, :60].any()
    wait_idle(qtbot, opened)
    assert doc.status(1) == "generated" and doc.stage_rgb(2).shape == (H, W, 3)
    # 100 %: one image pixel is one screen pixel.
    canvas.reset_zoom()
    assert canvas.scale == 1.0
    canvas.repaint()
    shot = canvas.grab().toImage()
    for x, y in ((75, 12), (10, 60), (40, 36), (119, 71)):
        p = canvas.to_widget(QPointF(x + 0.5, y + 0.5))
        c = QColor(shot.pixel(int(p.x()), int(p.y())))
        assert (c.red(), c.green(), c.blue()) == tuple(int(v) for v in doc.stage_rgb(0)[y, x])


def test_fill_does_not_leak_through_a_small_gap(qtbot, opened):
    doc, canvas = opened.doc, opened.canvas
    # The line art: paper with a vertical line at x = 60..61 and a 2 px gap in it.
    layer = np.full((H, W, 4), 255, np.uint8)
    layer[:, 60:62, :3] = 0
    layer[30:32, 60:62, :3] = 255
    doc.commit_layer(0, layer, "Line")
    wait_idle(qtbot, opened)
    opened.tools.set_tool(Tool.FILL)
    opened.tools.set_fg(1, QColor(128, 128, 128))
    click(canvas, 20.5, 20.5)
    wait_fill(qtbot, canvas)
    after = doc.layers[0]
    assert tuple(after[20, 20, :3]) == (128, 128, 128) and tuple(after[60, 55, :3]) == (128, 128, 128)
    assert (after[:, 63:, :3] == 255).all()  # the far side of the line stays paper
    wait_idle(qtbot, opened)


def test_the_eyedropper_reads_the_full_res_pixel(qtbot, opened):
    doc, canvas = opened.doc, opened.canvas
    doc.set_current_stage(2)
    layer = np.zeros((H, W, 4), np.uint8)
    layer[50, 101] = (12, 200, 99, 255)  # one pixel: at the proxy's size it would be averaged away
    doc.commit_layer(2, layer, "Dot")
    opened.tools.set_tool(Tool.PICKER)
    click(canvas, 101.5, 50.5)
    c = opened.tools.fg(3)
    assert (c.red(), c.green(), c.blue()) == (12, 200, 99)


def test_a_full_res_project_saves_and_reopens_bit_exact(qtbot, opened, tmp_path):
    from core.files.project import load_project

    doc, canvas = opened.doc, opened.canvas
    opened.tools.set_size(5)
    drag(canvas, [(10, 10), (50, 60)])
    doc.set_current_stage(1)
    opened.tools.set_fg(3, QColor(200, 30, 30))
    drag(canvas, [(90, 20), (110, 50)])
    wait_idle(qtbot, opened)
    full = [f.copy() for f in doc.full]
    layers = [None if ly is None else ly.copy() for ly in doc.layers]
    shown = [doc.stage_tensor(k) for k in range(3)]
    path = tmp_path / "wide.artflow"
    with qtbot.waitSignal(doc.projectSaved, timeout=20000):
        opened.save_project(str(path))
    project = load_project(path)
    assert project.artwork_size == (W, H)
    assert all(torch.equal(a, b) for a, b in zip(project.fullres, shown, strict=True))
    assert np.array_equal(project.fullres_layers[0], layers[0]) and project.fullres_layers[2] is None
    # Reopened after a new artwork: the same bases, layers and stages, bit for bit.
    with qtbot.waitSignal(doc.stageChanged, timeout=10000):
        opened.new_artwork()
    wait_idle(qtbot, opened)
    assert doc.artwork_size == (32, 32)
    opened.open_project(str(path))
    qtbot.waitUntil(lambda: doc.project_path == path, timeout=20000)
    wait_idle(qtbot, opened)
    assert doc.artwork_size == (W, H)
    assert all(np.array_equal(a, b) for a, b in zip(doc.full, full, strict=True))
    assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(doc.layers, layers, strict=True))
    assert all(torch.equal(doc.stage_tensor(k), shown[k]) for k in range(3))
    # Saved over itself (the app saves full-res projects normally now).
    with qtbot.waitSignal(doc.projectSaved, timeout=20000):
        opened.save_project()
    assert load_project(path).fullres_layers is not None


def test_the_clean_flats_toggle_changes_what_the_engine_is_asked(qtbot, opened):
    doc, canvas = opened.doc, opened.canvas
    requests = []
    opened.engine.resultReady.connect(lambda r: requests.append(r.request))
    assert opened.controls.act_clean.isChecked() and doc.clean_flats
    opened.tools.set_size(3)
    drag(canvas, [(90, 10), (110, 30)])
    wait_idle(qtbot, opened)
    clean_colours = len(np.unique(doc.full[1].reshape(-1, 3), axis=0))
    opened.controls.act_clean.setChecked(False)
    assert not doc.clean_flats and not doc.settings.clean_flats
    drag(canvas, [(90, 60), (110, 40)])
    wait_idle(qtbot, opened)
    edits = [r for r in requests if isinstance(r, ApplyEdits)]
    assert edits[0].clean_flats and not edits[-1].clean_flats
    # Clean: one colour per closed region of the line art; without, the model's shading shows.
    assert clean_colours < len(np.unique(doc.full[1].reshape(-1, 3), axis=0))


def test_a_project_from_before_full_resolution_opens_at_the_models_size(qtbot, window, dialogs):
    doc = window.doc
    window.open_project(str(OLD_PROJECT))
    qtbot.waitUntil(lambda: doc.project_path == OLD_PROJECT, timeout=20000)
    wait_idle(qtbot, window)
    assert doc.artwork_size == (32, 32) and doc.stage_rgb(2).shape == (32, 32, 3)
    assert dialogs.calls == [] and [doc.status(k) for k in range(3)] == ["generated"] * 3


def test_slider_previews_of_a_wide_artwork_are_shown_at_its_size(qtbot, opened):
    """A latent drag's quick pictures come back at the artwork's own size and aspect, like the stages."""
    doc, slider = opened.doc, opened.latent_panel.sliders[2]
    slider.setSliderDown(True)
    for v in (-200, -100, 100, 200):
        slider.setValue(v)
    qtbot.waitUntil(lambda: opened.engine.is_idle() and 2 in doc.previews, timeout=20000)
    assert doc.previews[2].shape == (H, W, 3) and doc.previews[2].dtype == np.uint8
    assert doc.stage_rgb(2).shape == (H, W, 3)
    slider.setSliderDown(False)
    wait_idle(qtbot, opened)
    assert not doc.previews


def test_every_export_of_a_wide_artwork_is_at_its_own_size(qtbot, opened, tmp_path):
    """PNG, stages, strip, OpenRaster and GIF are written from the full-res stages, not the model's proxies."""
    import xml.etree.ElementTree as ET
    import zipfile

    win = opened
    final = win.export("png", str(tmp_path / "final.png"))
    assert Image.open(final).size == (W, H)
    got = np.asarray(Image.open(final).convert("RGB")).astype(int)
    assert np.abs(got - win.doc.stage_rgb(2).astype(int)).max() <= 1  # the final stage as shown
    for p in win.export("stages", str(tmp_path / "stages")):
        assert Image.open(p).size == (W, H)
    assert Image.open(win.export("strip", str(tmp_path / "strip.png"))).width > 3 * W
    with zipfile.ZipFile(win.export("ora", str(tmp_path / "art.ora"))) as zf:
        stack = ET.fromstring(zf.read("stack.xml"))
        assert (int(stack.get("w")), int(stack.get("h"))) == (W, H)
        for layer in stack.findall(".//layer"):
            assert Image.open(zf.open(layer.get("src"))).size == (W, H)
    gif = Image.open(win.export("gif", str(tmp_path / "flow.gif")))
    assert gif.size == (W, H) and gif.n_frames == 3


def test_a_new_drawing_at_the_models_size_gets_clean_flats_too(qtbot, window):
    """File > New starts at the model's own size (an identity artwork): a closed shape drawn on its line art
    gives a flat with one colour per closed region, and the detail is generated from that flat; with Edit >
    Clean flats off, the flat is the model's own picture again."""
    from core.fullres import find_regions, region_spread

    doc = window.doc
    assert doc.clean_flats and doc.full[0].shape[:2] == (RES, RES)
    layer = np.zeros((RES, RES, 4), np.uint8)
    layer[6:26, 6:26] = (0, 0, 0, 255)  # a closed square outline, 2 px wide
    layer[8:24, 8:24] = 0
    doc.commit_layer(0, layer, "Square")
    wait_idle(qtbot, window)
    regions = find_regions(doc.stage_tensor(0))
    assert regions.count == 2
    assert region_spread(regions, doc.stage_tensor(1)) == 0.0
    detail = doc.stage_tensor(2).clone()
    window.controls.act_clean.setChecked(False)
    layer = layer.copy()  # the document froze the one it took
    layer[14:18, 14:18] = (0, 0, 0, 255)  # a dot inside: the line art changes, the flat is regenerated
    doc.commit_layer(0, layer, "Dot")
    wait_idle(qtbot, window)
    assert region_spread(find_regions(doc.stage_tensor(0)), doc.stage_tensor(1)) > 0.0
    assert not torch.equal(doc.stage_tensor(2), detail)
