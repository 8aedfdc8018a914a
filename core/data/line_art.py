"""Thin line art from a flat colouring: dark outlines on white along the flat's region boundaries. No Qt.

Artists ink thin outlines and fill each closed shape with one colour. To give a model that line art, every training
drawing's line art is made from its flat stage: the flat's colour regions (4-connected pixels of one colour) are
labelled, and a line is drawn wherever two regions meet. Because the boundary is marked on the left/top side of
every colour change, no two 4-adjacent unmarked pixels belong to different regions: each closed region of the line
art (4-connected) holds exactly one region of the flat, hence one flat colour.

All images are uint8: RGB (H, W, 3), grayscale (H, W) with 0 = ink, 255 = paper; label maps (H, W) int32.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import measure

DEFAULT_WIDTH = 2  # px at 128 px: as wide as the app's thinner brushes draw at that scale
DEFAULT_MIN_AREA = 4  # px: smaller colour specks are antialiasing or rendering dust, not regions an artist inks


def color_labels(rgb: np.ndarray, min_area: int = DEFAULT_MIN_AREA) -> np.ndarray:
    """Label the 4-connected regions of identical colour of `rgb` (H, W, 3) uint8 -> (H, W) int32, 0..n-1.

    Regions smaller than `min_area` pixels are merged into the neighbour they share the longest border with.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    a = rgb.astype(np.int32)
    packed = (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]
    # skimage labels 4-connected runs of equal value in one pass (background=-1: no value is background).
    labels = measure.label(packed, background=-1, connectivity=1).astype(np.int32) - 1
    return merge_small_regions(labels, min_area) if min_area > 1 else labels


def _adjacent_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) label pairs of every 4-adjacent pixel pair with different labels, both directions."""
    h = (labels[:, :-1], labels[:, 1:])
    v = (labels[:-1, :], labels[1:, :])
    a = np.concatenate([h[0].ravel(), v[0].ravel()])
    b = np.concatenate([h[1].ravel(), v[1].ravel()])
    diff = a != b
    a, b = a[diff], b[diff]
    return np.concatenate([a, b]), np.concatenate([b, a])


def merge_small_regions(labels: np.ndarray, min_area: int, max_passes: int = 8) -> np.ndarray:
    """Merge every region smaller than `min_area` px into its longest-bordering neighbour; relabel 0..n-1."""
    labels = labels.astype(np.int32, copy=True)
    for _ in range(max_passes):
        labels = _compact(labels)
        areas = np.bincount(labels.ravel())
        small = areas < min_area
        if not small.any() or len(areas) == 1:
            break
        a, b = _adjacent_pairs(labels)
        keep = small[a]
        a, b = a[keep], b[keep]
        if len(a) == 0:
            break
        # Longest shared border: count (a, b) pairs, take each a's most frequent b.
        pair = a.astype(np.int64) * len(areas) + b
        uniq, counts = np.unique(pair, return_counts=True)
        ua, ub = uniq // len(areas), uniq % len(areas)
        order = np.lexsort((-counts, ua))
        first = np.ones(len(order), dtype=bool)
        first[1:] = ua[order][1:] != ua[order][:-1]
        target = np.arange(len(areas))
        src, dst = ua[order][first], ub[order][first]
        # Merge small regions into large neighbours first; small-into-small pairs wait for the next pass so that
        # two specks never swap labels with each other.
        into_large = ~small[dst]
        if not into_large.any():
            into_large = src < dst  # only specks touch specks: merge one way
        target[src[into_large]] = dst[into_large]
        labels = target[labels].astype(np.int32)
    return _compact(labels)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Relabel to 0..n-1 in order of the old labels."""
    _, inv = np.unique(labels.ravel(), return_inverse=True)
    return inv.reshape(labels.shape).astype(np.int32)


def boundary_mask(labels: np.ndarray) -> np.ndarray:
    """1-px boundary: pixels whose right or lower neighbour has another label (H, W) bool.

    One-sided on purpose: any two 4-adjacent unmarked pixels then share a label (see the module docstring).
    """
    b = np.zeros(labels.shape, dtype=bool)
    b[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    b[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return b


def outline(labels: np.ndarray, width: int = DEFAULT_WIDTH) -> np.ndarray:
    """Line art (H, W) uint8, black lines `width` px wide on white, along the boundaries of `labels`.

    Widening only adds ink, so the regions stay separated at any width.
    """
    if width < 1:
        raise ValueError("line width must be at least 1 px")
    ink = boundary_mask(labels)
    if width > 1:
        ink = ndimage.binary_dilation(ink, structure=np.ones((width, width), dtype=bool))
    return np.where(ink, 0, 255).astype(np.uint8)


def line_art_from_flat(flat_rgb: np.ndarray, width: int = DEFAULT_WIDTH,
                       min_area: int = DEFAULT_MIN_AREA) -> np.ndarray:
    """Line art of a flat colouring (H, W, 3) uint8: outlines of its colour regions, (H, W) uint8."""
    return outline(color_labels(flat_rgb, min_area), width)


def regions_of_line_art(line: np.ndarray, threshold: int = 128) -> tuple[np.ndarray, int]:
    """The closed regions of a line art: 4-connected components of its paper (> threshold) pixels.

    Returns (labels (H, W) int32 with 0 on ink and 1..n inside regions, n).
    """
    comp, n = ndimage.label(line > threshold, structure=ndimage.generate_binary_structure(2, 1))
    return comp.astype(np.int32), int(n)
