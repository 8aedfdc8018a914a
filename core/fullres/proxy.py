"""The artwork <-> proxy mapping: the model works on a small square proxy, the artist on the artwork's own size.

Artwork -> proxy: pad to a square with the paper colour (centred, never stretched), then resize to the model's
resolution (area average when shrinking, bicubic when enlarging). Proxy -> artwork: the inverse, one axis at a
time so that no square of the artwork's long side is ever allocated: the short axis is resampled and cropped
first, then the long axis (which needs no crop).

Images are float32 tensors (C, H, W) in [-1, 1] (C = 1 or 3), as everywhere in the engine; masks are (1, H, W)
in [0, 1] and go through the same functions with paper=0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.artwork_size import MAX_PIXELS as MAX_PIXELS
from core.artwork_size import MAX_SIDE as MAX_SIDE
from core.artwork_size import MIN_SIDE as MIN_SIDE
from core.artwork_size import ProxyMap as ProxyMap
from core.artwork_size import check_artwork_size as check_artwork_size
from core.fullres import kernels
from core.platform.threads import single_threaded

# The sizes Artflow works with and ProxyMap (where an artwork sits in its proxy) live in core.artwork_size (the
# image reader and the project format use them too); re-exported here, where the pipeline's callers look for them.
PAPER = 1.0  # white, the paper colour of every stage


def _as_chw(image: torch.Tensor, what: str) -> torch.Tensor:
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() == 2:
        image = image[None]
    if image.dim() != 3:
        raise ValueError(f"{what} must be (C, H, W), got shape {tuple(image.shape)}")
    return image.detach().float()


def resize_axis(x: torch.Tensor, size: int, axis: int, mode: str = "bicubic") -> torch.Tensor:
    """Resample (C, H, W) along one axis (-2 rows, -1 columns) to `size`: area average when shrinking, `mode`
    ("bicubic" or "bilinear", half-pixel centres) when enlarging; the same size is returned as is."""
    n = x.shape[axis]
    if n == size:
        return x
    target = (size, x.shape[-1]) if axis == -2 else (x.shape[-2], size)
    if size < n:
        return F.adaptive_avg_pool2d(x[None], target)[0]
    return F.interpolate(x[None], size=target, mode=mode, align_corners=False)[0]


def preview_to_u8(preview: torch.Tensor, pm: ProxyMap) -> np.ndarray:
    """A quick picture of the whole proxy at any size (C, r, r) (a slider's preview) -> read-only uint8 at the
    artwork's size, (H, W) or (H, W, 3). from_proxy's geometry (bilinear, half-pixel centres, the padding cropped
    off), but enlarged in 8 bits by PIL, in one step from the preview's own size: at 2048 x 1536 about 30x quicker
    than from_proxy and an 8-bit conversion of the float result (benchmarks/bench_preview_options.py). For pictures
    shown while a slider moves; the full answer on release goes through from_proxy."""
    from PIL import Image

    from core.files.imageio import tensor_to_uint8

    small = tensor_to_uint8(preview)
    r = small.shape[0]
    if (pm.width, pm.height) != (r, r):
        k = r / pm.side
        box = (pm.left * k, pm.top * k, (pm.left + pm.width) * k, (pm.top + pm.height) * k)
        small = np.asarray(Image.fromarray(small).resize((pm.width, pm.height), Image.Resampling.BILINEAR, box=box))
    small.flags.writeable = False  # a fresh array (PIL's bytes or tensor_to_uint8's), shared read-only from here
    return small


def to_proxy(image: torch.Tensor, resolution: int, paper: float = PAPER) -> tuple[torch.Tensor, ProxyMap]:
    """Artwork (C, H, W) -> (proxy (C, resolution, resolution), its ProxyMap): padded to a square with `paper`
    (never stretched), then resized (area when shrinking, bicubic clamped to [-1, 1] when enlarging)."""
    image = _as_chw(image, "artwork")
    pm = ProxyMap.for_image(image, resolution)
    return proxy_with(image, pm, paper), pm


SQUARE_BAND = 256  # columns of the padded square averaged at a time by proxy_with


def proxy_with(image: torch.Tensor, pm: ProxyMap, paper: float = PAPER) -> torch.Tensor:
    """Like to_proxy, with a given map (e.g. a mask or another stage of the same artwork)."""
    image = _as_chw(image, "artwork")
    if tuple(image.shape[-2:]) != (pm.height, pm.width):
        raise ValueError(f"image is {image.shape[-1]}x{image.shape[-2]}, the map is for {pm.width}x{pm.height}")
    s, r = pm.side, pm.resolution
    if r > s:  # enlarging (an artwork smaller than the model's size): the padded square whole
        square = image.new_full((image.shape[0], s, s), paper)
        square[:, pm.top:pm.top + pm.height, pm.left:pm.left + pm.width] = image
        return resize_axis(resize_axis(square, r, -2), r, -1).clamp(-1, 1)
    # The rows averaged a band of columns of the padded square at a time: the same values as from the whole square
    # (each output is the mean of its own column's rows), without a (C, side, side) float copy of it (issue 29).
    rows = image.new_empty((image.shape[0], r, s))
    for x0 in range(0, s, SQUARE_BAND):
        x1 = min(s, x0 + SQUARE_BAND)
        band = image.new_full((image.shape[0], s, x1 - x0), paper)
        a, b = max(x0, pm.left), min(x1, pm.left + pm.width)
        if a < b:
            band[:, pm.top:pm.top + pm.height, a - x0:b - x0] = image[:, :, a - pm.left:b - pm.left]
        rows[:, :, x0:x1] = resize_axis(band, r, -2)
    return resize_axis(rows, r, -1)




PROXY_BAND = 128  # rows (or columns) converted to float at a time by proxy_of_array


def proxy_of_array(pm: ProxyMap, channels: int, convert: Callable[[tuple[slice, ...]], torch.Tensor],
                   paper: float = PAPER, span: tuple[int, int] | None = None) -> torch.Tensor:
    """proxy_with(image, pm, paper) of an image given block by block, without a float copy of the whole artwork
    or its padded square: convert(index) -> (channels, h, w) float tensor of the image's block at `index` (a
    numpy index: PROXY_BAND rows, or columns for a tall artwork). Each block is averaged along the long axis
    (which needs no padding), then the short axis is padded with paper and averaged. span (start, stop) along
    the short axis: where the image differs from paper (a layer's painted rows); the rest counts as paper and
    is never converted. Equal to proxy_with up to float rounding (the axes are averaged in the other order)."""
    with single_threaded():
        return _proxy_of_array(pm, channels, convert, paper, span)


def _proxy_of_array(pm: ProxyMap, channels: int, convert: Callable[[tuple[slice, ...]], torch.Tensor],
                    paper: float, span: tuple[int, int] | None) -> torch.Tensor:
    tall = pm.height > pm.width
    r, s = pm.resolution, pm.side
    short, offset = (pm.width, pm.left) if tall else (pm.height, pm.top)
    lo, hi = span if span is not None else (0, short)
    lo, hi = max(0, lo), min(short, hi)
    # The long axis averaged, the short axis padded: (C, side, R), or (C, R, side) for a tall artwork.
    line = torch.full((channels, r, s) if tall else (channels, s, r), paper)
    for i0 in range(lo, hi, PROXY_BAND):
        i1 = min(hi, i0 + PROXY_BAND)
        if tall:
            line[:, :, offset + i0:offset + i1] = resize_axis(convert((slice(None), slice(i0, i1))), r, -2)
        else:
            line[:, offset + i0:offset + i1] = resize_axis(convert((slice(i0, i1),)), r, -1)
    out = resize_axis(line, r, -1 if tall else -2)
    return out.clamp(-1, 1) if r > s else out


def u8_to_float(part: np.ndarray) -> torch.Tensor:
    """A uint8 block (h, w) or (h, w, C) -> (C, h, w) float32 in [-1, 1] (core.files.imageio.uint8_to_tensor's rule)."""
    t = torch.from_numpy(part.astype(np.float32))  # a copy: `part` may be read-only
    t = t[None] if t.dim() == 2 else t.permute(2, 0, 1)
    return t / 127.5 - 1.0


def proxy_of_u8(image: np.ndarray, pm: ProxyMap, paper: float = PAPER) -> torch.Tensor:
    """proxy_with(uint8_to_tensor(image), pm, paper) for a uint8 image (H, W) or (H, W, C). Shrinking (the
    usual case): exact integer sums over the area average's bins (bin_sums_u8), no float copy of the image;
    enlarging: proxy_of_array."""
    if pm.resolution > pm.side:
        return proxy_of_array(pm, 1 if image.ndim == 2 else image.shape[2], lambda ix: u8_to_float(image[ix]), paper)
    box = (0, pm.height, 0, pm.width)
    sums = bin_sums_u8(image, box, pm)
    rows, cols = _bin_overlap(pm.side, pm.resolution, pm.top, pm.height), \
        _bin_overlap(pm.side, pm.resolution, pm.left, pm.width)
    inside = np.outer(rows, cols)[None]  # artwork pixels in each bin; the rest is paper
    area = np.outer(*(np.diff(np.stack(_bins(pm.side, pm.resolution)), axis=0)[0],) * 2)[None]
    out = (sums / 127.5 - inside + (area - inside) * paper) / area
    return torch.from_numpy(out.astype(np.float32))


def proxy_delta_u8(new: np.ndarray, old: np.ndarray, box: tuple[int, int, int, int], pm: ProxyMap
                   ) -> torch.Tensor:
    """proxy_of_u8(new) - proxy_of_u8(old) for two uint8 images equal outside `box` (y0, y1, x0, x1), from
    the box alone: (C, R, R). Shrinking only (pm.resolution <= pm.side)."""
    y0, y1, x0, x1 = box
    sums = bin_sums_u8(new[y0:y1, x0:x1], box, pm) - bin_sums_u8(old[y0:y1, x0:x1], box, pm)
    area = np.outer(*(np.diff(np.stack(_bins(pm.side, pm.resolution)), axis=0)[0],) * 2)[None]
    return torch.from_numpy((sums / (127.5 * area)).astype(np.float32))


def _bins(n: int, r: int) -> tuple[np.ndarray, np.ndarray]:
    """The bins [start, end) of an area average from n samples down to r (adaptive_avg_pool's rule)."""
    i = np.arange(r, dtype=np.int64)
    return (i * n) // r, -((-(i + 1) * n) // r)


def _bin_overlap(n: int, r: int, offset: int, length: int) -> np.ndarray:
    """How many of the samples offset..offset+length fall in each bin."""
    start, end = _bins(n, r)
    return np.clip(np.minimum(end, offset + length) - np.maximum(start, offset), 0, None)


def bin_sums_u8(part: np.ndarray, box: tuple[int, int, int, int], pm: ProxyMap) -> np.ndarray:
    """The sums of a uint8 block (h, w) or (h, w, C) (the artwork's pixels in `box`) over each proxy pixel's bin
    of the padded square: int64 (C, R, R). One compiled pass over the block (kernels.bin_sums), its row bins
    split over the cores."""
    if pm.side > MAX_SIDE:
        raise ValueError(f"bin_sums_u8 works up to {MAX_SIDE} px (int32 sums)")
    h, w = part.shape[:2]
    block = part[..., None] if part.ndim == 2 else part
    r = pm.resolution
    start, end = _bins(pm.side, r)
    # Each bin's rows and columns within the block (empty where the bin lies outside it).
    y0, x0 = pm.top + box[0], pm.left + box[2]
    row_lo, row_hi = np.clip(start - y0, 0, h), np.clip(end - y0, 0, h)
    col_lo, col_hi = np.clip(start - x0, 0, w), np.clip(end - x0, 0, w)
    parts = kernels.split(lambda b0, b1: kernels.bin_sums(block, row_lo, row_hi, col_lo, col_hi, b0, b1), r,
                          (row_hi - row_lo) * w)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def from_proxy(proxy: torch.Tensor, pm: ProxyMap, mode: str = "bicubic", clamp: bool = True) -> torch.Tensor:
    """Proxy (C, R, R) -> the artwork's size (C, height, width): resize to the padded square and crop the
    artwork. `mode` enlarges ("bicubic" or "bilinear"); clamp keeps images in [-1, 1] (turn it off for signed
    data such as differences or filter coefficients)."""
    proxy = _as_chw(proxy, "proxy")
    if tuple(proxy.shape[-2:]) != (pm.resolution, pm.resolution):
        raise ValueError(f"proxy must be {pm.resolution}x{pm.resolution}, got shape {tuple(proxy.shape)}")
    s = pm.side
    # The short axis first (resized then cropped), the long axis last (it needs no crop): the intermediate is
    # (C, short, R), never a square of the long side.
    if pm.height <= pm.width:
        x = resize_axis(proxy, s, -2, mode)[:, pm.top:pm.top + pm.height]
        x = resize_axis(x, s, -1, mode)[:, :, pm.left:pm.left + pm.width]
    else:
        x = resize_axis(proxy, s, -1, mode)[:, :, pm.left:pm.left + pm.width]
        x = resize_axis(x, s, -2, mode)[:, pm.top:pm.top + pm.height]
    x = x.contiguous()
    return x.clamp_(-1, 1) if clamp else x
