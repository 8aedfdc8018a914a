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
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from core.editing import edit_mask
from core.errors import ArtflowError
from core.fullres.flats import Regions, clean_flat
from core.fullres.guided import transfer_change, upsample_guided
from core.fullres.kinds import stage_kinds
from core.fullres.masks import keep_mask_fullres
from core.fullres.proxy import ProxyMap, from_proxy, proxy_with, to_proxy
from core.fullres.region_change import (
    changed_pixels,
    continuing_regions,
    follow_colour_change,
    fresh_pixels,
    touched_regions,
)
from core.fullres.regions import find_regions
from core.imageio import tensor_to_uint8, uint8_to_tensor
from core.refine import DEFAULT_SCHEDULE, RefineStep
from core.session import RefineReport, Session, run_to_end

CLEAN_FLATS = True  # on by default (issue 12); the CLI's --no-clean-flats and the app's toggle turn it off
# How an edit reaches the later stages (issue 27). "regions": only inside the regions it touched (the flat regions
# whose colour changed, the closed line-art regions a stroke touched), by a colour transform of the artist's own
# pixels (core.fullres.region_change); "global": the paper's propagation, the model's change carried over the
# whole picture along its edges (it restyles everything, and spills glow onto untouched parts).
PROPAGATIONS = ("regions", "global")
PROPAGATION = "regions"


def _check_full(session: Session, k: int, image: torch.Tensor, pm: ProxyMap) -> torch.Tensor:
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    spec = session.config.stages[k]
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


def line_before(kinds: list[str | None], k: int, since: int = 0) -> int | None:
    """The latest "line" stage in since..k-1 when stage k is "flat" (the line art its regions come from)."""
    if kinds[k] != "flat":
        return None
    for i in range(k - 1, since - 1, -1):
        if kinds[i] == "line":
            return i
    return None


# A colour stage's pixel at least this light in every channel is paper (8-bit 250 and up).
PAPER_LEVEL = 250 / 127.5 - 1


def _derive(session: Session, full: list[torch.Tensor], k: int, pm: ProxyMap) -> torch.Tensor:
    """Stage k from the previous full-res stage and the model's proxies (nobody supplied it): the previous stage
    plus the model's residual carried up along its edges, except on its paper, which stays paper (the residual
    upsampled from the proxy would otherwise tint it past the drawing's outline: up to 23/255 beyond 6 px on a
    drawn 1024 px smiley with emoji-lines-128)."""
    prev = full[k - 1]
    proxy = session.stages[k]
    if prev.shape[0] == proxy.shape[0]:
        residual = transfer_change(proxy - session.stages[k - 1], prev, pm)
        residual.masked_fill_((prev >= PAPER_LEVEL).all(0, keepdim=True), 0.0)
        return (prev + residual).clamp_(-1, 1)
    return upsample_guided(proxy, prev, pm)


def fullres_stages(session: Session, pm: ProxyMap, known: dict[int, torch.Tensor] | None = None,
                   clean_flats: bool = CLEAN_FLATS, lines: str = "split") -> list[torch.Tensor]:
    """One full-res image per stage for the session's current proxies. `known`: stages the artist supplied at
    full resolution (kept exactly). A clean flat that is not the last stage is fed back to the session (its proxy
    becomes that stage and later stages are regenerated from it), unless every later stage is known."""
    known = {k: _check_full(session, k, v, pm) for k, v in (known or {}).items()}
    kinds = stage_kinds(session.config.stages)
    n = session.num_stages
    full: list[torch.Tensor] = []
    for k in range(n):
        if k in known:
            full.append(known[k])
            continue
        line = line_before(kinds, k)
        if k == 0:
            # Inferred line art is upsampled plainly: guided by the colour artwork it picks up the artwork's
            # shading (grey fills with dark halos) instead of staying line art.
            guide = known.get(n - 1) if kinds[0] != "line" else None
            full.append(upsample_guided(session.stages[0], guide, pm) if guide is not None
                        else from_proxy(session.stages[0], pm))
        elif clean_flats and line is not None:
            flat = clean_flat(full[line], from_proxy(session.stages[k], pm), lines=lines)
            full.append(flat)
            if any(j not in known for j in range(k + 1, n)):
                session.set_stage(k, proxy_with(flat, pm), propagate=True)
        else:
            full.append(_derive(session, full, k, pm))
    return full


