"""Edge-aware transfer of a proxy-size change onto a full-resolution image: the fast guided filter.

The guided filter (He, Sun and Tang, "Guided Image Filtering", TPAMI 2013) models the output locally as a linear
function of a guide image, q = A * I + B, fitted in small windows. Its fast form (He and Sun, "Fast Guided Filter",
2015) fits A and B at low resolution and only upsamples the coefficients: here the fit happens at the model's
proxy size (128 x 128: a few milliseconds whatever the artwork's size) and full resolution only costs a bilinear
upsampling of the coefficient maps and a multiply-add. Where the guide has an edge inside a proxy pixel, the
upsampled change follows that edge instead of smearing over the pixel.

Measured in benchmarks/bench_fullres.py at 2048 x 1536 on a shared 2-core CPU: kornia.filters.guided_blur at full
resolution took ~17x this transfer's time; with subsample=8 about the same time as this one, but it needs the change
upsampled to full resolution first and a new dependency, so the short torch version here was kept. (OpenCV's
ximgproc needs opencv-contrib, which would replace the opencv-python-headless build the extras install.)

Shapes: change (C, R, R) at the proxy size, signed (a difference of two [-1, 1] images); guide (Cg, H, W) in
[-1, 1] at the artwork's size with Cg = 1 or 3; the ProxyMap ties the two.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from core.fullres import kernels
from core.fullres.proxy import ProxyMap, proxy_of_u8, proxy_with, resize_axis
from core.platform.threads import single_threaded

# Chosen on Fluent TEST drawings (benchmarks/bench_fullres.py): radius 1..8 and eps 1e-4..1e-2 were tried; wider
# windows fit the change as a colour transform of the guide over a larger area (better whole-stage edits), while
# beyond ~4 local edits start to lose.
RADIUS = 4  # proxy pixels: a 9 x 9 window at the proxy size
EPS = 1e-2  # regularisation on the [-1, 1] scale: guide contrasts below ~sqrt(EPS) = 0.1 are smoothed over


def guided_coefficients(guide: torch.Tensor, src: torch.Tensor, radius: int = RADIUS,
                        eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit src ~ A . guide + B in every (2r+1)^2 window (He et al.), averaged over the windows covering each
    pixel. guide (Cg, h, w), src (C, h, w) at the same size. Returns A (C, Cg, h, w) and B (C, h, w).
    A colour guide (Cg = 3) solves a 3 x 3 system per pixel, so edges between colours of equal brightness
    still count. src == 0 gives A == 0 and B == 0 exactly. Compiled (kernels.guided_fit, float64 inside): at
    the proxy's size a few hundred small tensor operations cost ~15x its time."""
    if guide.shape[0] not in (1, 3):
        raise ValueError(f"the guide must have 1 or 3 channels, got {guide.shape[0]}")
    g = guide.detach().cpu().numpy().astype(np.float64)
    p = src.detach().cpu().numpy().astype(np.float64)
    a, b = kernels.guided_fit(g, p, int(radius), float(eps))
    return torch.from_numpy(a), torch.from_numpy(b)


BAND = 64  # rows per band of the full-resolution combine: the band's upsampled coefficients stay in cache


def _combine_bands(a: torch.Tensor, b: torch.Tensor, guide: torch.Tensor, pm: ProxyMap
                   ) -> Iterator[tuple[int, int, torch.Tensor]]:
    """q = up(A) . guide + up(B) at the artwork's size, as (y0, y1, rows y0:y1 of q) bands of BAND rows. The
    coefficients are smooth, so bilinear upsampling is enough: rows first for all maps at once (cheap: proxy
    width), then band by band along the columns, each band combined with the guide while it is in cache
    (measured ~3x faster than whole-image passes at 2048 x 1536)."""
    c, cg = a.shape[:2]
    r, s = pm.resolution, pm.side
    maps = torch.cat([a.reshape(c * cg, r, r), b], 0)
    rows = resize_axis(maps, s, -2, "bilinear")[:, pm.top:pm.top + pm.height]  # (M, H, R)
    for y0 in range(0, pm.height, BAND):
        y1 = min(pm.height, y0 + BAND)
        up = resize_axis(rows[:, y0:y1], s, -1, "bilinear")[:, :, pm.left:pm.left + pm.width]
        coef = up[:c * cg].reshape(c, cg, y1 - y0, pm.width)
        yield y0, y1, up[c * cg:] + (coef * guide[None, :, y0:y1]).sum(1)


def _combine(a: torch.Tensor, b: torch.Tensor, guide: torch.Tensor, pm: ProxyMap) -> torch.Tensor:
    """q = up(A) . guide + up(B) at the artwork's size, (C, H, W) (_combine_bands put together)."""
    out = torch.empty(a.shape[0], pm.height, pm.width)
    for y0, y1, q in _combine_bands(a, b, guide, pm):
        out[:, y0:y1] = q
    return out


