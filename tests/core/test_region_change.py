"""Region-bounded edits (core.fullres.region_change, pipeline.follow_regions): the later stages change only where
the edit reached, by colour transforms the model's change decides, and keep every other pixel exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.editing.session import Session
from core.files.imageio import tensor_to_uint8
from core.fullres.pipeline import apply_edit_fullres, generate_fullres
from core.fullres.proxy import ProxyMap, proxy_of_u8
from core.fullres.region_change import (
    changed_pixels,
    colour_groups,
    continuing_regions,
    follow_colour_change,
    recolour_prior,
    touched_regions,
)
from core.fullres.regions import find_regions
from tests.core.engine_util import tiny_model


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def disc_scene(h=96, w=128):
    """A shaded disc on paper: its flat, its detail (the flat times a left-to-right shading), and the same after
    the disc's flat colour changed (the truth a recolour should reach)."""
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (0.4 * h) ** 2
    shade = (0.55 + 0.45 * xx / w)[..., None]
    flat = np.full((h, w, 3), 255, np.uint8)
    flat[disc] = (250, 200, 60)
    new_flat = flat.copy()
    new_flat[disc] = (120, 70, 40)
    detail = np.where(disc[..., None], np.rint(flat * shade), 255).astype(np.uint8)
    truth = np.where(disc[..., None], np.rint(new_flat * shade * 0.9), 255).astype(np.uint8)
    return disc, flat, new_flat, detail, truth


def test_a_recolour_moves_only_the_changed_pixels_and_follows_the_model():
    disc, flat, new_flat, detail, truth = disc_scene()
    pm = ProxyMap(128, 96, 32)
    # A model that knows the truth: its proxies of the detail before and after.
    out = follow_colour_change(detail, flat, new_flat, proxy_of_u8(detail, pm), proxy_of_u8(truth, pm), pm)
    assert np.array_equal(out[~disc], detail[~disc])  # the paper and everything untouched: exactly the artist's
    # The no-model recolour (multiply by new / old) misses the model's darkening; the fitted transform does not.
    recolour = np.clip(np.rint(detail * (new_flat / np.maximum(flat, 1.0))), 0, 255).astype(np.uint8)
    assert psnr(out, truth) > psnr(recolour, truth) + 3
    # With an infinite pull towards the prior the transform is that recolour (to a level).
    prior_only = follow_colour_change(detail, flat, new_flat, proxy_of_u8(detail, pm), proxy_of_u8(truth, pm), pm,
                                      prior_weight=float("inf"))
    assert np.abs(prior_only.astype(int) - recolour.astype(int)).max() <= 1


def test_no_change_keeps_every_pixel():
    _, flat, _, detail, _ = disc_scene()
    pm = ProxyMap(128, 96, 32)
    p = proxy_of_u8(detail, pm)
    assert np.array_equal(follow_colour_change(detail, flat, flat.copy(), p, p, pm), detail)


def test_groups_are_colour_pairs_and_the_prior_keeps_dark_channels_additive():
    old = np.zeros((4, 4, 3), np.uint8)
    new = old.copy()
    new[:2] = (10, 200, 30)
    new[2:, :2] = (5, 5, 5)
    groups = colour_groups(old, new, changed_pixels(old, new))
    assert len(groups.keys) == 2 and sorted(groups.counts.tolist()) == [4, 8]
    gain, offset = recolour_prior(np.array([[200, 8, 100]], np.uint8), np.array([[100, 40, 100]], np.uint8), 3)
    assert gain[0].tolist() == pytest.approx([0.5, 1.0, 1.0])  # green is too dark to divide by: shifted
    assert offset[0].tolist() == pytest.approx([0.0, 32 / 255, 0.0])


def test_touched_regions_are_the_closed_regions_a_stroke_reaches():
    line = np.full((40, 80), 255, np.uint8)
    line[5:35, 5] = line[5:35, 30] = line[5, 5:31] = line[34, 5:31] = 0  # box A
    line[5:35, 45] = line[5:35, 70] = line[5, 45:71] = line[34, 45:71] = 0  # box B
    new = line.copy()
    new[15:25, 18] = 0  # a stroke inside box A
    regions = find_regions(torch.from_numpy(new.astype(np.float32) / 127.5 - 1)[None])
    bound = touched_regions(regions, changed_pixels(line, new))
    assert bound[20, 10] and bound[20, 25]  # box A's inside
    assert not bound[20, 58] and not bound[2, 40]  # box B and the paper outside


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


def test_a_flat_edit_changes_the_detail_only_where_the_flat_changed(model):
    line = np.ones((48, 80), np.float32)
    line[8:40, 10:12] = line[8:40, 40:42] = line[8:10, 10:42] = line[38:40, 10:42] = -1
    session = Session(model, "cpu")
    pm, full = generate_fullres(session, torch.from_numpy(line)[None])
    edited = full[1].clone()
    edited[:, 14:30, 16:36] = torch.tensor([-0.8, 0.2, 0.6])[:, None, None]
    new, _ = apply_edit_fullres(session, full, pm, 1, edited)  # propagation="regions", the default
    flat_changed = torch.from_numpy(changed_pixels(tensor_to_uint8(full[1]), tensor_to_uint8(edited)))
    assert torch.equal(new[1], edited) and torch.equal(new[0], full[0])
    assert torch.equal(new[2][:, ~flat_changed], full[2][:, ~flat_changed])
    assert (new[2] - full[2])[:, flat_changed].abs().amax() > 0.05
    # The paper's global propagation reaches beyond the edit.
    session = Session(model, "cpu")
    pm, full = generate_fullres(session, torch.from_numpy(line)[None])
    glob, _ = apply_edit_fullres(session, full, pm, 1, edited, propagation="global")
    assert not torch.equal(glob[2][:, ~flat_changed], full[2][:, ~flat_changed])
    with pytest.raises(ValueError):
        apply_edit_fullres(session, full, pm, 1, edited, propagation="everywhere")


