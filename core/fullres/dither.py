"""Dithered line art: a 1-bit line art whose greys are dithered (Pillow's convert("1"), a scanner's bitmap mode)
smoothed back to greys before its regions are found (undither).

Every dot of such a shading is a line pixel: the dots leave no paper farther than close_gap from a line, and a
shaded picture has no regions (its flat stage came out pure white). undither finds the dots and gives them their
local grey.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

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
