"""core/fullres/regions.py: RegionMap.build is the closed-regions rule as it was written before (a plain copy of it
is the reference here), and RegionMap.updated after random line-art edits (strokes, erasing, a stroke that splits a
region in two, a gap that merges two, solid shapes appearing and going) equals finding the regions from scratch:
the same labels (numbered alike), count, line and own pixels, and so the same clean flat. (ARTFLOW_REGION_SEEDS=60:
720 random edits instead of the default 72; all passed when written.)"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import ndimage

import core.fullres.region_windows as W
import core.fullres.regions as R
from core.fullres.flats import clean_flat_u8
from core.fullres.regions import CLOSE_GAP, SOLID_FACTOR, RegionMap, Regions, near


def reference_regions(line: np.ndarray, close_gap: int = CLOSE_GAP) -> Regions:
    """find_regions as first written: every step over the whole image (line: (H, W) bool)."""
    four = ndimage.generate_binary_structure(2, 1)
    own = (~near(line, close_gap) if close_gap > 0 else ~line) if line.any() else ~line
    solid_box, solid_labels, n_solid = None, None, 0
    if line.any():
        rows, cols = np.flatnonzero(line.any(1)), np.flatnonzero(line.any(0))
        h, w = line.shape
        box = (slice(max(0, rows[0] - 2), min(h, rows[-1] + 3)), slice(max(0, cols[0] - 2), min(w, cols[-1] + 3)))
        line_box = line[box]
        depth = ndimage.distance_transform_edt(line_box)
        ridge = line_box & (depth >= ndimage.maximum_filter(depth, size=3))
        cut = SOLID_FACTOR * max(float(np.median(depth[ridge])), 1.0)
        core = np.zeros_like(line)
        core[box] = depth > cut
        if core.any():
            solid = near(core, cut) & line
            rows, cols = np.flatnonzero(solid.any(1)), np.flatnonzero(solid.any(0))
            solid_box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            solid_labels, n_solid = ndimage.label(solid[solid_box], structure=four)
    labels, count = ndimage.label(own, structure=four)
    if n_solid:
        is_solid = solid_labels > 0
        labels[solid_box] = np.where(is_solid, solid_labels + count, labels[solid_box])
        own[solid_box] |= is_solid
        count += n_solid
    if count == 0:
        return Regions(np.ones(line.shape, np.int32), 1, line, np.ones(line.shape, bool))
    if not own.all():
        idx = ndimage.distance_transform_edt(~own, return_distances=False, return_indices=True)
        labels = labels[idx[0], idx[1]]
    return Regions(labels.astype(np.int32), int(count), line, own)


def assert_same(got: Regions, want: Regions) -> None:
    assert got.count == want.count
    assert np.array_equal(got.line, want.line)
    assert np.array_equal(got.own, want.own)
    assert np.array_equal(got.labels, want.labels)


# ----- drawing -----
def grid(h, w):
    return np.mgrid[0:h, 0:w].astype(np.float64)


def ring(shape, cy, cx, ry, rx, width):
    yy, xx = grid(*shape)
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    return np.abs(r - 1) * min(ry, rx) < width / 2


def blob(shape, cy, cx, ry, rx):
    yy, xx = grid(*shape)
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1


def segment(shape, y0, x0, y1, x1, width):
    yy, xx = grid(*shape)
    d = np.array([y1 - y0, x1 - x0], float)
    t = np.clip(((yy - y0) * d[0] + (xx - x0) * d[1]) / max(d @ d, 1e-9), 0, 1)
    return np.hypot(yy - (y0 + t * d[0]), xx - (x0 + t * d[1])) <= width / 2


def drawing(shape, rng):
    """Line art like the model's: rings (closed regions), a few strokes, a filled shape or two."""
    h, w = shape
    line = np.zeros(shape, bool)
    for _ in range(rng.integers(2, 5)):
        line |= ring(shape, rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w, rng.uniform(0.1, 0.35) * h,
                     rng.uniform(0.1, 0.35) * w, rng.uniform(1.5, 6))
    for _ in range(rng.integers(1, 4)):
        line |= segment(shape, *(rng.uniform(0, 1, 4) * [h, w, h, w]), rng.uniform(1, 5))
    for _ in range(rng.integers(0, 3)):
        line |= blob(shape, rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(4, 14),
                     rng.uniform(4, 14))
    return line


