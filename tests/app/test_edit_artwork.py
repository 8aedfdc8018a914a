"""Editing an existing artwork: open, infer, refine on the engine thread (progress, cancel), edit a stage with
"keep unedited areas", compare before / after, close during a refinement."""

from __future__ import annotations

import time

import numpy as np
import torch

from core.files.imageio import load_artwork
from core.fullres.proxy import to_proxy
from tests.app.conftest import RES, drag, wait_idle


def open_artwork(qtbot, window, path, refine: bool = True):
    window.doc.settings.refine_after_open = refine
    with qtbot.waitSignal(window.doc.artworkOpened, timeout=20000):
        window.open_image(str(path))
    wait_idle(qtbot, window)


def test_open_infers_stages_and_refines_to_the_end(qtbot, window, artwork_png):
    doc = window.doc
    progress = []
    doc.refineProgress.connect(progress.append)
    with qtbot.waitSignal(doc.refineFinished, timeout=60000) as finished:
        window.open_image(str(artwork_png))
    assert finished.args[0] is True
    wait_idle(qtbot, window)
    steps = doc.settings.refine_steps
    assert steps == 6  # the test setting; the app's default stays the paper's 150
    # Every step of both transitions was reported, with a loss; previews came every few steps.
    assert len(progress) == 2 * steps
    assert progress[-1].fraction == 1.0
    assert all(np.isfinite(p.loss) for p in progress)
    assert any(p.preview is not None for p in progress)
    assert doc.targets is not None
    art = load_artwork(artwork_png, 3, minimum=32)  # transparency on white, at its own size
    assert torch.allclose(doc.targets[-1], to_proxy(art, 32)[0])  # the model's proxy: padded to a square
    # The document holds the artwork at its own size; the refined last stage is the artwork itself.
    assert doc.artwork_size == (60, 40)
    assert all(doc.stage_rgb(k).shape == (40, 60, 3) for k in range(3))
    assert torch.equal(doc.stage_tensor(2), art)
    assert [doc.status(k) for k in range(3)] == ["inferred", "refined", "refined"]
    assert any(float(d.abs().sum()) > 0 for d in doc.deltas)  # the refined AdaIN deltas
    assert window.refine_panel.bar.value() == 1000
    assert doc.dirty and "sun" in window.windowTitle()


def test_a_refined_artwork_of_the_models_size_keeps_the_fit(qtbot, window, tiny_bundle, tmp_path):
    """At the model's own size the session's stages are the fit itself after the refinement (the flat is not made
    a clean flat then: that would regenerate the detail away from the fit), while the artwork keeps its own pixels
    (issue 27): the last stage shown and saved is the opened picture, bit for bit."""
    from PIL import Image

    from tests.app.test_latents import assert_chain_is_the_models

    yy, xx = np.mgrid[0:RES, 0:RES]
    a = np.full((RES, RES, 3), 255, np.uint8)
    a[(xx - 16) ** 2 + (yy - 16) ** 2 < 100] = (230, 160, 40)
    path = tmp_path / "small.png"
    Image.fromarray(a).save(path)
    doc = window.doc
    assert doc.clean_flats
    with qtbot.waitSignal(doc.refineFinished, timeout=60000) as finished:
        window.open_image(str(path))
    assert finished.args[0] is True
    wait_idle(qtbot, window)
    assert doc.artwork_size == (RES, RES) and [doc.status(k) for k in range(3)] == ["inferred", "refined", "refined"]
    assert_chain_is_the_models(doc, tiny_bundle, cleaned_flat=False)
    assert np.array_equal(doc.stage_rgb(2), a)  # the artist's pixels, not the fit's
    saved = tmp_path / "small.artflow"
    with qtbot.waitSignal(doc.saveFinished, timeout=20000):
        doc.save_project(saved)
    from core.files.imageio import tensor_to_uint8
    from core.files.project import load_project

    assert np.array_equal(tensor_to_uint8(load_project(saved).stage_images()[-1]), a)


