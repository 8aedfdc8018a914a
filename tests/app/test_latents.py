"""The Variations panel: sliders in the prior's range change the later stages live; Randomize, seeds, Reset and the
history of variations."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QEvent, QObject, QRectF, Qt
from PySide6.QtWidgets import QApplication

from app.layers import rgb_of, to_rgb
from core.editing.session import Z_RANGE
from core.files import bundle
from core.nn.inference import FastGenerator
from tests.app.conftest import RES, wait_idle


def assert_chain_is_the_models(doc, bundle_path, cleaned_flat: bool | None = None) -> None:
    """Every later stage the document holds is the model's own picture of the stage before it, at its latents and
    deltas, by the engine's picture function (core.nn.inference, held to the modules by tests/core/test_inference.py).
    Each from the document's own previous stage, not a chain recomputed from stage 0, and not by the modules: the
    tiny untrained model's stages are nearly blank, where its norms magnify float rounding (its 5x5 upsamplings are
    folded differently in the two forwards, core/nn/upsample_conv.py) into differences of a whole level.
    The flat stage, with Edit > Clean flats on (the default), is the clean flat of the model's picture: one colour
    per closed region of the line art, on 8-bit levels (within one level of rounding); cleaned_flat=False says it
    is not (after a refinement)."""
    from core.fullres.flats import clean_flat

    model = bundle.load(bundle_path)
    with torch.inference_mode():
        for i, g in enumerate(model.generators):
            fast = FastGenerator(g.to(memory_format=torch.channels_last))
            params = g.adain_params(doc.latents[i][None]) + doc.deltas[i][None]
            src = fast.decode(fast.encode_content(doc.bases[i][None]), params)[0]
            cleaned = i == 0 and (doc.clean_flats if cleaned_flat is None else cleaned_flat)
            if cleaned:
                src = clean_flat(doc.stage_tensor(0), src)  # the line art as seen
            torch.testing.assert_close(doc.bases[i + 1], src, rtol=0, atol=1.01 / 127.5 if cleaned else 1e-4)


def test_slider_changes_the_final_stage(qtbot, window):
    doc, panel = window.doc, window.latent_panel
    final_before = doc.bases[2].clone()
    mid_before = doc.bases[1].clone()
    panel.sliders[0].setValue(250)  # 2.5
    assert abs(float(doc.latents[0][0]) - 2.5) < 1e-6
    assert abs(panel.spins[0].value() - 2.5) < 1e-6
    assert doc.status(1) == "stale"
    wait_idle(qtbot, window)
    assert not torch.equal(doc.bases[1], mid_before)
    assert not torch.equal(doc.bases[2], final_before)
    # The second transition's sliders change only the last stage.
    doc.set_current_stage(2)
    assert panel.transition == 1
    mid = doc.bases[1].clone()
    final = doc.bases[2].clone()
    panel.spins[3].setValue(-1.5)
    wait_idle(qtbot, window)
    assert torch.equal(doc.bases[1], mid)
    assert not torch.equal(doc.bases[2], final)


def test_values_stay_in_the_priors_range(qtbot, window):
    panel, doc = window.latent_panel, window.doc
    assert panel.sliders[0].maximum() == round(Z_RANGE * 100) and panel.sliders[0].minimum() == -round(Z_RANGE * 100)
    panel.spins[1].setValue(7.0)  # clamped by the spin box
    assert panel.spins[1].value() == Z_RANGE
    doc.set_latent(0, torch.full((8,), -9.0))  # and by the document
    assert float(doc.latents[0].min()) == -Z_RANGE
    wait_idle(qtbot, window)


def test_live_drag_shows_previews_then_the_full_picture(qtbot, window, tiny_bundle):
    """A slider drag asks for quick previews (marked as such, the stages stay stale, their bases untouched); each
    value is previewed or dropped as stale; the release sends the last value and the document ends with the full
    picture for it: the reference modules' chain at the model's size."""
    doc, panel, engine = window.doc, window.latent_panel, window.engine
    answers = []
    engine.resultReady.connect(answers.append)
    bases = [b.clone() for b in doc.bases]
    slider = panel.sliders[2]
    slider.setSliderDown(True)
    values = list(range(-300, 301, 15))
    for v in values:
        slider.setValue(v)
    qtbot.waitUntil(lambda: engine.is_idle() and 2 in doc.previews, timeout=20000)
    QApplication.processEvents()
    previews = [a for a in answers if a.request.preview]
    assert previews and len(previews) + engine.dropped == len(values)  # every value was previewed or dropped
    assert torch.equal(previews[-1].request.z, doc.latents[0])  # the last one shown is the latest value
    assert all(torch.equal(a, b) for a, b in zip(doc.bases, bases))  # the previews replaced no base
    assert doc.is_stale(1) and doc.is_stale(2) and doc.requests.waits_for_sending(2)
    assert doc.stage_rgb(2).shape == (RES, RES, 3)  # shown at the stage's size
    assert np.array_equal(doc.stage_rgb(2), rgb_of(doc.previews[2]))  # at the artwork's size, as stages
    slider.setSliderDown(False)  # release: the full picture
    wait_idle(qtbot, window)
    assert not answers[-1].request.preview and answers[-1].state is not None
    assert not doc.previews and not doc.is_stale(2)
    assert abs(float(doc.latents[0][2]) - 3.0) < 1e-6
    assert np.array_equal(doc.stage_rgb(2), to_rgb(doc.bases[2]))
    assert_chain_is_the_models(doc, tiny_bundle)
    # The engine's final picture is the one for the last value: regenerating again changes nothing.
    final = doc.bases[2].clone()
    doc.regenerate()
    wait_idle(qtbot, window)
    assert torch.allclose(doc.bases[2], final, atol=1e-5)
    assert doc.variations[0][-1].z is not None and torch.equal(doc.variations[0][-1].z, doc.latents[0])


def test_live_drag_without_previews_is_coalesced(qtbot, window):
    """With previews off, every value of a drag regenerates in full; the engine merges the queued ones."""
    doc, panel = window.doc, window.latent_panel
    doc.live_preview = False
    panel.sliders[2].setSliderDown(True)
    for v in range(-300, 301, 15):
        panel.sliders[2].setValue(v)
    panel.sliders[2].setSliderDown(False)
    wait_idle(qtbot, window)
    assert window.engine.merged > 0 and window.engine.dropped == 0 and not doc.previews
    assert abs(float(doc.latents[0][2]) - 3.0) < 1e-6


def test_randomize_seed_reset_and_history(qtbot, window):
    doc, panel = window.doc, window.latent_panel
    start = doc.latents[0].clone()
    panel.randomize()
    wait_idle(qtbot, window)
    z1 = doc.latents[0].clone()
    assert not torch.equal(z1, start)
    assert float(z1.abs().max()) <= Z_RANGE
    assert [round(s.value() * 100) for s in panel.spins] == [round(float(v) * 100) for v in z1]
    seed = panel.seed.value()
    panel.seed.setValue(1234)
    panel.apply_seed()
    wait_idle(qtbot, window)
    z_1234 = doc.latents[0].clone()
    final_1234 = doc.bases[2].clone()
    panel.seed.setValue(seed)
    panel.apply_seed()
    wait_idle(qtbot, window)
    assert torch.equal(doc.latents[0], z1)  # the same seed gives the same variation
    panel.seed.setValue(1234)
    panel.apply_seed()
    wait_idle(qtbot, window)
    assert torch.equal(doc.latents[0], z_1234)
    assert torch.allclose(doc.bases[2], final_1234, atol=1e-5)
    # History: every variation with its thumbnail; clicking one goes back to it.
    history = doc.variations[0]
    assert len(history) >= 4 and all(v.thumb is not None for v in history)
    assert panel.history.count() == len(history)
    first = panel.history.item(0)
    panel.history.scrollToItem(first)
    qtbot.mouseClick(panel.history.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.history.visualItemRect(first).center())
    wait_idle(qtbot, window)
    assert torch.equal(doc.latents[0], start)
    panel.reset_btn.click()
    wait_idle(qtbot, window)
    assert torch.equal(doc.latents[0], doc.reset_latents[0])


def test_sliders_follow_a_fitted_latent_prior(qtbot, tmp_path):
    """With a fitted prior the sliders are in its standard deviations: 0 is its mean, and no slider, typed value or
    loaded code leaves the +-3 box around it."""
    from core.files import bundle
    from core.model import WorkflowModel
    from tests.app.conftest import open_window
    from tests.core.engine_util import tiny_config

    torch.manual_seed(0)
    model = WorkflowModel(tiny_config())
    mean = torch.linspace(1.0, 2.0, 8)
    tril = 0.2 * torch.eye(8)
    tril[3, 0] = 0.1
    model.latent_priors[0].set(mean, tril)
    win = open_window(qtbot, bundle.save(model, tmp_path / "prior-bundle"))
    try:
        wait_idle(qtbot, win)
        doc, panel = win.doc, win.latent_panel
        assert torch.allclose(doc.latents[0], mean)  # a new artwork starts at the prior's mean
        assert all(abs(s.value()) <= 1 for s in panel.sliders)
        panel.sliders[0].setValue(100)  # +1 standard deviation along the first axis
        assert torch.allclose(doc.latents[0], mean + tril[:, 0], atol=1e-5)
        assert abs(panel.spins[0].value() - 1.0) < 1e-6
        wait_idle(qtbot, win)
        doc.set_latent(0, mean + 10.0)  # far outside: clipped into the box
        u = doc.latent_coords(0)
        assert float(u.abs().max()) <= Z_RANGE + 1e-4
        panel.randomize()
        wait_idle(qtbot, win)
        assert float(doc.latent_coords(0).abs().max()) <= Z_RANGE + 1e-4
        assert [round(s.value() * 100) for s in panel.spins] == [round(float(v) * 100) for v in doc.latent_coords(0)]
        # The second transition has no fitted prior: its sliders are the code's values.
        doc.set_current_stage(2)
        panel.spins[2].setValue(-1.5)
        assert abs(float(doc.latents[1][2]) + 1.5) < 1e-6
        wait_idle(qtbot, win)
    finally:
        win.shutdown()


def test_a_drag_shows_each_newer_preview_and_ends_with_the_full_picture(qtbot, window, tiny_bundle, monkeypatch):
    """A drag with the window responsive between moves, the previews' later stages slowed down so that they overlap
    the next values (and the release): the canvas shows the previews as they come, each from a newer value than the
    last (a late one never replaces a newer one), repainting only the image's area; after the release it shows the
    full regeneration at the last value, with no preview left."""
    import threading
    import time

    from app.qt_image import qimage_to_rgb, thumbnail
    from core.editing.session import LaterPreview

    call = LaterPreview.__call__

    def slow(self, first):
        time.sleep(0.02)
        return call(self, first)

    monkeypatch.setattr(LaterPreview, "__call__", slow)
    doc, panel, engine, canvas = window.doc, window.latent_panel, window.engine, window.canvas
    doc.set_current_stage(2)  # the canvas shows the last stage ...
    panel.combo.setCurrentIndex(0)  # ... and the sliders edit the first transition
    wait_idle(qtbot, window)
    answers, threads = [], []
    engine.resultReady.connect(answers.append)
    pictures: list = []  # each new picture of the last stage, in the order shown (None: the full picture)

    def on_stage(k: int) -> None:
        threads.append(threading.current_thread())
        if k == 2:
            pictures.append(doc.previews.get(2))

    def shown() -> list:
        """The request each picture answers (an answer is applied before this test's own slot sees it)."""
        rid = {id(a.info["previews"][-1]): a.rid for a in answers if a.request.preview}
        return ["full" if p is None else rid[id(p)] for p in pictures]

    doc.stageChanged.connect(on_stage)
    paints: list = []

    class PaintRects(QObject):
        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Type.Paint:
                paints.append(QRectF(event.rect()))
            return False

    slider = panel.sliders[0]
    slider.setSliderDown(True)
    slider.setValue(-300)
    qtbot.waitUntil(lambda: 2 in doc.previews, timeout=20000)
    qtbot.wait(50)  # (the drag's first repaint of the whole canvas, for the compare view's "before", is done)
    recorder = PaintRects()
    canvas.installEventFilter(recorder)
    for v in range(-280, 301, 20):
        slider.setValue(v)
        qtbot.wait(5)  # the events between two mouse moves: answers are shown during the drag
    qtbot.waitUntil(lambda: engine.is_idle(), timeout=20000)
    QApplication.processEvents()
    canvas.removeEventFilter(recorder)
    previews = [s for s in shown() if s != "full"]
    assert len(previews) >= 3 and previews == sorted(set(previews))  # each newer than the last
    assert torch.equal(doc.latents[0], doc.clip_latent(0, doc.latents[0]))
    assert np.array_equal(doc.stage_rgb(2), rgb_of(doc.previews[2]))  # the last value's preview
    last = next(a for a in reversed(answers) if a.request.preview)
    assert abs(float(doc.latent_coords(0)[0]) - 3.0) < 1e-5 and last.rid == previews[-1]
    assert np.array_equal(qimage_to_rgb(canvas._image), doc.stage_rgb(2))
    card = window.strip.cards[2]  # the strip's thumbnail follows the previews (a few times a second)
    qtbot.waitUntil(lambda: card.image.pixmap().toImage() == thumbnail(doc.stage_rgb(2), card.thumb_size).toImage(),
                    timeout=5000)
    image = canvas.image_rect().adjusted(-1, -1, 1, 1)
    assert paints and all(image.contains(r) for r in paints)  # the desk around the image was not repainted
    slider.setSliderDown(False)  # release: the full picture
    wait_idle(qtbot, window)
    assert shown()[-1] == "full" and not doc.previews and not doc.is_stale(2)
    assert not answers[-1].request.preview
    assert all(t is threading.main_thread() for t in threads)
    assert np.array_equal(qimage_to_rgb(canvas._image), to_rgb(doc.bases[2]))
    assert card.image.pixmap().toImage() == thumbnail(to_rgb(doc.bases[2]), card.thumb_size).toImage()
    assert_chain_is_the_models(doc, tiny_bundle)


def test_a_drag_repaints_only_the_moved_sliders_value(qtbot, window):
    """Each move updates the moved slider's value box; the other seven keep their values and are not repainted
    (eight repaints per move were a third of the window's work during a drag)."""
    panel = window.latent_panel
    paints = {d: 0 for d in range(8)}

    class Counter(QObject):
        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Type.Paint:
                paints[panel.spins.index(obj)] += 1
            return False

    counter = Counter()
    qtbot.wait(50)
    for sp in panel.spins:
        sp.installEventFilter(counter)
    values = panel.current_values()
    slider = panel.sliders[3]
    slider.setSliderDown(True)
    for v in range(-100, 101, 25):
        slider.setValue(v)
        qtbot.wait(5)
    slider.setSliderDown(False)
    wait_idle(qtbot, window)
    assert paints[3] > 0 and all(paints[d] == 0 for d in range(8) if d != 3)
    assert panel.current_values()[3] == 1.0
    assert [v for d, v in enumerate(panel.current_values()) if d != 3] == [v for d, v in enumerate(values) if d != 3]
