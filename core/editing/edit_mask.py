"""Helpers for editing a stage: which pixels an edit touched ("keep unedited areas")."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def edit_mask(old: torch.Tensor, new: torch.Tensor, threshold: float = 0.02, dilate: int = 3,
              feather: int = 2) -> torch.Tensor:
    """Where an edit changed a stage: (H, W) float32 in [0, 1], 1 on changed pixels, 0 far from them.

    old, new: the stage before and after the edit, (C, H, W) in [-1, 1] (same shape). A pixel counts as changed
    when some channel moved by more than `threshold` of the full range (0.02 = 5 of 255 levels, above PNG/JPEG
    round-off). The mask is 1 on the changed region grown by `dilate` pixels (the generators' receptive field
    smears an edit over its neighbourhood), then falls linearly to 0 over the next 2*feather pixels, so the
    regenerated area blends into the kept one without a seam.

    Use with `Session.set_stage(k, new, keep_mask=edit_mask(session.stages[k], new))`: later stages are
    regenerated where the mask is 1 and keep their previous pixels where it is 0.
    """
    if old.shape != new.shape or old.dim() != 3:
        raise ValueError(f"edit_mask needs two (C, H, W) images of the same shape, got {tuple(old.shape)} "
                         f"and {tuple(new.shape)}")
    if dilate < 0 or feather < 0:
        raise ValueError("dilate and feather must be >= 0")
    diff = (new.detach().float().cpu() - old.detach().float().cpu()).abs().amax(dim=0) / 2  # (H, W) in [0, 1]
    changed = (diff > threshold).float()[None, None]  # (1, 1, H, W)
    grow = dilate + feather  # grown past `dilate` so that the blur below softens outwards, not into the edit
    mask = F.max_pool2d(changed, 2 * grow + 1, stride=1, padding=grow) if grow > 0 else changed
    if feather > 0:
        # A box blur of a binary mask is a linear ramp: the softest seam for its width. No count_include_pad, so
        # the image border is not treated as "unchanged".
        mask = F.avg_pool2d(mask, 2 * feather + 1, stride=1, padding=feather, count_include_pad=False)
    return mask[0, 0].clamp(0, 1).contiguous()