def test_refinement_can_be_cancelled_midway(qtbot, window, artwork_png):
    doc = window.doc
    open_artwork(qtbot, window, artwork_png, refine=False)
    before = [b.clone() for b in doc.bases]
    deltas = [d.clone() for d in doc.deltas]
    with qtbot.waitSignal(doc.refineProgress, timeout=20000):
        doc.refine(steps=5000)
    assert doc.refining and window.refine_panel.cancel_btn.isEnabled()
    with qtbot.waitSignal(doc.refineFinished, timeout=20000) as finished:
        window.refine_panel.cancel_btn.click()
    assert finished.args[0] is False
    wait_idle(qtbot, window)
    assert all(torch.equal(a, b) for a, b in zip(before, doc.bases))  # a cancel changes nothing
    assert all(torch.equal(a, b) for a, b in zip(deltas, doc.deltas))
    assert window.refine_panel.bar.format() == "Cancelled"
    assert not doc.refining and window.refine_panel.refine_btn.isEnabled()


def test_the_gui_stays_responsive_during_a_refinement(qtbot, window, artwork_png):
    doc = window.doc
    open_artwork(qtbot, window, artwork_png, refine=False)
    with qtbot.waitSignal(doc.refineProgress, timeout=20000):
        doc.refine(steps=5000)
    # The event loop turns while the engine works: timers fire, widgets repaint, the artist can paint.
    t0 = time.perf_counter()
    qtbot.wait(50)
    assert time.perf_counter() - t0 < 2.0
    window.canvas.repaint()
    drag(window.canvas, [(2, 2), (4, 4)])
    assert doc.layers[0] is not None
    assert doc.status(1) == "stale"
    with qtbot.waitSignal(doc.refineFinished, timeout=20000):
        doc.cancel_refine()
    wait_idle(qtbot, window)  # the stroke queued behind the refinement is applied after it
    assert doc.status(1) != "stale"


def test_closing_during_a_refinement_exits_cleanly(qtbot, tiny_bundle, artwork_png, dialogs):
    from tests.app.conftest import open_window

    win = open_window(qtbot, tiny_bundle)
    open_artwork(qtbot, win, artwork_png, refine=False)
    with qtbot.waitSignal(win.doc.refineProgress, timeout=20000):
        win.doc.refine(steps=100000)
    t0 = time.perf_counter()
    assert win.close()
    assert time.perf_counter() - t0 < 10
    assert win.engine.isFinished()
    assert "question" in dialogs.kinds()  # unsaved work: asked (the test answers Discard)


def test_an_edit_changes_later_stages_only_where_it_reached(qtbot, window, artwork_png):
    """Region-bounded edits (issue 27, the default): a stroke on the flat changes the detail only at the pixels
    whose flat colour it changed; every other pixel of the detail is exactly as before, the paper included."""
    doc = window.doc
    open_artwork(qtbot, window, artwork_png, refine=False)
    assert not doc.restyle and not window.controls.act_restyle.isChecked()
    doc.set_current_stage(1)
    flat_before, detail_before = doc.stage_rgb(1).copy(), doc.stage_rgb(2).copy()
    window.tools.set_size(3)
    drag(window.canvas, [(24, 18), (30, 20)])  # a stroke inside the disc
    wait_idle(qtbot, window)
    flat_changed = np.abs(doc.stage_rgb(1).astype(int) - flat_before.astype(int)).max(axis=2) > 0
    detail_changed = np.abs(doc.stage_rgb(2).astype(int) - detail_before.astype(int)).max(axis=2) > 0
    assert flat_changed.any() and detail_changed.any()
    assert not (detail_changed & ~flat_changed).any()
    # With "Let an edit restyle the whole picture" the paper's propagation moves the detail beyond the stroke.
    window.controls.act_restyle.setChecked(True)
    assert doc.restyle and doc.settings.edit_restyles
    detail_before = doc.stage_rgb(2).copy()
    drag(window.canvas, [(36, 18), (40, 22)])
    wait_idle(qtbot, window)
    flat_changed = np.abs(doc.stage_rgb(1).astype(int) - flat_before.astype(int)).max(axis=2) > 0
    detail_changed = np.abs(doc.stage_rgb(2).astype(int) - detail_before.astype(int)).max(axis=2) > 0
    assert (detail_changed & ~flat_changed).any()


