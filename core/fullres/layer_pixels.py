"""The artist's layers as pixels: a stage as seen (a layer composited over its base), blends, the layer's proxy
for the session, and the read-only 8-bit arrays the artwork and the GUI share. No state: core.fullres.artwork keeps
the layers and bases of an artwork and calls these.

Images are numpy uint8 at the artwork's size, (H, W) for a grey stage and (H, W, 3) for a colour one; layers are
(H, W, 4) uint8 RGBA with straight alpha.
"""

from __future__ import annotations

import numpy as np
import torch

from core.files.imageio import tensor_to_uint8, uint8_to_tensor
from core.fullres import kernels
from core.fullres.masks import changed_box, diff_box
from core.fullres.proxy import ProxyMap, proxy_of_array
from core.session_state import Layer

RGBA = np.ndarray  # (H, W, 4) uint8, straight alpha


def frozen(a: np.ndarray) -> np.ndarray:
    """`a` made read-only (a contiguous copy first when it is not contiguous)."""
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def to_u8(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> read-only uint8 (H, W) or (H, W, 3)."""
    return frozen(tensor_to_uint8(image))


def is_empty(layer: RGBA | None) -> bool:
    # max(), not any(): ~2x faster over a strided channel (a 4096 x 3072 layer is checked on the GUI thread).
    return layer is None or layer.size == 0 or not layer[..., 3].max()


def _layer_colour(layer_rows: np.ndarray, grey: bool) -> np.ndarray:
    """A layer's colour as float32 0..255: (h, W, 3), or (h, W) for a grey stage (the rounded mean of RGB)."""
    if not grey:
        return layer_rows[..., :3].astype(np.float32)
    # rint(sum / 3) in integers: a sum of three levels over 3 never ends in .5, so it is (sum + 1) // 3 (~5x a
    # float mean over the channel axis; the line art's layer is composited at every stroke).
    total = layer_rows[..., 0].astype(np.uint16) + layer_rows[..., 1] + layer_rows[..., 2]
    return ((total + 1) // 3).astype(np.float32)


def composite(base: np.ndarray, layer: RGBA | None) -> np.ndarray:
    """The stage as seen: `layer` over `base` (same layout as base), the formula of core.editing.session.compose on the
    8-bit scale, rounded. Band by band, so a 4096 px stage needs no full-size float copies."""
    if layer is None:
        return base
    out = np.empty_like(base)
    # One compiled pass (kernels.composite_rows: this formula, bit for bit), on the cores: it runs several times
    # per stroke (the stage shown, the line art's regions, its proxy), ~5x numpy's float passes.
    out3, base3 = (a[..., None] if a.ndim == 2 else a for a in (out, base))
    kernels.split_rows(lambda r0, r1: kernels.composite_rows(out3, base3, layer, r0, r1), base.shape[0],
                       base.shape[1])
    return out


def blend(old: np.ndarray, new: np.ndarray, mask: torch.Tensor | np.ndarray,
          box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """old + mask * (new - old), rounded (uint8 images of one layout, mask (H, W) in [0, 1]): computed in the
    mask's bounding box only, `old` elsewhere. box: that bounding box, when known; `new` is then only that part
    of the image."""
    m = mask.numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    out = np.array(old)
    part = box is not None
    box = box if part else changed_box(m > 0)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    mm = m[y0:y1, x0:x1].astype(np.float32)
    if old.ndim == 3:
        mm = mm[..., None]
    o = old[y0:y1, x0:x1].astype(np.float32)
    n = (new if part else new[y0:y1, x0:x1]).astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.rint(o + mm * (n - o)), 0, 255)
    return out


def base_change(old: np.ndarray, new: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box where two bases differ (None: nowhere)."""
    return None if old is new else diff_box(old, new)


def layer_change(old: RGBA | None, new: RGBA | None) -> tuple[int, int, int, int] | None:
    """The box where two layers differ (None: nowhere): an RGBA pixel compared as one 32-bit word."""
    if old is new:
        return None
    if old is None or new is None:
        return changed_box((new if old is None else old)[..., 3] > 0)
    return changed_box(old.view(np.uint32)[..., 0] != new.view(np.uint32)[..., 0])


def layer_to_tensors(layer: RGBA | None, channels: int) -> Layer | None:
    """RGBA uint8 -> the session's (colour (channels, H, W) in [-1, 1], alpha (1, H, W) in [0, 1]) at the same
    size; None (or fully transparent) -> None. A grey stage takes the rounded mean of the painted RGB."""
    if is_empty(layer):
        return None
    colour = _layer_colour(layer, channels == 1).astype(np.uint8)
    alpha = torch.from_numpy(layer[..., 3].astype(np.float32) / 255.0)[None].contiguous()
    return uint8_to_tensor(colour), alpha


def tensors_to_layer(layer: Layer | None) -> RGBA | None:
    """The session's (colour, alpha) -> RGBA uint8 (a grey colour replicated to RGB); None when transparent."""
    if layer is None:
        return None
    colour, alpha = layer
    rgb = tensor_to_uint8(colour)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    a = np.rint(alpha.detach().float().cpu().reshape(rgb.shape[:2]).clamp(0, 1).numpy() * 255).astype(np.uint8)
    out = np.concatenate([rgb, a[..., None]], axis=2)
    return None if is_empty(out) else np.ascontiguousarray(out)


def proxy_layer(layer: RGBA | None, channels: int, pm: ProxyMap) -> Layer | None:
    """A full-res layer's proxy for the session: alpha and premultiplied colour padded with nothing (alpha 0)
    and resized like the stages (proxy_with), colour un-premultiplied (paper white where no paint reaches).
    Only the painted rows (columns for a tall artwork) are converted, a band at a time (proxy_of_array)."""
    if is_empty(layer):
        return None
    if pm.is_identity:
        return layer_to_tensors(layer, channels)
    painted = layer[..., 3] > 0
    axis_any = painted.any(0) if pm.height > pm.width else painted.any(1)
    idx = np.flatnonzero(axis_any)
    grey = channels == 1

    def planes(ix: tuple[slice, ...]) -> torch.Tensor:
        # (1 + channels, h, w): alpha, then the colour premultiplied by it.
        part = layer[ix]
        alpha = torch.from_numpy(part[..., 3].astype(np.float32) / 255.0)
        colour = torch.from_numpy(_layer_colour(part, grey))
        colour = colour[None] if grey else colour.permute(2, 0, 1)
        return torch.cat([alpha[None], (colour / 127.5 - 1.0) * alpha], 0)

    p = proxy_of_array(pm, 1 + channels, planes, paper=0.0, span=(int(idx[0]), int(idx[-1]) + 1))
    p_alpha = p[:1].clamp(0, 1)
    p_colour = p[1:] / p_alpha.clamp(min=1e-6)
    p_colour = torch.where(p_alpha > 1e-6, p_colour, torch.ones_like(p_colour)).clamp_(-1, 1)
    return p_colour.contiguous(), p_alpha.contiguous()
