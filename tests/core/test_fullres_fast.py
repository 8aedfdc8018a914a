"""The fast full-res paths (8-bit images, work limited to where a change shows) agree with the float paths they
replaced: core.fullres.guided.apply_change, proxy.proxy_of_u8 / proxy_of_array, artwork.proxy_layer and
LayeredArtwork.follow / its keep mask, flats.near / clean_flat_u8 / fill_region. Non-square images throughout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from core.editing.session import Session
from core.files.imageio import tensor_to_uint8, uint8_to_tensor
from core.fullres.artwork import LayeredArtwork, proxy_layer, to_u8
from core.fullres.flats import clean_flat, clean_flat_u8, fill_region, find_regions, near
from core.fullres.guided import apply_change, transfer_change
from core.fullres.kinds import stage_kinds
from core.fullres.masks import keep_mask_fullres
from core.fullres.pipeline import follow_stage, generate_fullres, line_before
from core.fullres.proxy import ProxyMap, proxy_of_u8, proxy_with
from tests.core.engine_util import single_thread, tiny_model  # noqa: F401


def picture(h, w, channels, seed):
    """uint8 (H, W[, C]): flat patches with hard edges and some noise, like a drawing."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (channels, h // 8 + 1, w // 8 + 1)).repeat(8, 1).repeat(8, 2)[:, :h, :w]
    a = np.clip(blocks + rng.integers(-6, 7, blocks.shape), 0, 255).astype(np.uint8)
    return a[0] if channels == 1 else np.ascontiguousarray(a.transpose(1, 2, 0))