def generate_fullres(session: Session, first: torch.Tensor, clean_flats: bool = CLEAN_FLATS,
                     lines: str = "split", latents: list[torch.Tensor] | None = None
                     ) -> tuple[ProxyMap, list[torch.Tensor]]:
    """A new artwork from a full-resolution first stage (C_0, H, W): the chain generated on its proxy with
    `latents` (one code per transition; None: Session.start_from, the prior's means), then the full-res chain (the
    first stage is the artist's own, pixel for pixel)."""
    proxy, pm = to_proxy(first, session.config.resolution)
    first = _check_full(session, 0, first, pm)
    if latents is None:
        session.start_from(proxy)
    else:
        session.set_stage(0, proxy, propagate=False)
        for i, z in enumerate(latents):
            session.set_latent(i, z, propagate=False)
        session.propagate(0)
    return pm, fullres_stages(session, pm, {0: first}, clean_flats, lines)


def cleans_after_refinement(pm: ProxyMap, clean_flats: bool) -> bool:
    """Whether the full-res stages after a refinement get clean flats (reconstruct_fullres, the app's Refine).
    Not at the model's own size: there the refined stages are the fit itself, and a clean flat would regenerate
    the later stages away from it (12 Fluent TEST drawings at 128 px, the default model: `reconstruct` reported
    16.18 dB against the fit's 26.52 dB while it did). Larger artworks keep the artwork as their last stage, so
    there the clean flat costs the fit nothing."""
    return clean_flats and not pm.is_identity


def reconstruct_fullres(session: Session, artwork: torch.Tensor, steps: int | None = None,
                        regularizer: str = "learned", clean_flats: bool = CLEAN_FLATS, lines: str = "split",
                        schedule: str = DEFAULT_SCHEDULE, on_step: Callable[[RefineStep], None] | None = None
                        ) -> tuple[ProxyMap, list[torch.Tensor], RefineReport, list[torch.Tensor]]:
    """The editing pipeline on a finished artwork (C_last, H, W) of any size: workflow inference, encoding and the
    refinement (`schedule`, or `steps` steps; 0: none, the report then holds the encoder-only losses) on its proxy,
    then the full-res stages. Returns (proxy map, full-res stages, refinement report (its extra gives
    fullres_seconds), inferred proxy stages). The
    last full-res stage is the artwork itself at every size, so an unedited project reproduces it exactly; the
    session's last stage is the fit (the reconstruction). (The app drives Session.refine itself for cancel, then
    calls fullres_stages with {last: artwork}.)"""
    proxy, pm = to_proxy(artwork, session.config.resolution)
    n = session.num_stages
    artwork = _check_full(session, n - 1, artwork, pm)
    inferred = session.infer_stages(proxy)
    session.encode(propagate=True)
    report = run_to_end(session.refine(steps=steps, regularizer=regularizer, preview_every=0, schedule=schedule),
                        on_step)
    # The artist's pixels are the last stage at every size, the model's own included (issue 27): the refined
    # chain is the fit, the artwork is the output.
    t0 = time.perf_counter()
    full = fullres_stages(session, pm, {n - 1: artwork}, clean_flats, lines)
    report.extra["fullres_seconds"] = time.perf_counter() - t0
    return pm, full, report, inferred


