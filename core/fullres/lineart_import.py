"""Line art from an image (issue 28): the first stage at the drawing's own size, from a digital line layer or a scan.

read_line_art: a line-art file as a first stage gets it, the one way the app (File > Open line art) and the CLI
(`generate`, a line-art stage's image) read one: grey at its own size, a dithered 1-bit drawing's dots smoothed
(core.fullres.dither), then prepare_line_art unless the caller skips the clean-up.

prepare_line_art: alpha composited on paper white, colour to grey (ITU-R 601, as Pillow's "L"), then one of:
- a drawing on pure white paper (a Krita or other digital export, a dithered 1-bit drawing): the artist's pixels,
  unchanged bit for bit, whatever its lines and fills (grey, coloured or antialiased ones are the artist's choice);
- a scan or photo of pencil or ink on paper (its paper not pure white, but evenly lit across the page to within a
  smooth surface, and most of the picture): clean_scan;
- anything else (a painting, the photo of a scene): unchanged, since thresholding it would destroy it.
A scan whose scanner already clipped its paper to pure white reads as digital (clean_scan still cleans it).

clean_scan, in order: the paper's level (tint, uneven lighting) estimated on a small copy (a grey closing that the
lines vanish under, floored by a robust smooth fit so that a filled shape stays ink, then the paper's own mean
spread under the lines) and divided out, so the paper is 1.0 everywhere; a slight blur against noise; ink
separated by hysteresis between two thresholds (Otsu's, kept clear of the paper's grain, and a fainter one for
the light stretches of a line that touch strong ink); specks removed (scikit-image) and small gaps closed
(OpenCV); ink drawn black to mid-grey with a soft edge from the scan's own shading, paper pure white. Lines are
thresholded, never thinned or skeletonised: each keeps its place and width. Sizes (blur, specks, gaps) scale
with the long side, given for 1024 px.

No Qt: numpy, OpenCV and scikit-image (runtime dependencies of the engine for this module)."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from skimage.filters import apply_hysteresis_threshold, threshold_otsu
from skimage.morphology import remove_small_objects

from core.files.imageio import load_artwork, tensor_to_uint8
from core.fullres.dither import undither

# A digital drawing's paper is pure white: one with at least WHITE_SHARE of its pixels exactly 255 is the artist's
# as it is (whatever its lines and fills). A scan's or a photo's paper (tint, lighting, grain) almost never is.
WHITE_SHARE = 0.25
# A scan of line art on paper: its paper's level (under the lines too) stays within EVEN_BAND of a smooth surface
# (lighting across the page) over at least EVEN_SHARE of it, and at least PAPER_SHARE of its pixels are paper (within
# PAPER_BAND of that level). A painting or the photo of a scene is neither, and is left alone.
EVEN_SHARE = 0.9
EVEN_BAND = 0.15
PAPER_SHARE = 0.5
PAPER_BAND = 0.8
REFERENCE = 1024  # px: the long side the sizes below are given for
SMALL = 512  # px: the long side of the copy the paper's level is estimated on
CLOSE_RADIUS = 16  # px at SMALL: the grey closing that wipes out the lines (a stroke up to ~60 px wide at 1024)
FIT_FLOOR = 0.75  # paper is at least this share of the smooth fit (a filled shape wider than the closing is ink)
FIT_DEGREE = 3  # lighting across a page: a cubic surface in x and y
FIT_STEP = 4  # px at SMALL: the grid it is fitted on
DENOISE_SIGMA = 0.7  # px at REFERENCE: the blur before the threshold
SPECK_AREA = 12  # px at REFERENCE: ink blobs up to this area are dust or grain, removed
GAP_RADIUS = 1.5  # px at REFERENCE: the closing that joins a line across small gaps (a fill tool's gap is 2 px)
EDGE = 1  # px: the soft edge kept around the ink (from the scan's grey, always lighter than mid-grey)
# Ink thresholds, in robust standard deviations of the paper's grain below the paper (see _ink_thresholds).
STRONG_SIGMAS = 5
WEAK_SIGMAS = 3
MIN_GRAIN = 0.015


@dataclass(frozen=True)
class LineArtInfo:
    """What prepare_line_art did: `cleaned` (clean_scan ran) and `kind`: "clean" (on pure white paper), "scan" or
    "not-line-art"; with the measures that decided it: `white_share` (of the pixels, exactly white),
    `even_share` (of the page, paper level near a smooth surface) and `paper_share` (of the pixels, paper); the
    last two are None where they were not needed."""

    cleaned: bool
    kind: str
    white_share: float
    even_share: float | None = None
    paper_share: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ReadLineArt:
    """read_line_art's result: `image` (H, W) uint8, the line art as the first stage gets it; `smoothed`: a
    dithered 1-bit drawing had its dots smoothed; `cleanup`: what prepare_line_art did (None: not asked)."""

    image: np.ndarray
    smoothed: bool
    cleanup: LineArtInfo | None


def read_line_art(path, min_side: int, cleanup: bool = True) -> ReadLineArt:
    """A line-art file (any supported format and mode; alpha on paper white) as a first stage gets it, at its own
    size: grey, a dithered 1-bit drawing's dots smoothed, then cleaned up as a scan when it looks like one
    (cleanup=False: as it is). `min_side`: the shortest long side accepted. Read errors are core.files.imageio's
    (ImageReadError, ArtworkSizeError: one line each)."""
    grey = tensor_to_uint8(load_artwork(path, 1, min_side))
    smooth = undither(grey)
    if smooth is not None:
        grey = smooth
    info = None
    if cleanup:
        grey, info = prepare_line_art(grey)
    return ReadLineArt(grey, smooth is not None, info)


def to_grey(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1|2|3|4) -> (H, W) uint8: alpha composited on white, colour to grey as Pillow's "L"."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {a.dtype}")
    if a.ndim == 2:
        return a
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image (H, W) or (H, W, 1-4), got shape {a.shape}")
    colour, alpha = (a[..., :-1], a[..., -1:]) if a.shape[2] in (2, 4) else (a, None)
    if alpha is not None:
        # Over white, rounded: c * a / 255 + 255 * (1 - a / 255) in integers.
        al = alpha.astype(np.uint32)
        colour = ((colour.astype(np.uint32) * al + 255 * (255 - al) + 127) // 255).astype(np.uint8)
    if colour.shape[2] == 1:
        return np.ascontiguousarray(colour[..., 0])
    return cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_RGB2GRAY)  # 0.299 R + 0.587 G + 0.114 B, rounded


def white_share(grey: np.ndarray) -> float:
    return float(np.count_nonzero(grey == 255)) / grey.size


def _smooth_fit(env: np.ndarray) -> np.ndarray:
    """A robust cubic surface under the paper's envelope: refitted on the pixels not far below it, so that a
    filled shape (dark in the envelope too) does not pull the paper's level down. Fitted on every FIT_STEP-th
    pixel (lighting needs no more), evaluated everywhere."""
    h, w = env.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / max(w - 1, 1) * 2 - 1, y / max(h - 1, 1) * 2 - 1
    terms = np.stack([x ** i * y ** j for i in range(FIT_DEGREE + 1) for j in range(FIT_DEGREE + 1 - i)], -1)
    a, b = terms[::FIT_STEP, ::FIT_STEP].reshape(-1, terms.shape[-1]), env[::FIT_STEP, ::FIT_STEP].ravel()
    keep = np.ones(b.shape, bool)
    coef = None
    for _ in range(3):
        if keep.sum() < a.shape[1] * 4:
            break
        coef = np.linalg.lstsq(a[keep], b[keep], rcond=None)[0]
        keep = b >= 0.9 * (a @ coef)
    if coef is None:
        return np.full(env.shape, float(np.median(env)), np.float32)
    return (terms @ coef.astype(np.float32)).astype(np.float32)


def paper_level(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The paper's level under every pixel, (H, W) float32 >= 1, and the share of the page where that level is
    within EVEN_BAND of a smooth surface (lighting; a painting's or a scene's "paper" is no such surface).

    On a copy of SMALL px (lighting is smooth): a grey closing floored by a robust smooth fit finds the paper; its
    mean, spread over the ink by a normalised blur (unbiased by grain, right up to the borders), is the level."""
    h, w = grey.shape
    f = min(1.0, SMALL / max(h, w))
    sh, sw = max(1, round(h * f)), max(1, round(w * f))
    small = cv2.resize(grey, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    r = max(1, round(CLOSE_RADIUS * max(sh, sw) / SMALL))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    env = cv2.morphologyEx(small, cv2.MORPH_CLOSE, disc, borderType=cv2.BORDER_REPLICATE)
    fit = _smooth_fit(env)
    env = np.maximum(env, FIT_FLOOR * fit)
    paper = ((small >= PAPER_BAND * env) & (small >= FIT_FLOOR * fit)).astype(np.float32)
    weight = cv2.GaussianBlur(paper, (0, 0), r / 2, borderType=cv2.BORDER_REFLECT)
    mean = cv2.GaussianBlur(small * paper, (0, 0), r / 2, borderType=cv2.BORDER_REFLECT)
    # Far inside a large filled shape no paper is near: the envelope's level there.
    level = np.where(weight > 1e-3, mean / np.maximum(weight, 1e-3), env)
    ratio = level / np.maximum(fit, 1.0)  # the mean sits a little under the envelope: compared to its median
    even = float(np.mean(np.abs(ratio / max(float(np.median(ratio)), 1e-3) - 1) < EVEN_BAND))
    return np.maximum(cv2.resize(level, (w, h), interpolation=cv2.INTER_LINEAR), 1.0), even


def _ink_thresholds(lev: np.ndarray) -> tuple[float, float]:
    """(weak, strong) ink thresholds on the levelled picture: strong is Otsu's threshold between ink and paper,
    kept STRONG_SIGMAS of the paper's grain below the paper (Otsu alone splits the grain of a page with little or
    no ink); weak is WEAK_SIGMAS below it (a faint stretch of a line, kept where it touches strong ink)."""
    counts, edges = np.histogram(lev, 256, (0.0, 1.25))
    # One level only (a uniform picture: its own paper): nothing to separate, no ink.
    otsu = float(threshold_otsu(hist=(counts, (edges[:-1] + edges[1:]) / 2))) if np.count_nonzero(counts) > 1 else 0.0
    paper = lev[lev >= PAPER_BAND]
    if paper.size == 0:
        return otsu, otsu
    median = float(np.median(paper))
    # A robust standard deviation, at least MIN_GRAIN (flat digital paper has none: its antialiased edges are not ink).
    spread = max(1.4826 * float(np.median(np.abs(paper - median))), MIN_GRAIN)
    strong = min(otsu, median - STRONG_SIGMAS * spread)
    return max(strong, median - WEAK_SIGMAS * spread), strong


def _clean(grey: np.ndarray, level: np.ndarray) -> np.ndarray:
    s = max(grey.shape) / REFERENCE
    lev = grey.astype(np.float32) / level
    lev = cv2.GaussianBlur(lev, (0, 0), max(0.5, DENOISE_SIGMA * s), borderType=cv2.BORDER_REPLICATE)
    weak, strong = _ink_thresholds(lev)
    ink = apply_hysteresis_threshold(-lev, -weak, -strong)
    ink = remove_small_objects(ink, max_size=max(2, round(SPECK_AREA * s * s)), connectivity=2)
    g = max(1, round(GAP_RADIUS * s))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1))
    ink = cv2.morphologyEx(ink.view(np.uint8), cv2.MORPH_CLOSE, disc).view(bool)
    # Strong ink black, faint ink up to just under mid-grey, and around the ink a soft edge from mid-grey to the
    # paper's white: the scan's own shading, mapped so that the line pixels of the result are exactly the ink.
    out = np.full(grey.shape, 255, np.uint8)
    edge = cv2.dilate(ink.view(np.uint8), np.ones((2 * EDGE + 1, 2 * EDGE + 1), np.uint8)).view(bool) & ~ink
    out[edge] = np.clip(np.rint((lev[edge] - weak) / max(1.0 - weak, 1e-3) * 127 + 128), 128, 255)
    out[ink] = np.clip(np.rint((lev[ink] - strong) / max(weak - strong, 1e-3) * 127), 0, 127)
    return out


def clean_scan(image: np.ndarray) -> np.ndarray:
    """A scan or photo of pencil or ink on paper (uint8 grey (H, W) or colour, alpha over white) -> clean line
    art (H, W) uint8: paper white, lines black with a soft edge, specks removed, small gaps closed."""
    grey = to_grey(image)
    return _clean(grey, paper_level(grey)[0])


def prepare_line_art(image: np.ndarray) -> tuple[np.ndarray, LineArtInfo]:
    """An image as line art (H, W) uint8 and what was done: cleaned when it looks like a scan, else the grey
    picture as is (a drawing on pure white paper comes through bit for bit). See the module doc."""
    grey = to_grey(image)
    white = round(white_share(grey), 4)
    if white >= WHITE_SHARE:
        return grey, LineArtInfo(False, "clean", white)
    level, even = paper_level(grey)
    paper = float(np.count_nonzero(grey >= PAPER_BAND * level)) / grey.size
    info = LineArtInfo(False, "not-line-art", white, round(even, 4), round(paper, 4))
    if even < EVEN_SHARE or paper < PAPER_SHARE:
        return grey, info
    return _clean(grey, level), dataclasses.replace(info, cleaned=True, kind="scan")
