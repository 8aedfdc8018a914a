"""The learned recolour (core.nn.recolour, core.train.recolour) and its use in region-bounded edits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import BundleError
from core.files import bundle
from core.fullres.proxy import ProxyMap, proxy_of_u8
from core.fullres.region_change import follow_colour_change
from core.nn.recolour import RECOLOUR_FILE, LearnedRecolour, multiply_recolour
from core.train.recolour import RecolourNet, RecolourOptions, fit_recolour, tone_pair_samples
from tests.core.engine_util import tiny_model
from tests.core.test_region_change import disc_scene

BUNDLED = bundle.default_bundle_path() / RECOLOUR_FILE


def shifting_recolour(shift=(0.1, 0.0, 0.0), seen=((250, 200, 60, 120, 70, 40),)) -> LearnedRecolour:
    """A recolour whose network adds a constant to the multiply recolour: its effect is known exactly."""
    h = 4
    w = {"f.0.weight": np.zeros((h, 12)), "f.0.bias": np.zeros(h), "f.2.weight": np.zeros((h, h)),
         "f.2.bias": np.zeros(h), "f.4.weight": np.zeros((3, h)), "f.4.bias": np.array(shift)}
    return LearnedRecolour({k: v.astype(np.float32) for k, v in w.items()}, np.array(seen, np.float32))


def test_numpy_inference_is_the_torch_network():
    torch.manual_seed(0)
    net = RecolourNet(16)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    learned = LearnedRecolour({k: v.detach().numpy() for k, v in net.state_dict().items()},
                              np.zeros((1, 6), np.float32))
    x, o, n = (torch.rand(500, 3) for _ in range(3))
    o[:50, 0] = 0.01  # dark channels: shifted, not divided
    want = net(x, o, n).detach().numpy()
    assert np.abs(learned.predict(x.numpy(), o.numpy(), n.numpy()) - want).max() < 1e-5


def test_a_zero_network_is_the_multiply_recolour_and_knows_only_its_pairs():
    zero = shifting_recolour((0.0, 0.0, 0.0))
    x, o, n = (np.random.default_rng(1).random((100, 3)).astype(np.float32) for _ in range(3))
    assert np.array_equal(zero.predict(x, o, n), multiply_recolour(x, o, n))
    old = np.array([[250, 200, 60], [240, 190, 70], [250, 200, 60]], np.uint8)
    new = np.array([[120, 70, 40], [110, 80, 30], [40, 90, 250]], np.uint8)  # the last: yellow to blue
    assert zero.knows(old, new).tolist() == [True, True, False]


def test_file_round_trip_and_broken_files(tmp_path):
    learned = shifting_recolour()
    path = tmp_path / RECOLOUR_FILE
    learned.to_file(path)
    back = LearnedRecolour.from_file(path)
    for (w, b), (w2, b2) in zip(learned.layers, back.layers, strict=True):
        assert np.array_equal(w, w2) and np.array_equal(b, b2)
    assert np.array_equal(back.seen_pairs, learned.seen_pairs)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(BundleError, match="not a readable safetensors file"):
        LearnedRecolour.from_file(path)
    from safetensors.numpy import save_file

    bad = {k: np.ascontiguousarray(a) for k, a in (("f.0.weight", learned.layers[0][0]),)}
    save_file(bad, str(path))
    with pytest.raises(BundleError, match="not a recolour network"):
        LearnedRecolour.from_file(path)
    learned.layers[2] = (learned.layers[2][0], np.array([np.nan, 0, 0], np.float32))
    learned.to_file(path)
    with pytest.raises(BundleError, match="finite"):
        LearnedRecolour.from_file(path)


def test_a_known_recolour_follows_the_learned_network_and_only_where_the_flat_changed():
    disc, flat, new_flat, detail, _ = disc_scene()
    pm = ProxyMap(128, 96, 32)
    p = proxy_of_u8(detail, pm)
    learned = follow_colour_change(detail, flat, new_flat, p, p, pm, recolour=shifting_recolour())
    assert np.array_equal(learned[~disc], detail[~disc])
    # The network's colours: the multiply recolour plus 0.1 on red (no clipping in this scene), to a level.
    x, o, n = (a[disc].astype(np.float32) / 255 for a in (detail, flat, new_flat))
    want = np.rint((multiply_recolour(x, o, n) + [0.1, 0.0, 0.0]) * 255)
    assert np.abs(learned[disc] - want).max() <= 1
    # A pair it never saw (the disc filled blue) keeps the no-model path, exactly.
    blue = new_flat.copy()
    blue[disc] = (40, 90, 250)
    assert np.array_equal(follow_colour_change(detail, flat, blue, p, p, pm, recolour=shifting_recolour()),
                          follow_colour_change(detail, flat, blue, p, p, pm))


def toy_tones(count=16, size=24, seed=0):
    """Drawings in three 'tones' whose detail is a non-linear function of the flat: light pixels keep their hue
    (which the multiply recolour gets wrong), so a learned recolour can beat it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = {}
    for i in range(count):
        disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.35 * size) ** 2
        shade = (0.4 + 0.6 * xx / size)[..., None] + rng.random() * 0.1
        tones = []
        for colour in ((250, 200, 60), (200, 140, 100), (110, 70, 50)):
            f = np.full((size, size, 3), 255.0)
            f[disc] = colour
            d = np.where(disc[..., None], np.clip(f * shade + 40 * (shade > 0.9), 0, 255), 255)
            tones.append(np.stack([f, d]).astype(np.uint8))
        out[f"family-{i:02d}"] = np.stack(tones)
    return out