def edit(line, rng):
    """One random edit of the line art: (new line mask, what it was)."""
    h, w = line.shape
    kind = rng.choice(["stroke", "erase", "split", "merge", "blob", "unblob", "dot", "far pair"])
    out = line.copy()
    if kind in ("stroke", "erase"):
        seg = segment(line.shape, *(rng.uniform(0, 1, 4) * [h, w, h, w]) * [1, 1, 0.3, 0.3]
                      + [0, 0, *(rng.uniform(0, 1, 2) * [h, w] * 0.7)], rng.uniform(1, 7))
        out[seg] = kind == "stroke"
    elif kind == "split":  # a stroke right across the drawing: cuts regions in two
        y = rng.uniform(0.2, 0.8) * h
        out |= segment(line.shape, y, 0, y + rng.uniform(-10, 10), w - 1, rng.uniform(2, 5))
    elif kind == "merge":  # a wide gap through the ink: joins regions
        y, x = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        out[segment(line.shape, y - 15, x, y + 15, x + rng.uniform(-10, 10), rng.uniform(7, 12))] = False
    elif kind == "blob":
        out |= blob(line.shape, rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(5, 16),
                    rng.uniform(5, 16))
    elif kind == "unblob":
        out[blob(line.shape, rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w, rng.uniform(5, 16),
                 rng.uniform(5, 16))] = False
    elif kind == "dot":
        y, x = rng.integers(0, h), rng.integers(0, w)
        out[y, x] = ~out[y, x]
    else:  # two small changes far apart: two windows
        out[:3, :3] = True
        out[-4:, -5:] = ~out[-4:, -5:]
    return out, kind


@pytest.fixture
def small_windows(monkeypatch):
    """Windows and tiles scaled to the small test images, so the windowed path is taken (not a rebuild)."""
    monkeypatch.setattr(W, "TILE", 8)  # read in region_windows (core.fullres.regions only re-exports them)
    monkeypatch.setattr(W, "FIRST_MARGIN", 4)
    monkeypatch.setattr(W, "REBUILD_FRACTION", 0.9)


@pytest.mark.parametrize("seed", range(4))
def test_build_is_the_plain_rule(seed):
    rng = np.random.default_rng(seed)
    line = drawing((int(rng.integers(60, 140)), int(rng.integers(60, 140))), rng)
    assert_same(RegionMap.build(line).regions, reference_regions(line))


@pytest.mark.parametrize("seed", range(int(os.environ.get("ARTFLOW_REGION_SEEDS", "6"))))
def test_updates_equal_finding_the_regions_again(seed, small_windows):
    rng = np.random.default_rng(100 + seed)
    shape = (int(rng.integers(90, 160)), int(rng.integers(90, 160)))
    line = drawing(shape, rng)
    m = RegionMap.build(line)
    hows = []
    for _ in range(12):
        line, kind = edit(line, rng)
        m = m.updated(line)
        hows.append(m.how)
        assert_same(m.regions, reference_regions(line))
        # The clean flat (one colour per region) is the same as well.
        colours = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        np.testing.assert_array_equal(clean_flat_u8(m.regions, colours), clean_flat_u8(reference_regions(line),
                                                                                       colours))
    assert hows.count("updated") >= 6, hows  # most edits were handled in their windows


def test_split_and_merge_change_the_count(small_windows):
    shape = (120, 150)
    line = ring(shape, 60, 75, 40, 55, 3)
    m = RegionMap.build(line)
    assert m.regions.count == 2  # inside and outside
    cut = line | segment(shape, 60, 10, 60, 140, 3)  # right across the ring: the inside splits in two
    m = m.updated(cut)
    assert m.how == "updated" and m.regions.count == 3
    assert_same(m.regions, reference_regions(cut))
    opened = cut.copy()
    opened[segment(shape, 15, 75, 30, 75, 10)] = False  # a wide gap in the ring's top: top half joins outside
    m = m.updated(opened)
    assert m.how == "updated" and m.regions.count == 2
    assert_same(m.regions, reference_regions(opened))
    assert m.regions.labels[40, 75] == m.regions.labels[2, 2] != m.regions.labels[80, 75]


def test_an_unchanged_line_art_keeps_its_regions():
    rng = np.random.default_rng(7)
    line = drawing((80, 100), rng)
    m = RegionMap.build(line)
    labels = m.regions.labels
    m2 = m.updated(line.copy())
    assert m2.how == "unchanged" and m2.regions.labels is labels


def test_a_spent_map_finds_the_regions_again(small_windows):
    # An update lets go of the old map's labels (memory); the spent map still answers a later update, from scratch.
    rng = np.random.default_rng(11)
    line = drawing((100, 120), rng)
    m = RegionMap.build(line)
    edited, _ = edit(line, rng)
    assert m.updated(edited).how == "updated"
    again, _ = edit(edited, rng)
    for target in (edited, again, line):  # line: unchanged from the spent map's own, whose labels are gone
        later = m.updated(target)
        assert later.how in ("rebuilt", "unchanged") and later.regions.labels is not None
        assert_same(later.regions, reference_regions(target))


