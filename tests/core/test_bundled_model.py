"""The model that ships in resources/models/: it loads, validates, fits the size budget and does real work."""

from __future__ import annotations

import pytest
import torch

from core.editing.session import Session, run_to_end
from core.errors import BundleError
from core.files import bundle

BUNDLE = bundle.default_bundle_path()
pytestmark = pytest.mark.skipif(not (BUNDLE / "config.json").exists(), reason="no bundled model in this checkout")


@pytest.mark.parametrize("shipped", bundle.bundled_models(), ids=lambda m: m.name)
def test_every_bundled_model_loads_with_the_documented_stages_size_and_card(shipped):
    model = bundle.load(shipped.path)
    cfg = model.config
    assert cfg.name == shipped.name  # what a project records, and what --model and the app's menu take
    assert cfg.stage_names == ["lineart", "flat", "detail"]
    assert [s.channels for s in cfg.stages] == [1, 3, 3]
    assert cfg.resolution == 128
    assert all(cfg.regularizer_trained)
    size = sum(p.stat().st_size for p in shipped.path.iterdir() if p.is_file())
    assert size <= 40 * 2**20
    assert (shipped.path / "MODEL_CARD.md").exists()
    assert len(shipped.description) > 40  # the app's menu and `artflow info` show it


def test_bundled_models_list_the_default_first_and_resolve_by_name(tmp_path):
    shipped = bundle.bundled_models()
    assert shipped[0].path == BUNDLE
    assert len({m.name for m in shipped}) == len(shipped)
    for m in shipped:
        assert bundle.resolve_model(m.name) == m.path
    assert bundle.resolve_model(None) == BUNDLE
    assert bundle.resolve_model(str(tmp_path)) == tmp_path  # a folder that exists is taken as given
    for wrong in ("no-such-model", "x" * 5000, "a\x00b"):
        with pytest.raises(BundleError, match="not the name of a bundled model .*fluent-emoji-128"):
            bundle.resolve_model(wrong)


def _drawing() -> torch.Tensor:
    """A flat orange disc with a dark outline on white, like an emoji."""
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    r = ((yy - 64) ** 2 + (xx - 64) ** 2).sqrt()
    img = torch.ones(3, 128, 128)
    disc = r < 44
    img[0][disc], img[1][disc], img[2][disc] = 0.95, 0.45, -0.6
    ring = (r >= 44) & (r < 48)
    img[:, ring] = -0.8
    return img


def test_bundle_takes_an_artwork_apart_and_refinement_fits_it():
    torch.manual_seed(0)
    session = Session(bundle.load(BUNDLE), device="cpu")
    art = _drawing()
    session.load_artwork(art)
    lineart = session.stages[0]
    # Workflow inference yields a line drawing: mostly paper white, with dark lines where the outline is.
    assert lineart.mean() > 0.3
    assert lineart[0, 64, 18] < lineart[0, 64, 64]
    before = (session.stages[-1] - art).abs().mean()
    report = run_to_end(session.refine(steps=15))
    after = (session.stages[-1] - art).abs().mean()
    assert report.completed and after < before
    assert all(t.loss_end < t.loss_start for t in report.transitions)


def test_random_latents_give_different_colourings():
    session = Session(bundle.load(BUNDLE), device="cpu")
    session.start_from(session.infer_stages(_drawing())[0])
    outs = []
    for seed in range(3):
        session.sample_latent(0, seed=seed)
        outs.append(session.stages[1].clone())
    assert (outs[0] - outs[1]).abs().mean() > 0.01
    assert (outs[1] - outs[2]).abs().mean() > 0.01


def test_the_slider_preview_looks_like_the_full_picture():
    """The half-size picture shown while a slider is dragged is a likeness of the full one it stands for: PSNR
    above 20 dB against the full picture downsized (codes far apart score about 11 dB; benchmarks/bench_slider.py
    prints both)."""
    import torch.nn.functional as F

    from core.evaluation.metrics import psnr

    session = Session(bundle.load(BUNDLE), device="cpu")
    session.start_from(session.infer_stages(_drawing())[0])
    down = lambda x: F.interpolate(x[None], size=(64, 64), mode="area")[0]  # noqa: E731
    for seed in range(3):
        z = session.sample_latent(0, seed=seed, propagate=False)
        preview = session.preview(0, 64, latent=z)
        session.propagate(0)
        assert all(psnr(p, down(f)) > 20 for p, f in zip(preview, session.stages[1:]))


