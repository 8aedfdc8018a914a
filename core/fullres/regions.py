"""The closed regions of a line art (clean flats and the fill tool's rule), found once and then kept up to date
while the artist paints on the line art: a stroke re-examines a window around it, not the whole image.

The rule (find_regions): the connected components (4-connected) of non-line pixels, with the line art's small
gaps closed the way a fill tool's "close gap" does: components are taken over the paper farther than `close_gap`
pixels from any line (so a gap up to 2 * close_gap pixels wide lets nothing through; leaving pixels out can split
regions but never merge two), then grown back over the pixels near the lines. Solid black shapes of the line art
(filled areas much thicker than its strokes) are regions of their own. The other pixels (strokes, closed gaps,
paper next to a line) join their nearest region, so that a stroke between two colours is split down its middle.

RegionMap.updated: the same regions for a changed line art, bit for bit (labels numbered alike), from the
previous map. The two costly steps of the rule are distance transforms over the whole line art (the ink's depth,
which finds solid shapes, and every stroke pixel's nearest region pixel); the map keeps both results (the squared
depth and the nearest region pixel of every pixel) and recomputes them only in windows around the changed pixels,
each window grown until nothing outside it can have changed (see _quiet_window) and each crop checked to hold
every nearest pixel it uses. Labelling the components stays global (cheap, and a stroke can split or join
regions far apart). The solid shapes' depth threshold is a median over the whole image, kept as a histogram.

Why one module of about 490 lines: the rule (build) and its update are one contract, step by step (each step of
the update recomputes a step of build in windows); tests/core/test_fullres_regions.py holds them to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy import ndimage

from core.fullres.kernels import label4

CLOSE_GAP = 2  # pixels: closes gaps up to 4 px wide, like a fill tool's default "close gap"
LINE_LEVEL = 0.0  # a pixel darker than mid-grey is line
SOLID_FACTOR = 2.5  # a line pixel deeper inside the ink than this many stroke half-widths is a filled shape
# near dilates by up to this radius with shifted ORs (measured ~10x faster than scipy's maximum_filter1d or a
# distance transform at 4096 x 3072); beyond, a distance transform in the mask's box
SMALL_RADIUS = 4
TILE = 64  # pixels: changes in tiles that touch are handled as one window
FIRST_MARGIN = 8  # pixels: the first margin a window is grown by (doubled until it is wide enough)
# A window over more than this fraction of the image: the regions are found again from scratch (as fast)
REBUILD_FRACTION = 0.5

Box = tuple[int, int, int, int]  # y0, y1, x0, x1
FOUR = ndimage.generate_binary_structure(2, 1)


@dataclass(frozen=True)
class Regions:
    """labels (H, W) int32: 1..count for every pixel, after strokes and near-line pixels joined their nearest
    region; line (H, W) bool: the line pixels; own (H, W) bool: the pixels that belong to their region in their
    own right (not a stroke, not within close_gap of one): the pixels a region's colour is measured on."""

    labels: np.ndarray
    count: int
    line: np.ndarray
    own: np.ndarray

    @cached_property
    def areas(self) -> np.ndarray:
        """Pixels per label, (count + 1,) int64 (row 0: no region)."""
        return np.bincount(self.labels.ravel(), minlength=self.count + 1)

    @cached_property
    def touching(self) -> np.ndarray:
        """Every pair of regions that meet (4-adjacent pixels with different labels, usually down the middle of
        a stroke): (n, 2) int32, each pair once with the smaller label first. Found once per line art."""
        flat = np.ascontiguousarray(self.labels).ravel()
        w = self.labels.shape[1]
        pairs = []
        # On the flat array (contiguous: ~4x faster than on 2-D slices at 4096 x 3072): right neighbours (not
        # across a row's end) and lower neighbours.
        for step, i in ((1, np.flatnonzero(flat[:-1] != flat[1:])), (w, np.flatnonzero(flat[:-w] != flat[w:]))):
            if step == 1:
                i = i[(i + 1) % w != 0]
            a, b = flat[i], flat[i + step]
            pairs.append(np.minimum(a, b).astype(np.int64) * (self.count + 1) + np.maximum(a, b))
        codes = np.unique(np.concatenate(pairs))
        return np.stack([codes // (self.count + 1), codes % (self.count + 1)], 1).astype(np.int32)


def line_mask(line_art: torch.Tensor | np.ndarray, level: float = LINE_LEVEL) -> np.ndarray:
    """Line pixels of (1, H, W) / (H, W) in [-1, 1], or of a uint8 line art (H, W) / (H, W, C) as stored."""
    if isinstance(line_art, np.ndarray) and line_art.dtype == np.uint8:
        # u / 127.5 - 1 < level, on the channels' mean, in exact integers (level 0: u < 127.5).
        u = line_art.astype(np.int32).sum(2) if line_art.ndim == 3 else line_art
        n = line_art.shape[2] if line_art.ndim == 3 else 1
        return u < (level + 1) * 127.5 * n
    a = line_art.detach().float().cpu().numpy() if isinstance(line_art, torch.Tensor) else np.asarray(line_art)
    if a.ndim == 3:
        a = a.mean(0)
    if a.ndim != 2:
        raise ValueError(f"line art must be (1, H, W) or (H, W), got shape {a.shape}")
    return a < level


# ----- dithered line art -----
# A 1-bit line art whose greys are dithered (Pillow's convert("1"), a scanner's bitmap mode) has every dot of its
# shading as a line pixel: the dots leave no paper farther than close_gap from a line, and a shaded picture has no
# regions (its flat stage came out pure white). undither finds the dots and gives them their local grey.
BINARY_SHARE = 0.99  # a line art is 1-bit when this share of its pixels is within BINARY_SLACK of black or white
BINARY_SLACK = 16
DOT_SIZE = 8  # pixels: a dither dot is a 4-connected (and, unless dense, 8-connected) speck at most this large
DOT_WINDOW = 7  # pixels: the square window over which dots are dense...
DOT_DENSITY = 0.25  # ...when this share of it is dots (a 1-px diagonal stroke, all specks, fills ~0.14 of it)
DITHERED_SHARE = 0.05  # a line art is dithered when its dots are at least this share of its dark pixels
DITHER_SIGMA = 1.5  # pixels: the Gaussian blur that gives a dot its local grey


def _dither_dots(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask` that are dither dots: specks of at most DOT_SIZE pixels 4-connected, either apart
    (also 8-connected: a sparse dither) or dense (a mid-grey dither chains its dots diagonally, like a thin
    stroke, but much more of them)."""
    labels, _ = ndimage.label(mask)
    small = (np.bincount(labels.ravel()) <= DOT_SIZE)[labels] & mask
    if not small.any():
        return small
    labels, _ = ndimage.label(mask, np.ones((3, 3), bool))
    apart = (np.bincount(labels.ravel()) <= DOT_SIZE)[labels]
    del labels
    dense = ndimage.uniform_filter(small.astype(np.float32), DOT_WINDOW, mode="constant") >= DOT_DENSITY
    return small & (apart | dense)


def undither(line_art: np.ndarray) -> np.ndarray | None:
    """A dithered 1-bit line art (H, W) uint8 with its dither smoothed, or None when it is not one (an
    anti-aliased or clean 1-bit line art is left alone). Dark dots (a light grey's) and paper dots (a dark
    grey's) take the Gaussian-blurred grey of their neighbourhood, and so does the paper between them; the
    strokes are kept pixel for pixel. A light shading then is paper with a grey tint (not line) and a dark one a
    solid shape, as in the drawing before it was dithered."""
    u = np.asarray(line_art)
    if u.dtype != np.uint8 or u.ndim != 2:
        raise ValueError(f"undither takes a uint8 (H, W) line art, got {u.dtype} {u.shape}")
    binary = np.count_nonzero((u <= BINARY_SLACK) | (u >= 255 - BINARY_SLACK))
    if binary < BINARY_SHARE * u.size:
        return None
    dark = u < 128
    dark_dots, paper_dots = _dither_dots(dark), _dither_dots(~dark)
    dots = np.count_nonzero(dark_dots) + np.count_nonzero(paper_dots)
    if dots < max(16, DITHERED_SHARE * np.count_nonzero(dark)):
        return None
    # What is smoothed: the dots and the pixels next to them, never a stroke (a dark pixel that is no dot).
    zone = ndimage.binary_dilation(dark_dots | paper_dots, np.ones((3, 3), bool)) & ~(dark & ~dark_dots)
    blurred = ndimage.gaussian_filter(u.astype(np.float32), DITHER_SIGMA, mode="nearest")
    out = u.copy()
    out[zone] = np.rint(blurred[zone]).clip(0, 255).astype(np.uint8)
    return out


def near(mask: np.ndarray, radius: float) -> np.ndarray:
    """The pixels within Euclidean distance `radius` of a True pixel of `mask`, i.e.
    distance_transform_edt(~mask) <= radius, exactly. A small radius is a dilation by the disc's offsets (shifted
    ORs: no distance transform over the whole image); a large one a distance transform over the mask's bounding
    box grown by the radius (nothing farther can be that near)."""
    h, w = mask.shape
    r = int(np.floor(radius))
    if r <= SMALL_RADIUS:
        out = mask.copy()
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if (dy or dx) and dy * dy + dx * dx <= radius * radius:
                    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] |= \
                        mask[max(0, -dy):h + min(0, -dy), max(0, -dx):w + min(0, -dx)]
        return out
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    out = np.zeros_like(mask)
    if rows.size == 0:
        return out
    y0, y1 = max(0, rows[0] - r - 1), min(h, rows[-1] + r + 2)
    x0, x1 = max(0, cols[0] - r - 1), min(w, cols[-1] + r + 2)
    limit = _depth_limit(radius)  # sqrt(d2) <= radius exactly when d2 <= limit
    ft = _features(~mask[y0:y1, x0:x1])
    for b0, b1, d2 in _dist2_bands(ft):
        out[y0 + b0:y0 + b1, x0:x1] = d2 <= limit
    return out


# ----- distances -----
DIST_BAND = 256  # rows per band when squared distances are computed from a feature transform


def _features(not_feature: np.ndarray) -> np.ndarray:
    """scipy's feature transform: for every pixel of (h, w) bool `not_feature` the (row, column) of its nearest
    False pixel (scipy's choice among equals), (2, h, w) int32. Only the indices are asked of scipy: the
    distances it derives from them take ~40 bytes a pixel at their peak (float64 copies of the offsets), while
    _dist2_bands computes them exactly as integers, a band at a time."""
    return ndimage.distance_transform_edt(not_feature, return_distances=False, return_indices=True)


def _dist2_bands(ft: np.ndarray, origin: tuple[int, int] = (0, 0)):
    """(y0, y1, d2) for row bands of `ft` (a feature transform, or a window of one whose first pixel is at
    `origin` in the transform's frame): d2 (y1 - y0, w) int32, each pixel's squared distance to its feature.
    Exact: sqrt(float64(d2)) is scipy's distance_transform_edt, bit for bit (it squares and adds the same
    integers in float64, where they are exact)."""
    _, h, w = ft.shape
    cols = np.arange(origin[1], origin[1] + w, dtype=np.int32)
    for y0 in range(0, h, DIST_BAND):
        y1 = min(h, y0 + DIST_BAND)
        dy = ft[0, y0:y1] - np.arange(origin[0] + y0, origin[0] + y1, dtype=np.int32)[:, None]
        dx = ft[1, y0:y1] - cols
        np.multiply(dy, dy, out=dy)
        np.multiply(dx, dx, out=dx)
        yield y0, y1, np.add(dy, dx, out=dy)


def _dist2_image(ft: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The squared distances of _dist2_bands as one (h, w) int32 array."""
    out = np.empty(ft.shape[1:], np.int32)
    for y0, y1, d2 in _dist2_bands(ft, origin):
        out[y0:y1] = d2
    return out


def _grown_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of mask's True pixels grown by `margin` (cut at the image), as an index."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    h, w = mask.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + margin + 1)))


def find_regions(line_art: torch.Tensor | np.ndarray, close_gap: int = CLOSE_GAP,
                 level: float = LINE_LEVEL) -> Regions:
    """The closed regions of a line art (see the module doc)."""
    return RegionMap.build(line_mask(line_art, level), close_gap).regions


# ----- boxes -----
def _grow(box: Box, margin: int, shape: tuple[int, int]) -> Box:
    y0, y1, x0, x1 = box
    return max(0, y0 - margin), min(shape[0], y1 + margin), max(0, x0 - margin), min(shape[1], x1 + margin)


def _ix(box: Box) -> tuple[slice, slice]:
    return slice(box[0], box[1]), slice(box[2], box[3])


def _inner(box: Box, outer: Box) -> tuple[slice, slice]:
    """`box` as an index into the crop `outer` (which contains it)."""
    return slice(box[0] - outer[0], box[1] - outer[0]), slice(box[2] - outer[2], box[3] - outer[2])


def _area(box: Box) -> int:
    return (box[1] - box[0]) * (box[3] - box[2])


def _bbox(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def change_clusters(changed: np.ndarray) -> list[Box]:
    """The bounding boxes of groups of changed pixels: tiles of TILE pixels that hold a change and touch (8-way)
    form one group, so two strokes far apart give two small boxes, not one large one."""
    box = _bbox(changed)
    if box is None:
        return []
    y0, y1, x0, x1 = box
    th, tw = -(-(y1 - y0) // TILE), -(-(x1 - x0) // TILE)
    padded = np.zeros((th * TILE, tw * TILE), bool)
    padded[:y1 - y0, :x1 - x0] = changed[y0:y1, x0:x1]
    tiles = padded.reshape(th, TILE, tw, TILE).any(axis=(1, 3))
    groups, _ = ndimage.label(tiles, structure=np.ones((3, 3), bool))
    out = []
    for i, (ty, tx) in enumerate(ndimage.find_objects(groups), 1):
        mine = (groups[ty, tx] == i).repeat(TILE, 0).repeat(TILE, 1)
        part = padded[ty.start * TILE:ty.stop * TILE, tx.start * TILE:tx.stop * TILE] & mine
        by0, by1, bx0, bx1 = _bbox(part)
        oy, ox = y0 + ty.start * TILE, x0 + tx.start * TILE
        out.append((oy + by0, oy + by1, ox + bx0, ox + bx1))
    return out


Values = Callable[[Box], np.ndarray]  # a box -> those pixels' values


def _ring_max(values: Values, box: Box, margin: int, shape: tuple[int, int]) -> int:
    """The largest value over the pixels at Chebyshev distance margin - 1 or margin from `box` (in the image)."""
    oy0, oy1, ox0, ox1 = _grow(box, margin, shape)
    iy0, iy1, ix0, ix1 = _grow(box, margin - 2, shape)
    best = 0
    for part in ((oy0, iy0, ox0, ox1), (iy1, oy1, ox0, ox1), (iy0, iy1, ox0, ix0), (iy0, iy1, ix1, ox1)):
        if part[0] < part[1] and part[2] < part[3]:
            best = max(best, int(values(part).max()))
    return best


def _quiet_window(dist2: Values, box: Box, shape: tuple[int, int]) -> Box | None:
    """A box around `box` outside which no pixel's nearest feature can change when pixels inside `box` change
    (become or stop being features). dist2: the squared distance of pixels to their nearest feature before the
    change (a distance d that moves by at most 1 per pixel); None when the box would be too large.

    A pixel p whose nearest feature changes is at least as far from its feature as from the box: d(p) >=
    |p - c| for some changed pixel c. On the segment from c to p, at the point x at Chebyshev distance m - 1/2
    from the box, d(x) >= d(p) - |p - x| >= |x - c| >= m - 1/2; the pixel nearest x is m - 1 or m from the box
    and has d >= m - 1/2 - sqrt(2)/2. So when every pixel at m - 1 or m from the box has d <= m - 2, no pixel
    outside the box grown by m is affected. (The box must hold every changed pixel; pixels of the box itself
    are always in the window.)"""
    m = FIRST_MARGIN
    limit = REBUILD_FRACTION * shape[0] * shape[1]
    while True:
        window = _grow(box, m, shape)
        if _area(window) > limit:
            return None
        if window == (0, shape[0], 0, shape[1]) or _ring_max(dist2, box, m, shape) <= (m - 2) ** 2:
            break
        m *= 2
    # Within it, only pixels at least as far from their feature as from the box can be affected: the window
    # shrinks to their bounding box (and the box's).
    # Row band by row band: a window can cover half the image, and its squared distances are int64.
    y0, y1, x0, x1 = window
    dx = np.maximum(np.maximum(box[2] - np.arange(x0, x1), np.arange(x0, x1) - (box[3] - 1)), 0)
    rows, cols = np.zeros(y1 - y0, bool), np.zeros(x1 - x0, bool)
    for band in _bands(window):
        ys = np.arange(band[0], band[1])
        dy = np.maximum(np.maximum(box[0] - ys, ys - (box[1] - 1)), 0)
        far = dist2(band) >= dy[:, None] ** 2 + dx[None, :] ** 2
        rows[band[0] - y0:band[1] - y0] = far.any(1)
        cols |= far.any(0)
    if not rows.any():
        return box
    reach = _bbox_of(rows, cols)
    return (min(box[0], y0 + reach[0]), max(box[1], y0 + reach[1]), min(box[2], x0 + reach[2]),
            max(box[3], x0 + reach[3]))


def _bands(box: Box) -> list[Box]:
    """`box` cut into bands of DIST_BAND rows: per-pixel temporaries stay a band's size."""
    y0, y1, x0, x1 = box
    return [(b, min(y1, b + DIST_BAND), x0, x1) for b in range(y0, y1, DIST_BAND)]


def _bbox_of(rows: np.ndarray, cols: np.ndarray) -> Box:
    """_bbox of a mask given which of its rows and columns hold a True pixel (some do)."""
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    return int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1


def _crop_valid(d2max: int, crop: Box, shape: tuple[int, int], margin: int) -> bool:
    """Whether the squared distances of a window's pixels (the largest: d2max), computed on `crop` (the window
    grown by `margin`, with a feature in it), are the whole image's: every pixel of the window is nearer its crop
    feature than any pixel outside the crop."""
    return crop == (0, shape[0], 0, shape[1]) or float(np.sqrt(np.float64(d2max))) <= margin


def _depth_limit(cut: float) -> int:
    """The largest integer n with sqrt(n) <= cut, in float64 as the distance transform computes depths: a
    depth is deeper than `cut` exactly when its square exceeds this."""
    n = int(cut * cut)
    while np.sqrt(np.float64(n + 1)) <= cut:
        n += 1
    while n >= 0 and np.sqrt(np.float64(n)) > cut:
        n -= 1
    return n


def _ridge(depth2: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Ink pixels at a local maximum (3 x 3) of the depth."""
    return line & (depth2 >= ndimage.maximum_filter(depth2, size=3))


def _median_cut(hist: np.ndarray) -> float:
    """SOLID_FACTOR times the median ridge depth (at least 1), the depths given as a histogram of their squares;
    np.median's arithmetic (the mean of the two middle values for an even count)."""
    n = int(hist.sum())
    if n == 0:
        return float("nan")  # np.median of nothing (cannot happen: every blob of ink has a deepest pixel)
    cum = np.cumsum(hist)
    ranks = [n // 2 - 1, n // 2] if n % 2 == 0 else [n // 2]
    middle = np.searchsorted(cum, np.array(ranks) + 1)  # the squared depth at each rank
    return SOLID_FACTOR * max(float(np.median(np.sqrt(middle.astype(np.float64)))), 1.0)


def _add_counts(hist: np.ndarray, values: np.ndarray, sign: int) -> np.ndarray:
    if values.size == 0:
        return hist
    counts = np.bincount(values.ravel(), minlength=hist.size)
    if counts.size > hist.size:
        hist = np.concatenate([hist, np.zeros(counts.size - hist.size, hist.dtype)])
    hist[:counts.size] += sign * counts
    return hist


class RegionMap:
    """find_regions' result (`regions`) and what updating it needs: depth2 (H, W) int32, every ink pixel's
    squared distance to the paper (0 on paper); nearest (H, W) int32, for every pixel the flat index of its
    region pixel (an `own` pixel: itself, else the nearest one, scipy's choice among equals); ridge (int64), the
    histogram of the ridge pixels' squared depths; cut, the solid shapes' depth threshold. An update takes the
    map's arrays over (the old map must not be used after it)."""

    def __init__(self, regions: Regions, close_gap: int, depth2: np.ndarray | None = None,
                 nearest: np.ndarray | None = None, ridge: np.ndarray | None = None, cut: float | None = None) -> None:
        self.regions = regions
        self.close_gap = close_gap
        self.depth2, self.nearest, self.ridge, self.cut = depth2, nearest, ridge, cut
        self.how = "built"  # how this map was made: "built", "unchanged", "updated" (in windows) or "rebuilt"

    @property
    def incremental(self) -> bool:
        """False for the degenerate line arts (no ink, no paper, no region): those are found from scratch."""
        return self.depth2 is not None

    # ----- from scratch -----
    @classmethod
    def build(cls, line: np.ndarray, close_gap: int = CLOSE_GAP) -> RegionMap:
        """The regions of the line mask (H, W) bool (find_regions' rule)."""
        h, w = line.shape
        if not line.any() or line.all():
            return cls(_plain_regions(line, close_gap), close_gap)
        # Region cores: paper farther than close_gap from every line pixel. A gap of up to 2 * close_gap pixels
        # has no such pixel, so a fill cannot leak through it (a fill tool's "close gap"); dropping pixels can
        # split regions, never merge two.
        own = ~near(line, close_gap) if close_gap > 0 else ~line
        # Filled shapes: ink deeper than SOLID_FACTOR stroke half-widths, grown back to their outline (an
        # opening by distance). The half-width is the median depth along the ink's ridges (local maxima of the
        # distance to paper): strokes have long ridges, filled shapes short ones, so strokes set it.
        # Within the ink's box (grown by 2: a ring of paper, the 3 x 3 filter's reach): every ink pixel's
        # nearest paper pixel is inside it, so the depths are those of the whole image.
        box = _grown_box(line, 2)
        ft = _features(line[box])
        depth2 = np.zeros((h, w), np.int32)
        for y0, y1, d2 in _dist2_bands(ft):  # squared depths as integers: no float copies of the box
            depth2[box][y0:y1] = d2
        del ft
        ridge = _add_counts(np.zeros(1, np.int64), depth2[box][_ridge(depth2[box], line[box])], 1)
        cut = _median_cut(ridge)
        solid = _solid(depth2, line, cut)
        labels, count = _label(own, solid)
        own |= solid
        if count == 0:  # all ink: one region
            return cls(Regions(np.ones(line.shape, np.int32), 1, line, np.ones(line.shape, bool)), close_gap)
        nearest = None
        if not own.all():
            # Every stroke, gap and near-line pixel joins its nearest region.
            # Within the box of those pixels grown by 2: outside it every pixel is a region's own, so a nearest
            # one is always inside (moving a farther one into the box brings it strictly closer).
            box = _grown_box(~own, 2)
            idx = _features(~own[box])
            flat = idx[0]  # the flat index, in place (int32 holds any index up to MAX_SIDE squared)
            np.multiply(flat, w, out=flat)
            flat += idx[1]
            flat += box[0].start * w + box[1].start
            nearest = np.arange(h * w, dtype=np.int32).reshape(h, w)  # (after the transform: a lower peak)
            nearest[box] = flat
            del idx, flat
            labels = labels.ravel()[nearest]
        else:
            nearest = np.arange(h * w, dtype=np.int32).reshape(h, w)
        return cls(Regions(labels, count, line, own), close_gap, depth2, nearest, ridge, cut)

    # ----- after a change -----
    def updated(self, line: np.ndarray) -> RegionMap:
        """The map of the line mask `line` (same shape), found from this one: equal to build(line). This map's
        arrays are taken over (it is spent: its regions lose their labels, and a later update of it finds the
        regions from scratch)."""
        old = self.regions
        if line.shape != old.line.shape:
            raise ValueError(f"line mask {line.shape} differs from the map's {old.line.shape}")
        incremental = self.incremental
        depth2, nearest = self.depth2, self.nearest
        self.depth2 = self.nearest = None
        changed = line != old.line
        if not changed.any() and old.labels is not None:
            out = RegionMap(Regions(old.labels, old.count, line, old.own), self.close_gap, depth2, nearest,
                            self.ridge, self.cut)
            out.how = "unchanged"
            return out
        out = None
        if incremental and line.any() and not line.all():
            # The update reads the old line and own pixels only: the old labels (a full-size int32 array) are
            # let go before the new ones are made (the spent map keeps no labels).
            self.regions = old = Regions(None, old.count, old.line, old.own)
            out = _Update(self, depth2, nearest, line, changed).run()
        if out is None:
            out = RegionMap.build(line, self.close_gap)
            out.how = "rebuilt"
        else:
            out.how = "updated"
        return out


def _plain_regions(line: np.ndarray, close_gap: int) -> Regions:
    """The rule on a line art with no ink or no paper (no depths to keep)."""
    own = ~near(line, close_gap) if line.any() and close_gap > 0 else ~line
    labels, count = ndimage.label(own, structure=FOUR)
    if count == 0:
        return Regions(np.ones(line.shape, np.int32), 1, line, np.ones(line.shape, bool))
    if not own.all():
        box = _grown_box(~own, 2)
        idx = _features(~own[box])
        crop = labels[box]
        labels[box] = crop[idx[0], idx[1]]
    return Regions(labels.astype(np.int32), int(count), line, own)


def _solid(depth2: np.ndarray, line: np.ndarray, cut: float) -> np.ndarray:
    """The solid shapes' pixels: ink within `cut` of ink deeper than `cut`."""
    core = depth2 > _depth_limit(cut)
    return near(core, cut) & line if core.any() else np.zeros_like(line)


def _label(own0: np.ndarray, solid: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels of the region cores (4-connected), then of the solid shapes (numbered after them)."""
    # kernels.label4: ndimage.label's numbering at ~2-4x its speed (the one pass over the whole image per update)
    labels, count = label4(own0)
    if solid.any():
        box = _grown_box(solid, 0)  # labelled in its box: no full-size label arrays
        solid_labels, n_solid = label4(solid[box])
        # labels[box] = where(solid_labels > 0, solid_labels + count, labels[box]), in place: the box can be
        # most of the image (large filled shapes), and each temporary of it is a full-size int array.
        shape = solid_labels > 0
        solid_labels += count
        np.copyto(labels[box], solid_labels, where=shape)
        del solid_labels, shape
        count += n_solid
    return labels.astype(np.int32, copy=False), int(count)


class _Update:
    """RegionMap.updated's steps, in order: the depths, the ridge histogram and the cut; the solid shapes and
    the region cores; the labels; each pixel's nearest region pixel. run() returns None when a window grows
    too large to be worth it (the caller finds the regions from scratch)."""

    def __init__(self, old: RegionMap, depth2: np.ndarray, nearest: np.ndarray, line: np.ndarray,
                 changed: np.ndarray) -> None:
        self.old, self.line, self.changed = old, line, changed
        self.clusters = change_clusters(changed)
        self.shape = line.shape
        self.depth2, self.nearest, self.ridge = depth2, nearest, old.ridge.copy()

    def run(self) -> RegionMap | None:
        old = self.old.regions
        cg = self.old.close_gap
        windows = self._depths()
        if windows is None:
            return None
        cut = _median_cut(self.ridge)
        if cut == self.old.cut:
            # The depths changed only inside the windows: so did the cores, and the solids within cut of them.
            solid = old.own & old.line
            reach = int(np.ceil(cut)) + 1
            limit = _depth_limit(cut)
            for win in windows:
                part = _grow(win, reach, self.shape)
                crop = _grow(part, reach, self.shape)
                core = self.depth2[_ix(crop)] > limit
                grown = near(core, cut)[_inner(part, crop)] if core.any() else False
                solid[_ix(part)] = grown & self.line[_ix(part)]
        else:
            solid = _solid(self.depth2, self.line, cut)
        # Region cores (own pixels that are not ink): change within close_gap of the changed line pixels.
        own0 = old.own & ~old.line
        for box in self.clusters:
            part = _grow(box, cg, self.shape)
            crop = _grow(part, cg, self.shape)
            lc = self.line[_ix(crop)]
            own0[_ix(part)] = (~near(lc, cg) if cg > 0 else ~lc)[_inner(part, crop)]
        labels, count = _label(own0, solid)
        own = own0 | solid
        if count == 0 or not self._nearest(own, old.own):
            return None
        labels = labels.ravel()[self.nearest]
        return RegionMap(Regions(labels, count, self.line, own), cg, self.depth2, self.nearest, self.ridge, cut)

    def _depths(self) -> list[Box] | None:
        """Brings depth2 and the ridge histogram up to the new line art, one group of changes at a time (each
        step a change of the line art from the previous step's); returns the windows where depths may have
        changed."""
        h, w = self.shape
        line = self.old.regions.line.copy()  # the line art as updated so far
        windows = []
        for box in self.clusters:
            win = _quiet_window(lambda b: self.depth2[_ix(b)], box, self.shape)
            if win is None:
                return None
            ridge_box = _grow(win, 1, self.shape)  # the ridge test reads a 3 x 3 neighbourhood
            read = _grow(win, 2, self.shape)
            before = _ridge(self.depth2[_ix(read)], line[_ix(read)])[_inner(ridge_box, read)]
            before = self.depth2[_ix(ridge_box)][before]
            line[_ix(box)] = self.line[_ix(box)]
            margin = _first_margin(int(self.depth2[_ix(win)].max()))
            while True:
                crop = _grow(win, margin, self.shape)
                ink = line[_ix(crop)]
                if not ink.all():
                    inner = _inner(win, crop)
                    d2 = _dist2_image(_features(ink)[:, inner[0], inner[1]], (inner[0].start, inner[1].start))
                    if _crop_valid(int(d2.max()), crop, self.shape, margin):
                        break
                if _area(crop) > REBUILD_FRACTION * h * w:
                    return None
                margin *= 2
            self.depth2[_ix(win)] = d2
            del d2
            after = _ridge(self.depth2[_ix(read)], line[_ix(read)])[_inner(ridge_box, read)]
            self.ridge = _add_counts(self.ridge, before, -1)
            self.ridge = _add_counts(self.ridge, self.depth2[_ix(ridge_box)][after], 1)
            windows.append(win)
        return windows

    def _nearest(self, own: np.ndarray, old_own: np.ndarray) -> bool:
        """Brings `nearest` up to the new region pixels `own`: only pixels whose nearest region pixel may have
        changed (the quiet windows of the changed own pixels) are looked at again."""
        h, w = self.shape
        # Every window from the old distances first (the updates below change them).
        windows = []
        for box in change_clusters(own != old_own):
            win = _quiet_window(lambda b: _dist2_to(self.nearest, b, w), box, self.shape)
            if win is None:
                return False
            windows.append(win)
        for win in windows:
            margin = _first_margin(max(int(_dist2_to(self.nearest, b, w).max()) for b in _bands(win)))
            while True:
                crop = _grow(win, margin, self.shape)
                paper = ~own[_ix(crop)]
                if not paper.all():
                    inner = _inner(win, crop)
                    idx = _features(paper)[:, inner[0], inner[1]]
                    d2max = max(int(d2.max()) for _, _, d2 in _dist2_bands(idx, (inner[0].start, inner[1].start)))
                    if _crop_valid(d2max, crop, self.shape, margin):
                        break
                if _area(crop) > REBUILD_FRACTION * h * w:
                    return False
                margin *= 2
            for r0 in range(0, win[1] - win[0], DIST_BAND):  # row bands: the window can be most of the image
                r1 = min(win[1] - win[0], r0 + DIST_BAND)
                self.nearest[win[0] + r0:win[0] + r1, win[2]:win[3]] = \
                    (idx[0, r0:r1] + crop[0]) * w + (idx[1, r0:r1] + crop[2])
        return True


def _first_margin(dist2_max: int) -> int:
    """A crop margin likely to hold every nearest feature of a window: its largest distance before the change
    (its largest squared distance: dist2_max; then doubled until the crop is valid)."""
    return max(FIRST_MARGIN, int(np.ceil(np.sqrt(float(dist2_max)))) + 2)


def _dist2_to(nearest: np.ndarray, box: Box, w: int) -> np.ndarray:
    """The squared distance from each pixel of `box` to its region pixel."""
    y0, y1, x0, x1 = box
    fy, fx = np.divmod(nearest[y0:y1, x0:x1], w)
    return (fy - np.arange(y0, y1)[:, None]) ** 2 + (fx - np.arange(x0, x1)[None, :]) ** 2
