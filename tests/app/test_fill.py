"""The fill tool off the GUI thread: app/canvas/fill.py's compute_fill makes what the synchronous fill made (the
layer painted with brush.apply_mask over fill_pixels' region, the stage as shown = that layer over the base), and
the canvas applies a fill on a large stage through its worker: the right pixels, one undo step, the GUI thread
never held for the region's work."""

from __future__ import annotations

import numpy as np
import pytest

from app.canvas.brush import apply_mask, fill_mask, fill_pixels
from app.canvas.fill import FillJob, compute_fill
from app.layers import composite


def frozen(a):
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def scene(h, w, seed):
    """A picture of flat patches with dark outlines (walls), a layer partly painted (some pixels half
    transparent), and a base under it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.full((h, w, 3), 250, np.uint8)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, min(h, w) / 2)
        d = np.hypot(yy - cy, xx - cx)
        base[d < r] = rng.integers(60, 250, 3)
        base[np.abs(d - r) < 1.5] = 20
    layer = np.zeros((h, w, 4), np.uint8)
    layer[h // 4:h // 2, w // 3:w // 2] = (*rng.integers(0, 256, 3), 255)
    layer[h // 2:h // 2 + 6, :] = (*rng.integers(0, 256, 3), 120)
    return frozen(base), frozen(layer)


@pytest.mark.parametrize("opacity", [1.0, 0.5])
@pytest.mark.parametrize("painted", [True, False])
@pytest.mark.parametrize("seed", range(3))
def test_compute_fill_equals_the_synchronous_fill(seed, painted, opacity):
    h, w = 90, 130
    base, layer = scene(h, w, seed)
    if not painted:
        layer = None
    picture = frozen(composite(base, layer))
    rng = np.random.default_rng(50 + seed)
    for _ in range(4):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        result = compute_fill(FillJob(1, x, y, 48, colour, opacity, picture, layer, base))
        # As the canvas filled before: apply_mask over the region's box, then the composite.
        region = fill_mask(picture, x, y, 48)
        _, rect = fill_pixels(picture, x, y, 48)
        assert result.rect == rect
        x0, y0, x1, y1 = rect
        want = np.zeros((h, w, 4), np.uint8) if layer is None else layer.copy()
        want[y0:y1, x0:x1] = apply_mask(want[y0:y1, x0:x1], region[y0:y1, x0:x1] * opacity, colour)
        np.testing.assert_array_equal(result.layer, want)
        np.testing.assert_array_equal(result.picture, composite(base, want))
        old = np.zeros((h, w, 4), np.uint8) if layer is None else layer
        np.testing.assert_array_equal(result.before, old[y0:y1, x0:x1])
        assert not result.layer.flags.writeable


def test_a_seed_outside_the_picture_fills_nothing():
    base, layer = scene(40, 50, 0)
    result = compute_fill(FillJob(0, 60, 5, 48, (1, 2, 3), 1.0, base, layer, base))
    assert result.layer is None and result.rect is None


# ----- through the real canvas -----

BIG_W, BIG_H = 4096, 3072


@pytest.fixture(scope="module")
def big_png(tmp_path_factory):
    """A large drawing: a dark ring (a closed region) off-centre on white paper."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (BIG_W, BIG_H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.ellipse((600, 500, 2600, 2500), fill=(240, 170, 40), outline=(20, 20, 20), width=24)
    path = tmp_path_factory.mktemp("big") / "big.png"
    img.save(path)
    return path


@pytest.fixture
def big(qtbot, window, big_png):
    from tests.app.conftest import wait_idle

    window.doc.settings.refine_after_open = False
    with qtbot.waitSignal(window.doc.artworkOpened, timeout=120000):
        window.open_image(str(big_png))
    wait_idle(qtbot, window, timeout=120000)
    assert window.doc.artwork_size == (BIG_W, BIG_H)
    return window


