"""Full-resolution stages on top of a Session: the session keeps working on proxies, these functions keep one
full-resolution image per stage in step with it.

- generate_fullres: a new artwork from a full-resolution first stage (line art);
- reconstruct_fullres: the editing pipeline on a finished full-resolution artwork;
- apply_edit_fullres: one stage replaced by an edited full-resolution image, later stages regenerated;
- follow_proxies: later proxies changed (an edit, a latent slider): the full-res stages follow (follow_stage:
  one stage);
- fullres_stages: the full-resolution stages for the session's current proxies (used by the three above).

Rules (issue 12): a stage the artist supplied is kept as is, pixel for pixel; a stage the model changed is the
artist's image plus the model's change (new proxy minus old proxy) carried up along the image's own edges
(guided.transfer_change); a "flat" stage after a line art is a clean flat (one colour per closed region,
flats.clean_flat) and the next stage is generated from it; a stage nobody supplied is the previous full-res
stage plus the model's residual (this proxy minus the previous one), guided, or, when the channel counts differ
(line art -> colours), the proxy upsampled along the previous stage's edges.

Full-res images are (C, H, W) float32 in [-1, 1] at the artwork's size; a ProxyMap ties them to the proxies.
With u8=True the functions take and give uint8 arrays (H, W) / (H, W, C) as a project keeps them (the CLI: its
stages are written as 8-bit PNGs), bit for bit tensor_to_uint8 of the float results, with a float copy only of the
stages still to be read (issue 29: a float32 stage is 4 bytes a pixel per channel, 192 MiB at 4096 x 4096).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

from core.editing.edit_mask import edit_mask
from core.editing.refine import DEFAULT_SCHEDULE, RefineStep
from core.editing.session import RefineReport, Session, run_to_end
from core.errors import ArtflowError
from core.files.imageio import tensor_to_uint8, uint8_to_tensor
from core.fullres.flats import Regions, clean_flat
from core.fullres.guided import transfer_change, transfer_change_bands, upsample_guided, upsample_guided_bands
from core.fullres.kinds import line_before as line_before  # (where callers import it)
from core.fullres.kinds import stage_kinds
from core.fullres.masks import THRESHOLD, keep_mask_from_changed
from core.fullres.proxy import ProxyMap, from_proxy, proxy_with, to_proxy
from core.fullres.region_change import PAPER_LEVELS, follow_colour_stage, follow_region_rule
from core.fullres.regions import find_regions

CLEAN_FLATS = True  # on by default (issue 12); the CLI's --no-clean-flats and the app's toggle turn it off
# How an edit reaches the later stages (issue 27). "regions": only inside the regions it touched (the flat regions
# whose colour changed, the closed line-art regions a stroke touched), by a colour transform of the artist's own
# pixels (core.fullres.region_change); "global": the paper's propagation, the model's change carried over the
# whole picture along its edges (it restyles everything, and spills glow onto untouched parts).
PROPAGATIONS = ("regions", "global")
PROPAGATION = "regions"


FullImage = torch.Tensor | np.ndarray  # (C, H, W) float32 in [-1, 1], or uint8 (H, W) / (H, W, C) as a project keeps it


def as_float(image: FullImage) -> torch.Tensor:
    """A full-res image as (C, H, W) float32: a tensor as it is, a uint8 array converted (a new tensor)."""
    return uint8_to_tensor(image) if isinstance(image, np.ndarray) else image


def as_u8(image: FullImage) -> np.ndarray:
    """A full-res image as a project keeps it: a uint8 array as it is, a tensor rounded to 8 bits."""
    return image if isinstance(image, np.ndarray) else tensor_to_uint8(image)


def _check_full(session: Session, k: int, image: FullImage, pm: ProxyMap) -> FullImage:
    spec = session.config.stages[k]
    if isinstance(image, np.ndarray):
        channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else None
        if image.dtype != np.uint8 or channels != spec.channels:
            raise ArtflowError(f"stage '{spec.name}' takes a {spec.channels}-channel image, got a {image.dtype} "
                               f"array of shape {image.shape}")
        if image.shape[:2] != (pm.height, pm.width):
            raise ArtflowError(f"stage '{spec.name}': the image is {image.shape[1]} x {image.shape[0]} pixels, "
                               f"the artwork is {pm.width} x {pm.height}")
        return image
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != spec.channels:
        raise ArtflowError(f"stage '{spec.name}' takes a {spec.channels}-channel image, got shape "
                           f"{tuple(image.shape)}")
    if tuple(image.shape[-2:]) != (pm.height, pm.width):
        raise ArtflowError(f"stage '{spec.name}': the image is {image.shape[-1]} x {image.shape[-2]} pixels, the "
                           f"artwork is {pm.width} x {pm.height}")
    image = image.detach().float().cpu()
    # Not copied when it is in range already (a loaded artwork is): one float copy less of a 4096 px stage.
    lo, hi = torch.aminmax(image)
    return image if -1 <= lo.item() and hi.item() <= 1 else image.clamp(-1, 1)


# A colour stage's pixel at least this light in every channel is paper (8-bit 250 and up).
PAPER_LEVEL = PAPER_LEVELS / 127.5 - 1


def _bands_to(bands: Iterator[tuple[int, int, torch.Tensor]], channels: int, pm: ProxyMap, u8: bool) -> FullImage:
    """(y0, y1, rows) bands of a full-res image put together: (C, H, W) float32, or with u8 its tensor_to_uint8
    made band by band (no float copy of the whole image)."""
    h, w = pm.height, pm.width
    if u8:
        out = np.empty((h, w) if channels == 1 else (h, w, channels), np.uint8)
        for y0, y1, band in bands:
            out[y0:y1] = tensor_to_uint8(band)
        return out
    image = torch.empty(channels, h, w)
    for y0, y1, band in bands:
        image[:, y0:y1] = band
    return image


def _derive(session: Session, full: list[FullImage], k: int, pm: ProxyMap, u8: bool = False) -> FullImage:
    """Stage k from the previous full-res stage and the model's proxies (nobody supplied it): the previous stage
    plus the model's residual carried up along its edges, except on its paper, which stays paper (the residual
    upsampled from the proxy would otherwise tint it past the drawing's outline: up to 23/255 beyond 6 px on a
    drawn 1024 px smiley with emoji-lines-128). Made a band of rows at a time (no full-size residual); u8: in 8
    bits."""
    prev = as_float(full[k - 1])
    proxy = session.stages[k]
    if prev.shape[0] != proxy.shape[0]:
        return _bands_to(upsample_guided_bands(proxy, prev, pm), proxy.shape[0], pm, u8)

    def bands() -> Iterator[tuple[int, int, torch.Tensor]]:
        for y0, y1, residual in transfer_change_bands(proxy - session.stages[k - 1], prev, pm):
            rows = prev[:, y0:y1]
            residual.masked_fill_((rows >= PAPER_LEVEL).all(0, keepdim=True), 0.0)
            yield y0, y1, (rows + residual).clamp_(-1, 1)

    return _bands_to(bands(), prev.shape[0], pm, u8)


def fullres_stages(session: Session, pm: ProxyMap, known: dict[int, FullImage] | None = None,
                   clean_flats: bool = CLEAN_FLATS, lines: str = "split", u8: bool = False) -> list[FullImage]:
    """One full-res image per stage for the session's current proxies. `known`: stages the artist supplied at
    full resolution (kept exactly). A clean flat that is not the last stage is fed back to the session (its proxy
    becomes that stage and later stages are regenerated from it), unless every later stage is known. u8: the
    stages as uint8 arrays, each rounded once the stage after it is made (a line art once all are), the last
    made in 8 bits; else (C, H, W) float tensors."""
    known = {k: _check_full(session, k, v, pm) for k, v in (known or {}).items()}
    kinds = stage_kinds(session.config.stages)
    n = session.num_stages
    full: list[FullImage] = []
    for k in range(n):
        line = line_before(kinds, k)
        if k in known:
            full.append(known[k])
        elif k == 0:
            # Inferred line art is upsampled plainly: guided by the colour artwork it picks up the artwork's
            # shading (grey fills with dark halos) instead of staying line art.
            guide = known.get(n - 1) if kinds[0] != "line" else None
            full.append(upsample_guided(session.stages[0], as_float(guide), pm) if guide is not None
                        else from_proxy(session.stages[0], pm))
        elif clean_flats and line is not None:
            # The model's colours rounded to 8 bits (all clean_flat measures of them) before the regions are found:
            # their float copy is gone by then.
            colours = tensor_to_uint8(from_proxy(session.stages[k], pm))
            flat = clean_flat(as_float(full[line]), colours, lines=lines)
            del colours
            full.append(flat)
            if any(j not in known for j in range(k + 1, n)):
                session.set_stage(k, proxy_with(flat, pm), propagate=True)
        else:
            full.append(_derive(session, full, k, pm, u8 and k == n - 1))
        if u8 and k > 0 and kinds[k - 1] != "line":
            full[k - 1] = as_u8(full[k - 1])  # stage k was the last to read it (a flat reads its line art)
    return _finish(full, u8)


def generate_fullres(session: Session, first: FullImage, clean_flats: bool = CLEAN_FLATS,
                     lines: str = "split", latents: list[torch.Tensor] | None = None, u8: bool = False
                     ) -> tuple[ProxyMap, list[FullImage]]:
    """A new artwork from a full-resolution first stage (C_0, H, W) (or uint8): the chain generated on its proxy
    with `latents` (one code per transition; None: Session.start_from, the prior's means), then the full-res
    chain (the first stage is the artist's own, pixel for pixel; u8: as uint8 arrays, fullres_stages)."""
    proxy, pm = to_proxy(as_float(first), session.config.resolution)
    first = _check_full(session, 0, first, pm)
    if latents is None:
        session.start_from(proxy)
    else:
        session.set_stage(0, proxy, propagate=False)
        for i, z in enumerate(latents):
            session.set_latent(i, z, propagate=False)
        session.propagate(0)
    return pm, fullres_stages(session, pm, {0: first}, clean_flats, lines, u8)


def cleans_after_refinement(pm: ProxyMap, clean_flats: bool) -> bool:
    """Whether the full-res stages after a refinement get clean flats (reconstruct_fullres, the app's Refine).
    Not at the model's own size: there the refined stages are the fit itself, and a clean flat would regenerate
    the later stages away from it (12 Fluent TEST drawings at 128 px, the default model: `reconstruct` reported
    16.18 dB against the fit's 26.52 dB while it did). Larger artworks keep the artwork as their last stage, so
    there the clean flat costs the fit nothing."""
    return clean_flats and not pm.is_identity


def reconstruct_fullres(session: Session, artwork: FullImage, steps: int | None = None,
                        regularizer: str = "learned", clean_flats: bool = CLEAN_FLATS, lines: str = "split",
                        schedule: str = DEFAULT_SCHEDULE, on_step: Callable[[RefineStep], None] | None = None,
                        u8: bool = False) -> tuple[ProxyMap, list[FullImage], RefineReport, list[torch.Tensor]]:
    """The editing pipeline on a finished artwork (C_last, H, W) of any size: workflow inference, encoding and the
    refinement (`schedule`, or `steps` steps; 0: none, the report then holds the encoder-only losses) on its proxy,
    then the full-res stages. Returns (proxy map, full-res stages, refinement report (its extra gives
    fullres_seconds), inferred proxy stages). The
    last full-res stage is the artwork itself at every size, so an unedited project reproduces it exactly; the
    session's last stage is the fit (the reconstruction). (The app drives Session.refine itself for cancel, then
    calls fullres_stages with {last: artwork}.) `artwork` may be uint8 (H, W, C); u8: the full-res stages as
    uint8 arrays (fullres_stages), the last the very array given."""
    proxy, pm = to_proxy(as_float(artwork), session.config.resolution)
    n = session.num_stages
    artwork = _check_full(session, n - 1, artwork, pm)
    inferred = session.infer_stages(proxy)
    session.encode(propagate=True)
    report = run_to_end(session.refine(steps=steps, regularizer=regularizer, preview_every=0, schedule=schedule),
                        on_step)
    # The artist's pixels are the last stage at every size, the model's own included (issue 27): the refined
    # chain is the fit, the artwork is the output.
    t0 = time.perf_counter()
    full = fullres_stages(session, pm, {n - 1: artwork}, clean_flats, lines, u8)
    report.extra["fullres_seconds"] = time.perf_counter() - t0
    return pm, full, report, inferred


FOLLOW_BAND = 256  # rows of the previous image added back at a time by follow_stage


def _rows(image: FullImage, y0: int, y1: int) -> torch.Tensor:
    """Rows y0:y1 of a full-res image as (C, y1 - y0, W) float (a view of a tensor, a new one of a uint8 array)."""
    return uint8_to_tensor(image[y0:y1]) if isinstance(image, np.ndarray) else image[:, y0:y1]


def follow_stage(full_j: FullImage, change: torch.Tensor, guide: FullImage | None, pm: ProxyMap,
                 line_art: FullImage | None = None, mask: torch.Tensor | None = None, lines: str = "split",
                 regions: Regions | None = None) -> torch.Tensor:
    """One full-res stage after the model changed its proxy by `change` (new proxy minus old): its previous image
    `full_j` plus the change carried up along the edges of `guide` (None: full_j's own); cleaned again with
    `line_art` (a "flat" stage after a changed line art; `regions`: that line art's find_regions, when cached);
    with `mask` (H, W) in [0, 1] (or bool) it changes only where the mask is > 0. The images may be uint8 arrays.
    Returns a new (C, H, W) tensor in [-1, 1]."""
    g = as_float(full_j if guide is None else guide)
    h = pm.height
    # The previous image added back (and below, the mask applied) in place, a band of rows at a time: no float
    # copy of a uint8 stage, no full-size temporaries (float sums and products commute: the same values).
    if line_art is not None:
        # The candidate straight to 8 bits, band by band: all clean_flat measures of it.
        colours = _bands_to(((y0, y1, band.add_(_rows(full_j, y0, y1)).clamp_(-1, 1))
                             for y0, y1, band in transfer_change_bands(change, g, pm)), change.shape[0], pm, True)
        del g  # (a float copy made here is let go before the flat is made)
        candidate = clean_flat(line_art, colours, lines=lines, regions=regions)
        del colours
    else:
        candidate = transfer_change(change, g, pm)
        del g
        for y0 in range(0, h, FOLLOW_BAND):
            candidate[:, y0:y0 + FOLLOW_BAND].add_(_rows(full_j, y0, y0 + FOLLOW_BAND))
    if mask is not None:
        for y0 in range(0, h, FOLLOW_BAND):
            f = _rows(full_j, y0, y0 + FOLLOW_BAND)
            candidate[:, y0:y0 + FOLLOW_BAND].sub_(f).mul_(mask[y0:y0 + FOLLOW_BAND]).add_(f)
    return candidate.clamp_(-1, 1)


def _finish(full: list[FullImage], u8: bool) -> list[FullImage]:
    return [as_u8(f) for f in full] if u8 else [as_float(f) for f in full]


def follow_proxies(session: Session, full: list[FullImage], old_proxy: list[torch.Tensor], pm: ProxyMap,
                   start: int, mask: torch.Tensor | None = None, proxy_mask: torch.Tensor | None = None,
                   clean_flats: bool = CLEAN_FLATS, lines: str = "split", guide: str = "stage",
                   propagation: str = PROPAGATION, old_start: FullImage | None = None, u8: bool = False
                   ) -> list[FullImage]:
    """The session's stages start+1.. changed at proxy size (an edit of stage `start`, a new latent of transition
    `start`): each full-res stage j becomes its previous image plus the model's change (session.stages[j] -
    old_proxy[j]) carried up along the edges of `guide` ("stage": that stage's previous full-res image, the
    issue's rule; "source": the new full-res stage before it). A "flat" stage after a changed line art is
    cleaned again (and fed back to the session with `proxy_mask`). With `mask` (H, W) in [0, 1], a stage changes
    only where it is > 0 and is exactly its previous image elsewhere. full[start] must already be the new
    image of stage `start`. propagation="regions" (the default): follow_regions instead (`mask` and `guide`
    unused), which needs `old_start`, the image of stage `start` before the edit (without it, e.g. after a
    latent change, where no stage was edited, the change is global). Returns the new list; `full` is not
    modified. The images may be uint8 arrays (converted to float one stage at a time, where needed); u8: the
    new list as uint8 arrays (fullres_stages), else float tensors."""
    if guide not in ("stage", "source"):
        raise ValueError(f"guide must be 'stage' or 'source', got {guide!r}")
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {', '.join(PROPAGATIONS)}, got {propagation!r}")
    if propagation == "regions" and old_start is not None:
        return follow_regions(session, full, old_proxy, pm, start, old_start, proxy_mask, clean_flats, lines, u8)
    kinds = stage_kinds(session.config.stages)
    new_full = list(full)
    for j in range(start + 1, session.num_stages):
        line = line_before(kinds, j, since=start) if clean_flats else None
        new_full[j] = follow_stage(full[j], session.stages[j] - old_proxy[j],
                                   None if guide == "stage" else new_full[j - 1], pm,
                                   None if line is None else as_float(new_full[line]), mask, lines)
        if line is not None and j + 1 < session.num_stages:
            # The next stages are generated from the clean flat (their change is still measured from before).
            session.set_stage(j, proxy_with(new_full[j], pm), propagate=True, keep_mask=proxy_mask)
        # Rounded once nothing reads it in float: a line art never before the end, another stage at once (or,
        # guided by the new stages, once the next one is made).
        done = j if guide == "stage" else j - 1
        if u8 and kinds[done] != "line":
            new_full[done] = as_u8(new_full[done])
    return _finish(new_full, u8)


def follow_regions(session: Session, full: list[FullImage], old_proxy: list[torch.Tensor], pm: ProxyMap,
                   start: int, old_start: FullImage, proxy_mask: torch.Tensor | None = None,
                   clean_flats: bool = CLEAN_FLATS, lines: str = "split", u8: bool = False) -> list[FullImage]:
    """follow_proxies with region-bounded change (issue 27; the walk: region_change.follow_region_rule): each
    later stage j changes only where stage j - 1 changed. After a line art: a "flat" stage is cleaned again inside
    the closed regions the line change touched (and fed back to the session); another stage follows the model's
    change there. After a colour stage: the artist's pixels of stage j move by one colour transform per (old,
    new) colour pair of stage j - 1 (region_change.follow_colour_change), fitted on the model's proxies.
    Elsewhere every stage is exactly its previous image. full[start] is the new image of stage `start`,
    `old_start` the one before the edit. Images and u8 as in follow_proxies."""
    stages = _PipelineStages(session, full, old_proxy, pm, start, old_start, lines, u8)
    follow_region_rule(session, stages, start, proxy_mask, clean_flats)
    return _finish(stages.new_full, u8)


class _PipelineStages:
    """The CLI's stages as follow_region_rule walks them (region_change.FollowedStages): `full` as they were,
    `new_full` as they become (float, or 8-bit where `u8` and nothing reads them as float)."""

    def __init__(self, session: Session, full: list[FullImage], old_proxy: list[torch.Tensor], pm: ProxyMap,
                 start: int, old_start: FullImage, lines: str, u8: bool) -> None:
        self.session, self.full, self.old_proxy, self.pm = session, full, old_proxy, pm
        self.start, self.old_start, self.lines, self.u8 = start, old_start, lines, u8
        self.new_full = list(full)
        self.kinds = stage_kinds(session.config.stages)

    def before(self, j: int) -> np.ndarray:
        return as_u8(self.old_start if j == self.start else self.full[j])

    def now(self, j: int) -> np.ndarray:
        return as_u8(self.new_full[j])

    def regions(self, j: int) -> Regions:
        return find_regions(as_float(self.new_full[j]))

    def ahead(self, j: int, line: int | None) -> None:
        pass  # (the stage is followed in one go, in follow_lines)

    def follow_lines(self, j: int, bound: np.ndarray, line: int | None, regions: Regions) -> None:
        # The clean flat of the line art just before: these very regions (not found twice), and that line art as
        # it is (clean_flat then reads it only for the "ink" policy); another line art: in float, as always.
        same = line == j - 1
        nf = self.new_full
        line_art = None if line is None else nf[line] if same else as_float(nf[line])
        # The mask as bool: multiplied in, it counts as 0.0 and 1.0, exactly like its float copy (4 bytes a pixel).
        nf[j] = follow_stage(self.full[j], self.session.stages[j] - self.old_proxy[j], None, self.pm, line_art,
                             torch.from_numpy(bound), self.lines, regions if same else None)
        self._done_with(j - 1)

    def follow_colours(self, j: int, before: np.ndarray, after: np.ndarray, changed: np.ndarray,
                       learned: bool) -> None:
        session, nf = self.session, self.new_full
        stage = as_u8(self.full[j])
        moved, fresh = follow_colour_stage(stage, before, after, self.old_proxy[j], session.stages[j], self.pm,
                                           changed, recolour=session.model.recolour if learned else None)
        change = session.stages[j] - session.stages[j - 1]
        if self.u8 and j == len(nf) - 1:  # nothing reads it as float: made in 8 bits
            nf[j] = _recoloured_u8(moved, fresh, change, nf[j - 1], self.pm)
        else:
            # Only the changed pixels take the 8-bit result: every other pixel is the stage exactly as it was.
            nf[j] = torch.where(torch.from_numpy(changed), uint8_to_tensor(moved), as_float(self.full[j]))
            if fresh is not None:  # a new shape on blank paper: generated there, as a new drawing's stages are
                prev = as_float(nf[j - 1])
                made = prev + transfer_change(change, prev, self.pm)
                nf[j] = torch.where(torch.from_numpy(fresh), made.clamp_(-1, 1), nf[j])
        self._done_with(j - 1)

    def proxy(self, j: int) -> torch.Tensor:
        return proxy_with(as_float(self.new_full[j]), self.pm)

    def _done_with(self, k: int) -> None:
        if self.u8 and self.kinds[k] != "line":
            self.new_full[k] = as_u8(self.new_full[k])  # stage k + 1 was the last to read it


def _recoloured_u8(moved: np.ndarray, fresh: np.ndarray | None, change: torch.Tensor, prev: FullImage,
                   pm: ProxyMap) -> np.ndarray:
    """follow_regions' colour-stage result in 8 bits (tensor_to_uint8 of the float one, bit for bit, for a uint8
    stage): `moved` (the stage, recoloured at its changed pixels: follow_colour_stage), and at the `fresh` pixels
    `prev` plus the model's `change` carried up along it, made a band of rows at a time where there are fresh
    pixels."""
    out = moved
    if fresh is None:
        return out
    prev = as_float(prev)
    for y0, y1, residual in transfer_change_bands(change, prev, pm):
        where = fresh[y0:y1]
        if where.any():
            made = tensor_to_uint8((prev[:, y0:y1] + residual).clamp_(-1, 1))
            np.copyto(out[y0:y1], made, where=where[..., None] if out.ndim == 3 else where)
    return out


MASK_BAND = 256  # rows of the two images compared at a time by _keep_mask


def _keep_mask(old: FullImage, new: FullImage, pm: ProxyMap) -> torch.Tensor:
    """masks.keep_mask_fullres(old, new) of two full-res images (tensors or uint8), the changed pixels found a band
    of rows at a time: the same mask (its rule is per pixel), without float copies of the two whole images."""
    changed = np.empty((pm.height, pm.width), bool)
    for y0 in range(0, pm.height, MASK_BAND):
        y1 = y0 + MASK_BAND
        changed[y0:y1] = ((_rows(new, y0, y1) - _rows(old, y0, y1)).abs().amax(dim=0) / 2 > THRESHOLD).numpy()
    return keep_mask_from_changed(changed)


def apply_edit_fullres(session: Session, full: list[FullImage], pm: ProxyMap, k: int, image: FullImage,
                       keep_unedited: bool = False, clean_flats: bool = CLEAN_FLATS, lines: str = "split",
                       guide: str = "stage", propagation: str = PROPAGATION, u8: bool = False
                       ) -> tuple[list[FullImage], torch.Tensor | None]:
    """Stage k replaced by the full-res `image` (the whole stage as the artist now sees it): its proxy goes to
    the session (layer cleared, later stages regenerated), then follow_proxies. With keep_unedited, later stages
    change only within 24 px of the pixels the edit changed (masks.keep_mask_fullres) and are exactly their previous
    images elsewhere. propagation="regions" (the default): the later stages change only inside the regions the
    edit touched (follow_regions), keep_unedited or not. Returns the new full-res stages and the full-res keep
    mask (None without keep_unedited). `full` is not modified. The images may be uint8 arrays (as a project
    keeps them); u8: the new stages as uint8 arrays (follow_proxies)."""
    if not 0 <= k < session.num_stages:
        raise ArtflowError(f"stage index {k} is out of range (this model has {session.num_stages} stages)")
    image = _check_full(session, k, image, pm)
    old_full = [_check_full(session, j, f, pm) for j, f in enumerate(full)]
    old_proxy = [s.clone() for s in session.stages]
    new_proxy = proxy_with(as_float(image), pm)
    mask = _keep_mask(old_full[k], image, pm) if keep_unedited else None
    proxy_mask = edit_mask(old_proxy[k], new_proxy) if keep_unedited else None
    session.set_layer(k, None, propagate=False)
    session.set_stage(k, new_proxy, propagate=True, keep_mask=proxy_mask)
    old_start, old_full[k] = old_full[k], image
    return follow_proxies(session, old_full, old_proxy, pm, k, mask, proxy_mask, clean_flats, lines, guide,
                          propagation, old_start, u8), mask