def test_fit_recolour_beats_multiply_on_held_out_families():
    drawings = toy_tones()
    samples, seen = tone_pair_samples(drawings, 200, np.random.default_rng(0))
    assert samples.shape[1] == 12 and 0 <= samples.min() and samples.max() <= 1
    assert len(seen) >= 3 and seen.dtype == np.uint8
    learned, figures = fit_recolour(drawings, RecolourOptions(steps=300, batch=512, hidden=16, noise=0.0),
                                    log=lambda line: None)
    assert figures["validation_families"] == 2
    assert figures["validation_psnr_learned"] > figures["validation_psnr_multiply"] + 3


def test_a_bundle_keeps_its_recolour_and_refuses_a_broken_one(tmp_path):
    model = tiny_model(seed=0)
    model.recolour = shifting_recolour()
    path = bundle.save(model, tmp_path / "b")
    loaded = bundle.load(path)
    assert loaded.recolour is not None and np.array_equal(loaded.recolour.seen_pairs, model.recolour.seen_pairs)
    assert not any(k.startswith("recolour") for k in loaded.state_dict())  # never in model.safetensors
    (path / RECOLOUR_FILE).write_bytes(b"not safetensors")
    with pytest.raises(BundleError, match=RECOLOUR_FILE):
        bundle.load(path)
    (path / RECOLOUR_FILE).unlink()
    assert bundle.load(path).recolour is None


def test_the_bundled_recolour_shades_a_dark_skin_darker_than_multiply_would():
    """The shipped network, on the Fluent yellow -> dark skin flat pair: a light highlight of the yellow face
    (near white) becomes a dark-skin highlight, not the purple-blue that multiplying by the flats' ratio gives."""
    learned = LearnedRecolour.from_file(BUNDLED)
    old_flat, new_flat = np.array([[255, 200, 61]], np.uint8), np.array([[87, 55, 57]], np.uint8)
    assert learned.knows(old_flat, new_flat).all()
    highlight = np.array([[1.0, 0.95, 0.8]], np.float32)
    y = learned.predict(highlight, old_flat / 255.0, new_flat / 255.0)[0]
    m = multiply_recolour(highlight, old_flat / 255.0, new_flat / 255.0)[0]
    assert m[2] > m[0]  # multiply: bluer than red
    assert y[0] >= y[2]  # learned: a warm (brown) highlight


class KnowsEverything(LearnedRecolour):
    def knows(self, old, new):
        return np.ones(len(old), bool)


def _edit(recolour, stage, edit):
    from core.editing.session import Session
    from core.fullres.pipeline import apply_edit_fullres, generate_fullres

    model = tiny_model(seed=0)
    model.recolour = recolour
    line = np.ones((48, 80), np.float32)
    line[8:40, 10:12] = line[8:40, 40:42] = line[8:10, 10:42] = line[38:40, 10:42] = -1
    session = Session(model, "cpu")
    pm, full = generate_fullres(session, torch.from_numpy(line)[None])
    new, _ = apply_edit_fullres(session, full, pm, stage, edit(full[stage].clone()))
    return full, new


def test_the_learned_recolour_moves_fills_but_not_the_flats_a_line_change_made():
    layers = shifting_recolour().layers
    shift = KnowsEverything({f"{k}.{p}": a for k, (w, b) in zip(("f.0", "f.2", "f.4"), layers, strict=True)
                             for p, a in (("weight", w), ("bias", b))}, np.zeros((1, 6), np.float32))

    def fill(flat):
        flat[:, 14:30, 16:36] = torch.tensor([-0.8, 0.2, 0.6])[:, None, None]
        return flat

    def stroke(line):
        line[:, 20:22, 12:40] = -1  # a line across the box: two regions where there was one
        return line

    full, plain = _edit(None, 1, fill)
    _, learned = _edit(shift, 1, fill)
    changed = (plain[2] != full[2]).any(0)
    assert torch.equal(learned[2][:, ~changed], full[2][:, ~changed])  # still only where the flat changed
    # There the network's colours: the multiply recolour of the old detail plus 0.1 on red, to a level or two.
    from core.files.imageio import tensor_to_uint8

    x, o, n = (tensor_to_uint8(t).reshape(-1, 3)[changed.flatten().numpy()].astype(np.float32) / 255
               for t in (full[2], full[1], fill(full[1].clone())))
    want = np.clip(multiply_recolour(x, o, n) + [0.1, 0.0, 0.0], 0, 1) * 255
    got = tensor_to_uint8(learned[2]).reshape(-1, 3)[changed.flatten().numpy()]
    assert np.abs(got - want).max() <= 2 and not torch.equal(learned[2], plain[2])
    _, plain = _edit(None, 0, stroke)
    _, learned = _edit(shift, 0, stroke)
    assert torch.equal(learned[2], plain[2]) and not torch.equal(plain[2], full[2])