def test_refinement_steps_along_the_true_gradient_of_its_loss():
    """The refinement's first step (Adam: step size times the gradient's sign) points down the loss as measured by
    finite differences, on the session's own (channels_last) model. A wrong gradient would not fail loudly, only
    slow or stall the optimisation: a profiling script that fed this decoder a channels_last content code (and
    decoder start) after contiguous ones got gradients of the wrong sign from torch 2.13's CPU backward, forward
    identical (checked against finite differences; not reduced to one op)."""
    import torch.nn.functional as F

    from core.editing.refine import LAMBDA_P, refine_transition

    torch.manual_seed(0)
    s = Session(bundle.load(BUNDLE), device="cpu")
    s.load_artwork(_drawing())
    g, perc = s.model.generators[1], s.perceptual(1)
    with torch.no_grad():
        base = g.adain_params(s.latents[1].reshape(1, -1))
        content = g.encode_content(s.stages[1][None])
        t_feats = perc.features(s.targets[2][None])

    def loss(d: torch.Tensor) -> float:
        with torch.no_grad():
            out = g.decode(content, base + d)
            return float(F.l1_loss(out, s.targets[2][None]) + LAMBDA_P * perc.distance(perc.features(out), t_feats))

    run = refine_transition(g, perc, s.stages[1], s.targets[2], base[0], torch.zeros(base.shape[1]), None, steps=1,
                            preview_every=0)
    *_, result = run_to_end_of(run)
    step = result.delta  # = -lr * sign(gradient) where the gradient is not tiny
    h = 1e-2
    checked = 0
    for k in step.abs().argsort(descending=True)[:64].tolist():
        e = torch.zeros_like(base)
        e[0, k] = h
        fd = (loss(e) - loss(-e)) / (2 * h)
        if abs(fd) < 2e-4:  # below what float32 finite differences resolve
            continue
        checked += 1
        assert (step[k] < 0) == (fd > 0), (k, float(step[k]), fd)
    assert checked >= 8


def run_to_end_of(gen):
    """All the RefineSteps of a refine_transition generator, then its TransitionResult."""
    out = []
    try:
        while True:
            out.append(next(gen))
    except StopIteration as stop:
        out.append(stop.value)
    return out


def _smiley(size: int = 512) -> torch.Tensor:
    """A smiley as an artist inks it: face, two eyes, a closed mouth; 10 px black lines on white, (1, H, W)."""
    import numpy as np
    from PIL import Image, ImageDraw

    im = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(im)
    d.ellipse((56, 56, 456, 456), outline=0, width=10)
    d.ellipse((170, 170, 220, 250), outline=0, width=10)
    d.ellipse((292, 170, 342, 250), outline=0, width=10)
    d.arc((150, 220, 362, 390), 15, 165, fill=0, width=10)
    d.line((150, 332, 362, 332), fill=0, width=10)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1)[None]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_drawn_smiley_keeps_face_eyes_and_mouth_apart_in_the_flat(seed):
    """Issue 15's drawn smiley through the line-art model: the clean flat gives the face, each eye and the mouth
    a colour of their own (before the clean flat set shapes apart, the model's face colour swallowed the mouth)."""
    from core.fullres.pipeline import generate_fullres

    path = bundle.resolve_model("emoji-lines-128")
    session = Session(bundle.load(path), "cpu")
    latents = [session.sample_latent(i, seed=seed, propagate=False) for i in range(2)]
    _, full = generate_fullres(session, _smiley(), latents=latents)
    flat = ((full[1] + 1) * 127.5).round().long()  # (3, H, W) on 8-bit levels
    face, mouth, left_eye, right_eye = (flat[:, y, x] for y, x in ((120, 256), (355, 256), (210, 195), (210, 317)))
    for part in (mouth, left_eye, right_eye):
        assert (part - face).abs().max() >= 32, (seed, face.tolist(), part.tolist())  # 8-bit levels: visible
