"""Where a full-resolution edit touched a stage ("keep unedited areas" at the artwork's own size)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

THRESHOLD = 0.02  # of the full range: 5 of 255 levels, above PNG/JPEG round-off (as core.editing.edit_mask.edit_mask)
DILATE = 8  # artwork pixels the change is grown by (the regenerated stages smear an edit a little)
FEATHER = 8  # then a linear ramp to 0 over 2 * FEATHER pixels: the mask is 0 from DILATE + 2 * FEATHER = 24 px on


def keep_mask_fullres(old: torch.Tensor, new: torch.Tensor, threshold: float = THRESHOLD, dilate: int = DILATE,
                      feather: int = FEATHER) -> torch.Tensor:
    """(H, W) float32 in [0, 1]: 1 within `dilate` pixels (Euclidean) of the pixels an edit changed (some
    channel moved by more than `threshold` of the full range), falling linearly to exactly 0 at
    `dilate + 2 * feather` pixels. old, new: (C, H, W) in [-1, 1], the stage before and after the edit.

    The rule of core.editing.edit_mask.edit_mask in artwork pixels, from one exact distance transform over the changed
    area's bounding box (grown by the mask's reach): linear in the pixel count, whatever the radius."""
    if old.shape != new.shape or old.dim() != 3:
        raise ValueError(f"keep_mask_fullres needs two (C, H, W) images of the same shape, got "
                         f"{tuple(old.shape)} and {tuple(new.shape)}")
    if dilate < 0 or feather < 0:
        raise ValueError("dilate and feather must be >= 0")
    changed = ((new.detach().float() - old.detach().float()).abs().amax(dim=0) / 2 > threshold).numpy()
    return keep_mask_from_changed(changed, dilate, feather)


def changed_box(changed: np.ndarray) -> tuple[int, int, int, int] | None:
    """The bounding box (y0, y1, x0, x1) of the True pixels of (H, W) `changed`; None when there are none."""
    rows = np.flatnonzero(changed.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(changed.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def diff_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    """changed_box of where two images of one shape ((H, W) or (H, W, C)) differ, without an (H, W) mask of the
    whole image: compared as (H, W * C) rows (an any() over a short last axis is slow)."""
    h, w = a.shape[:2]
    d = a.reshape(h, -1) != b.reshape(h, -1)
    rows = np.flatnonzero(d.any(1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(d[rows[0]:rows[-1] + 1].any(0).reshape(w, -1).any(1))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def keep_mask_from_changed(changed: np.ndarray, dilate: int = DILATE, feather: int = FEATHER) -> torch.Tensor:
    """keep_mask_fullres's mask for the changed pixels (H, W) bool."""
    h, w = changed.shape
    mask = np.zeros((h, w), np.float32)
    box = changed_box(changed)
    if box is None:
        return torch.from_numpy(mask)
    reach = dilate + 2 * feather
    y0, y1 = max(0, box[0] - reach - 1), min(h, box[1] + reach + 1)
    x0, x1 = max(0, box[2] - reach - 1), min(w, box[3] + reach + 1)
    dist = ndimage.distance_transform_edt(~changed[y0:y1, x0:x1])
    if feather > 0:
        ramp = np.clip((reach - dist) / (2 * feather), 0.0, 1.0)
    else:
        ramp = (dist <= dilate).astype(np.float64)
    mask[y0:y1, x0:x1] = ramp
    return torch.from_numpy(mask)