def smooth_change(channels, r, seed, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    return F.avg_pool2d(torch.randn(1, channels, r, r, generator=g), 5, 1, 2)[0] * scale


@pytest.mark.parametrize("w, h, r", [(200, 120, 32), (90, 170, 32), (256, 192, 32), (64, 64, 32)])
def test_proxy_of_u8_matches_proxy_with(w, h, r):
    pm = ProxyMap(w, h, r)
    for channels in (1, 3):
        img = picture(h, w, channels, seed=w + channels)
        torch.testing.assert_close(proxy_of_u8(img, pm), proxy_with(uint8_to_tensor(img), pm), atol=1e-5, rtol=0)


@pytest.mark.parametrize("w, h", [(200, 120), (90, 170), (256, 192)])
@pytest.mark.parametrize("channels, guide_channels", [(3, 3), (1, 1), (3, 1)])
def test_apply_change_agrees_with_the_float_transfer(w, h, channels, guide_channels):
    pm = ProxyMap(w, h, 32)
    base = picture(h, w, channels, seed=1)
    guide = picture(h, w, guide_channels, seed=2)
    change = smooth_change(channels, 32, seed=3)
    change[:, :12] *= 0.01  # a part too small to move any pixel: skipped, and exactly the base there
    mask = torch.zeros(h, w)
    mask[20:70, 30:80] = torch.rand(50, 50, generator=torch.Generator().manual_seed(4))
    for m in (None, mask):
        full = uint8_to_tensor(base)
        q = transfer_change(change, uint8_to_tensor(guide), pm)
        expected = tensor_to_uint8((full + (q if m is None else m * q)).clamp(-1, 1))
        got = apply_change(base, change, guide, pm, m)
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # 1/255
        assert got.shape == base.shape and got.dtype == np.uint8
    assert np.array_equal(apply_change(base, torch.zeros_like(change), guide, pm), base)
    # Rows where the change cannot reach half a level are the base itself.
    far = apply_change(base, change * torch.tensor([0.0] * 31 + [1.0])[None, :, None], guide, pm)
    assert np.array_equal(far[: h // 3], base[: h // 3])


def old_proxy_layer(layer, channels, pm):
    """The layer proxy as it was computed before (full-size padded squares per plane)."""
    alpha = torch.from_numpy(layer[..., 3].astype(np.float32) / 255.0)[None]
    p_alpha = proxy_with(alpha, pm, paper=0.0).clamp_(0, 1)
    rgb = layer[..., :3].astype(np.float32)
    colour = np.rint(rgb.mean(axis=2)) if channels == 1 else rgb
    planes = [colour] if channels == 1 else [colour[..., c] for c in range(3)]
    out = [proxy_with(torch.from_numpy(p / 127.5 - 1.0)[None] * alpha, pm, paper=0.0)[0] for p in planes]
    p_colour = torch.stack(out) / p_alpha.clamp(min=1e-6)
    return torch.where(p_alpha > 1e-6, p_colour, torch.ones_like(p_colour)).clamp_(-1, 1), p_alpha


@pytest.mark.parametrize("w, h", [(200, 120), (90, 170)])
def test_layer_proxy_matches_the_padded_square_version(w, h):
    pm = ProxyMap(w, h, 32)
    layer = np.zeros((h, w, 4), np.uint8)
    layer[40:60, 20:70] = (200, 30, 90, 255)
    layer[50:52, 60:88] = (10, 10, 10, 128)
    for channels in (1, 3):
        c, a = proxy_layer(layer, channels, pm)
        oc, oa = old_proxy_layer(layer, channels, pm)
        torch.testing.assert_close(a, oa, atol=1e-5, rtol=0)
        assert (c - oc).abs().max() <= 2 / 255


@pytest.mark.parametrize("radius", [1, 1.5, 2, 3, 4, 4.5, 7.2, 30])
def test_near_is_the_distance_transforms_threshold(radius):
    rng = np.random.default_rng(int(radius * 10))
    mask = rng.random((61, 97)) > 0.995
    mask[0, 5] = mask[60, 96] = True  # on the border
    assert np.array_equal(near(mask, radius), ndimage.distance_transform_edt(~mask) <= radius)
    assert not near(np.zeros((5, 7), bool), radius).any()


def old_fill_region(wall, x, y, close_gap=2):
    """fill_region's rule computed over the whole image (the reference)."""
    four = ndimage.generate_binary_structure(2, 1)
    out = np.zeros(wall.shape, bool)
    if wall[y, x]:
        return out
    labels, _ = ndimage.label(~wall, structure=four)
    comp = labels == labels[y, x]
    core = ndimage.distance_transform_edt(comp) > close_gap
    if not core.any():
        return comp
    if not core[y, x]:
        dist, idx = ndimage.distance_transform_edt(~core, return_indices=True)
        if dist[y, x] > close_gap + 1:
            return comp
        y, x = int(idx[0, y, x]), int(idx[1, y, x])
    core_labels, _ = ndimage.label(core, structure=four)
    return (ndimage.distance_transform_edt(core_labels != core_labels[y, x]) <= close_gap + 1) & comp


def test_fill_in_a_growing_window_equals_the_whole_image_rule(monkeypatch):
    import core.fullres.flats as flats

    monkeypatch.setattr(flats, "FILL_WINDOW", 16)  # small windows: several growth steps on a small image
    rng = np.random.default_rng(5)
    wall = np.zeros((150, 230), bool)
    for _ in range(14):  # random boxes and strokes, some with gaps
        y0, x0 = rng.integers(0, 140), rng.integers(0, 220)
        wall[y0:y0 + rng.integers(2, 60), x0:x0 + 2] = True
        wall[y0:y0 + 2, x0:x0 + rng.integers(2, 90)] = True
    wall[70:74, 100:104] = True
    seeds = [(int(x), int(y)) for x, y in zip(rng.integers(0, 230, 25), rng.integers(0, 150, 25), strict=True)]
    seeds += [(0, 0), (229, 149), (102, 71)]
    for x, y in seeds:
        expected = old_fill_region(wall, x, y)
        assert np.array_equal(fill_region(wall, x, y), expected), (x, y)
        assert np.array_equal(fill_region(lambda y0, y1, x0, x1: wall[y0:y1, x0:x1], x, y, shape=wall.shape),
                              expected)


def test_clean_flat_u8_is_clean_flat_on_8_bit_levels():
    line = picture(90, 140, 1, seed=6)
    line = np.where(line < 60, 0, 255).astype(np.uint8)
    colours = picture(90, 140, 3, seed=7)
    regions = find_regions(uint8_to_tensor(line))
    assert find_regions(line).count == regions.count
    assert np.array_equal(find_regions(line).labels, regions.labels)
    for lines in ("split", "ink"):
        expected = to_u8(clean_flat(uint8_to_tensor(line), uint8_to_tensor(colours), lines=lines, regions=regions))
        assert np.array_equal(clean_flat_u8(regions, colours, lines, line), expected)


# ----- LayeredArtwork.follow against the float pipeline it replaced -----

def old_follow(art, session, old_bases, start, mask=None, proxy_mask=None, lines="split"):
    """LayeredArtwork.follow as it was: float copies of every full-res stage and pipeline.follow_stage."""
    kinds = stage_kinds(session.config.stages)
    for j in range(start + 1, session.num_stages):
        change = session.bases[j] - old_bases[j]
        line = line_before(kinds, j, since=start)
        if line is None and not torch.any(change):
            continue
        full_j = uint8_to_tensor(art.bases[j])
        line_art = None if line is None else uint8_to_tensor(art.stage(line))
        art.bases[j] = to_u8(follow_stage(full_j, change, full_j, art.pm, line_art, mask, lines))
        if line is not None and j + 1 < session.num_stages:
            session.set_stage(j, proxy_with(uint8_to_tensor(art.bases[j]), art.pm), propagate=True,
                              keep_mask=proxy_mask)


def line_art(h, w):
    a = np.ones((h, w), np.float32)
    a[8:40, 10:12] = a[8:40, 40:42] = a[8:10, 10:42] = a[38:40, 10:42] = -1
    a[20:22, 50:75] = -1
    return torch.from_numpy(a)[None]


@pytest.mark.parametrize("stage, colour, lines", [(1, (200, 40, 40, 255), "split"), (0, (30, 30, 30, 255), "split"),
                                                  (0, (30, 30, 30, 255), "ink")])
@pytest.mark.parametrize("keep", [False, True])
def test_follow_agrees_with_the_float_pipeline(stage, colour, lines, keep):
    model = tiny_model(seed=0)
    h, w = 60, 100
    arts, sessions = [], []
    for _ in range(2):
        session = Session(model, "cpu")
        pm, full = generate_fullres(session, line_art(h, w))
        arts.append(LayeredArtwork.from_stages(pm, full))
        sessions.append(session)
    layer = np.zeros((h, w, 4), np.uint8)
    layer[24:30, 44:80] = colour
    done = []
    before = [np.asarray(b, np.int16) for b in arts[0].bases]
    for i, (art, session) in enumerate(zip(arts, sessions, strict=True)):
        old_stage = art.stage_tensor(stage)
        old = [b.clone() for b in session.bases]
        proxy_mask, full_mask = art.set_layers(session, {stage: layer}, keep)
        if keep:  # the keep mask from the layer's changed box is the one from the whole stages
            assert torch.equal(full_mask, keep_mask_fullres(old_stage, art.stage_tensor(stage)))
        session.propagate(stage, keep_mask=proxy_mask)
        if i == 0:
            art.follow(session, old, stage, full_mask, proxy_mask, lines=lines)
            for j in range(session.num_stages):  # the cached proxies of the bases followed them
                torch.testing.assert_close(art.base_proxy(j), proxy_of_u8(art.bases[j], art.pm), atol=1e-5, rtol=0)
        else:
            old_follow(art, session, old, stage, full_mask, proxy_mask, lines)
        done.append([np.asarray(b, np.int16) for b in art.bases])
    for new, ref in zip(*done, strict=True):
        assert np.abs(new - ref).max() <= 1  # 1/255
    assert np.abs(done[0][-1] - before[-1]).max() > 2  # the edit did change the last stage


@pytest.mark.parametrize("keep", [False, True])
def test_an_artwork_of_the_models_size_gets_clean_flats_in_the_session(keep):
    """At the model's own size the session's stages are the artwork: a line-art edit makes the flat a clean flat of
    the line art as seen (only within the keep mask, with keep_unedited), and the detail is generated from it."""
    model = tiny_model(seed=0)
    res = model.config.resolution
    session = Session(model, "cpu")
    session.start_from(torch.ones(1, res, res))
    art = LayeredArtwork.of_session(session)
    assert art.identity
    layer = np.zeros((res, res, 4), np.uint8)
    layer[4:res - 4, 4:6] = layer[4:res - 4, res - 6:res - 4] = (0, 0, 0, 255)  # a closed box
    layer[4:6, 4:res - 4] = layer[res - 6:res - 4, 4:res - 4] = (0, 0, 0, 255)
    old = [b.clone() for b in session.bases]
    proxy_mask, _ = art.set_layers(session, {0: layer}, keep)
    session.propagate(0, keep_mask=proxy_mask)
    raw_flat = session.bases[1].clone()
    art.follow(session, old, 0, None, proxy_mask)
    expected = uint8_to_tensor(clean_flat_u8(find_regions(art.stage_tensor(0)), to_u8(raw_flat)))
    if keep:
        expected = raw_flat + proxy_mask * (expected - raw_flat)
        assert (proxy_mask < 1).any()  # some of the flat is kept as it was
    torch.testing.assert_close(session.bases[1], expected, atol=1e-6, rtol=0)
    assert np.array_equal(art.bases[1], to_u8(session.bases[1]))
    with torch.no_grad():  # the detail is the model's picture of that flat
        g = model.generators[1]
        params = g.adain_params(session.latents[1].reshape(1, -1)) + session.deltas[1].reshape(1, -1)
        detail = g.decode(g.encode_content(session.stages[1][None]), params)[0]
    if not keep:
        torch.testing.assert_close(session.bases[2], detail, atol=2e-4, rtol=0)


def test_regenerate_at_the_models_size_makes_the_later_stages_once(monkeypatch):
    """LayeredArtwork.regenerate at the model's size with clean flats: the flat is generated, cleaned, and the
    detail generated from the clean flat, each stage once; the result is the two-pass one (propagate, follow)."""
    model = tiny_model(seed=0)
    res = model.config.resolution
    layer = np.zeros((res, res, 4), np.uint8)
    layer[4:res - 4, 4:6] = layer[4:res - 4, res - 6:res - 4] = (0, 0, 0, 255)
    layer[4:6, 4:res - 4] = layer[res - 6:res - 4, 4:res - 4] = (0, 0, 0, 255)
    results = []
    for one_pass in (True, False):
        session = Session(model, "cpu")
        session.start_from(torch.ones(1, res, res))
        art = LayeredArtwork.of_session(session)
        art.set_layers(session, {0: layer})
        made = []
        real_generate = session.generate
        monkeypatch.setattr(session, "generate",
                            lambda i, made=made, real=real_generate, **kw: made.append(i) or real(i, **kw))
        if one_pass:
            changed = art.regenerate(session, 0)
        else:
            old = [b.clone() for b in session.bases]
            changed = session.propagate(0) + art.follow(session, old, 0)
        assert sorted(set(changed)) == [1, 2]
        assert made == ([0, 1] if one_pass else [0, 1, 1])  # transition 1 (flat -> detail) once, not twice
        if one_pass:  # made again, the same pictures: still reported as made (the app clears its previews by it)
            assert sorted(set(art.regenerate(session, 0))) == [1, 2]
        results.append([b.clone() for b in session.bases] + [np.array(b) for b in art.bases])
    for a, b in zip(*results, strict=True):
        assert (torch.equal(a, b) if isinstance(a, torch.Tensor) else np.array_equal(a, b))


def old_find_regions(line, close_gap=2, factor=2.5):
    """find_regions as it was: distance transforms over the whole image (the reference)."""
    four = ndimage.generate_binary_structure(2, 1)
    own = ndimage.distance_transform_edt(~line) > close_gap
    labels, count = ndimage.label(own, structure=four)
    depth = ndimage.distance_transform_edt(line)
    ridge = line & (depth >= ndimage.maximum_filter(depth, size=3))
    cut = factor * max(float(np.median(depth[ridge])), 1.0)
    core = depth > cut
    if core.any():
        solid = (ndimage.distance_transform_edt(~core) <= cut) & line
        solid_labels, n_solid = ndimage.label(solid, structure=four)
        labels = np.where(solid_labels > 0, solid_labels + count, labels)
        own = own | (solid_labels > 0)
        count += n_solid
    idx = ndimage.distance_transform_edt(~own, return_distances=False, return_indices=True)
    return labels[idx[0], idx[1]], count, own


@pytest.mark.parametrize("seed", range(4))
def test_find_regions_in_boxes_equals_the_whole_image_rule(seed):
    rng = np.random.default_rng(seed)
    h, w = 110, 170
    line = np.zeros((h, w), bool)
    for _ in range(10):  # strokes of 1..4 px, some touching the border, and a solid blob
        y0, x0 = rng.integers(-5, h), rng.integers(-5, w)
        t = rng.integers(1, 5)
        line[max(0, y0):y0 + rng.integers(3, 80), max(0, x0):max(0, x0) + t] = True
        line[max(0, y0):max(0, y0) + t, max(0, x0):x0 + rng.integers(3, 120)] = True
    line[40:70, 60:95] = True
    if seed % 2:  # ink only in the middle: the boxes are smaller than the image
        line[:15] = line[-15:] = False
        line[:, :20] = line[:, -20:] = False
    art = np.where(line, 0, 255).astype(np.uint8)
    labels, count, own = old_find_regions(line)
    reg = find_regions(art)
    assert reg.count == count and np.array_equal(reg.own, own) and np.array_equal(reg.labels, labels)


@pytest.mark.parametrize("w, h, r", [(200, 120, 32), (90, 170, 32), (256, 192, 32)])
def test_proxy_delta_and_diff_box_from_the_changed_box_only(w, h, r):
    from core.fullres.masks import diff_box
    from core.fullres.proxy import proxy_delta_u8

    pm = ProxyMap(w, h, r)
    rng = np.random.default_rng(w)
    for channels in (1, 3):
        old = picture(h, w, channels, seed=w + channels)
        new = old.copy()
        assert diff_box(old, new) is None
        y0, y1, x0, x1 = h // 5, h // 2, w // 3, w - 7
        new[y0:y1, x0:x1] = rng.integers(0, 256, new[y0:y1, x0:x1].shape, dtype=np.uint8)
        new[y0, x0] = old[y0, x0] + 1  # the box's corners do change
        new[y1 - 1, x1 - 1] = old[y1 - 1, x1 - 1] + 1
        assert diff_box(old, new) == (y0, y1, x0, x1)
        torch.testing.assert_close(proxy_delta_u8(new, old, (y0, y1, x0, x1), pm),
                                   proxy_with(uint8_to_tensor(new), pm) - proxy_with(uint8_to_tensor(old), pm),
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("grey", [False, True])
def test_the_compiled_composite_is_the_float_formula(grey):
    """layer_pixels.composite runs one compiled pass (kernels.composite_rows); it gives the float32 formula of
    straight-alpha compositing exactly, every alpha and level included, on colour and grey stages."""
    from core.fullres.layer_pixels import composite

    rng = np.random.default_rng(7)
    h, w = 600, 457  # over two tasks of kernels.split: on two cores, rows on both
    base = rng.integers(0, 256, (h, w) if grey else (h, w, 3), dtype=np.uint8)
    layer = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    layer[: h // 3, :, 3] = 0  # untouched rows
    a = layer[..., 3].astype(np.float32) / 255.0
    if grey:
        colour = ((layer[..., :3].astype(np.uint16).sum(2) + 1) // 3).astype(np.float32)
    else:
        colour, a = layer[..., :3].astype(np.float32), a[..., None]
    expected = np.rint(base.astype(np.float32) * (1 - a) + colour * a).astype(np.uint8)
    np.testing.assert_array_equal(composite(base, layer), expected)
    np.testing.assert_array_equal(composite(base[5:200, 9:100], layer[5:200, 9:100]), expected[5:200, 9:100])