def test_a_generated_detail_leaves_the_paper_white(model):
    """A detail nobody supplied is the flat plus the model's residual, never on the flat's paper: no glow past the
    outline (issue 27; a drawn 1024 px smiley with emoji-lines-128 had up to 23/255 beyond 6 px)."""
    from core.fullres.pipeline import fullres_stages
    from core.fullres.proxy import to_proxy

    line = torch.ones(1, 60, 90)
    line[:, 10:50, 20] = line[:, 10:50, 60] = line[:, 10, 20:61] = line[:, 49, 20:61] = -1
    flat = torch.ones(3, 60, 90)
    flat[:, 11:49, 21:60] = torch.tensor([0.6, 0.1, -0.7])[:, None, None]
    session = Session(model, "cpu")
    proxy, pm = to_proxy(line, session.config.resolution)
    session.start_from(proxy)
    full = fullres_stages(session, pm, {0: line, 1: flat})
    paper = (flat == 1).all(0)
    assert torch.equal(full[2][:, paper], flat[:, paper])
    assert not torch.equal(full[2][:, ~paper], flat[:, ~paper])  # the model's shading inside the drawing


def test_a_shape_drawn_into_a_region_leaves_the_rest_of_it_as_it_was():
    """A closed shape drawn inside a face splits the face's region: the larger piece continues the face and keeps
    its flat, the new shape is new (it takes the model's colour)."""
    labels = np.ones((40, 60), np.int32)
    labels[:, 30:] = 2  # the paper
    labels[10:20, 10:20] = 3  # a beard drawn inside the face (region 1)
    old_flat = np.full((40, 60, 3), 255, np.uint8)
    old_flat[:, :30] = (250, 200, 60)  # the face, before the stroke: one colour
    bound = np.zeros((40, 60), bool)
    bound[:, :30] = True  # the face and the new shape were touched
    keep = continuing_regions(labels, bound, old_flat)
    assert keep[labels == 1].all() and not keep[labels == 3].any() and not keep[:, 30:].any()


def test_two_stages_painted_in_one_request_both_reach_the_detail(model):
    """A request carrying a line-art stroke and a flat fill (edits merged while the engine was busy): the detail
    follows the fill too, though the model regenerates from the line art."""
    from core.fullres.artwork import LayeredArtwork

    line = torch.ones(1, 48, 80)
    line[:, 8:40, 10:12] = line[:, 8:40, 40:42] = line[:, 8:10, 10:42] = line[:, 38:40, 10:42] = -1
    session = Session(model, "cpu")
    pm, full = generate_fullres(session, line)
    art = LayeredArtwork.from_stages(pm, full)
    detail_before = art.stage(2).copy()
    stroke = np.zeros((48, 80, 4), np.uint8)
    stroke[20:22, 55:70] = (0, 0, 0, 255)  # an open stroke on the paper, right of the box
    fill = np.zeros((48, 80, 4), np.uint8)
    fill[14:30, 16:36] = (30, 200, 90, 255)  # paint inside the box on the flat
    art.set_layers(session, {0: stroke, 1: fill})
    art.regenerate(session, 0)
    moved = (art.stage(2).astype(int) != detail_before.astype(int)).any(axis=2)
    assert moved[14:30, 16:36].any()  # the fill reached the detail



@pytest.mark.parametrize("channels, driver_channels", [(3, 3), (1, 3), (3, 1), (1, 1)])
def test_the_compiled_colour_move_is_the_numpy_formula(channels, driver_channels):
    """follow_colour_change moves each changed pixel by its group's transform in one compiled pass
    (kernels.colour_transform_rows); it gives the numpy formula's pixels exactly, for colour and grey stages and
    drivers, at every changed pixel, and leaves the others as they were."""
    from core.fullres import kernels
    from core.fullres.region_change import _keys

    rng = np.random.default_rng(channels * 10 + driver_channels)
    h, w = 90, 120

    def image(c, values):
        return values.reshape((h, w, c) if c > 1 else (h, w))

    stage = image(channels, rng.integers(0, 256, h * w * channels, dtype=np.uint8))
    palette = rng.integers(0, 256, (5, driver_channels), dtype=np.uint8)
    old = image(driver_channels, palette[rng.integers(0, 5, h * w)])
    new = image(driver_channels, palette[rng.integers(0, 5, h * w)])
    changed = changed_pixels(old, new)
    groups = colour_groups(old, new, changed)
    transforms = rng.normal(0, 0.7, (len(groups.keys), channels + 1, channels)).astype(np.float32)

    def c3(a):
        return a[..., None] if a.ndim == 2 else a

    expected = c3(stage.copy())
    g = np.searchsorted(groups.keys, _keys(c3(old)[changed], c3(new)[changed]))
    x = c3(stage)[changed].astype(np.float32) / 255.0
    y = np.einsum("nc,ncd->nd", x, transforms[g][:, :channels]) + transforms[g][:, channels]
    expected[changed] = np.rint(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)
    out = c3(stage.copy())
    kernels.colour_transform_rows(out, c3(stage), c3(old), c3(new), changed, groups.keys, transforms, 0, h, 0, w)
    np.testing.assert_array_equal(out, expected)
    assert changed.any() and not changed.all()
