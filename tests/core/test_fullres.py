"""Full resolution (core.fullres): the proxy mapping, the guided transfer, clean flats, the full-res keep mask,
stage kinds and the pipeline over a tiny seeded session. Small synthetic images with exact expectations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.editing.session import Session
from core.errors import ArtflowError, ImageError
from core.files.imageio import tensor_to_uint8
from core.fullres import (
    MAX_SIDE,
    ProxyMap,
    check_artwork_size,
    clean_flat,
    find_regions,
    from_proxy,
    infer_stage_kind,
    keep_mask_fullres,
    region_spread,
    stage_kinds,
    to_proxy,
    transfer_change,
)
from core.fullres.pipeline import apply_edit_fullres, follow_proxies, generate_fullres, reconstruct_fullres
from core.fullres.proxy import preview_to_u8, proxy_with
from tests.core.engine_util import RES, single_thread, tiny_model  # noqa: F401


def levels(shape, seed):
    """Random 8-bit levels as a [-1, 1] tensor (exactly representable round trips)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g).float() / 127.5 - 1


def blocks(channels, h, w, block, seed):
    """An image made of block x block squares of one colour each."""
    small = levels((channels, h // block, w // block), seed)
    return small.repeat_interleave(block, 1).repeat_interleave(block, 2)


# ----- artwork <-> proxy -----

@pytest.mark.parametrize("w,h", [(64, 40), (40, 64)])
def test_proxy_pads_with_paper_and_never_stretches(w, h):
    art = blocks(3, h, w, 2, seed=1)
    proxy, pm = to_proxy(art, 32)
    assert pm == ProxyMap(w, h, 32) and pm.side == 64 and pm.scale == 2
    # Area average of 2 x 2 blocks: the proxy holds exactly the blocks, centred, the rest is paper.
    inner = art[:, ::2, ::2]
    top, left = pm.top // 2, pm.left // 2
    assert torch.equal(proxy[:, top:top + h // 2, left:left + w // 2], inner)
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[top:top + h // 2, left:left + w // 2] = False
    assert torch.all(proxy[:, outside] == 1.0)
    # A 16 x 16 square in the artwork stays a square (8 x 8) in the proxy.
    sq = torch.ones(1, h, w)
    sq[:, 8:24, 8:24] = -1
    p, _ = to_proxy(sq, 32)
    dark = (p[0] < 0).nonzero()
    assert dark[:, 0].max() - dark[:, 0].min() + 1 == 8 and dark[:, 1].max() - dark[:, 1].min() + 1 == 8


@pytest.mark.parametrize("w,h", [(32, 20), (20, 32), (32, 32)])
def test_padded_proxy_maps_back_to_the_exact_crop(w, h):
    # At a scale of 1 the proxy is the padded artwork, and mapping back is exactly the crop.
    art = levels((3, h, w), seed=2)
    proxy, pm = to_proxy(art, 32)
    assert torch.equal(from_proxy(proxy, pm), art)
    assert torch.equal(from_proxy(proxy, pm), proxy[:, pm.top:pm.top + h, pm.left:pm.left + w])


def test_from_proxy_upsamples_to_the_artworks_size_and_keeps_constants():
    pm = ProxyMap(100, 60, 16)
    up = from_proxy(torch.full((3, 16, 16), 0.25), pm)
    assert up.shape == (3, 60, 100)
    torch.testing.assert_close(up, torch.full_like(up, 0.25), atol=1e-6, rtol=0)
    # The same map for a smaller-than-proxy artwork (enlarging to the proxy, shrinking back).
    art = blocks(1, 64, 48, 4, seed=3)
    proxy, pm = to_proxy(art, 128)
    assert proxy.shape == (1, 128, 128) and proxy.min() >= -1 and proxy.max() <= 1
    back = from_proxy(proxy, pm)
    assert back.shape == art.shape and (back - art).abs().mean() < 0.1


@pytest.mark.parametrize("w,h,channels", [(100, 60, 3), (60, 100, 1), (48, 48, 3)])
def test_a_slider_preview_maps_to_the_artwork_like_the_proxy(w, h, channels):
    """preview_to_u8 (8-bit, one step from the preview's size) puts the preview where from_proxy puts the proxy:
    the padding cropped off, the same picture to a few levels, read-only uint8 at the artwork's size."""
    pm = ProxyMap(w, h, 32)
    g = torch.Generator().manual_seed(4)
    small = torch.nn.functional.interpolate(torch.rand(1, channels, 4, 4, generator=g) * 2 - 1, size=(16, 16),
                                            mode="bilinear", align_corners=False)[0]
    proxy = torch.nn.functional.interpolate(small[None], size=(32, 32), mode="bilinear", align_corners=False)[0]
    got = preview_to_u8(small, pm)
    want = tensor_to_uint8(from_proxy(proxy, pm, "bilinear"))
    assert got.shape == want.shape and got.dtype == np.uint8 and not got.flags.writeable
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.mean() < 1.5 and diff.max() <= 16, (diff.mean(), diff.max())
    # A preview at the proxy's size of a square artwork at the proxy's size is its 8-bit picture, exactly.
    assert np.array_equal(preview_to_u8(proxy, ProxyMap(32, 32, 32)), tensor_to_uint8(proxy))
    # The padding is cropped at the right place: the proxy's middle column is the artwork's column side/2 - left.
    half = torch.ones(channels, 16, 16)
    half[:, :, :8] = -1
    cols = preview_to_u8(half, pm).astype(int).reshape(h, w, -1).mean(axis=(0, 2))
    middle = pm.side // 2 - pm.left
    assert cols[middle - 3] < 40 and cols[middle + 3] > 215, cols


def test_proxy_with_the_same_map_takes_masks_with_zero_padding():
    pm = ProxyMap(64, 32, 32)
    mask = torch.ones(1, 32, 64)
    p = proxy_with(mask, pm, paper=0.0)
    assert torch.all(p[:, 8:24] == 1) and torch.all(p[:, :8] == 0) and torch.all(p[:, 24:] == 0)


def test_artwork_size_limits():
    check_artwork_size(MAX_SIDE, 10)
    check_artwork_size(64, 1)
    with pytest.raises(ImageError):
        to_proxy(torch.zeros(1, 2, MAX_SIDE + 1), 32)
    for w, h in ((MAX_SIDE + 1, 100), (100, MAX_SIDE + 1), (63, 40), (0, 80)):
        with pytest.raises(ImageError) as e:
            check_artwork_size(w, h)
        assert "\n" not in str(e.value)


# ----- guided transfer -----

def test_a_zero_change_leaves_every_pixel_exactly_as_it_was():
    guide = levels((3, 60, 100), seed=4)
    pm = ProxyMap(100, 60, 16)
    out = transfer_change(torch.zeros(3, 16, 16), guide, pm)
    assert out.shape == (3, 60, 100) and torch.count_nonzero(out) == 0


def test_a_uniform_change_stays_uniform():
    guide = levels((3, 60, 100), seed=5)
    pm = ProxyMap(100, 60, 16)
    out = transfer_change(torch.full((3, 16, 16), -0.3), guide, pm)
    torch.testing.assert_close(out, torch.full_like(out, -0.3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("guide_channels", [1, 3])
def test_a_change_follows_the_guides_edge_inside_a_proxy_pixel(guide_channels):
    # An edge at column 37 of a 128 px artwork: inside proxy pixel 4 (8 artwork pixels per proxy pixel).
    w = h = 128
    inside = torch.zeros(1, h, w)
    inside[..., :37] = 1
    guide = (inside * 2 - 1).expand(guide_channels, h, w)
    truth = 0.5 * inside.expand(3, h, w)
    change, pm = to_proxy(truth, 16, paper=0.0)
    guided = transfer_change(change, guide, pm)
    plain = from_proxy(change, pm, mode="bilinear", clamp=False)
    err_guided = (guided - truth).abs().max()
    err_plain = (plain - truth).abs().max()
    assert err_guided < 0.05 and err_plain > 0.2


# ----- clean flats -----

def outline(h=40, w=40, box=(8, 8, 32, 32), width=2, gap=0):
    """White line art with a black rectangle outline; `gap` pixels cut out of its right side."""
    a = np.ones((h, w), np.float32)
    y0, x0, y1, x1 = box
    a[y0:y1, x0:x1] = -1
    a[y0 + width:y1 - width, x0 + width:x1 - width] = 1
    if gap:
        mid = (y0 + y1) // 2
        a[mid:mid + gap, x1 - width:x1] = 1
    return torch.from_numpy(a)[None]


def _rgb(r, g, b, h=40, w=40):
    """A uniform colour image (3, h, w) in [-1, 1] from 8-bit levels."""
    return (torch.tensor([r, g, b], dtype=torch.float32) / 127.5 - 1).reshape(3, 1, 1).expand(3, h, w).clone()


def _region_colour(flat, regions, r):
    """The 8-bit colour region r was painted (asserting it is one colour)."""
    got = ((flat.numpy()[:, regions.labels == r] + 1) * 127.5).round().astype(np.int64)
    assert (got == got[:, :1]).all()
    return got[:, 0]


@pytest.mark.parametrize("paint, lighter", [((240, 200, 120), False), ((40, 60, 70), True)])
def test_a_drawn_shape_painted_like_its_surroundings_is_set_apart(paint, lighter):
    """A closed shape drawn inside another (a mouth in a face) that the model painted in the surrounding colour
    would vanish from the flat: it is moved MIN_CONTRAST levels away, darker on light paint, lighter on dark, and
    the surrounding region keeps the model's colour exactly."""
    from core.fullres.flats import MIN_CONTRAST

    line = outline()
    regions = find_regions(line, close_gap=0)
    colours = _rgb(*paint)
    plain = clean_flat(line, colours, close_gap=0, min_contrast=0)
    flat = clean_flat(line, colours, close_gap=0)
    inner = int(np.argmin(regions.areas[1:])) + 1
    outer = 3 - inner
    assert _region_colour(plain, regions, inner).tolist() == list(paint)  # before: the shape was gone
    assert _region_colour(flat, regions, outer).tolist() == list(paint)
    moved = _region_colour(flat, regions, inner)
    assert np.abs(moved - np.array(paint)).max() >= MIN_CONTRAST
    assert (moved > np.array(paint)).all() if lighter else (moved < np.array(paint)).all()


def test_regions_painted_apart_keep_the_models_colours():
    line = outline()
    regions = find_regions(line, close_gap=0)
    colours = _rgb(240, 200, 120)
    inside = regions.labels == int(np.argmin(regions.areas[1:])) + 1
    colours[:, torch.from_numpy(inside)] = _rgb(200, 30, 30)[:, :1, 0]  # a red shape on yellow: distinct
    assert torch.equal(clean_flat(line, colours, close_gap=0), clean_flat(line, colours, close_gap=0, min_contrast=0))


def test_specks_keep_the_models_colour():
    """A region under MIN_DISTINCT_AREA of the image (a speck of rough line art) is not set apart."""
    from core.fullres.flats import MIN_DISTINCT_AREA

    line = outline(h=200, w=200, box=(90, 90, 97, 97), width=2, gap=0)  # a 3 x 3 px inside on 200 x 200
    regions = find_regions(line, close_gap=0)
    assert regions.count == 2 and regions.areas[1:].min() < MIN_DISTINCT_AREA * 200 * 200
    colours = _rgb(240, 200, 120, 200, 200)
    assert torch.equal(clean_flat(line, colours, close_gap=0), clean_flat(line, colours, close_gap=0, min_contrast=0))


def test_shapes_side_by_side_keep_the_models_colours():
    """Only an enclosed shape is set apart: three pieces side by side (the middle one touches two larger ones)
    painted alike stay as the model painted them."""
    a = np.ones((20, 30), np.float32)
    a[:, 9:11] = -1
    a[:, 19:21] = -1
    line = torch.from_numpy(a)[None]
    colours = _rgb(240, 200, 120, 20, 30)
    assert torch.equal(clean_flat(line, colours, close_gap=0), clean_flat(line, colours, close_gap=0, min_contrast=0))


def test_a_shape_in_a_shape_in_a_shape_is_set_apart_from_each_surrounding():
    """A pupil in an eye in a face, all painted alike: the eye moves away from the face, then the pupil from the
    eye as it ends up."""
    from core.fullres.flats import MIN_CONTRAST

    a = np.ones((60, 60), np.float32)
    a[10:50, 10:50] = -1  # the eye's outline
    a[12:48, 12:48] = 1
    a[24:36, 24:36] = -1  # the pupil's outline
    a[26:34, 26:34] = 1
    line = torch.from_numpy(a)[None]
    regions = find_regions(line, close_gap=0)
    assert regions.count == 3
    flat = clean_flat(line, _rgb(240, 200, 120, 60, 60), close_gap=0)
    face, eye, pupil = (_region_colour(flat, regions, int(regions.labels[y, x]))
                        for y, x in ((2, 2), (15, 15), (30, 30)))
    assert face.tolist() == [240, 200, 120]
    assert np.abs(eye - face).max() >= MIN_CONTRAST and np.abs(pupil - eye).max() >= MIN_CONTRAST


def test_regions_know_which_regions_touch():
    a = np.ones((20, 30), np.float32)
    a[:, 9:11] = -1  # two vertical strokes: three regions side by side
    a[:, 19:21] = -1
    regions = find_regions(torch.from_numpy(a)[None], close_gap=0)
    assert regions.count == 3
    left, mid, right = (int(regions.labels[5, x]) for x in (2, 15, 27))
    assert sorted(map(tuple, regions.touching.tolist())) == sorted(
        [tuple(sorted((left, mid))), tuple(sorted((mid, right)))])  # left and right do not touch
    assert regions.areas.sum() == 20 * 30 and regions.areas[0] == 0


def test_each_region_gets_exactly_its_median():
    line = outline()
    colours = levels((3, 40, 40), seed=6)
    regions = find_regions(line, close_gap=0)
    assert regions.count == 2
    flat = clean_flat(line, colours, close_gap=0, min_contrast=0)  # the medians alone (both near mid-grey here)
    q = ((colours + 1) * 127.5).round().numpy().astype(np.int64)
    for r in (1, 2):
        own = (regions.labels == r) & regions.own
        for c in range(3):
            v = np.sort(q[c][own])
            lower_median = v[(v.size - 1) // 2]
            got = ((flat[c].numpy()[regions.labels == r] + 1) * 127.5).round()
            assert np.all(got == lower_median)
    assert region_spread(regions, flat) == 0.0
    assert region_spread(regions, colours) > 0.1


def test_stroke_pixels_join_their_nearest_region_or_keep_their_ink():
    line = outline(width=4)
    colours = torch.ones(3, 40, 40)
    colours[:, 10:30, 10:30] = -0.5  # inside (model colour drawn a little over the stroke)
    flat = clean_flat(line, colours, close_gap=0)
    assert torch.all(flat[:, 20, 8:10] == 1.0)  # outer half of the left stroke: outside's colour
    assert torch.all(flat[:, 20, 10:12] == colours[:, 20, 20].round(decimals=2).mul(127.5).add(127.5).round()
                     .div(127.5).sub(1)[:, None])
    inked = clean_flat(line, colours, close_gap=0, lines="ink")
    assert torch.all(inked[:, 20, 8:12] == -1.0)
    assert torch.equal(inked[:, 20, 20], flat[:, 20, 20])


@pytest.mark.parametrize("close_gap", [0, 1, 2, 3])
def test_gap_closing_never_merges_across_a_closed_line(close_gap):
    regions = find_regions(outline(), close_gap=close_gap)
    assert regions.count == 2
    assert regions.labels[20, 20] != regions.labels[2, 2]


def test_gap_closing_closes_a_two_pixel_gap_but_not_a_wide_one():
    two = outline(gap=2)
    assert find_regions(two, close_gap=0).count == 1  # open: inside and outside are one region
    closed = find_regions(two, close_gap=2)
    assert closed.count == 2 and closed.labels[20, 20] != closed.labels[2, 2]
    assert find_regions(two, close_gap=1).count == 2  # radius 1 closes gaps up to 2 px
    assert find_regions(outline(gap=8), close_gap=2).count == 1
    # A region's own pixels are paper, and the regions cover every pixel.
    line = outline(gap=2)[0].numpy() < 0
    assert not np.any(closed.own & line) and np.all(closed.labels >= 1)


def test_a_solid_black_shape_is_a_region_of_its_own():
    a = np.ones((80, 80), np.float32)
    a[10:70, 10:12] = -1  # a thin stroke
    yy, xx = np.mgrid[:80, :80]
    a[(yy - 40) ** 2 + (xx - 50) ** 2 <= 15 ** 2] = -1  # a filled disc
    line = torch.from_numpy(a)[None]
    colours = torch.ones(3, 80, 80)
    colours[:, (torch.from_numpy(yy) - 40) ** 2 + (torch.from_numpy(xx) - 50) ** 2 <= 16 ** 2] = -0.6
    flat = clean_flat(line, colours, close_gap=0)
    assert abs(float(flat[0, 40, 50]) - (-0.6)) < 1 / 127.5  # the disc's centre: its own median
    assert float(flat[0, 40, 11]) == 1.0  # the thin stroke: the white around it


# ----- keep mask -----

def test_keep_mask_is_exactly_zero_beyond_its_reach():
    old = torch.zeros(3, 100, 120)
    new = old.clone()
    new[:, 40:50, 50:60] = 0.5
    m = keep_mask_fullres(old, new, dilate=8, feather=8)
    assert m.shape == (100, 120)
    assert torch.all(m[40:50, 50:60] == 1) and float(m[45, 50 - 8]) == 1.0
    yy, xx = torch.meshgrid(torch.arange(100), torch.arange(120), indexing="ij")
    dy = (40 - yy).clamp(min=0) + (yy - 49).clamp(min=0)
    dx = (50 - xx).clamp(min=0) + (xx - 59).clamp(min=0)
    far = (dy.float() ** 2 + dx.float() ** 2).sqrt() >= 24
    assert torch.all(m[far] == 0) and torch.all(m[~far] > 0)
    assert torch.count_nonzero(keep_mask_fullres(old, old)) == 0


# ----- stage kinds -----

def test_stage_kinds_from_names_and_from_the_config_field():
    assert [infer_stage_kind(n) for n in ("lineart", "sketch", "flat", "flat-lines", "detail", "shading",
                                          "colour")] == ["line", "line", "flat", "flat", "detail", "detail", None]

    class Spec:
        def __init__(self, name, kind=None):
            self.name, self.kind = name, kind

    assert stage_kinds([Spec("a", "line"), Spec("flat"), Spec("b", "detail"), Spec("c")]) == [
        "line", "flat", "detail", None]


# ----- the pipeline over a session -----

@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


def line_art(h=48, w=80):
    a = np.ones((h, w), np.float32)
    a[8:40, 10:12] = a[8:40, 40:42] = a[8:10, 10:42] = a[38:40, 10:42] = -1  # a closed box
    a[20:22, 50:75] = -1  # an open stroke
    return torch.from_numpy(a)[None]


def test_generate_keeps_the_line_art_and_makes_clean_flats(model):
    session = Session(model, "cpu")
    line = line_art()
    pm, full = generate_fullres(session, line)
    assert pm == ProxyMap(80, 48, RES)
    assert [tuple(f.shape) for f in full] == [(1, 48, 80), (3, 48, 80), (3, 48, 80)]
    assert torch.equal(full[0], line)
    assert region_spread(find_regions(line), full[1]) == 0.0
    # The detail stage was generated from the clean flat: the session's flat proxy is the clean flat's proxy.
    torch.testing.assert_close(session.stages[1], proxy_with(full[1], pm))
    _, raw = generate_fullres(session, line, clean_flats=False)
    assert region_spread(find_regions(line), raw[1]) > 0


def test_reconstruct_ends_with_the_artwork_itself(model):
    session = Session(model, "cpu")
    art = levels((3, 50, 70), seed=7)
    pm, full, report, inferred = reconstruct_fullres(session, art, steps=2)
    assert report.completed and len(inferred) == session.num_stages
    assert torch.equal(full[-1], art) and full[0].shape == (1, 50, 70)
    with pytest.raises(ArtflowError):
        reconstruct_fullres(session, levels((1, 50, 70), seed=7), steps=0)


def test_reconstruct_at_the_models_size_keeps_the_artwork_and_the_fit(model):
    """An artwork of the model's own size (issue 27): its last stage is the artwork itself, pixel for pixel, and
    the session keeps the refined fit, the same with clean flats on or off (a clean flat does not regenerate the
    fit away: the last stage is known)."""
    art = levels((3, RES, RES), seed=8)
    results = {}
    for clean in (True, False):
        session = Session(model, "cpu")
        _, full, report, _ = reconstruct_fullres(session, art, steps=3, clean_flats=clean)
        assert report.completed
        assert torch.equal(full[-1], art)
        assert not torch.equal(session.stages[-1], art)  # the fit is the model's reconstruction
        results[clean] = session.stages
    for a, b in zip(results[True], results[False]):
        assert torch.equal(a, b)


def test_an_edit_that_changes_nothing_keeps_every_pixel(model):
    session = Session(model, "cpu")
    pm, full = generate_fullres(session, line_art())
    new, mask = apply_edit_fullres(session, full, pm, 1, full[1].clone())
    assert mask is None and all(torch.equal(a, b) for a, b in zip(new, full))


def test_a_local_edit_keeps_the_artists_pixels_away_from_it(model):
    session = Session(model, "cpu")
    pm, full = generate_fullres(session, line_art(96, 160))
    edited = full[1].clone()
    edited[:, 20:36, 14:38] = torch.tensor([-0.8, 0.2, 0.6])[:, None, None]
    new, mask = apply_edit_fullres(session, full, pm, 1, edited, keep_unedited=True)
    assert torch.equal(new[1], edited) and torch.equal(new[0], full[0])
    far = mask == 0
    assert far.any() and torch.equal(new[2][:, far], full[2][:, far])
    assert (new[2] - full[2]).abs().amax() > 0.05  # the edit did change the detail stage near it
    with pytest.raises(ArtflowError):
        apply_edit_fullres(session, full, pm, 1, edited[:, :50])


def test_full_res_stages_follow_a_latent_change(model):
    session = Session(model, "cpu")
    pm, full = generate_fullres(session, line_art())
    old = [s.clone() for s in session.stages]
    session.set_latent(1, session.latents[1].clone())  # the same code: nothing moves
    assert all(torch.equal(a, b) for a, b in zip(follow_proxies(session, full, old, pm, 1), full))
    session.set_latent(1, session.latents[1] + 2.0)
    new = follow_proxies(session, full, old, pm, 1)
    assert torch.equal(new[0], full[0]) and torch.equal(new[1], full[1])
    assert (new[2] - full[2]).abs().amax() > 0.01 and new[2].shape == full[2].shape
