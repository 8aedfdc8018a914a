"""Artist layers as the GUI holds them, and their conversion to the engine's tensors. No Qt here.

In the app a stage's artist layer is a straight-alpha RGBA uint8 array (H, W, 4): that is what the brush engine
paints and what undo snapshots (64 KiB per step at 128 px). The engine wants `Layer = (colour (C, H, W) in [-1, 1],
alpha (1, H, W) in [0, 1])`; a 1-channel stage (line art) takes the grey level of the painted colour.
"""

from __future__ import annotations

import numpy as np
import torch

from core.imageio import tensor_to_uint8, uint8_to_tensor

RGBA = np.ndarray  # (H, W, 4) uint8, straight (not premultiplied) alpha


def empty_layer(size: int) -> RGBA:
    return np.zeros((size, size, 4), np.uint8)


def is_empty(layer: RGBA | None) -> bool:
    return layer is None or not layer[..., 3].any()


def layer_to_tensors(layer: RGBA | None, channels: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """RGBA uint8 -> (colour (channels, H, W) in [-1, 1], alpha (1, H, W) in [0, 1]); None (or fully transparent)
    -> None, so an erased-away layer is no layer at all."""
    if is_empty(layer):
        return None
    rgb = layer[..., :3]
    if channels == 1:
        rgb = np.rint(rgb.astype(np.float32).mean(axis=2)).astype(np.uint8)
    colour = uint8_to_tensor(np.ascontiguousarray(rgb))
    alpha = torch.from_numpy(layer[..., 3].astype(np.float32) / 255.0)[None].contiguous()
    return colour, alpha


def tensors_to_layer(layer: tuple[torch.Tensor, torch.Tensor] | None) -> RGBA | None:
    """The engine's (colour, alpha) -> RGBA uint8 (a 1-channel colour becomes grey)."""
    if layer is None:
        return None
    colour, alpha = layer
    rgb = to_rgb(colour)
    a = np.rint(alpha.detach().float().cpu().reshape(rgb.shape[:2]).clamp(0, 1).numpy() * 255).astype(np.uint8)
    out = np.concatenate([rgb, a[..., None]], axis=2)
    return None if is_empty(out) else np.ascontiguousarray(out)


def to_rgb(image: torch.Tensor) -> np.ndarray:
    """A stage tensor (C, H, W) in [-1, 1] -> (H, W, 3) uint8 for display (grey replicated for C = 1)."""
    a = tensor_to_uint8(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a)


def composite(base_rgb: np.ndarray, layer: RGBA | None) -> np.ndarray:
    """Display composite: the artist's layer over the base, (H, W, 3) uint8 (same formula as core.session.compose)."""
    if layer is None:
        return base_rgb
    a = layer[..., 3:4].astype(np.float32) / 255.0
    out = base_rgb.astype(np.float32) * (1 - a) + layer[..., :3].astype(np.float32) * a
    return np.rint(out).astype(np.uint8)


def grey(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour a 1-channel stage actually stores for a painted RGB colour."""
    v = int(round(sum(rgb) / 3))
    return v, v, v
