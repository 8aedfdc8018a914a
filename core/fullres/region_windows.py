"""RegionMap.updated's windows (core.fullres.regions): a change of the line art grouped into boxes
(change_clusters), each grown until nothing outside it can change (_quiet_window), and the rule's costly steps (the
ink's depths, the ridge histogram, the cores, every pixel's nearest region pixel) recomputed inside them
(update_in_windows), bit for bit what RegionMap.build gives over the whole image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from core.fullres.masks import changed_box
from core.fullres.region_rule import (
    DIST_BAND,
    Regions,
    _add_counts,
    _depth_limit,
    _dist2,
    _dist2_bands,
    _features,
    _label,
    _median_cut,
    _ridge,
    _solid,
    near,
)

TILE = 64  # pixels: changes in tiles that touch are handled as one window
FIRST_MARGIN = 8  # pixels: the first margin a window is grown by (doubled until it is wide enough)
# A window over more than this fraction of the image: the regions are found again from scratch (as fast)
REBUILD_FRACTION = 0.5

Box = tuple[int, int, int, int]  # y0, y1, x0, x1


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


def change_clusters(changed: np.ndarray) -> list[Box]:
    """The bounding boxes of groups of changed pixels: tiles of TILE pixels that hold a change and touch (8-way)
    form one group, so two strokes far apart give two small boxes, not one large one."""
    box = changed_box(changed)
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
        by0, by1, bx0, bx1 = changed_box(part)
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
    """changed_box of a mask given which of its rows and columns hold a True pixel (some do)."""
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    return int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1


def _crop_valid(d2max: int, crop: Box, shape: tuple[int, int], margin: int) -> bool:
    """Whether the squared distances of a window's pixels (the largest: d2max), computed on `crop` (the window
    grown by `margin`, with a feature in it), are the whole image's: every pixel of the window is nearer its crop
    feature than any pixel outside the crop."""
    return crop == (0, shape[0], 0, shape[1]) or float(np.sqrt(np.float64(d2max))) <= margin


# What an update gives RegionMap: the new regions, depth2, nearest, ridge histogram and cut.
Updated = tuple[Regions, np.ndarray, np.ndarray, np.ndarray, float]


def update_in_windows(old: Regions, close_gap: int, ridge: np.ndarray, cut: float, depth2: np.ndarray,
                      nearest: np.ndarray, line: np.ndarray, changed: np.ndarray) -> Updated | None:
    """The regions of the line mask `line` from the previous map's parts: old (only its line and own pixels are
    read), close_gap, ridge (copied), cut, depth2 and nearest (updated in place: the caller gives them up);
    changed: line != old.line. None when a window grows too large to be worth it (the caller finds the regions
    from scratch)."""
    return _Update(old, close_gap, ridge, cut, depth2, nearest, line, changed).run()


class _Update:
    """RegionMap.updated's steps, in order: the depths, the ridge histogram and the cut; the solid shapes and
    the region cores; the labels; each pixel's nearest region pixel. run() returns None when a window grows
    too large to be worth it (the caller finds the regions from scratch)."""

    def __init__(self, old: Regions, close_gap: int, ridge: np.ndarray, cut: float, depth2: np.ndarray,
                 nearest: np.ndarray, line: np.ndarray, changed: np.ndarray) -> None:
        self.old, self.close_gap, self.cut, self.line = old, close_gap, cut, line
        self.clusters = change_clusters(changed)
        self.shape = line.shape
        self.depth2, self.nearest, self.ridge = depth2, nearest, ridge.copy()

    def run(self) -> Updated | None:
        old = self.old
        cg = self.close_gap
        windows = self._depths()
        if windows is None:
            return None
        cut = _median_cut(self.ridge)
        if cut == self.cut:
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
        return Regions(labels, count, self.line, own), self.depth2, self.nearest, self.ridge, cut

    def _depths(self) -> list[Box] | None:
        """Brings depth2 and the ridge histogram up to the new line art, one group of changes at a time (each
        step a change of the line art from the previous step's); returns the windows where depths may have
        changed."""
        h, w = self.shape
        line = self.old.line.copy()  # the line art as updated so far
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
                    d2 = _dist2(ink)[inner]
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

