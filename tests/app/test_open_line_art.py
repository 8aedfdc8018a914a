"""File > Open line art (issue 28): an image becomes the first stage at its own size (a Krita line layer composited
on white, a scan cleaned up and the clean-up undoable), the later stages are generated, nothing is refined."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.app.conftest import wait_idle


def _ring(w: int, h: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.abs(np.hypot(xx - w / 2, yy - h / 2) - min(w, h) / 3) < 1.5


def test_a_line_layer_with_alpha_opens_as_the_first_stage_at_its_own_size(qtbot, window, tmp_path):
    doc = window.doc
    w, h = 150, 100
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[_ring(w, h)] = (0, 0, 0, 255)  # black ink on a transparent layer, as Krita exports a line layer
    path = tmp_path / "lines.png"
    Image.fromarray(rgba, "RGBA").save(path)
    with qtbot.waitSignal(doc.lineArtOpened, timeout=20000) as opened:
        window.files.open_line_art(str(path))
    wait_idle(qtbot, window)
    assert opened.args == [False]  # clean line art: no clean-up
    assert doc.artwork_size == (w, h)
    line = doc.stage_rgb(0)
    assert (line[_ring(w, h)] == 0).all() and (line[~_ring(w, h)] == 255).all()  # on paper white, exactly
    assert not doc.refining and doc.targets is None  # nothing to fit: the stages are generated
    assert [doc.status(k) for k in range(3)][1:] == ["generated", "generated"]
    assert not window.controls.act_undo_cleanup.isEnabled()


def test_a_scan_is_cleaned_up_and_the_clean_up_can_be_undone(qtbot, window, tmp_path):
    doc = window.doc
    w, h = 240, 160
    yy, xx = np.mgrid[0:h, 0:w]
    paper = 215 + 25 * xx / w  # uneven light over tinted paper
    scan = paper[..., None] * np.array([1.0, 0.97, 0.9])
    scan[_ring(w, h)] = 110  # grey pencil
    scan += np.random.default_rng(0).normal(0, 3, scan.shape)
    path = tmp_path / "scan.png"
    Image.fromarray(np.clip(scan, 0, 255).astype(np.uint8), "RGB").save(path)
    with qtbot.waitSignal(doc.lineArtOpened, timeout=20000) as opened:
        window.files.open_line_art(str(path))
    wait_idle(qtbot, window)
    assert opened.args == [True]
    cleaned = doc.stage_rgb(0)
    far = ~_ring(w, h) & (np.abs(np.hypot(xx - w / 2, yy - h / 2) - min(w, h) / 3) > 4)
    assert (cleaned[far] >= 250).mean() > 0.98  # the paper is white
    assert window.controls.act_undo_cleanup.isEnabled()
    with qtbot.waitSignal(doc.lineArtOpened, timeout=20000) as again:
        window.controls.act_undo_cleanup.trigger()
    wait_idle(qtbot, window)
    assert again.args == [False]
    assert (doc.stage_rgb(0)[far] < 250).mean() > 0.5  # the scan's own grey paper, as it was


def test_a_dithered_line_art_is_smoothed_as_the_cli_does(qtbot, window, tmp_path):
    """A 1-bit line art whose shading is dots comes in with its dots smoothed into greys (core.fullres.dither,
    as `artflow generate` reads it): each dot would otherwise be a line, and the picture would have no regions."""
    doc = window.doc
    w, h = 160, 120
    yy, xx = np.mgrid[0:h, 0:w]
    grey = np.full((h, w), 255, np.uint8)
    grey[np.hypot(xx - 80, yy - 60) < 40] = 180  # a light grey disc
    grey[_ring(w, h)] = 0
    path = tmp_path / "dithered.png"
    Image.fromarray(grey).convert("1").save(path)  # Pillow's Floyd-Steinberg dither
    raw = np.asarray(Image.open(path).convert("L"))
    with qtbot.waitSignal(doc.lineArtOpened, timeout=20000):
        window.files.open_line_art(str(path))
    wait_idle(qtbot, window)
    shown = doc.stage_rgb(0)[..., 0]
    inside = np.hypot(xx - 80, yy - 60) < 30
    assert not np.array_equal(shown, raw)
    assert ((shown[inside] > 0) & (shown[inside] < 255)).mean() > 0.5  # greys, not black and white dots


def test_using_the_line_art_as_it_was_keeps_later_work_and_ends_with_another_artwork(qtbot, window, tmp_path,
                                                                                     dialogs):
    """The line art opened again replaces the artwork: strokes made since it opened are offered for saving first,
    and once another artwork (a new drawing) replaced it, there is no line art to open again."""
    doc = window.doc
    scan = np.full((120, 160, 3), 225, np.uint8)
    scan[_ring(160, 120)] = 110
    path = tmp_path / "scan.png"
    Image.fromarray(scan, "RGB").save(path)
    with qtbot.waitSignal(doc.lineArtOpened, timeout=20000) as opened:
        window.files.open_line_art(str(path))
    wait_idle(qtbot, window)
    assert opened.args == [True]
    layer = np.zeros((120, 160, 4), np.uint8)
    layer[10:20, 10:40] = (0, 0, 0, 255)
    doc.commit_layer(0, layer, "Stroke")
    wait_idle(qtbot, window)
    with qtbot.waitSignal(doc.lineArtOpened, timeout=20000):
        window.controls.act_undo_cleanup.trigger()  # the test's answer to "Save changes?" is Discard
    wait_idle(qtbot, window)
    assert dialogs.kinds() == ["question"]
    with qtbot.waitSignal(doc.lineArtOpened, timeout=20000) as replaced:
        doc.new_artwork(200, 100)
    wait_idle(qtbot, window)
    assert replaced.args == [False] and not window.controls.act_undo_cleanup.isEnabled()
    assert doc.line_art_opened is None