def test_a_fill_on_a_big_stage_gives_the_right_pixels_off_the_gui_thread(qtbot, big):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QColor

    from app.canvas.tools import Tool
    from tests.app.conftest import click, wait_fill, wait_idle

    doc, canvas = big.doc, big.canvas
    k = 1
    doc.set_current_stage(k)
    canvas.reset_zoom()
    assert canvas.scale == 1.0
    picture = doc.stage_rgb(k).copy()
    before = doc.layers[k]
    expected_region = fill_mask(picture, 1600, 1500, big.tools.fill_tolerance) > 0
    assert expected_region.sum() > 2_000_000  # a large region: the inside of the ring
    big.tools.set_tool(Tool.FILL)
    big.tools.set_fg(3, QColor(30, 90, 210))
    # 100 %, the click's neighbourhood in view.
    canvas.offset = QPointF(canvas.width() / 2 - 1600, canvas.height() / 2 - 1500)
    click(canvas, 1600.5, 1500.5)
    # The click returned before the region was found: the work is on the fill worker's thread.
    assert canvas.fill_pending() and doc.layers[k] is before
    wait_fill(qtbot, canvas, timeout=60000)
    layer = doc.layers[k]
    assert (layer[expected_region] == (30, 90, 210, 255)).all()
    assert not layer[~expected_region][:, 3].any()  # nothing outside the region (the layer was empty)
    shown = doc.stage_rgb(k)
    assert (shown[expected_region] == (30, 90, 210)).all()
    np.testing.assert_array_equal(shown[~expected_region], picture[~expected_region])
    # On screen, at 100 %: the filled colour inside, the old picture outside.
    canvas.repaint()
    shot = canvas.grab().toImage()
    for x, y in ((1600, 1500), (1550, 1450), (1620, 1530)):
        p = canvas.to_widget(QPointF(x + 0.5, y + 0.5))
        c = QColor(shot.pixel(int(p.x()), int(p.y())))
        assert (c.red(), c.green(), c.blue()) == tuple(int(v) for v in shown[y, x])
    # One undo step takes it all back; redo puts it back.
    big.controls.act_undo.trigger()
    assert doc.layers[k] is None or not doc.layers[k][..., 3].any()
    np.testing.assert_array_equal(doc.stage_rgb(k), picture)
    big.controls.act_redo.trigger()
    np.testing.assert_array_equal(doc.layers[k], layer)
    wait_idle(qtbot, big, timeout=120000)


def test_a_fill_waits_for_edits_made_while_it_is_computed(qtbot, window, monkeypatch):
    """A stroke committed while the worker computes a fill: the fill is made again on the new layer (the stroke
    is kept, and the fill respects it); two fills clicked in a row apply in order."""
    import threading

    from PySide6.QtGui import QColor

    import app.canvas.fill_worker as fw
    from app.canvas.tools import Tool
    from tests.app.conftest import click, drag, wait_fill, wait_idle

    doc, canvas, tools = window.doc, window.canvas, window.tools
    release = threading.Event()
    real = fw.compute_fill

    def held(job):
        release.wait(10)
        return real(job)

    monkeypatch.setattr(fw, "compute_fill", held)
    doc.set_current_stage(2)
    window.clear_to_paper()
    wait_idle(qtbot, window)
    tools.set_tool(Tool.FILL)
    tools.set_fg(3, QColor(200, 0, 0))
    click(canvas, 5.5, 5.5)
    tools.set_fg(3, QColor(0, 0, 200))
    click(canvas, 5.5, 5.5)  # a second fill, queued behind the first
    assert canvas.fill_pending()
    tools.set_tool(Tool.BRUSH)
    tools.set_fg(3, QColor(0, 0, 0))
    tools.set_size(3)
    h = doc.artwork_size[1]
    drag(canvas, [(20, 0), (20, h - 1)])  # a wall across the stage, committed before the fill's answer
    stroke = doc.layers[2].copy()
    release.set()
    wait_fill(qtbot, canvas)
    layer = doc.layers[2]
    assert tuple(layer[5, 5]) == (0, 0, 200, 255)  # both fills, in order: the second one's colour
    assert tuple(layer[5, 20]) == tuple(stroke[5, 20])  # the stroke is kept ...
    assert (layer[:, 25:, :3] == 255).all()  # ... and the fill stopped at it (paper white beyond)
    # Undo takes back the second fill, then the first, then the stroke.
    window.controls.act_undo.trigger()
    assert tuple(doc.layers[2][5, 5]) == (200, 0, 0, 255)
    window.controls.act_undo.trigger()
    np.testing.assert_array_equal(doc.layers[2], stroke)
    wait_idle(qtbot, window)