def test_keep_unedited_areas(qtbot, window, artwork_png):
    """"Keep unedited areas" bounds the paper's global propagation (restyling on) to 24 px around the edit."""
    doc = window.doc
    open_artwork(qtbot, window, artwork_png, refine=False)
    window.controls.act_restyle.setChecked(True)
    window.controls.act_keep.setChecked(True)
    assert doc.keep_unedited and window.controls.keep_box.isChecked()
    final_before = doc.stage_rgb(2).copy()
    window.tools.set_size(3)
    drag(window.canvas, [(3, 3), (5, 4)])  # a small edit in the top-left corner of the line art
    wait_idle(qtbot, window)
    changed = np.abs(doc.stage_rgb(2).astype(int) - final_before.astype(int)).max(axis=2) > 0
    assert changed.any()
    # Far from the edit (the full-res keep mask reaches 24 artwork px) the final stage kept its pixels exactly.
    assert not changed[:, 34:].any()
    # Without the option the whole picture may change (instance normalisation sees every pixel).
    window.controls.act_keep.setChecked(False)
    before = doc.stage_rgb(2).copy()
    drag(window.canvas, [(3, 28), (5, 29)])
    wait_idle(qtbot, window)
    changed = np.abs(doc.stage_rgb(2).astype(int) - before.astype(int)).max(axis=2) > 0
    assert changed[:, 16:].any()


def test_compare_before_after(qtbot, window, artwork_png):
    doc, canvas = window.doc, window.canvas
    # Create-from-scratch: the reference is the final stage before the last change.
    drag(canvas, [(5, 5), (20, 20)])
    wait_idle(qtbot, window)
    ref, label = doc.compare_reference()
    assert label == "Before" and ref.shape == (32, 32, 3)
    window.controls.act_compare.setChecked(True)
    assert doc.current_stage == 2 and canvas.compare_active()
    canvas.repaint()
    # Dragging moves the divider, it does not paint.
    drag(canvas, [(16, 16), (8, 16)])
    assert abs(canvas.split - 0.25) < 0.05 and doc.layers[2] is None
    grab = canvas.grab().toImage()
    assert not grab.isNull()
    window.controls.act_compare.setChecked(False)
    # Editing an artwork: the reference is the original picture.
    open_artwork(qtbot, window, artwork_png, refine=False)
    ref, label = doc.compare_reference()
    assert label == "Original"
    # At the artwork's own size, exactly its pixels.
    assert np.array_equal(ref, (load_artwork(artwork_png, 3, minimum=32).add(1).mul(127.5).round().byte()
                                .permute(1, 2, 0).numpy()))


def test_a_corrupt_image_gets_a_message_and_nothing_is_lost(qtbot, window, tmp_path, dialogs):
    doc = window.doc
    drag(window.canvas, [(5, 5), (9, 9)])
    wait_idle(qtbot, window)
    layer = doc.layers[0].copy()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    window.open_image(str(bad))  # "Save changes?" is answered Discard by the test
    qtbot.waitUntil(lambda: "critical" in dialogs.kinds(), timeout=10000)
    wait_idle(qtbot, window)
    assert "broken.png" in dialogs.texts()
    assert np.array_equal(doc.layers[0], layer)


def test_open_any_format_and_mode(qtbot, window, tmp_path, artwork_png):
    """WebP, JPEG (CMYK), palette GIF, 16-bit grey: all open; transparency on white, aspect kept and padded."""
    from PIL import Image

    src = Image.open(artwork_png)
    files = {"art.webp": src, "art.jpg": src.convert("RGB").convert("CMYK"), "art.gif": src.convert("P"),
             "grey16.png": src.convert("L").point(lambda v: v * 256, "I").convert("I;16")}
    for name, img in files.items():
        path = tmp_path / name
        img.save(path)
        open_artwork(qtbot, window, path, refine=False)
        assert window.doc.targets is not None and window.doc.artwork_name == path.stem
        assert tuple(window.doc.targets[-1].shape) == (3, 32, 32)
        assert float(window.doc.targets[-1][:, 0, :].min()) > 0.9  # the padding band is paper white


def test_stop_early_ends_each_transition_once_its_loss_has_flattened(qtbot, window, artwork_png):
    doc = window.doc
    open_artwork(qtbot, window, artwork_png, refine=False)
    window.refine_panel.stop_early.setChecked(True)
    assert doc.settings.refine_stop_early
    progress = []
    doc.refineProgress.connect(progress.append)
    with qtbot.waitSignal(doc.refineFinished, timeout=120000) as finished:
        doc.refine(steps=3000)
    assert finished.args[0] is True
    wait_idle(qtbot, window)
    # Both transitions ran, each ended by the "fast" schedule's flat-loss test long before its 3000 steps.
    per_transition = [sum(p.transition == t for p in progress) for t in range(2)]
    assert all(10 < n < 3000 for n in per_transition), per_transition
    assert [doc.status(k) for k in range(3)] == ["inferred", "refined", "refined"]
    assert window.refine_panel.bar.value() == 1000
