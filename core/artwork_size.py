"""The artwork sizes Artflow works with, the check every loader runs on a file's header, and where an artwork sits in
the model's square proxy (ProxyMap): a module of its own (errors only) so that the image reader, the project format
and the full-resolution pipeline all use it without importing each other.

Artworks are between MIN_SIDE and MAX_SIDE pixels on their long side, any aspect ratio. 4096 keeps a three-stage
project (float32 working copies) within the app's memory budget; the image loader refuses larger files before
decoding them (MAX_PIXELS is the matching decompression-bomb limit).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.errors import ImageError

MIN_SIDE = 64
MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE


def check_artwork_size(width: int, height: int, where: str = "image", minimum: int = MIN_SIDE) -> None:
    """One-line ImageError unless the long side is within minimum..MAX_SIDE (any aspect ratio). Loaders call it
    with the default minimum; the mapping itself takes anything from 1 px (tests use tiny models)."""
    if width < 1 or height < 1:
        raise ImageError(f"{where}: zero-size image ({width} x {height} pixels)")
    long_side = max(width, height)
    if long_side > MAX_SIDE:
        raise ImageError(f"{where}: {width} x {height} pixels is larger than Artflow works with "
                         f"({MAX_SIDE} px on the long side); scale it down first")
    if long_side < minimum:
        raise ImageError(f"{where}: {width} x {height} pixels is too small (at least {MIN_SIDE} px on the long "
                         "side)")


@dataclass(frozen=True)
class ProxyMap:
    """Where an artwork of width x height sits in its proxy: padded (centred) into a square of `side` pixels,
    then resized to `resolution`. The offsets are in artwork pixels."""

    width: int
    height: int
    resolution: int

    @property
    def side(self) -> int:
        return max(self.width, self.height)

    @property
    def left(self) -> int:
        return (self.side - self.width) // 2

    @property
    def top(self) -> int:
        return (self.side - self.height) // 2

    @property
    def scale(self) -> float:
        """Artwork pixels per proxy pixel."""
        return self.side / self.resolution

    @property
    def is_identity(self) -> bool:
        """An artwork of the model's own square size is its own proxy: its stages are the session's, as before
        full resolution existed (and its project stores no separate full-res images)."""
        return self.width == self.height == self.resolution

    @classmethod
    def for_image(cls, image: torch.Tensor, resolution: int) -> ProxyMap:
        h, w = image.shape[-2:]
        check_artwork_size(int(w), int(h), minimum=1)
        return cls(int(w), int(h), int(resolution))
