"""The document's pictures: each stage as shown, saved and exported, its cached composites, and the compare view's.

A mixin of app.document.Document (it holds no state of its own: the Document's clear_state sets what is listed
below, and app/document_results.py replaces the engine's pictures). It does not import the Document, so the two
never import each other.
"""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import SignalInstance

from app.layers import composite, rgb_of, to_rgb
from app.stage_layers import StageLayers
from core.files.imageio import uint8_to_tensor


class DocumentPictures:
    """Stage pictures at the artwork's size, composed of the engine's base (or a refinement preview) and the
    artist's layer. Annotations only below: what the Document provides (nothing here shadows it)."""

    full: list[np.ndarray]  # each stage's full-res base, read-only (the engine's arrays)
    artwork_size: tuple[int, int]
    full_target: np.ndarray | None
    targets: list[torch.Tensor] | None
    layers: StageLayers
    previews: dict[int, np.ndarray]
    before_final: np.ndarray | None
    lines_over: bool
    has_model: bool
    num_stages: int
    resolution: int
    stageChanged: SignalInstance
    compareChanged: SignalInstance
    _rgb: dict[int, np.ndarray]  # stage k as shown (the composite), computed when asked for
    _base_rgb: dict[int, np.ndarray]  # stage k's base as RGB, read-only (a grey base: a view, no copy)

    @property
    def width(self) -> int:
        return self.artwork_size[0]

    @property
    def height(self) -> int:
        return self.artwork_size[1]

    def base_rgb(self, k: int) -> np.ndarray:
        """Stage k's picture under the artist's layer, (H, W, 3) uint8 at the artwork's size."""
        if k in self.previews:
            return rgb_of(self.previews[k])
        img = self._base_rgb.get(k)
        if img is None:
            img = self._base_rgb[k] = rgb_of(self.full[k])
        return img

    def stage_rgb(self, k: int) -> np.ndarray:
        """Stage k as shown: (H, W, 3) uint8 at the artwork's size, the artist's layer over the generated (or
        preview) image."""
        img = self._rgb.get(k)
        if img is None:
            img = composite(self.base_rgb(k), self.layers[k])
            self._rgb[k] = img
        return img

    def stage_u8(self, k: int) -> np.ndarray:
        """Stage k as saved and exported: uint8 (H, W) or (H, W, 3) at the artwork's size (read-only: the base
        itself where nothing is painted)."""
        return composite(self.full[k], self.layers[k])

    def stage_tensor(self, k: int) -> torch.Tensor:
        """Stage k as saved and exported: (C, H, W) in [-1, 1] at the artwork's size."""
        return uint8_to_tensor(self.stage_u8(k))

    def stage_images(self) -> list[np.ndarray]:
        """Every stage as exported, uint8 (stage_u8): a quarter of float32's memory at 4096 px."""
        return [self.stage_u8(k) for k in range(self.num_stages)]

    def compare_reference(self) -> tuple[np.ndarray, str] | None:
        """What the final stage is compared with: the opened artwork, or the final stage before the last change."""
        if not self.has_model:
            return None
        if self.full_target is not None:
            return rgb_of(self.full_target), "Original"
        if self.targets is not None and self.artwork_size == (self.resolution, self.resolution):
            return to_rgb(self.targets[-1]), "Original"
        if self.before_final is not None:
            return self.before_final, "Before"
        return None

    def _capture_before(self) -> None:
        if self.has_model:
            self.before_final = self.stage_rgb(self.num_stages - 1).copy()
            self.compareChanged.emit()

    def _final_before(self, k: int) -> np.ndarray:
        """The final stage as shown before an edit of stage k (the compare view's "Before"). A copy only when the
        edit is on the final stage itself (its cached picture is mended in place)."""
        final = self.stage_rgb(self.num_stages - 1)
        return final.copy() if k == self.num_stages - 1 else final

    # ----- the cache -----
    def invalidate(self, k: int) -> None:
        """Stage k's picture changed: drop its cached composite and tell the widgets."""
        self.drop_cached_picture(k)
        self.stageChanged.emit(k)

    def drop_cached_picture(self, k: int) -> None:
        self._rgb.pop(k, None)
        self._base_rgb.pop(k, None)

    def set_full_base(self, k: int, image: np.ndarray) -> bool:
        """Stage k's full-res base from the engine; returns whether it is a new picture (the engine replaces
        the arrays of the stages it changed and shares the others)."""
        if k < len(self.full) and self.full[k] is image:
            return False
        while len(self.full) <= k:
            self.full.append(image)
        self.full[k] = image
        return True

    def _update_cached_rect(self, k: int, rect) -> None:
        """Stage k's layer changed only inside `rect`: the cached composite is mended there, not rebuilt."""
        img = self._rgb.get(k)
        if img is None or rect is None:
            self._rgb.pop(k, None)
            return
        x0, y0, x1, y1 = rect
        if img is self._base_rgb.get(k) or img is self.previews.get(k) or not img.flags.writeable:
            img = self._rgb[k] = img.copy()
        layer = self.layers[k]
        base = self.base_rgb(k)[y0:y1, x0:x1]
        img[y0:y1, x0:x1] = base if layer is None else composite(base, layer[y0:y1, x0:x1])

    def _set_cached_picture(self, k: int, img: np.ndarray) -> None:
        """Stage k as shown, computed elsewhere (a fill brings its picture along)."""
        self._rgb[k] = img

    def has_cached_picture(self, k: int) -> bool:
        return k in self._rgb

    def cached_picture(self, k: int) -> np.ndarray | None:
        """Stage k as shown when it is cached (never computed here)."""
        return self._rgb.get(k)

    def picture_for_fill(self, k: int) -> np.ndarray:
        """Stage k as shown, for the fill worker to read on its thread: the cached array is made read-only, so
        an edit that comes first mends a copy of it (_update_cached_rect), never the array being read."""
        img = self.stage_rgb(k)
        img.flags.writeable = False
        return img
