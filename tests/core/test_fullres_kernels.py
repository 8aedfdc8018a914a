"""The compiled full-resolution passes (core/fullres/kernels.py) on images large enough to be split over the
cores: the split covers every row once, and split and unsplit runs give the same pixels, equal to the float or
numpy reference each replaced."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.files.imageio import tensor_to_uint8, uint8_to_tensor
from core.fullres import kernels
from core.fullres.flats import region_medians
from core.fullres.guided import apply_change, transfer_change
from core.fullres.proxy import ProxyMap, proxy_delta_u8, proxy_of_u8, proxy_with
from tests.core.test_fullres_fast import picture, smooth_change

W, H = 700, 520  # 364 k pixels: more than one part of kernels.MIN_PIXELS_PER_TASK


@pytest.fixture(params=[1, 3], ids=["one part", "three parts"])
def workers(request, monkeypatch):
    monkeypatch.setattr(kernels, "WORKERS", request.param)
    return request.param


def test_split_covers_every_item_once_in_order(workers):
    seen = []
    out = kernels.split(lambda a, b: seen.append((a, b)) or (a, b), 1000, np.full(1000, 1000.0))
    assert sorted(seen) == out  # results come back in the order of the parts
    assert out[0][0] == 0 and out[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(out, out[1:]))
    assert len(out) == workers
    assert kernels.split(lambda a, b: (a, b), 0, np.zeros(0)) == [(0, 0)]


@pytest.mark.parametrize("channels, guide_channels", [(3, 3), (1, 1)])
def test_apply_change_split_over_cores_matches_the_float_transfer(workers, channels, guide_channels):
    pm = ProxyMap(W, H, 64)
    base = picture(H, W, channels, seed=5)
    guide = picture(H, W, guide_channels, seed=6)
    change = smooth_change(channels, 64, seed=7)
    mask = torch.zeros(H, W)
    mask[40:400, 100:650] = 0.5
    for m in (None, mask):
        q = transfer_change(change, uint8_to_tensor(guide), pm)
        expected = tensor_to_uint8((uint8_to_tensor(base) + (q if m is None else m * q)).clamp(-1, 1))
        got = apply_change(base, change, guide, pm, m)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
        if m is not None:
            outside = np.ones((H, W), bool)
            outside[40:400, 100:650] = False
            assert np.array_equal(got[outside], base[outside])


def test_apply_change_is_the_same_however_split(monkeypatch):
    pm = ProxyMap(W, H, 64)
    base, change = picture(H, W, 3, seed=8), smooth_change(3, 64, seed=9)
    results = []
    for n in (1, 2, 4):
        monkeypatch.setattr(kernels, "WORKERS", n)
        results.append(apply_change(base, change, base, pm))
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_region_medians_match_numpy(workers):
    rng = np.random.default_rng(3)
    labels = (rng.integers(0, 4, (H // 20 + 1, W // 20 + 1)).repeat(20, 0).repeat(20, 1)[:H, :W]
              + 4 * (np.arange(W) >= W // 2)[None]).astype(np.int32) + 1
    count = int(labels.max())
    colours = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    where = rng.random((H, W)) < 0.7
    got = region_medians(labels, count, colours, where)
    for lab in range(1, count + 1):
        sel = (labels == lab) & where
        for c in range(3):
            v = np.sort(colours[..., c][sel])
            assert got[lab, c] == v[(v.size - 1) // 2]  # the lower median


@pytest.mark.parametrize("w, h, r", [(W, H, 64), (H, W, 128), (W, H, 96)])
def test_bin_sums_split_over_cores_match_proxy_with(workers, w, h, r):
    pm = ProxyMap(w, h, r)
    img = picture(h, w, 3, seed=w)
    torch.testing.assert_close(proxy_of_u8(img, pm), proxy_with(uint8_to_tensor(img), pm), atol=1e-5, rtol=0)
    new = img.copy()
    new[100:300, 50:400] = 255 - new[100:300, 50:400]
    torch.testing.assert_close(proxy_delta_u8(new, img, (100, 300, 50, 400), pm),
                               proxy_of_u8(new, pm) - proxy_of_u8(img, pm), atol=1e-5, rtol=0)


def test_label4_numbers_components_like_scipy():
    from scipy import ndimage

    rng = np.random.default_rng(11)
    four = ndimage.generate_binary_structure(2, 1)
    masks = [rng.random(rng.integers(1, 50, 2)) < rng.random() for _ in range(150)]
    big = np.zeros((H, W), bool)
    for _ in range(60):  # rings, bars and blobs: splits, holes, components met late in the raster order
        y, x, r = rng.integers(0, H), rng.integers(0, W), rng.integers(3, 60)
        yy, xx = np.ogrid[:H, :W]
        big ^= (yy - y) ** 2 + (xx - x) ** 2 < r * r
    masks += [big, big[::-1], big.T, big[5:, 7:], np.zeros((3, 4), bool), np.ones((3, 4), bool)]
    for m in masks:
        expected, n = ndimage.label(m, structure=four)
        got, count = kernels.label4(m)
        assert count == n and np.array_equal(got, expected)
        assert got.dtype == np.int32