@pytest.mark.parametrize("case", ["no ink", "all ink", "ink appears", "ink goes"])
def test_degenerate_line_arts(case, small_windows):
    shape = (50, 70)
    empty, full = np.zeros(shape, bool), np.ones(shape, bool)
    some = ring(shape, 25, 35, 15, 20, 3)
    before, after = {"no ink": (some, empty), "all ink": (some, full), "ink appears": (empty, some),
                     "ink goes": (full, some)}[case]
    m = RegionMap.build(before).updated(after)
    assert_same(m.regions, reference_regions(after))


# ----- through LayeredArtwork: painting on the line art -----

RING_SHAPE = (90, 140)


def ring_artwork():
    """(LayeredArtwork, Session): a ring drawn as line art, its later stages generated by a tiny model at 90 x 140
    (torch on one thread: the same numbers every run)."""
    import torch

    from core.editing.session import Session
    from core.fullres.artwork import LayeredArtwork
    from core.fullres.pipeline import generate_fullres
    from tests.core.engine_util import tiny_model

    torch.set_num_threads(1)
    first = np.ones(RING_SHAPE, np.float32)
    first[ring(RING_SHAPE, 45, 60, 30, 45, 3)] = -1
    session = Session(tiny_model(seed=0), "cpu")
    pm, full = generate_fullres(session, torch.from_numpy(first)[None])
    return LayeredArtwork.from_stages(pm, full), session


def test_painting_on_the_line_art_updates_the_regions_and_the_flat_as_from_scratch(small_windows):
    """Several line-art layers in a row (a stroke, a stroke that closes a region, erasing with paper white, the
    layer removed): the artwork's cached regions equal find_regions of the stage as seen, and its bases equal
    those of an artwork that finds the regions from scratch every time."""

    from core.fullres.regions import find_regions

    h, w = RING_SHAPE
    arts, sessions = [], []
    for _ in range(2):
        art, session = ring_artwork()
        arts.append(art)
        sessions.append(session)
    layers = []
    layer = np.zeros((h, w, 4), np.uint8)
    layer[40:44, 5:135] = (20, 20, 20, 255)  # across the ring: splits its inside
    layers.append(layer.copy())
    layer[60:70, 90:100] = (0, 0, 0, 255)  # a blob
    layers.append(layer.copy())
    layer[10:30, 55:65] = (255, 255, 255, 255)  # paper white over the ring's top: opens it
    layers.append(layer.copy())
    layers.append(None)
    hows = []
    for new_layer in layers:
        for i, (art, session) in enumerate(zip(arts, sessions, strict=True)):
            if i == 1:
                art._regions.clear()  # from scratch
            old = [b.clone() for b in session.bases]
            art.set_layers(session, {0: new_layer})
            session.propagate(0)
            art.follow(session, old, 0)
        assert_same(arts[0].regions(0), find_regions(arts[0].stage(0)))
        hows.append(arts[0]._regions[0][2].how)
        for a, b in zip(arts[0].bases, arts[1].bases, strict=True):
            np.testing.assert_array_equal(a, b)
    assert hows[0] == "built" and hows.count("updated") >= 2, hows


@pytest.mark.parametrize("thread_fails", [False, True])
def test_a_line_art_edit_finds_its_regions_beside_the_model(small_windows, monkeypatch, thread_fails):
    """A region-bounded regenerate after a line-art stroke finds the line art's regions on a thread of its own
    while the model runs (LayeredArtwork.find_regions_beside): the stages come out as when they are found in
    turn, the regions are those of the stage as seen, and a thread that fails leaves the caller to find them."""
    import threading

    import core.fullres.artwork as A
    from core.fullres.regions import find_regions

    h, w = RING_SHAPE
    layer = np.zeros((h, w, 4), np.uint8)
    layer[40:44, 5:135] = (20, 20, 20, 255)  # across the ring: splits its inside
    threads = []
    updated = RegionMap.updated

    def watched(self, line):
        threads.append(threading.current_thread().name)
        if thread_fails and threading.current_thread().name == "artflow-regions":
            raise MemoryError("the thread ran out of memory")
        return updated(self, line)

    monkeypatch.setattr(RegionMap, "updated", watched)
    results, hows = [], []
    for beside in (True, False):
        if not beside:
            monkeypatch.setattr(A.LayeredArtwork, "find_regions_beside", lambda self, k: None)
        art, session = ring_artwork()
        art.regions(0)  # as the app's idle work finds them for a new drawing
        art.set_layers(session, {0: layer})
        art.regenerate(session, 0, propagation="regions")
        assert_same(art.regions(0), find_regions(art.stage(0)))
        hows.append(art._regions[0][2].how)
        results.append([np.array(b) for b in art.bases])
    assert threads == ["artflow-regions", "MainThread"]  # the update: beside the model, then in turn
    # A failed thread spent the old map: the caller found the regions again from scratch.
    assert hows == (["built", "updated"] if thread_fails else ["updated", "updated"])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