def transfer_change_bands(change: torch.Tensor, guide: torch.Tensor, pm: ProxyMap, radius: int = RADIUS,
                          eps: float = EPS) -> Iterator[tuple[int, int, torch.Tensor]]:
    """transfer_change as (y0, y1, rows y0:y1 of its result) bands, the same values without a (C, H, W) float
    copy of the whole change (4 bytes a pixel per channel): for a caller that uses it a band at a time."""
    change = change.detach().float()
    if not torch.any(change):
        for y0 in range(0, pm.height, BAND):
            yield y0, min(pm.height, y0 + BAND), torch.zeros(change.shape[0], min(BAND, pm.height - y0), pm.width)
        return
    guide = guide.detach().float()
    a, b = guided_coefficients(proxy_with(guide, pm), change, radius, eps)
    yield from _combine_bands(a, b, guide, pm)


def transfer_change(change: torch.Tensor, guide: torch.Tensor, pm: ProxyMap, radius: int = RADIUS,
                    eps: float = EPS) -> torch.Tensor:
    """A proxy-size change (C, R, R) carried to the artwork's size along the edges of `guide` (Cg, H, W):
    returns (C, H, W), signed. A zero change gives exactly zero (unedited pixels stay the artist's own)."""
    change = change.detach().float()
    if not torch.any(change):
        return torch.zeros(change.shape[0], pm.height, pm.width)
    guide = guide.detach().float()
    a, b = guided_coefficients(proxy_with(guide, pm), change, radius, eps)
    return _combine(a, b, guide, pm)


def upsample_guided_bands(proxy: torch.Tensor, guide: torch.Tensor, pm: ProxyMap, radius: int = RADIUS,
                          eps: float = EPS) -> Iterator[tuple[int, int, torch.Tensor]]:
    """upsample_guided as (y0, y1, rows y0:y1 of its result) bands (transfer_change_bands' reason)."""
    guide = guide.detach().float()
    a, b = guided_coefficients(proxy_with(guide, pm), proxy.detach().float(), radius, eps)
    for y0, y1, q in _combine_bands(a, b, guide, pm):
        yield y0, y1, q.clamp_(-1, 1)


def upsample_guided(proxy: torch.Tensor, guide: torch.Tensor, pm: ProxyMap, radius: int = RADIUS,
                    eps: float = EPS) -> torch.Tensor:
    """A proxy image (C, R, R) brought to the artwork's size along the edges of `guide` (Cg, H, W) in [-1, 1]
    (e.g. the model's inferred line art, guided by the artwork). Returns (C, H, W) in [-1, 1]."""
    guide = guide.detach().float()
    a, b = guided_coefficients(proxy_with(guide, pm), proxy.detach().float(), radius, eps)
    return _combine(a, b, guide, pm).clamp_(-1, 1)


# A pixel whose change is bounded below this many 8-bit levels rounds back to its old value (with a margin for
# float round-off): apply_change skips it.
HALF_LEVEL = 0.45
APPLY_BAND = 32  # rows per band of apply_change: finer bands skip more of an unchanged picture


