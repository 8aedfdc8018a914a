"""The fill tool's pixel work, done off the GUI thread (app/canvas/fill_worker.py runs it). No Qt here.

A fill click becomes a FillJob: the stage as shown (where the seed's colour and the region's walls are read), the
artist's layer it paints on and the picture under that layer, all read-only arrays the document will not write
to. compute_fill does everything that grows with the region's size: the region (app.canvas.brush.fill_pixels,
the clean flats' gap-closing rule), the new layer, the undo step's pixels, the stage as shown afterwards and the
canvas's B, G, R, 255 copy of it. The GUI thread then only swaps arrays in (Document.commit_fill,
CanvasView.show_fill): a fill over a whole 4096 x 3072 stage never holds the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.canvas.brush import fill_pixels
from app.layers import RGBA, composite, empty_layer

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in artwork pixels
# A fill over more than this fraction of the stage gets the canvas's whole shown picture made here (swapped in);
# a smaller one only its rectangle (copied in on the GUI thread).
WHOLE_PICTURE = 0.125


@dataclass(frozen=True)
class FillJob:
    """One fill click on stage `stage` at artwork pixel (x, y)."""

    stage: int
    x: int
    y: int
    tolerance: int
    colour: tuple[int, int, int]
    opacity: float
    picture: np.ndarray  # (H, W, 3) uint8: the stage as shown (read-only)
    layer: RGBA | None  # the layer the fill paints on (read-only)
    base: np.ndarray  # (H, W, 3) uint8: the picture under the layer (read-only)
    serial: int = 0  # the canvas's count of artworks shown: a job for an earlier one is dropped


@dataclass(frozen=True)
class FillResult:
    """What a fill makes; layer None: nothing to fill (the seed on a wall, or outside)."""

    job: FillJob
    layer: RGBA | None = None  # the new layer
    rect: Rect | None = None  # the only pixels the fill changed
    before: np.ndarray | None = None  # the old layer's pixels in rect: the undo step
    picture: np.ndarray | None = None  # the stage as shown afterwards (a new array)
    shown: np.ndarray | None = None  # (H, W, 4) B, G, R, 255 of `picture` for the canvas, when the fill is large


def _word(rgba: tuple[int, int, int, int]) -> np.uint32:
    """Four bytes as the little-endian 32-bit word an RGBA (or BGRA) pixel is in memory."""
    return np.frombuffer(bytes(rgba), "<u4")[0]


def _fill_words(part: np.ndarray, region: np.ndarray, rgba: tuple[int, int, int, int]) -> None:
    """part (h, w, 4) uint8 (a slice of a contiguous image) gets `rgba` on region's pixels, one 32-bit word a
    pixel (~20x faster than boolean indexing of 4-byte pixels)."""
    np.copyto(part.view("<u4")[..., 0], _word(rgba), where=region)


def paint_region(layer: RGBA, region: np.ndarray, colour: tuple[int, int, int], opacity: float) -> None:
    """brush.apply_mask with coverage `opacity` on the True pixels of `region` and 0 elsewhere, in place: only
    the region's pixels are computed (coverage 0 leaves a pixel as it is)."""
    if opacity >= 1.0 or not np.any(layer.view("<u4")[..., 0] >= 1 << 24, where=region):  # alpha: the high byte
        # Opaque paint, or paint on an empty part of the layer: one value for the whole region (apply_mask's
        # colour is then exactly `colour`, its alpha the opacity).
        _fill_words(layer, region, (*colour, int(np.clip(np.rint(np.float32(opacity) * 255), 0, 255))))
        return
    px = layer[region].astype(np.float32)  # (N, 4)
    a_l = px[:, 3:] / 255.0
    a_out = opacity + a_l * (1 - opacity)
    num = np.asarray(colour, np.float32)[None] * opacity + px[:, :3] * (a_l * (1 - opacity))
    out = np.empty_like(px)
    out[:, :3] = np.clip(np.rint(num / np.maximum(a_out, 1e-6)), 0, 255)
    out[:, 3:] = np.clip(np.rint(a_out * 255), 0, 255)
    layer[region] = out.astype(np.uint8)


def bgra(picture: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W, 4) B, G, R, 255: the memory layout of the canvas's shown picture."""
    out = np.empty((*picture.shape[:2], 4), np.uint8)
    out[..., :3] = picture[..., ::-1]
    out[..., 3] = 255
    return out


def _show_layer(picture: np.ndarray, base: np.ndarray, layer: RGBA, region: np.ndarray) -> None:
    """picture (the stage as shown) = the layer over the base on region's pixels, in place (layers.composite's
    arithmetic). A layer of one value over the region (a fill) is a table per channel: no float copies."""
    value = layer.reshape(-1, 4)[int(np.argmax(region))] if region.flags.c_contiguous else \
        layer[np.unravel_index(int(np.argmax(region)), region.shape)]
    if np.all(layer.view("<u4")[..., 0] == _word(tuple(int(v) for v in value)), where=region):
        if value[3] == 255:  # opaque: the stage shows the layer's colour
            for c in range(3):
                np.copyto(picture[..., c], value[c], where=region)
            return
        a = np.float32(value[3]) / np.float32(255.0)
        levels = np.arange(256, dtype=np.float32)
        for c in range(3):
            # composite: rint(base * (1 - a) + colour * a) in float32, for every base level at once
            table = np.rint(levels * (1 - a) + np.float32(value[c]) * a).astype(np.uint8)
            np.copyto(picture[..., c], table.take(base[..., c]), where=region)
        return
    picture[region] = composite(base[region][None], layer[region][None])[0]


def compute_fill(job: FillJob) -> FillResult:
    h, w = job.picture.shape[:2]
    region, rect = fill_pixels(job.picture, job.x, job.y, job.tolerance)
    if rect is None:
        return FillResult(job)
    x0, y0, x1, y1 = rect
    inside = region[y0:y1, x0:x1]
    layer = empty_layer(w, h) if job.layer is None else job.layer.copy()
    before = layer[y0:y1, x0:x1].copy()
    paint_region(layer[y0:y1, x0:x1], inside, job.colour, job.opacity)
    layer.flags.writeable = False
    # The stage as shown changes only on the region's pixels: the layer over the base there.
    picture = job.picture.copy()
    _show_layer(picture[y0:y1, x0:x1], job.base[y0:y1, x0:x1], layer[y0:y1, x0:x1], inside)
    shown = bgra(picture) if (x1 - x0) * (y1 - y0) > WHOLE_PICTURE * h * w else None
    return FillResult(job, layer, rect, before, picture, shown)
