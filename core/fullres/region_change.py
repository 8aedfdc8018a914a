"""Region-bounded edits (issue 27): a change to one stage changes the later stages only where it belongs.

The artist's pixels are never replaced. When a colour stage changes (a fill on the flat), each later colour stage
changes only at the pixels where the stage before it changed, and there by a colour transform, not by new pixels:

- The changed pixels are grouped by their (old colour, new colour) pair in the driving stage: every pixel of a
  face that went from yellow to brown is one group, the antialiased rim between two fills another.
- Each group gets one affine colour transform `new = A . old + b` of the later stage, fitted on the model's own
  proxies (the later stage as the model made it before the edit and after it, at the proxy pixels whose flats
  show the group's colours), with a ridge pull towards the no-model recolour (each channel multiplied by new flat
  / old flat; added where the old flat is too dark to divide by). A group the model says little about (a thin
  rim, a few proxy pixels) keeps close to that recolour; a large region takes the model's shading change.
- With a learned recolour in the bundle (core.nn.recolour: how the artist shades a region drawn in another flat
  colour), a group whose flat pair it knows takes the learned recolour instead, as an affine transform fitted on a
  sample of the group's own pixels. On the edit benchmark's tuning set it beat both the multiply recolour and the
  proxies' fit, and pulling it towards the proxies' fit made it worse (see the model cards), so the proxies decide
  only the groups it does not know.
- The transform is applied to the artist's own pixels of the later stage, in that group only. Every other pixel
  stays exactly as it was: no glow onto the paper, no colour on regions nobody touched.

A line-art change instead bounds the later stages by the closed regions it touched (touched_regions): the regions
of the new line art under or beside a changed line pixel, and those pixels.

The walk down the stages that chooses between the two (follow_region_rule) is written once, for the CLI's pipeline
(core.fullres.pipeline: float or 8-bit stages) and the app's artwork (core.fullres.artwork: 8-bit bases under the
artist's layers); each holds its stages its own way behind the FollowedStages protocol.

Images are uint8 (H, W) or (H, W, C) at the artwork's size, as core.fullres.artwork holds them; proxies are the
model's (C, R, R) float tensors in [-1, 1]. Work is done in bands of rows, so memory follows the band, not the
number of changed pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from core.fullres import kernels
from core.fullres.kinds import line_before, stage_kinds
from core.fullres.masks import changed_box, diff_box
from core.fullres.proxy import ProxyMap, proxy_of_u8
from core.fullres.regions import Regions, near
from core.nn.recolour import LearnedRecolour

# A proxy pixel takes part in a group's fit when both its flats (area averages) lie within this many 8-bit levels
# of the group's old and new colour: pixels that straddle an edge mix two groups and are left out.
MEMBER_LEVELS = 8
# The ridge pull towards the no-model recolour, in pseudo-samples: with a few proxy pixels a group keeps close
# to the recolour; with hundreds the model's own change decides. Chosen with the edit benchmark (artflow eval
# --edits): see the model cards.
PRIOR_WEIGHT = 8.0
# A flat channel darker than this (8-bit levels) is not divided by: its recolour prior adds the change instead.
DARK_LEVELS = 16
MAX_FITTED_GROUPS = 256  # the largest groups are fitted; the rest (edge blends, specks) take the prior
# The learned recolour sees at most this many changed pixels (a regular sample); a group with fewer than
# LEARNED_MIN_SAMPLES of them keeps the no-model prior.
LEARNED_SAMPLES = 16_384
LEARNED_MIN_SAMPLES = 16
BAND = 256  # rows per band


def changed_pixels(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """(H, W) bool: where two uint8 images of one shape differ in any channel (compared pixel by pixel only in
    the box where they differ: a stroke's edit is a small part of a large sheet)."""
    if old.shape != new.shape:
        raise ValueError(f"the images differ in shape: {old.shape} and {new.shape}")
    out = np.zeros(old.shape[:2], bool)
    box = diff_box(old, new)
    if box is not None:
        ix = np.s_[box[0]:box[1], box[2]:box[3]]
        part, a, b = out[ix], old[ix], new[ix]
        if a.ndim == 2:
            np.not_equal(a, b, out=part)
        else:  # channel by channel: ~4x numpy's any() over the short channel axis
            np.not_equal(a[..., 0], b[..., 0], out=part)
            for c in range(1, a.shape[2]):
                part |= a[..., c] != b[..., c]
    return out


def touched_regions(regions: Regions, changed: np.ndarray, reach: float = 1.5) -> np.ndarray:
    """(H, W) bool: the closed regions of a line art (`regions`, found on the new line art) that a change of its
    line pixels touched (a changed pixel within `reach` px), and the changed pixels themselves."""
    box = changed_box(changed)
    if box is None:
        return np.zeros(changed.shape, bool)
    y0, y1, x0, x1 = box
    m = int(np.ceil(reach)) + 1
    y0, y1, x0, x1 = max(0, y0 - m), min(changed.shape[0], y1 + m), max(0, x0 - m), min(changed.shape[1], x1 + m)
    hit = np.unique(regions.labels[y0:y1, x0:x1][near(changed[y0:y1, x0:x1], reach)])
    hit = hit[hit > 0]
    table = np.zeros(regions.count + 1, bool)
    table[hit] = True
    return table[regions.labels] | changed


SAMPLES = 250_000


def continuing_regions(labels: np.ndarray, bound: np.ndarray, old_flat: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of the regions inside `bound` whose flat colour stays after a line-art change.
    `labels`: the new line art's regions; `old_flat`: the flat before the change (uint8). Each touched region
    belongs to the old flat colour most of its pixels had; of the regions of one old colour, the largest continues
    the old shape and keeps its old flat pixels, the others are new shapes (a beard drawn into a face) and take
    the model's colours. Without this, every region a stroke touched took the model's new median colour: a beard
    drawn on a face repainted the whole face (structure edits of the edit benchmark)."""
    # Counted on a regular sample of at most ~SAMPLES pixels (a region's main colour is a majority: the paper
    # region of a sheet is millions of pixels); regions smaller than the sample's spacing are new shapes.
    # In the bound's box only (a stroke's bound is a few regions of a large sheet); the sample points are the
    # whole image's grid of `stride` that fall in it.
    out = np.zeros(bound.shape, bool)
    box = changed_box(bound)
    if box is None:
        return out
    stride = max(1, int(np.sqrt(np.count_nonzero(bound) / SAMPLES)))
    y0, y1, x0, x1 = box
    grid = np.s_[-(-y0 // stride) * stride:y1:stride, -(-x0 // stride) * stride:x1:stride]
    sample_labels = labels[grid]
    at = np.flatnonzero(bound[grid] & (sample_labels > 0))  # (a flat index: ~4x a 2-D boolean mask's gather)
    if at.size == 0:
        return out
    flat = _channels(old_flat)[grid]
    flat = flat.reshape(-1, flat.shape[2])
    key = np.zeros(at.size, np.int64)
    for c in range(flat.shape[1]):
        key = (key << 8) | flat[:, c].take(at)
    pairs, counts = np.unique((sample_labels.ravel().take(at).astype(np.int64) << 24) | key, return_counts=True)
    lab, colour = pairs >> 24, pairs & 0xFFFFFF
    area = np.bincount(np.searchsorted(np.unique(lab), lab), weights=counts)
    order = np.lexsort((-counts, lab))  # by label, the most frequent colour first
    first = order[np.r_[True, lab[order][1:] != lab[order][:-1]]]
    region, main_colour = lab[first], colour[first]
    region_area = area[np.searchsorted(np.unique(lab), region)]
    best = np.lexsort((-region_area, main_colour))  # by colour, the largest region first
    keep = region[best[np.r_[True, main_colour[best][1:] != main_colour[best][:-1]]]]
    ix = np.s_[y0:y1, x0:x1]
    table = np.zeros(int(max(labels[ix].max(), keep.max())) + 1, bool)
    table[keep] = True
    out[ix] = table[labels[ix]] & bound[ix]
    return out


PAPER_LEVELS = 250  # 8-bit: a pixel this light or lighter in every channel is paper


def is_paper(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: the paper pixels of a uint8 image."""
    c = _channels(image)
    paper = c[..., 0] >= PAPER_LEVELS
    for k in range(1, c.shape[2]):  # channel by channel: 8x faster than .all(2) over the (H, W, C) comparison
        paper &= c[..., k] >= PAPER_LEVELS
    return paper


def fresh_pixels(changed: np.ndarray, stage: np.ndarray, driver_old: np.ndarray, driver_new: np.ndarray
                 ) -> np.ndarray:
    """(H, W) bool: the changed pixels where both the stage and the stage before it were blank paper, and the
    stage before is paper no more: a new shape drawn on an empty part of the sheet. There is no artwork to
    recolour; the stage is generated there (the stage before plus the model's residual, as a new drawing's
    stages are). Looked at in the changed pixels' box only."""
    out = np.zeros(changed.shape, bool)
    box = changed_box(changed)
    if box is None:
        return out
    ix = np.s_[box[0]:box[1], box[2]:box[3]]
    out[ix] = changed[ix] & is_paper(stage[ix]) & is_paper(driver_old[ix]) & ~is_paper(driver_new[ix])
    return out


def _channels(a: np.ndarray) -> np.ndarray:
    return a[..., None] if a.ndim == 2 else a


def _keys(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """One int64 per pixel for its (old colour, new colour) pair: (n, C) uint8 each, C <= 3."""
    key = np.zeros(old.shape[0], np.int64)
    for c in range(old.shape[1]):
        key = (key << 8) | old[:, c]
    for c in range(new.shape[1]):
        key = (key << 8) | new[:, c]
    return key


@dataclass(frozen=True)
class ColourGroups:
    """The changed pixels' (old, new) colour pairs of a driving stage: sorted keys, their colours and counts."""

    keys: np.ndarray  # (G,) int64, sorted
    old: np.ndarray  # (G, Cd) uint8
    new: np.ndarray  # (G, Cd) uint8
    counts: np.ndarray  # (G,) int64


def colour_groups(driver_old: np.ndarray, driver_new: np.ndarray, changed: np.ndarray) -> ColourGroups:
    """The groups of colour_transforms, counted band by band."""
    do, dn = _channels(driver_old), _channels(driver_new)
    keys, counts, olds, news = [], [], [], []
    for y0 in range(0, changed.shape[0], BAND):
        sel = changed[y0:y0 + BAND]
        if not sel.any():
            continue
        o, n = do[y0:y0 + BAND][sel], dn[y0:y0 + BAND][sel]
        k, first, cnt = np.unique(_keys(o, n), return_index=True, return_counts=True)
        keys.append(k), counts.append(cnt), olds.append(o[first]), news.append(n[first])
    cd = do.shape[2]
    if not keys:
        return ColourGroups(np.zeros(0, np.int64), np.zeros((0, cd), np.uint8), np.zeros((0, cd), np.uint8),
                            np.zeros(0, np.int64))
    k_all, first, inverse = np.unique(np.concatenate(keys), return_index=True, return_inverse=True)
    total = np.bincount(inverse, weights=np.concatenate(counts)).astype(np.int64)
    return ColourGroups(k_all, np.concatenate(olds)[first], np.concatenate(news)[first], total)


def recolour_prior(old: np.ndarray, new: np.ndarray, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The no-model recolour of a stage whose driving colour went from `old` to `new` (uint8 (G, Cd) each), as
    per-channel gains and offsets on the [0, 1] scale: (G, C) each. A channel is multiplied by new / old (the
    shading kept in proportion), or shifted by new - old where old is too dark to divide by. A grey driver of
    a colour stage (or the reverse) uses the mean over its channels."""
    o, n = old.astype(np.float64) / 255.0, new.astype(np.float64) / 255.0
    if o.shape[1] != channels:
        o, n = o.mean(1, keepdims=True).repeat(channels, 1), n.mean(1, keepdims=True).repeat(channels, 1)
    # (Multiplying beat adding on the edit benchmark: 22.24 against 21.89 dB at 1024 x 768, prior alone.)
    dark = o < DARK_LEVELS / 255.0
    gain = np.where(dark, 1.0, n / np.maximum(o, 1e-6))
    offset = np.where(dark, n - o, 0.0)
    return gain, offset


def _fit(x: np.ndarray, y: np.ndarray, gain: np.ndarray, offset: np.ndarray, weight: float) -> np.ndarray:
    """Ridge fit of y ~ A x + b (x, y (N, C) on [0, 1]) pulled towards A = diag(gain), b = offset by `weight`
    pseudo-samples. Returns W (C + 1, C): [x, 1] @ W."""
    c = x.shape[1]
    xa = np.concatenate([x, np.ones((x.shape[0], 1))], 1)
    w0 = np.concatenate([np.diag(gain), offset[None]], 0)
    lhs = xa.T @ xa + weight * np.eye(c + 1)
    rhs = xa.T @ y + weight * w0
    return np.linalg.solve(lhs, rhs)


def learned_transforms(recolour: LearnedRecolour, groups: ColourGroups, stage: np.ndarray, driver_old: np.ndarray,
                       driver_new: np.ndarray, changed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The learned recolour as one affine transform per group ((G, 4, 3), as colour_transforms) and which groups
    it decides ((G,) bool: a flat pair it knows, and enough sampled pixels to fit). Fitted on a regular sample of
    the changed pixels of the stage (H, W, 3) whose driver (H, W, 3) went from driver_old to driver_new."""
    gain, offset = recolour_prior(groups.old, groups.new, 3)
    out = np.zeros((len(groups.keys), 4, 3))
    decided = np.zeros(len(groups.keys), bool)
    box = changed_box(changed)
    if box is None or len(groups.keys) == 0:
        return out, decided
    ix = np.s_[box[0]:box[1], box[2]:box[3]]
    at = np.flatnonzero(changed[ix])
    at = at[:: max(1, -(-at.size // LEARNED_SAMPLES))]
    o, n, x = (a[ix].reshape(-1, 3).take(at, 0) for a in (driver_old, driver_new, stage))
    group = np.searchsorted(groups.keys, _keys(o, n))
    fit = np.flatnonzero(np.bincount(group, minlength=len(groups.keys)) >= LEARNED_MIN_SAMPLES)
    fit = fit[recolour.knows(groups.old[fit], groups.new[fit])]
    if fit.size == 0:
        return out, decided
    take = np.isin(group, fit)
    x01, o01, n01 = (a[take].astype(np.float32) / 255.0 for a in (x, o, n))
    y = recolour.predict(x01, o01, n01).astype(np.float64)
    g_of = group[take]
    order = np.argsort(g_of, kind="stable")
    starts = np.searchsorted(g_of[order], fit)
    ends = np.searchsorted(g_of[order], fit, side="right")
    for g, a, b in zip(fit, starts, ends, strict=True):
        rows = order[a:b]
        out[g] = _fit(x01[rows].astype(np.float64), y[rows], gain[g], offset[g], 1.0)
        decided[g] = True
    return out, decided


def colour_transforms(groups: ColourGroups, driver_old_proxy: torch.Tensor, driver_new_proxy: torch.Tensor,
                      model_old: torch.Tensor, model_new: torch.Tensor, prior_weight: float | None = None,
                      learned: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """One affine transform per group, (G, C + 1, C) on the [0, 1] scale ([x, 1] @ W), for a stage of C channels
    whose proxy the model changed from `model_old` to `model_new` (C, R, R) while the driving stage's proxy went
    from `driver_old_proxy` to `driver_new_proxy` (Cd, R, R); all in [-1, 1]. `learned`: learned_transforms'
    (transforms, decided); the groups it decides take its transform. See the module notes."""
    c = model_old.shape[0]
    prior_weight = PRIOR_WEIGHT if prior_weight is None else prior_weight
    gain, offset = recolour_prior(groups.old, groups.new, c)
    out = np.zeros((len(groups.keys), c + 1, c))
    for g in range(len(groups.keys)):
        out[g, :c] = np.diag(gain[g])
        out[g, c] = offset[g]
    decided = np.zeros(len(groups.keys), bool)
    if learned is not None:
        decided = learned[1]
        out[decided] = learned[0][decided]
    if prior_weight == float("inf") or len(groups.keys) == 0 or decided.all():
        return out

    def levels(t: torch.Tensor) -> np.ndarray:  # (R * R, C) on 8-bit levels
        return ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).reshape(t.shape[0], -1).T.numpy()

    po, pn = levels(driver_old_proxy), levels(driver_new_proxy)
    x_all = levels(model_old) / 255.0
    y_all = levels(model_new) / 255.0
    for g in [g for g in np.argsort(-groups.counts)[:MAX_FITTED_GROUPS] if not decided[g]]:
        member = ((np.abs(po - groups.old[g]).max(1) <= MEMBER_LEVELS)
                  & (np.abs(pn - groups.new[g]).max(1) <= MEMBER_LEVELS))
        if member.any():
            out[g] = _fit(x_all[member], y_all[member], gain[g], offset[g], prior_weight)
    return out


def follow_colour_change(stage: np.ndarray, driver_old: np.ndarray, driver_new: np.ndarray,
                         model_old: torch.Tensor, model_new: torch.Tensor, pm: ProxyMap,
                         prior_weight: float | None = None, driver_proxies: tuple[torch.Tensor, torch.Tensor]
                         | None = None, changed: np.ndarray | None = None,
                         recolour: LearnedRecolour | None = None) -> np.ndarray:
    """A later colour stage (uint8 at the artwork's size, the artist's pixels) after the stage before it went from
    `driver_old` to `driver_new` and the model's proxy of it from `model_old` to `model_new`: each changed pixel
    of the driver moves this stage's pixel by its group's transform (module notes); every other pixel is the
    stage's own. driver_proxies: proxy_of_u8 of driver_old and driver_new, when known; changed: their
    changed_pixels, when known. recolour: the bundle's learned recolour, if any (used for colour stages driven by
    colour stages). Returns a new array."""
    changed = changed_pixels(driver_old, driver_new) if changed is None else changed
    out = np.array(stage)
    if not changed.any():
        return out
    groups = colour_groups(driver_old, driver_new, changed)
    po, pn = driver_proxies if driver_proxies is not None else (proxy_of_u8(driver_old, pm),
                                                                proxy_of_u8(driver_new, pm))
    learned = None
    if recolour is not None and stage.ndim == 3 and stage.shape[2] == 3 and driver_old.ndim == 3 \
            and driver_old.shape[2] == 3:
        learned = learned_transforms(recolour, groups, stage, driver_old, driver_new, changed)
    transforms = colour_transforms(groups, po, pn, model_old, model_new, prior_weight, learned).astype(np.float32)
    # Each changed pixel moved by its group's transform: one compiled pass over the changed box's rows (numpy's
    # gathers of a transform per pixel took 50 ms of a 0.35 s stroke at 2048 px).
    y0, y1, x0, x1 = changed_box(changed)
    out3, s3, do, dn = (_channels(a) for a in (out, stage, driver_old, driver_new))

    def run(r0: int, r1: int) -> None:
        kernels.colour_transform_rows(out3, s3, do, dn, changed, groups.keys, transforms, y0 + r0, y0 + r1, x0, x1)

    kernels.split_rows(run, y1 - y0, x1 - x0)
    return out



def follow_colour_stage(stage: np.ndarray, driver_old: np.ndarray, driver_new: np.ndarray,
                        model_old: torch.Tensor, model_new: torch.Tensor, pm: ProxyMap, changed: np.ndarray,
                        driver_proxies: tuple[torch.Tensor, torch.Tensor] | None = None,
                        recolour: LearnedRecolour | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A later colour stage after its driver changed (the region rule's colour case): (moved, fresh). `fresh`:
    fresh_pixels, or None where there are none: new shapes on blank paper, which the caller generates (there is
    nothing to recolour there). `moved`: follow_colour_change on the other changed pixels only (a first outline
    on a blank sheet is almost all new shape: its pixels are neither fitted nor moved)."""
    fresh = fresh_pixels(changed, stage, driver_old, driver_new)
    if not fresh.any():
        fresh = None
    moved = follow_colour_change(stage, driver_old, driver_new, model_old, model_new, pm,
                                 driver_proxies=driver_proxies, changed=changed if fresh is None else changed & ~fresh,
                                 recolour=recolour)
    return moved, fresh

class FollowedStages(Protocol):
    """The stages of an artwork as follow_region_rule walks them. Pictures are uint8 at the artwork's size, as
    seen (with the artist's layers, where there are any)."""

    def before(self, j: int) -> np.ndarray:
        """Stage j as seen before the edit. Asked once per stage, in order, before stage j is followed."""

    def now(self, j: int) -> np.ndarray:
        """Stage j as seen now."""

    def regions(self, j: int) -> Regions:
        """The closed regions of stage j (a line art) as it is now."""

    def ahead(self, j: int, line: int | None) -> None:
        """Stage j is about to follow a line-art change (follow_lines with this `line`): what it can do before
        the line art's regions are known may start now (they may still be being found beside it)."""

    def follow_lines(self, j: int, bound: np.ndarray, line: int | None, regions: Regions) -> None:
        """Stage j after a line-art change (or a change of another kind of picture: grey to colour) of stage
        j - 1: it changes only inside `bound` (H, W); `line`: the line art whose regions its clean flat follows
        (None: the model's change is carried up); `regions`: those of stage j - 1."""

    def follow_colours(self, j: int, before: np.ndarray, after: np.ndarray, changed: np.ndarray,
                       learned: bool) -> None:
        """Stage j after its driving colour stage j - 1 went from `before` to `after` at the `changed` pixels.
        learned: the bundle's learned recolour may move it (the change began as the artist's own recolour)."""

    def proxy(self, j: int) -> torch.Tensor:
        """Stage j's proxy as it now is: the session's flat is fed it, and the stages after it regenerated."""


def follow_region_rule(session, stages: FollowedStages, start: int, proxy_mask: torch.Tensor | None,
                       clean_flats: bool) -> list[int]:
    """The region rule (module notes) after stage `start` of `session` (core.editing.session.Session) changed: each
    later stage j changes only where stage j - 1 changed, inside the closed regions a line-art change touched
    (the shapes that go on keep their flat: continuing_regions) or by the colour transforms of a colour change
    (the learned recolour's only where no line art changed).
    A "flat" stage, once followed, is fed back to the session and the stages after it regenerated from it (their
    change is still measured from before). Returns the stages that were followed."""
    kinds = stage_kinds(session.config.stages)
    n = session.num_stages
    followed: list[int] = []
    driver_old = stages.before(start)
    for j in range(start + 1, n):
        driver_new = stages.now(j - 1)
        stage_old = stages.before(j)  # stage j before it moves: the next stage's driver
        changed = changed_pixels(driver_old, driver_new)
        if changed.any():
            if kinds[j - 1] == "line" or driver_new.ndim != stage_old.ndim:
                line = line_before(kinds, j, since=start) if clean_flats else None
                stages.ahead(j, line)
                regions = stages.regions(j - 1)
                bound = touched_regions(regions, changed)
                if line is not None:  # the shapes that go on keep their flat; the new ones take the model's colours
                    bound &= ~continuing_regions(regions.labels, bound, stage_old)
                stages.follow_lines(j, bound, line, regions)
                del regions, bound
            else:
                # The learned recolour learned how the artist shades a region they recoloured; the flats the model
                # made for a new shape (after a line-art change) are no recolour: the proxies' fit follows them
                # (with the learned recolour there, structure edits lost 0.2 dB on the edit benchmark).
                stages.follow_colours(j, driver_old, driver_new, changed, learned=kinds[start] != "line")
            followed.append(j)
            if kinds[j] == "flat" and j + 1 < n:
                session.set_stage(j, stages.proxy(j), propagate=True, keep_mask=proxy_mask)
        driver_old = stage_old
    return followed