def _taps(side: int, resolution: int, offset: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear upsampling from `resolution` to `side` samples (torch's align_corners=False rule), for the
    artwork's pixels offset..offset+length: the two source indices and the second one's weight."""
    scale = np.float32(resolution / side)
    dst = np.arange(offset, offset + length, dtype=np.float32)
    src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), 0).astype(np.float32)
    i0 = np.minimum(src.astype(np.int64), resolution - 1)
    return i0, np.minimum(i0 + 1, resolution - 1), (src - i0).astype(np.float32)


def _columns_up(maps: torch.Tensor, pm: ProxyMap) -> torch.Tensor:
    """Proxy maps (M, R, R) upsampled bilinearly along their columns to the artwork's width (torch's
    align_corners=False rule): (M, R, W). A whole number of artwork pixels per proxy pixel (the usual sizes,
    e.g. 2048 / 128) is two broadcast blends, ~3x faster than torch's upsampling kernel; else that kernel."""
    r, side = pm.resolution, pm.side
    f = side // r
    if side % r or f % 2:
        return resize_axis(maps, side, -1, "bilinear")[:, :, pm.left:pm.left + pm.width]
    # Output pixel k * f + t samples the proxy at k + (t + 1/2) / f - 1/2: between k - 1 and k for t < f / 2,
    # between k and k + 1 beyond (the neighbour clamped at the border).
    t = torch.arange(f // 2, dtype=torch.float32)
    before = torch.cat([maps[..., :1], maps[..., :-1]], -1)
    after = torch.cat([maps[..., 1:], maps[..., -1:]], -1)
    out = torch.empty(*maps.shape, f)
    torch.lerp(before[..., None], maps[..., None], (t + 0.5) / f + 0.5, out=out[..., :f // 2])
    torch.lerp(maps[..., None], after[..., None], (t + f // 2 + 0.5) / f - 0.5, out=out[..., f // 2:])
    return out.reshape(*maps.shape[:-1], side)[:, :, pm.left:pm.left + pm.width]


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) runs of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], flags, [False]]).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def apply_change(base: np.ndarray, change: torch.Tensor, guide: np.ndarray, pm: ProxyMap,
                 mask: torch.Tensor | np.ndarray | None = None, guide_proxy: torch.Tensor | None = None,
                 radius: int = RADIUS, eps: float = EPS, windows: list[tuple[int, int, int, int]] | None = None
                 ) -> np.ndarray:
    """A uint8 image (H, W) or (H, W, C) after its proxy changed by `change` (C, R, R): base + mask * the change
    carried up along the edges of the uint8 `guide` (H, W) or (H, W, Cg), rounded to 8 bits. The same result as
    tensor_to_uint8(uint8_to_tensor(base) + mask * transfer_change(change, uint8_to_tensor(guide), pm)) up to
    float round-off (at most one level), without full-size float copies, and exact where the change cannot move
    a pixel by half a level: there (found per proxy cell from the filter's coefficients) and where the mask is
    0 the result is `base` itself, and no work is done. guide_proxy: proxy_of_u8(guide, pm), when known.
    windows: a list that receives every (y0, y1, x0, x1) computed (the result equals `base` outside them).
    Returns a new writable array."""
    with single_threaded():
        return _apply_change(base, change, guide, pm, mask, guide_proxy, radius, eps,
                             [] if windows is None else windows)


def _apply_change(base: np.ndarray, change: torch.Tensor, guide: np.ndarray, pm: ProxyMap,
                  mask: torch.Tensor | np.ndarray | None, guide_proxy: torch.Tensor | None, radius: int,
                  eps: float, windows: list[tuple[int, int, int, int]]) -> np.ndarray:
    out = np.array(base)
    change = change.detach().float().cpu()
    if not torch.any(change):
        return out
    gp = proxy_of_u8(guide, pm) if guide_proxy is None else guide_proxy.detach().float()
    a, b = guided_coefficients(gp, change, radius, eps)
    c, cg, r = a.shape[0], a.shape[1], pm.resolution
    maps = torch.cat([a.reshape(c * cg, r, r), b], 0)
    # |q| <= sum_g |A_g| |I_g| + |B| <= sum_g max|A_g| + max|B| over the cells a pixel interpolates from (|I| <= 1).
    peak = F.max_pool2d(maps.abs()[None], 3, stride=1, padding=1)[0]
    bound = peak[:c * cg].reshape(c, cg, r, r).sum(1) + peak[c * cg:]
    hot = (bound.amax(0) * 127.5 >= HALF_LEVEL).numpy()  # (R, R) cells where the change can show
    h, w = pm.height, pm.width
    y_lo, y_hi, x_lo, x_hi = 0, h, 0, w
    m = None
    if mask is not None:
        m = mask.detach().float().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask, np.float32)
        m = m.reshape(h, w)
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if rows.size == 0:
            return out
        y_lo, y_hi, x_lo, x_hi = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    ry0, ry1, wy = _taps(pm.side, r, pm.top, h)
    cx0, cx1, _ = _taps(pm.side, r, pm.left, w)
    # q * 127.5 = 127.5 B + sum_g A_g (u_g / 127.5 - 1) * 127.5 on the guide's 8-bit levels u: fold the constant
    # part into B, so the full-resolution loop multiplies the raw levels (linear, so it commutes with upsampling).
    a8 = maps[:c * cg]
    b8 = 127.5 * (maps[c * cg:] - a8.reshape(c, cg, r, r).sum(1))
    maps = torch.cat([a8, b8], 0)
    # Bilinear upsampling (torch's align_corners=False taps, _taps), columns first: every proxy row at the
    # artwork's width (cheap: R rows); then one compiled pass per pixel blends the two proxy rows of each map,
    # combines them with the guide and rounds (kernels.guided_windows), in the windows where the change shows.
    cols = _columns_up(maps, pm).contiguous().numpy()  # (M, R, W)
    found: list[tuple[int, int, int, int]] = []
    for y0 in range(y_lo, y_hi, APPLY_BAND):
        y1 = min(y_hi, y0 + APPLY_BAND)
        hot_cells = hot[ry0[y0]:min(r, ry0[y1 - 1] + 2)].any(0)
        hot_px = hot_cells[cx0] | hot_cells[cx1]
        hot_px[:x_lo] = False
        hot_px[x_hi:] = False
        found.extend((y0, y1, xa, xb) for xa, xb in _runs(hot_px))
    windows.extend(found)
    if not found:
        return out
    boxes = np.array(found, np.int64)
    mask_arg = np.zeros((1, 1), np.float32) if m is None else np.ascontiguousarray(m, np.float32)
    out3, base3, guide3 = (a[..., None] if a.ndim == 2 else a for a in (out, base, guide))

    def run(i0: int, i1: int) -> None:
        kernels.guided_windows(out3, base3, guide3, mask_arg, m is not None, cols, ry0, ry1, wy, boxes[i0:i1],
                               c, cg)

    kernels.split(run, len(found), (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2]))
    return out