# ----- dithered line art -----
def dithered_drawing(grey: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A circle outline cut in two by a stroke, its inside shaded `grey`: (the drawing, it dithered to 1 bit by
    Pillow's convert("1"), Floyd-Steinberg)."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(im)
    s = size / 256
    d.ellipse((30 * s, 30 * s, 226 * s, 226 * s), outline=0, width=3, fill=grey)
    d.line((30 * s, 128 * s, 226 * s, 128 * s), fill=0, width=2)
    return np.asarray(im), np.asarray(im.convert("1").convert("L"))


def worst_match(want: Regions, got: Regions) -> float:
    """The lowest intersection over union of a region of `want` (those over 1% of the picture) and the region of
    `got` that holds most of it."""
    ious = []
    for label in range(1, want.count + 1):
        mine = want.labels == label
        if mine.sum() >= 0.01 * mine.size:
            theirs = got.labels == np.bincount(got.labels[mine]).argmax()
            ious.append((mine & theirs).sum() / (mine | theirs).sum())
    return min(ious)


@pytest.mark.parametrize("grey", [240, 200, 170, 140])
def test_a_dithered_line_art_has_the_regions_and_flat_of_the_drawing(grey):
    """Each dither dot was a line pixel: the shading left no paper farther than close_gap from a line, the whole
    picture was one region (or a dust of them) and the flat came out the paper's white. Undithered, the closed
    regions are the drawing's."""
    drawing, dithered = dithered_drawing(grey)
    want = R.find_regions(drawing)
    assert worst_match(want, R.find_regions(dithered)) < 0.3  # what the dither did
    smooth = R.undither(dithered)
    assert smooth is not None and smooth.shape == dithered.shape and smooth.dtype == np.uint8
    got = R.find_regions(smooth)
    assert worst_match(want, got) > 0.9 and got.count <= want.count + 5
    # The strokes are kept pixel for pixel.
    strokes = R.line_mask(drawing) & (drawing == 0) & ~near(drawing != 0, 1)
    assert (smooth[strokes] == 0).all()
    # A flat of two colours (the model's, say) keeps them, one per half of the circle.
    colours = np.full((*drawing.shape, 3), 255, np.uint8)
    colours[40:128, 40:216], colours[129:216, 40:216] = (200, 40, 40), (40, 40, 200)
    flat = clean_flat_u8(got, colours)
    assert tuple(flat[80, 128]) == (200, 40, 40) and tuple(flat[180, 128]) == (40, 40, 200)


def test_line_arts_that_are_not_dithered_are_left_alone():
    from PIL import Image, ImageDraw

    for width in (1, 2, 4):  # clean 1-bit strokes, diagonal ones included (their pixels touch only by corners)
        im = Image.new("L", (200, 160), 255)
        d = ImageDraw.Draw(im)
        d.ellipse((10, 10, 190, 150), outline=0, width=width)
        d.line((5, 5, 195, 120), fill=0, width=width)
        for k in range(12):
            d.line((20 + 14 * k, 30, 40 + 14 * k, 140), fill=0, width=width)
        d.point([(3 + 9 * k, 155) for k in range(20)], fill=0)  # a few specks
        assert R.undither(np.asarray(im)) is None
    drawing, _ = dithered_drawing(170)
    assert R.undither(drawing) is None  # greys: not 1-bit
    anti_aliased = np.asarray(Image.fromarray(drawing).resize((128, 128), Image.Resampling.LANCZOS))
    assert R.undither(anti_aliased) is None
    assert R.undither(np.full((64, 64), 255, np.uint8)) is None and R.undither(np.zeros((64, 64), np.uint8)) is None


@pytest.mark.parametrize("side, features", [(300, 40), (1100, 3), (1600, 1)])
def test_squared_distances_are_scipys_exactly(side, features):
    """region_rule._dist2 (OpenCV's exact transform, squared back to integers) equals scipy's distance transform
    squared, bit for bit: near features, and far from them, where float32 distances no longer square back to the
    right integer (1600 px from a single feature: scipy's feature transform takes over)."""
    from core.fullres.region_rule import _dist2

    rng = np.random.default_rng(side)
    not_feature = np.ones((side, side), bool)
    not_feature[rng.integers(0, side, features), rng.integers(0, side, features)] = False
    ft = ndimage.distance_transform_edt(not_feature, return_distances=False, return_indices=True).astype(np.int64)
    yy, xx = np.mgrid[:side, :side]
    expected = (ft[0] - yy) ** 2 + (ft[1] - xx) ** 2
    got = _dist2(not_feature)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, expected)
