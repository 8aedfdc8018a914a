"""The pieces of the closed regions' rule (core.fullres.regions owns the rule and its RegionMap): the Regions
result, the line mask, `near`, exact squared distances (OpenCV's exact transform, or scipy's feature transform where
the nearest pixel itself is wanted), the solid shapes' depth cut and the labelling. RegionMap.build runs them
over the whole image, core.fullres.region_windows again in windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
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
    out[y0:y1, x0:x1] = _dist2(~mask[y0:y1, x0:x1]) <= limit
    return out


# ----- distances -----
DIST_BAND = 256  # rows per band when squared distances are computed from a feature transform


def _features(not_feature: np.ndarray) -> np.ndarray:
    """scipy's feature transform: for every pixel of (h, w) bool `not_feature` the (row, column) of its nearest
    False pixel (scipy's choice among equals), (2, h, w) int32. Only the indices are asked of scipy: the
    distances it derives from them take ~40 bytes a pixel at their peak (float64 copies of the offsets), while
    _dist2_bands computes them exactly as integers, a band at a time."""
    return ndimage.distance_transform_edt(not_feature, return_distances=False, return_indices=True)


# OpenCV's float32 distances squared and rounded are the exact integers below this (measured: the first wrong one
# near 2^22); a transform reaching farther is redone with scipy's.
EXACT_CV_DIST2 = 1 << 21
EXACT_FLOAT32 = 1 << 24  # every integer below is a float32


def _dist2(not_feature: np.ndarray) -> np.ndarray:
    """(h, w) int32: every pixel's squared Euclidean distance to the nearest False pixel of `not_feature` (0 on
    them); exactly scipy's distance_transform_edt squared (the image needs a False pixel). OpenCV's exact transform
    (Felzenszwalb's, DIST_MASK_PRECISE) is ~8x faster than scipy's feature transform: a first outline's regions
    on a 2048 px sheet take two transforms of its box, the bulk of the stroke's time. Its float32 distances are
    squared back to integers in bands (no float64 copy of the image)."""
    d = cv2.distanceTransform(not_feature.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    out = np.empty(not_feature.shape, np.int32)
    for y0 in range(0, out.shape[0], DIST_BAND):
        band = d[y0:y0 + DIST_BAND].astype(np.float64)
        np.rint(np.multiply(band, band, out=band), out=band)
        out[y0:y0 + DIST_BAND] = band
    if out.size and int(out.max()) >= EXACT_CV_DIST2:
        return _dist2_image(_features(not_feature))
    return out


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


# ----- the rule's steps (RegionMap.build runs them; region_windows again in windows) -----
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
    """Ink pixels at a local maximum (3 x 3) of the depth. The maximum is OpenCV's dilation of the depths as
    float32 (exact below 2^24; ~4x scipy's maximum_filter, whose "reflect" edge repeats the edge pixel, so both
    take the maximum over the pixels inside the image), scipy's beyond."""
    if depth2.size and int(depth2.max()) < EXACT_FLOAT32:
        d = depth2.astype(np.float32)
        return line & (d >= cv2.dilate(d, np.ones((3, 3), np.uint8)))
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
