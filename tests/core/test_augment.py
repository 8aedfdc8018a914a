"""Training-time augmentations: hand-drawn line art and region-wise recolouring (core/train/augment.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.data.line_art import line_art_from_flat
from core.train.augment import (
    batch_flat_regions,
    flat_regions,
    hand_drawn_lines,
    hsv_to_rgb,
    recolour_regions,
    rgb_to_hsv,
)
from core.train.data import StageBank
from tests.core.test_line_art import three_region_flat


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _stages(b: int = 4, size: int = 48) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Line art, flat and a shaded 'detail' of the 3-region test drawing, as [-1, 1] batches."""
    flat = three_region_flat(size)
    line = torch.from_numpy(line_art_from_flat(flat)).float().div(127.5).sub(1)[None, None].repeat(b, 1, 1, 1)
    f = torch.from_numpy(flat).permute(2, 0, 1).float().div(127.5).sub(1)[None].repeat(b, 1, 1, 1)
    shade = torch.linspace(0.6, 1.0, size).view(1, 1, 1, size)  # darker to the left, as shading would
    detail = ((f + 1) * shade - 1).clamp(-1, 1)
    return line, f, detail


def test_hand_drawn_lines_shapes_ranges_and_determinism():
    line, _, _ = _stages()
    a = hand_drawn_lines(line, _gen(1))
    assert a.shape == line.shape and a.dtype == line.dtype
    assert a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a, hand_drawn_lines(line, _gen(1)))  # same generator seed, same lines
    assert not torch.equal(a, hand_drawn_lines(line, _gen(2)))
    assert not torch.equal(a, line)
    # Still line art: mostly paper, ink where the clean lines were (within the wobble), paper far from them.
    ink = (line < 0).float()
    near = torch.nn.functional.max_pool2d(ink, 7, stride=1, padding=3) > 0
    assert (a > 0.9).float().mean() > 0.6
    assert (a[~near] > 0.9).all()
    assert (a[ink.bool()] < 0).float().mean() > 0.5


def test_hand_drawn_lines_probability_and_width_changes():
    line, _, _ = _stages(b=16)
    assert torch.equal(hand_drawn_lines(line, _gen(0), p=0.0), line)
    out = hand_drawn_lines(line, _gen(0), p=1.0, max_wobble_px=0.0, max_gaps=0)
    ink = (out < 0).flatten(1).sum(1).float() / (line < 0).flatten(1).sum(1)
    # Width jitter: some samples thinner, some thicker than the 2 px source lines.
    assert ink.min() < 0.9 and ink.max() > 1.1
    with pytest.raises(ValueError, match="one channel"):
        hand_drawn_lines(line.repeat(1, 3, 1, 1), _gen(0))


def test_hsv_roundtrip():
    rgb = torch.rand(2, 3, 8, 8, generator=_gen(0))
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-5, rtol=0)


def test_flat_regions_finds_the_palette():
    _, f, _ = _stages(b=1)
    region, palette = flat_regions(f[0])
    assert region.shape == f.shape[-2:] and len(palette) == 4
    colours = {tuple(round(float(v) * 255) for v in c) for c in palette}
    assert colours == {(255, 255, 255), (250, 200, 0), (0, 0, 0), (200, 0, 0)}


def test_batch_flat_regions_is_each_sample_on_its_own():
    """All samples at once (no per-sample loop waiting for a GPU) give each sample's own regions and palette:
    different palettes, antialiased in-between colours and count ties included; the palette cut keeps the most
    frequent colours, ties in the order of the packed RGB value."""
    g = _gen(7)
    flats = []
    for _ in range(4):
        colours = (torch.rand(6, 3, generator=g) * 2 - 1).round(decimals=2)
        idx = torch.randint(6, (12, 12), generator=g)
        f = colours[idx].permute(2, 0, 1)
        f = F.interpolate(f[None], size=(24, 24), mode="bilinear", align_corners=False)[0]  # antialiased edges
        flats.append(f)
    batch = torch.stack(flats)
    region, palette, valid = batch_flat_regions(batch, max_palette=5)
    for i, f in enumerate(flats):
        r1, p1, v1 = batch_flat_regions(f[None], max_palette=5)
        assert torch.equal(region[i], r1[0]) and torch.equal(palette[i], p1[0]) and torch.equal(valid[i], v1[0])
        # Reference: count colours directly.
        q = ((f + 1) * 127.5).round().clamp(0, 255).long()
        packed = ((q[0] << 16) | (q[1] << 8) | q[2]).flatten().tolist()
        counts = {}
        for c in packed:
            counts[c] = counts.get(c, 0) + 1
        expect = sorted(counts, key=lambda c: (-counts[c], c))[:5]
        rgb = [[round(float(x) * 255) for x in v] for v in palette[i][valid[i]]]
        got = [(r << 16) | (gr << 8) | b for r, gr, b in rgb]
        assert got == expect