def follow_stage(full_j: torch.Tensor, change: torch.Tensor, guide: torch.Tensor, pm: ProxyMap,
                 line_art: torch.Tensor | None = None, mask: torch.Tensor | None = None, lines: str = "split",
                 regions: Regions | None = None) -> torch.Tensor:
    """One full-res stage after the model changed its proxy by `change` (new proxy minus old): its previous image
    `full_j` plus the change carried up along the edges of `guide`; cleaned again with `line_art` (a "flat" stage
    after a changed line art; `regions`: that line art's find_regions, when cached); with `mask` (H, W) in [0, 1]
    it changes only where the mask is > 0. Returns a new (C, H, W) tensor in [-1, 1]."""
    candidate = full_j + transfer_change(change, guide, pm)
    if line_art is not None:
        candidate = clean_flat(line_art, candidate.clamp_(-1, 1), lines=lines, regions=regions)
    if mask is not None:
        candidate = full_j + mask * (candidate - full_j)
    return candidate.clamp_(-1, 1)


def follow_proxies(session: Session, full: list[torch.Tensor], old_proxy: list[torch.Tensor], pm: ProxyMap,
                   start: int, mask: torch.Tensor | None = None, proxy_mask: torch.Tensor | None = None,
                   clean_flats: bool = CLEAN_FLATS, lines: str = "split", guide: str = "stage",
                   propagation: str = PROPAGATION, old_start: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The session's stages start+1.. changed at proxy size (an edit of stage `start`, a new latent of transition
    `start`): each full-res stage j becomes its previous image plus the model's change (session.stages[j] -
    old_proxy[j]) carried up along the edges of `guide` ("stage": that stage's previous full-res image, the
    issue's rule; "source": the new full-res stage before it). A "flat" stage after a changed line art is
    cleaned again (and fed back to the session with `proxy_mask`). With `mask` (H, W) in [0, 1], a stage changes
    only where it is > 0 and is exactly its previous image elsewhere. full[start] must already be the new
    image of stage `start`. propagation="regions" (the default): follow_regions instead (`mask` and `guide`
    unused), which needs `old_start`, the image of stage `start` before the edit (without it, e.g. after a
    latent change, where no stage was edited, the change is global). Returns the new list; `full` is not
    modified."""
    if guide not in ("stage", "source"):
        raise ValueError(f"guide must be 'stage' or 'source', got {guide!r}")
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {', '.join(PROPAGATIONS)}, got {propagation!r}")
    if propagation == "regions" and old_start is not None:
        return follow_regions(session, full, old_proxy, pm, start, old_start, proxy_mask, clean_flats, lines)
    kinds = stage_kinds(session.config.stages)
    new_full = list(full)
    for j in range(start + 1, session.num_stages):
        g = full[j] if guide == "stage" else new_full[j - 1]
        line = line_before(kinds, j, since=start) if clean_flats else None
        new_full[j] = follow_stage(full[j], session.stages[j] - old_proxy[j], g, pm,
                                   None if line is None else new_full[line], mask, lines)
        if line is not None and j + 1 < session.num_stages:
            # The next stages are generated from the clean flat (their change is still measured from before).
            session.set_stage(j, proxy_with(new_full[j], pm), propagate=True, keep_mask=proxy_mask)
    return new_full


def follow_regions(session: Session, full: list[torch.Tensor], old_proxy: list[torch.Tensor], pm: ProxyMap,
                   start: int, old_start: torch.Tensor, proxy_mask: torch.Tensor | None = None,
                   clean_flats: bool = CLEAN_FLATS, lines: str = "split") -> list[torch.Tensor]:
    """follow_proxies with region-bounded change (issue 27): each later stage j changes only where stage j - 1
    changed. After a line art: a "flat" stage is cleaned again inside the closed regions the line change touched
    (and fed back to the session); another stage follows the model's change there. After a colour stage: the
    artist's pixels of stage j move by one colour transform per (old, new) colour pair of stage j - 1
    (region_change.follow_colour_change), fitted on the model's proxies. Elsewhere every stage is exactly its
    previous image. full[start] is the new image of stage `start`, `old_start` the one before the edit."""
    kinds = stage_kinds(session.config.stages)
    new_full = list(full)
    for j in range(start + 1, session.num_stages):
        old_prev = old_start if j - 1 == start else full[j - 1]
        before, after = tensor_to_uint8(old_prev), tensor_to_uint8(new_full[j - 1])
        changed = changed_pixels(before, after)
        if not changed.any():
            break  # nothing reaches the later stages
        if kinds[j - 1] == "line" or full[j - 1].shape[0] != full[j].shape[0]:
            regions = find_regions(new_full[j - 1])
            touched = touched_regions(regions, changed)
            line = line_before(kinds, j, since=start) if clean_flats else None
            if line is not None:  # the shapes that go on keep their flat; the new ones take the model's colours
                touched &= ~continuing_regions(regions.labels, touched, tensor_to_uint8(full[j]))
            new_full[j] = follow_stage(full[j], session.stages[j] - old_proxy[j], full[j], pm,
                                       None if line is None else new_full[line], torch.from_numpy(touched).float(),
                                       lines)
        else:
            moved = uint8_to_tensor(follow_colour_change(tensor_to_uint8(full[j]), before, after, old_proxy[j],
                                                         session.stages[j], pm))
            # Only the changed pixels take the 8-bit result: every other pixel is the stage exactly as it was.
            new_full[j] = torch.where(torch.from_numpy(changed), moved, full[j])
            fresh = fresh_pixels(changed, tensor_to_uint8(full[j]), before, after)
            if fresh.any():  # a new shape on blank paper: generated there, as a new drawing's stages are
                made = new_full[j - 1] + transfer_change(session.stages[j] - session.stages[j - 1], new_full[j - 1], pm)
                new_full[j] = torch.where(torch.from_numpy(fresh), made.clamp_(-1, 1), new_full[j])
        if kinds[j] == "flat" and j + 1 < session.num_stages:
            # The next stages are generated from this stage as it now is (their change is still measured from
            # before).
            session.set_stage(j, proxy_with(new_full[j], pm), propagate=True, keep_mask=proxy_mask)
    return new_full


def apply_edit_fullres(session: Session, full: list[torch.Tensor], pm: ProxyMap, k: int, image: torch.Tensor,
                       keep_unedited: bool = False, clean_flats: bool = CLEAN_FLATS, lines: str = "split",
                       guide: str = "stage", propagation: str = PROPAGATION
                       ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Stage k replaced by the full-res `image` (the whole stage as the artist now sees it): its proxy goes to
    the session (layer cleared, later stages regenerated), then follow_proxies. With keep_unedited, later stages
    change only within 24 px of the pixels the edit changed (keep_mask_fullres) and are exactly their previous
    images elsewhere. propagation="regions" (the default): the later stages change only inside the regions the
    edit touched (follow_regions), keep_unedited or not. Returns the new full-res stages and the full-res keep
    mask (None without keep_unedited). `full` is not modified."""
    if not 0 <= k < session.num_stages:
        raise ArtflowError(f"stage index {k} is out of range (this model has {session.num_stages} stages)")
    image = _check_full(session, k, image, pm)
    old_full = [_check_full(session, j, f, pm) for j, f in enumerate(full)]
    old_proxy = [s.clone() for s in session.stages]
    new_proxy = proxy_with(image, pm)
    mask = keep_mask_fullres(old_full[k], image) if keep_unedited else None
    proxy_mask = edit_mask(old_proxy[k], new_proxy) if keep_unedited else None
    session.set_layer(k, None, propagate=False)
    session.set_stage(k, new_proxy, propagate=True, keep_mask=proxy_mask)
    old_start, old_full[k] = old_full[k], image
    return follow_proxies(session, old_full, old_proxy, pm, k, mask, proxy_mask, clean_flats, lines, guide,
                          propagation, old_start), mask
