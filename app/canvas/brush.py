"""The brush engine: dabs along a stroke into a coverage mask, then the mask applied to an RGBA layer. No Qt here.

A stroke is painted Krita-style in "wash" mode: dabs accumulate into a per-stroke coverage mask by maximum (so
overlapping dabs of one stroke never build up darker than the stroke's opacity), and the mask is merged into the
layer as one operation. Coordinates are in artwork pixels (floats: the view may be enlarged, so sub-pixel
positions matter); pixel (i, j) covers [j, j+1) x [i, i+1) and its centre is (j + 0.5, i + 0.5). Each call says
which rectangle it touched, so a stroke on a 4096 px artwork is merged and shown rectangle by rectangle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.fullres.flats import CLOSE_GAP, fill_region, near

PAINT, ERASE_TO_LAYER, ERASE_TO_PAPER = "paint", "erase", "erase-paper"
PAPER = (255, 255, 255)


@dataclass(frozen=True)
class BrushSettings:
    radius: float  # model pixels, at full pressure
    opacity: float = 1.0  # 0..1
    hardness: float = 0.8  # 1 = hard edge (antialiased over one pixel), 0 = soft all the way from the centre
    pressure_size: bool = True
    pressure_opacity: bool = False
    min_size: float = 0.15  # fraction of the radius at zero pressure


class Stroke:
    """Coverage of one stroke, (H, W) float32 in [0, 1]."""

    def __init__(self, height: int, width: int, brush: BrushSettings) -> None:
        self.mask = np.zeros((height, width), np.float32)
        self.brush = brush
        self._last: tuple[float, float, float] | None = None  # x, y, pressure
        self._residue = 0.0  # distance walked since the last dab
        self.bbox: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 touched by the whole stroke
        self._touched: tuple[int, int, int, int] | None = None  # ... since the last add_point

    def _radius(self, pressure: float) -> float:
        b = self.brush
        f = (b.min_size + (1 - b.min_size) * pressure) if b.pressure_size else 1.0
        return max(0.5, b.radius * f)

    def _strength(self, pressure: float) -> float:
        return self.brush.opacity * (pressure if self.brush.pressure_opacity else 1.0)

    def dab(self, x: float, y: float, pressure: float = 1.0) -> None:
        r = self._radius(pressure)
        s = self._strength(pressure)
        h, w = self.mask.shape
        x0, x1 = max(0, int(math.floor(x - r - 1))), min(w, int(math.ceil(x + r + 1)))
        y0, y1 = max(0, int(math.floor(y - r - 1))), min(h, int(math.ceil(y + r + 1)))
        if x0 >= x1 or y0 >= y1:
            return
        xs = np.arange(x0, x1, dtype=np.float32) + 0.5
        ys = np.arange(y0, y1, dtype=np.float32) + 0.5
        d = np.sqrt((xs[None, :] - x) ** 2 + (ys[:, None] - y) ** 2)
        # Hard core up to hardness*r, linear falloff beyond; the last pixel's edge is antialiased.
        edge = max(1.0, r * (1 - self.brush.hardness))
        cov = np.clip((r + 0.5 - d) / edge, 0, 1)
        cov = (cov * s).astype(np.float32)
        region = self.mask[y0:y1, x0:x1]
        np.maximum(region, cov, out=region)
        self.bbox = _union(self.bbox, (x0, y0, x1, y1))
        self._touched = _union(self._touched, (x0, y0, x1, y1))

    def add_point(self, x: float, y: float, pressure: float = 1.0) -> tuple[int, int, int, int] | None:
        """Extend the stroke to (x, y): dabs spaced a fraction of the radius apart, pressure interpolated.
        Returns the rectangle (x0, y0, x1, y1) the new dabs touched (None: none)."""
        self._touched = None
        pressure = float(min(1.0, max(0.0, pressure)))
        if self._last is None:
            self.dab(x, y, pressure)
            self._last = (x, y, pressure)
            return self._touched
        lx, ly, lp = self._last
        dist = math.hypot(x - lx, y - ly)
        spacing = max(0.3, 0.2 * self._radius(max(lp, pressure)))
        t = spacing - self._residue
        while t <= dist:
            f = t / dist
            self.dab(lx + (x - lx) * f, ly + (y - ly) * f, lp + (pressure - lp) * f)
            t += spacing
        self._residue = dist - (t - spacing)
        self._last = (x, y, pressure)
        return self._touched


def _union(a: tuple[int, int, int, int] | None, b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return b if a is None else (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def apply_mask(layer: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], mode: str = PAINT) -> np.ndarray:
    """Merge coverage `mask` (H, W) in [0, 1] into the straight-alpha RGBA `layer`; returns a new array.

    PAINT: source-over with `colour`. ERASE_TO_LAYER: removes the artist's paint (the generated image shows through).
    ERASE_TO_PAPER: paints paper white (what "erase" means on a drawing that is itself the model's input)."""
    if mode == ERASE_TO_PAPER:
        colour, mode = PAPER, PAINT
    a_l = layer[..., 3].astype(np.float32) / 255.0
    m = mask.astype(np.float32)
    out = layer.copy()
    if mode == ERASE_TO_LAYER:
        out[..., 3] = np.rint(a_l * (1 - m) * 255).astype(np.uint8)
        return out
    a_out = m + a_l * (1 - m)
    c_src = np.asarray(colour, np.float32)[None, None, :]
    c_l = layer[..., :3].astype(np.float32)
    num = c_src * m[..., None] + c_l * (a_l * (1 - m))[..., None]
    c_out = np.where(a_out[..., None] > 1e-6, num / np.maximum(a_out[..., None], 1e-6), c_l)
    out[..., :3] = np.clip(np.rint(c_out), 0, 255).astype(np.uint8)
    out[..., 3] = np.clip(np.rint(a_out * 255), 0, 255).astype(np.uint8)
    return out


def fill_mask(image_rgb: np.ndarray, x: int, y: int, tolerance: int = 32, grow: int = 1,
              close_gap: int = CLOSE_GAP) -> np.ndarray:
    """fill_pixels' region as (H, W) float32 0/1 (all zeros if (x, y) is outside the image)."""
    region, _ = fill_pixels(image_rgb, x, y, tolerance, grow, close_gap)
    return region.astype(np.float32)


def fill_pixels(image_rgb: np.ndarray, x: int, y: int, tolerance: int = 32, grow: int = 1,
                close_gap: int = CLOSE_GAP) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """Bucket-fill region: the pixels around (x, y) whose colour is within `tolerance` (sum of channel
    differences, 0..765) of the seed's, with gaps of up to 2 * close_gap pixels in what bounds them closed (the
    rule of the clean flats, core.fullres.flats.fill_region: the fill does not leak through a small gap in a
    line), grown by `grow` pixels so that antialiased edges are covered. Returns (H, W) bool and its bounding
    rectangle (x0, y0, x1, y1), or None when it is empty (the seed outside the image)."""
    h, w = image_rgb.shape[:2]
    if not (0 <= x < w and 0 <= y < h):
        return np.zeros((h, w), bool), None
    # |channel - seed's| per level, summed over the channels by table lookups (uint8 in, uint16 out: no int16
    # copies of the image).
    tables = [np.abs(np.arange(256, dtype=np.int16) - int(v)).astype(np.uint16) for v in image_rgb[y, x]]
    whole: list[np.ndarray] = []

    def wall(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        if whole:
            return whole[0][y0:y1, x0:x1]
        big = 4 * (y1 - y0) * (x1 - x0) >= h * w
        part = image_rgb if big else image_rgb[y0:y1, x0:x1]
        d = tables[0].take(part[..., 0])
        for c in range(1, len(tables)):
            d += tables[c].take(part[..., c])
        out = d > tolerance
        if big:  # a window this large: the whole image's walls once, for the windows that follow
            whole.append(out)
            return out[y0:y1, x0:x1]
        return out

    region = fill_region(wall, int(x), int(y), close_gap, shape=(h, w))
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    if rows.size == 0:
        return region, None
    # Grown within the region's box (plus the growth), not over the whole stage.
    y0, y1 = max(0, rows[0] - grow), min(h, rows[-1] + grow + 1)
    x0, x1 = max(0, cols[0] - grow), min(w, cols[-1] + grow + 1)
    # A 4-connected dilation by `grow` is the pixels within `grow` steps (city-block distance).
    part = region[y0:y1, x0:x1]
    region[y0:y1, x0:x1] = ndimage.distance_transform_cdt(~part, "taxicab") <= grow if grow > 1 else near(part, grow)
    return region, (int(x0), int(y0), int(x1), int(y1))
