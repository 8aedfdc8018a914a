"""core/fullres/artwork.py (the app's full-res artwork with layers) and flats.fill_region (the gap-closing fill)."""

from __future__ import annotations

import numpy as np
import torch

from core.editing.session import compose
from core.fullres.artwork import composite, layer_to_tensors, proxy_layer, tensors_to_layer
from core.fullres.flats import fill_region
from core.fullres.proxy import ProxyMap


def test_fill_region_stops_at_a_line_with_a_small_gap_and_leaks_through_a_wide_one():
    wall = np.zeros((40, 60), bool)
    wall[:, 30] = True
    wall[18:20, 30] = False  # a 2 px gap
    region = fill_region(wall, 5, 5)
    assert region[:, :30].sum() > 0.9 * 40 * 30 and not region[:, 33:].any()
    wall[15:25, 30] = False  # a 10 px gap: the fill goes through
    assert fill_region(wall, 5, 5)[:, 40:].all()
    assert not fill_region(wall, 30, 0).any()  # a seed on the wall fills nothing


def test_composite_and_the_layer_proxy_match_the_sessions_compose():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    layer = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    colour, alpha = layer_to_tensors(layer, 3)
    base_t = torch.from_numpy(base).permute(2, 0, 1).float() / 127.5 - 1
    expected = ((compose(base_t, (colour, alpha)) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(composite(base, layer).astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(tensors_to_layer((colour, alpha)), layer)
    # The proxy of an artwork of the model's own size is the layer itself; of a wide one, a padded square.
    c, a = proxy_layer(layer, 3, ProxyMap(32, 32, 32))
    assert torch.equal(c, colour) and torch.equal(a, alpha)
    wide = np.zeros((16, 64, 4), np.uint8)
    wide[..., 3] = 255
    c, a = proxy_layer(wide, 1, ProxyMap(64, 16, 32))
    assert a.shape == (1, 32, 32) and float(a[0, 0, 0]) == 0 and float(a[0, 16, 16]) == 1
    assert float(c[0, 16, 16]) == -1  # black paint
