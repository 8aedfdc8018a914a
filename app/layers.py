"""Artist layers as the GUI holds them, and the pictures it shows. No Qt here.

In the app a stage's artist layer is a straight-alpha RGBA uint8 array (H, W, 4) at the artwork's own size: that
is what the brush engine paints and what is sent to the engine thread, which derives the model's proxy of it
(core/fullres/artwork.py holds the conversions and the compositing, shared with the engine). Arrays the document
holds are read-only: a changed layer is a new array, so a request can carry it without a copy.
"""

from __future__ import annotations

import numpy as np
import torch

from core.files.imageio import tensor_to_uint8
from core.fullres.artwork import RGBA, composite, is_empty, layer_to_tensors, tensors_to_layer

__all__ = ["RGBA", "composite", "empty_layer", "grey", "is_empty", "layer_to_tensors", "tensors_to_layer",
           "reduced", "rgb_of", "to_rgb"]


def empty_layer(width: int, height: int | None = None) -> RGBA:
    return np.zeros((width if height is None else height, width, 4), np.uint8)


def rgb_of(image: np.ndarray) -> np.ndarray:
    """A stage image (H, W) grey or (H, W, 3) -> (H, W, 3) uint8 for display, read-only: a grey image is
    repeated as a view (no copy: 36 MiB saved for a 4096 x 3072 line art; copy() it to write)."""
    if image.ndim == 2:
        return np.broadcast_to(image[..., None], (*image.shape, 3))
    return image


def to_rgb(image: torch.Tensor) -> np.ndarray:
    """A stage tensor (C, H, W) in [-1, 1] -> (H, W, 3) uint8 for display (grey replicated for C = 1)."""
    return np.ascontiguousarray(rgb_of(tensor_to_uint8(image)))


def reduced(a: np.ndarray, size: int) -> np.ndarray:
    """`a` subsampled by an integer step to no less than 4 * size px on its longest side (a view, no copy): a
    4096 px stage becomes a thumbnail without converting all of it."""
    step = max(1, max(a.shape[:2]) // (4 * size))
    return a[::step, ::step] if step > 1 else a


def grey(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour a 1-channel stage actually stores for a painted RGB colour."""
    v = int(round(sum(rgb) / 3))
    return v, v, v