def test_recolouring_changes_flat_and_detail_consistently_per_region():
    _, f, d = _stages(b=6)
    f2, (d2,) = recolour_regions(f, [d], _gen(5), p=1.0, change_p=1.0)
    assert f2.shape == f.shape and d2.shape == d.shape and f2.min() >= -1 and f2.max() <= 1
    torch.testing.assert_close(f2, recolour_regions(f, [d], _gen(5), p=1.0, change_p=1.0)[0])
    region, _ = flat_regions(f[0])
    face, mouth, paper = region[24, 24], region[32, 20], region[0, 0]
    for i in range(len(f)):
        # The flat stays flat: one colour per region.
        for r in region.unique():
            pix = f2[i][:, region == r]
            assert (pix - pix[:, :1]).abs().max() < 1e-4
        # The paper keeps its colour; the coloured regions change, with different changes per region.
        assert torch.allclose(f2[i][:, region == paper], f[i][:, region == paper])
        assert not torch.allclose(f2[i][:, 24, 24], f[i][:, 24, 24], atol=0.02)
        # The detail's pixels got the same hue rotation as the flat's region they lie in.
        for r in (face, mouth):
            h_flat = rgb_to_hsv((f2[i] + 1) / 2)[0][region == r] - rgb_to_hsv((f[i] + 1) / 2)[0][region == r]
            h_det = rgb_to_hsv((d2[i] + 1) / 2)[0][region == r] - rgb_to_hsv((d[i] + 1) / 2)[0][region == r]
            assert torch.allclose(torch.remainder(h_flat - h_det + 0.5, 1.0) - 0.5, torch.zeros(1), atol=2e-2)
    # Different samples of one batch get different colourings (several true colourings of one drawing).
    assert not torch.allclose(f2[0], f2[1], atol=0.02)


def test_recolouring_probability_zero_is_identity():
    _, f, d = _stages(b=3)
    f2, (d2,) = recolour_regions(f, [d], _gen(0), p=0.0)
    assert torch.equal(f2, f) and torch.equal(d2, d)


def test_stage_bank_batch_applies_both_and_stays_deterministic():
    line, f, d = _stages(b=4)
    to_u8 = lambda x: ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # noqa: E731
    bank = StageBank([to_u8(line), to_u8(f), to_u8(d)], [f"s{i}" for i in range(4)])
    idx = torch.arange(4)
    cpu = torch.device("cpu")
    plain = bank.batch(idx, _gen(3), True, cpu)
    both = bank.batch(idx, _gen(3), True, cpu, recolour=1.0, hand_drawn=1.0)
    again = bank.batch(idx, _gen(3), True, cpu, recolour=1.0, hand_drawn=1.0)
    for a, b in zip(both, again, strict=True):
        torch.testing.assert_close(a, b)
    assert [x.shape for x in both] == [x.shape for x in plain]
    assert not torch.allclose(both[0], plain[0]) and not torch.allclose(both[1], plain[1])
    clean = bank.batch(idx, None, False, cpu, recolour=1.0, hand_drawn=1.0)  # no augment: untouched data
    torch.testing.assert_close(clean[1], f, atol=1 / 127.5, rtol=0)


def test_trainer_keeps_inference_targets_clean():
    """Workflow inference learns the clean line art; generation sees hand-drawn lines."""
    import dataclasses

    from core.train import trainer as trainer_mod

    seen: dict[str, float] = {}

    class Spy:
        def __len__(self):
            return 4

        def batch(self, idx, gen, augment, device, recolour=0.0, hand_drawn=0.0):
            seen[phase] = hand_drawn
            return []

    cfg = dataclasses.replace(trainer_mod.TrainConfig(), hand_drawn=0.7, recolour=0.3)
    t = trainer_mod.Trainer.__new__(trainer_mod.Trainer)
    t.cfg, t.data, t.rank, t.world, t.device = cfg, Spy(), 0, 1, torch.device("cpu")
    for phase in ("inference", "inference-joint", "generation", "generation-joint", "regularizer"):
        t.batch(phase, 0)
    assert seen == {"inference": 0.0, "inference-joint": 0.0, "generation": 0.7, "generation-joint": 0.7,
                    "regularizer": 0.7}


def test_config_rejects_bad_probabilities():
    from core.errors import ArtflowError
    from core.train.config import TrainConfig

    with pytest.raises(ArtflowError, match="probabilit"):
        TrainConfig(recolour=1.5)
    with pytest.raises(ArtflowError, match="probabilit"):
        TrainConfig(hand_drawn=-0.1)

