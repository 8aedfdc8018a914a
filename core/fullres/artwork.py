"""The artwork at the artist's own size beside a Session's proxies, with the artist's layers: the app's model of
an artwork (the CLI writes composites and calls core.fullres.pipeline directly).

Per stage: a full-resolution base (what the model made, brought to the artwork's size by the pipeline's rules)
and the artist's layer over it (RGBA, straight alpha, painted in the app); the stage as seen is the layer over
the base. The session holds their proxies: the session's base is the base's proxy (the session generates it), the
session's layer is the layer's proxy. When the session's bases change (an edit, a latent, a refinement), the
full-res bases follow the change (pipeline.follow_stage, clean flats included) and the layers stay on top: paint
is never lost.

Images are numpy uint8 at the artwork's size, (H, W) for a grey stage and (H, W, 3) for a colour one
(core.files.imageio.tensor_to_uint8's layout), on 8-bit levels as a project stores them; layers are (H, W, 4) uint8.
Every array held here is read-only and replaced, never written in place: a snapshot shares them safely with
another thread.

A new drawing of the model's own square size (of_session: `identity`) is its own proxy: its bases are the session's
bases rounded to 8 bits, its layers go to the session exactly, nothing is guided; a "flat" stage after a changed
line art is made a clean flat in the session itself (as at full resolution), so that a new drawing, which starts
at this size, gets clean flats too. An opened artwork of that size keeps its own pixels like a larger one (issue 27).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.editing.edit_mask import edit_mask
from core.editing.session import Session
from core.files.imageio import uint8_to_tensor
from core.fullres.flats import Regions, clean_flat_u8
from core.fullres.guided import apply_change
from core.fullres.kinds import stage_kinds
from core.fullres.layer_pixels import RGBA as RGBA  # the layer helpers' public names, where callers import them
from core.fullres.layer_pixels import base_change, blend, layer_change
from core.fullres.layer_pixels import composite as composite
from core.fullres.layer_pixels import frozen as frozen
from core.fullres.layer_pixels import is_empty as is_empty
from core.fullres.layer_pixels import layer_to_tensors as layer_to_tensors
from core.fullres.layer_pixels import proxy_layer as proxy_layer
from core.fullres.layer_pixels import tensors_to_layer as tensors_to_layer
from core.fullres.layer_pixels import to_u8 as to_u8
from core.fullres.masks import changed_box, diff_box, keep_mask_from_changed
from core.fullres.pipeline import CLEAN_FLATS, PROPAGATION, PROPAGATIONS, line_before
from core.fullres.proxy import ProxyMap, proxy_delta_u8, proxy_of_u8
from core.fullres.region_change import follow_colour_stage, follow_region_rule
from core.fullres.regions import RegionMap, line_mask
from core.platform.threads import one_thread_beside_other_work, single_threaded

# keep_mask_fullres's threshold (2 % of the range, |a - b| / 2 > 0.02 on [-1, 1]) in 8-bit levels: > 5.1
KEEP_LEVELS = 5


@dataclass(frozen=True)
class ArtworkSnapshot:
    """What the GUI is sent: the artwork's size, each stage's full-res base and layer (shared, read-only)."""

    width: int
    height: int
    bases: tuple[np.ndarray, ...]
    layers: tuple[RGBA | None, ...]
    identity: bool


class LayeredArtwork:
    """The full-res bases and layers of one artwork, kept in step with the session that holds its proxies (see
    the module notes). `target`: the opened artwork (the last stage as the artist gave it), or None."""

    def __init__(self, pm: ProxyMap, bases: Sequence[np.ndarray], layers: Sequence[RGBA | None] | None = None,
                 target: np.ndarray | None = None, own_pixels: bool = True) -> None:
        self.pm = pm
        # own_pixels: the bases are the artwork's own, kept apart from the session's proxies (every opened
        # artwork and full-res project, the model's own size included: issue 27). False only for of_session, a
        # new drawing of the model's size, whose bases are the session's.
        self.own_pixels = own_pixels or not pm.is_identity
        self.bases = [frozen(b) for b in bases]
        self.layers: list[RGBA | None] = [None if is_empty(ly) else frozen(ly)
                                          for ly in (layers or [None] * len(self.bases))]
        self.target = None if target is None else frozen(target)
        self._regions: dict[int, tuple[np.ndarray, RGBA | None, RegionMap]] = {}
        self._proxies: dict[int, tuple[np.ndarray, torch.Tensor]] = {}
        # Stage -> that stage as seen before the last set_layers changed it: where a region-bounded regenerate
        # finds what the edit touched.
        self._seen_before: dict[int, np.ndarray] = {}
        self._seen_cache: dict[int, tuple[np.ndarray, RGBA, np.ndarray]] = {}  # stage(): the last composite
        self._regions_beside: dict[int, threading.Thread] = {}  # find_regions_beside: stage -> its thread

    # ----- making one -----
    @classmethod
    def of_session(cls, session: Session) -> LayeredArtwork:
        """An artwork of the model's own size: the session's stages are the artwork."""
        res = session.config.resolution
        return cls(ProxyMap(res, res, res), [to_u8(b) for b in session.bases],
                   [tensors_to_layer(ly) for ly in session.layers], own_pixels=False)

    @classmethod
    def from_stages(cls, pm: ProxyMap, stages: Sequence[torch.Tensor | np.ndarray],
                    target: torch.Tensor | None = None, layers: Sequence[RGBA | None] | None = None
                    ) -> LayeredArtwork:
        """From full-res stages: float (C, H, W) in [-1, 1] (pipeline.fullres_stages' output, a project's), or
        already uint8 (u8=True there: kept as they are, made read-only)."""
        bases = [frozen(s) if isinstance(s, np.ndarray) else to_u8(s) for s in stages]
        # The target is usually the last stage itself (fullres_stages keeps a known stage): one array for both.
        tgt = None if target is None else bases[-1] if target is stages[-1] else to_u8(target)
        return cls(pm, bases, layers, tgt)

    # ----- facts -----
    @property
    def identity(self) -> bool:
        """The bases are the session's own (a new drawing of the model's size): see the module notes."""
        return not self.own_pixels

    @property
    def num_stages(self) -> int:
        return len(self.bases)

    def stage(self, k: int) -> np.ndarray:
        """Stage k as seen (uint8, the layer over the base; read-only). The last composite of a painted stage is
        kept while its base and layer stay the same arrays: one edit reads it several times (what the edit
        touched, the regions, the next stage's driver), each a full pass at the artwork's size otherwise."""
        base, layer = self.bases[k], self.layers[k]
        if layer is None:
            return base
        hit = self._seen_cache.get(k)
        if hit is not None and hit[0] is base and hit[1] is layer:
            return hit[2]
        seen = frozen(composite(base, layer))
        self._seen_cache[k] = (base, layer, seen)
        return seen

    def _seen(self, k: int, box: tuple[int, int, int, int] | None) -> np.ndarray:
        """Stage k as seen, or that part of it."""
        if box is None:
            return self.stage(k)
        y0, y1, x0, x1 = box
        layer = self.layers[k]
        return composite(self.bases[k][y0:y1, x0:x1], None if layer is None else layer[y0:y1, x0:x1])

    def stage_tensor(self, k: int) -> torch.Tensor:
        return uint8_to_tensor(self.stage(k))

    def snapshot(self) -> ArtworkSnapshot:
        return ArtworkSnapshot(self.pm.width, self.pm.height, tuple(self.bases), tuple(self.layers), self.identity)

    # ----- edits -----
    def set_layers(self, session: Session, layers: dict[int, RGBA | None], keep_unedited: bool = False,
                   full_mask: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """New artist layers (stage -> RGBA or None) here and their proxies in the session (nothing regenerated
        yet). With keep_unedited, returns the edited area (proxy mask (R, R), full-res mask (H, W)), else
        (None, None). full_mask=False: the full-res mask is not made (None), for a regenerate with
        propagation="regions", which bounds the later stages by the edit's regions instead: on a first outline
        across a 2048 px sheet its distance transform alone took 0.1 s of the stroke's 0.5 s."""
        proxy_masks, full_masks = [], []
        self._seen_before = {}
        for k in sorted(layers):
            old_proxy = session.stages[k].clone()
            old_layer = self.layers[k]
            new = layers[k]
            if not self.identity:
                self._seen_before[k] = self.stage(k)
            self.layers[k] = None if is_empty(new) else frozen(new)
            session.set_layer(k, proxy_layer(self.layers[k], session.config.stages[k].channels, self.pm),
                              propagate=False)
            if keep_unedited:
                proxy_masks.append(edit_mask(old_proxy, session.stages[k]))
                if full_mask and not self.identity:
                    full_masks.append(self._keep_mask(k, old_layer))
        proxy_mask = torch.stack(proxy_masks).amax(0) if proxy_masks else None
        full_mask = torch.stack(full_masks).amax(0) if full_masks else None
        return proxy_mask, full_mask

    def _keep_mask(self, k: int, old_layer: RGBA | None) -> torch.Tensor:
        """keep_mask_fullres of stage k as seen before and after its layer became self.layers[k]: the stage
        changed only where the layer did, so both are composited in that box only."""
        h, w = self.pm.height, self.pm.width
        changed = np.zeros((h, w), bool)
        new_layer = self.layers[k]
        if old_layer is None and new_layer is None:
            return torch.from_numpy(np.zeros((h, w), np.float32))
        if old_layer is None or new_layer is None:
            diff = (new_layer if old_layer is None else old_layer)[..., 3] > 0
        else:
            diff = old_layer.view(np.uint32)[..., 0] != new_layer.view(np.uint32)[..., 0]
        box = changed_box(diff)
        if box is not None:
            y0, y1, x0, x1 = box
            base = self.bases[k][y0:y1, x0:x1]
            before = composite(base, None if old_layer is None else old_layer[y0:y1, x0:x1]).astype(np.int16)
            after = composite(base, None if new_layer is None else new_layer[y0:y1, x0:x1]).astype(np.int16)
            d = np.abs(after - before)
            changed[y0:y1, x0:x1] = (d.max(2) if d.ndim == 3 else d) > KEEP_LEVELS
        return keep_mask_from_changed(changed)

    def regenerate(self, session: Session, start: int, mask: torch.Tensor | None = None,
                   proxy_mask: torch.Tensor | None = None, clean_flats: bool = CLEAN_FLATS,
                   lines: str = "split", propagation: str = PROPAGATION) -> list[int]:
        """Stage `start` of the session changed (its layer or the latent after it): the later stages regenerated
        (proxy_mask: Session.propagate's keep mask) and this artwork's bases following them (follow, with the
        full-res `mask`). propagation="regions" (the default) after set_layers changed stage `start` (larger than
        the model's size): the bases change only inside the regions the edit touched (follow_regions; `mask`
        unused); a latent change, or "global", moves them all. Returns the stages that changed. At the model's
        own size with clean flats the model stops at the first flat to be cleaned, and follow generates the rest
        from the clean flat: the later stages are made once, not twice."""
        if propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {', '.join(PROPAGATIONS)}, got {propagation!r}")
        seen_before = self._seen_before.pop(start, None) if propagation == "regions" else None
        old = [b.clone() for b in session.bases]
        kinds = stage_kinds(session.config.stages)
        until = None
        if (self.identity or seen_before is not None) and clean_flats:
            until = next((j for j in range(start + 1, session.num_stages)
                          if line_before(kinds, j, since=start) is not None), None)
        if seen_before is not None and kinds[start] == "line":
            # The line art's regions (the walk's first need) are found on the other core meanwhile, and the model
            # keeps to one: a first outline on a 2048 px sheet spends ~0.1 s finding them.
            self.find_regions_beside(start)
            with one_thread_beside_other_work():
                changed = session.propagate(start, keep_mask=proxy_mask, until=until)
        else:
            changed = session.propagate(start, keep_mask=proxy_mask, until=until)
        if seen_before is not None:
            with single_threaded():
                return changed + self._follow_regions(session, old, start, seen_before, proxy_mask, clean_flats,
                                                      lines)
        return changed + self.follow(session, old, start, mask, proxy_mask, clean_flats, lines)

    def _follow_regions(self, session: Session, old_bases: Sequence[torch.Tensor], start: int,
                        seen_before: np.ndarray, proxy_mask: torch.Tensor | None, clean_flats: bool,
                        lines: str) -> list[int]:
        """pipeline.follow_regions on this artwork's 8-bit bases (region_change.follow_region_rule): each later
        base changes only where the stage before it (as seen) changed: inside the closed regions a line-art
        change touched (a "flat" stage cleaned again there), or by one colour transform per changed colour pair
        of a colour stage (the base's own pixels moved, region_change.follow_colour_change). `seen_before`: stage
        `start` as seen before the edit. Returns the stages whose base changed."""
        stages = _ArtworkStages(self, session, old_bases, start, seen_before, lines)
        return follow_region_rule(session, stages, start, proxy_mask, clean_flats)

    def follow(self, session: Session, old_bases: Sequence[torch.Tensor], start: int,
               mask: torch.Tensor | None = None, proxy_mask: torch.Tensor | None = None,
               clean_flats: bool = CLEAN_FLATS, lines: str = "split") -> list[int]:
        """The session's bases after stage `start` changed from `old_bases`: each full-res base follows its
        proxy's change along its own edges; a "flat" stage after a line art at or after `start` is cleaned
        again with that line art as seen (and fed back to the session, later stages regenerated from it).
        `mask` (H, W): full-res bases change only where it is > 0. Returns the stages whose base changed.
        All of it with torch on one thread, the model's regeneration included: its tensor operations are small
        (the per-pixel work runs in core.fullres.kernels on its own threads), and on a loaded 2-core machine a
        two-thread team stalls on each of them (the regeneration of a 128 px chain measured 1.1 s with two
        threads, 0.07 s with one, load average 3.7; about 0.04 s with two when idle)."""
        with single_threaded():
            return self._follow(session, old_bases, start, mask, proxy_mask, clean_flats, lines)

    def _follow(self, session: Session, old_bases: Sequence[torch.Tensor], start: int, mask: torch.Tensor | None,
                proxy_mask: torch.Tensor | None, clean_flats: bool, lines: str) -> list[int]:
        n = session.num_stages
        changed = []
        kinds = stage_kinds(session.config.stages)
        if self.identity:
            remade: set[int] = set()  # regenerated from a clean flat: changed, even where equal to before
            for j in range(start + 1, n):
                line = line_before(kinds, j, since=start) if clean_flats else None
                if line is not None:
                    remade.update(self._clean_identity_flat(session, j, line, proxy_mask, lines))
                if j in remade or not torch.equal(old_bases[j], session.bases[j]):
                    self.bases[j] = to_u8(session.bases[j])
                    changed.append(j)
            return changed
        for j in range(start + 1, n):
            change = session.bases[j] - old_bases[j]
            line = line_before(kinds, j, since=start) if clean_flats else None
            if line is None and not torch.any(change):
                continue
            # pipeline.follow_stage on 8-bit images: the change along the stage's own edges, cleaned again
            # with the line art as seen, changed only where the mask is > 0.
            base, guide_proxy = self.bases[j], self.base_proxy(j)
            windows: list[tuple[int, int, int, int]] | None = None
            if line is None:
                windows = []
                new = apply_change(base, change, base, self.pm, mask, guide_proxy, windows=windows)
            else:
                regions = self.regions(line)  # first: its temporaries peak without the candidate alive
                candidate = apply_change(base, change, base, self.pm, None, guide_proxy)
                # With a mask, the flat is painted only in the mask's box (its colours still come from whole
                # regions); the stage as seen is composited only for lines="ink", and only there.
                box = None if mask is None else changed_box(np.asarray(mask) > 0)
                if mask is not None and box is None:  # nothing may change: the base as it is
                    new, windows = np.array(base), []
                else:
                    flat = clean_flat_u8(regions, candidate, lines,
                                         self._seen(line, box) if lines == "ink" else None, box)
                    new = flat if mask is None else blend(base, flat, mask, box)
                    windows = None if box is None else [box]
                del candidate
            self._proxy_follows(j, base, new, windows)
            self.bases[j] = frozen(new)
            changed.append(j)
            if line is not None and j + 1 < n:  # the next stages from the clean flat
                session.set_stage(j, self.base_proxy(j), propagate=True, keep_mask=proxy_mask)
        return changed

    def _clean_identity_flat(self, session: Session, j: int, line: int, proxy_mask: torch.Tensor | None,
                             lines: str) -> list[int]:
        """At the model's own size: the session's new flat base j made a clean flat of the line art `line` as
        seen (only where `proxy_mask` is > 0, when given), then the later stages regenerated from it, as the
        full-resolution path does (after regenerate, which stopped the model at j, they are made once; called
        after a full propagate, twice). Returns the stages made anew, j and the later ones, equal to before or not:
        the app clears a stage's slider preview when it is reported."""
        flat = clean_flat_u8(self.regions(line), to_u8(session.bases[j]), lines,
                             self.stage(line) if lines == "ink" else None)
        clean = uint8_to_tensor(flat)
        if proxy_mask is not None:
            clean = session.bases[j] + proxy_mask * (clean - session.bases[j])
        return [j, *session.set_stage(j, clean, propagate=j + 1 < session.num_stages, keep_mask=proxy_mask)]

    def _proxy_follows(self, k: int, old: np.ndarray, new: np.ndarray,
                       windows: list[tuple[int, int, int, int]] | None = None) -> None:
        """Keeps the cached proxy of stage k's base in step when the base goes from `old` to `new`: the proxy
        is an average, so only the box where the base changed is summed again (proxy_delta_u8). windows: boxes
        (y0, y1, x0, x1) outside which new equals old, when known (else they are compared)."""
        hit = self._proxies.get(k)
        if hit is None or hit[0] is not old or self.pm.resolution > self.pm.side:
            return
        if windows is not None:
            box = None if not windows else (min(w[0] for w in windows), max(w[1] for w in windows),
                                            min(w[2] for w in windows), max(w[3] for w in windows))
        else:
            box = diff_box(new, old)
        if box is None:
            self._proxies[k] = (new, hit[1])
            return
        if 2 * (box[1] - box[0]) * (box[3] - box[2]) > new.shape[0] * new.shape[1]:
            self._proxies[k] = (new, proxy_of_u8(new, self.pm))  # most of it changed: one pass, not two
        else:
            self._proxies[k] = (new, hit[1] + proxy_delta_u8(new, old, box, self.pm))

    def base_proxy(self, k: int) -> torch.Tensor:
        """The proxy of stage k's full-res base (proxy_with), cached while the base stays the same array."""
        hit = self._proxies.get(k)
        if hit is not None and hit[0] is self.bases[k]:
            return hit[1]
        p = proxy_of_u8(self.bases[k], self.pm)
        self._proxies[k] = (self.bases[k], p)
        return p

    def find_regions_beside(self, k: int) -> None:
        """Starts regions(k) on a thread of its own, so that the caller goes on meanwhile (its numpy, scipy,
        OpenCV and compiled passes let go of the GIL); the next regions(k) waits for it. The bases and layers must
        not change until then. Should the thread fail, that regions(k) finds them itself (and meets the error)."""
        if k not in self._regions_beside:
            thread = threading.Thread(target=self._quietly_find_regions, args=(k,), name="artflow-regions",
                                      daemon=True)
            self._regions_beside[k] = thread
            thread.start()

    def _quietly_find_regions(self, k: int) -> None:
        try:
            self._find_regions(k)
        except Exception:  # noqa: BLE001 - regions(k) on the caller's thread tries again and reports it
            self._regions.pop(k, None)

    def regions(self, k: int) -> Regions:
        """The closed regions of stage k as seen (a line art), cached while its base and layer stay the same.
        When they change, only the rectangle where the stage as seen can differ is composited again and the
        regions are updated around the line pixels that changed (RegionMap.updated: the same result)."""
        beside = self._regions_beside.pop(k, None)
        if beside is not None:
            beside.join()
        return self._find_regions(k)

    def _find_regions(self, k: int) -> Regions:
        base, layer = self.bases[k], self.layers[k]
        hit = self._regions.pop(k, None)
        if hit is not None and hit[0] is base and hit[1] is layer:
            self._regions[k] = hit
            return hit[2].regions
        if hit is None:
            region_map = RegionMap.build(line_mask(self.stage(k)))
        else:
            old_base, old_layer, old_map = hit
            boxes = (base_change(old_base, base), layer_change(old_layer, layer))
            del hit, old_base, old_layer  # the old layer (48 MiB at 4096 x 3072) goes before the update's peak
            line = old_map.regions.line.copy()
            for box in boxes:
                if box is not None:
                    y0, y1, x0, x1 = box
                    part = composite(base[y0:y1, x0:x1], None if layer is None else layer[y0:y1, x0:x1])
                    line[y0:y1, x0:x1] = line_mask(part)
            region_map = old_map.updated(line)
        self._regions[k] = (base, layer, region_map)
        return region_map.regions

    def cached_region_map(self, k: int) -> RegionMap | None:
        """The region map of stage k kept for its current base and layer (None: the next use finds it)."""
        hit = self._regions.get(k)
        return hit[2] if hit is not None and hit[0] is self.bases[k] and hit[1] is self.layers[k] else None

    def pin_target(self) -> None:
        """The last stage's base is the opened artwork itself (after a refinement: the artist's pixels stay)."""
        if self.target is not None and not self.identity:
            self.bases[-1] = self.target


class _ArtworkStages:
    """A LayeredArtwork's stages as region_change.follow_region_rule walks them (FollowedStages): as seen (base
    and layer), the bases followed in place."""

    def __init__(self, art: LayeredArtwork, session: Session, old_bases: Sequence[torch.Tensor], start: int,
                 seen_before: np.ndarray, lines: str) -> None:
        self.art, self.session, self.old_bases = art, session, old_bases
        self.start, self.seen_before, self.lines = start, seen_before, lines
        # The cached proxies of bases replaced during the walk: a colour stage's driver before it moved is often
        # one (its proxy otherwise summed again over the whole sheet, ~10 ms at 2048 px).
        self._replaced_proxies: list[tuple[np.ndarray, torch.Tensor]] = []
        self._candidates: dict[int, np.ndarray] = {}  # ahead(): a flat's candidate, made before its regions

    def before(self, j: int) -> np.ndarray:
        if j == self.start:
            return self.seen_before
        # Stage j as seen before it moves, or as it was before this request's layer edit of it (two stages painted
        # in one request).
        seen = self.art._seen_before.pop(j, None)
        return self.art.stage(j) if seen is None else seen

    def now(self, j: int) -> np.ndarray:
        return self.art.stage(j)

    def regions(self, j: int) -> Regions:
        return self.art.regions(j)

    def ahead(self, j: int, line: int | None) -> None:
        # The flat's candidate (the model's change carried up, the regions' colours measured on it) needs no
        # regions: made while the line art's regions are still being found beside (find_regions_beside).
        if line is not None:
            self._candidates[j] = self._candidate(j)

    def _candidate(self, j: int) -> np.ndarray:
        base = self.art.bases[j]
        change = self.session.bases[j] - self.old_bases[j]
        return apply_change(base, change, base, self.art.pm, None, self.art.base_proxy(j))

    def follow_lines(self, j: int, bound: np.ndarray, line: int | None, regions: Regions) -> None:
        art, base = self.art, self.art.bases[j]
        box = changed_box(bound)
        if line is None:
            change = self.session.bases[j] - self.old_bases[j]
            new = apply_change(base, change, base, art.pm, bound.astype(np.float32), art.base_proxy(j))
        else:
            candidate = self._candidates.pop(j, None)
            candidate = self._candidate(j) if candidate is None else candidate
            flat = clean_flat_u8(art.regions(line), candidate, self.lines,
                                 art._seen(line, box) if self.lines == "ink" else None, box)
            del candidate
            # The bound is all or nothing: the clean flat's pixels inside it, the base's elsewhere (what blend
            # gives for a 0/1 mask, without its float copies: a first outline bounds most of the sheet).
            new = np.array(base)
            if box is not None:
                y0, y1, x0, x1 = box
                part, inside = new[y0:y1, x0:x1], bound[y0:y1, x0:x1]
                np.copyto(part, flat.reshape(part.shape), where=inside[..., None] if part.ndim == 3 else inside)
        self._commit(j, base, new)

    def follow_colours(self, j: int, before: np.ndarray, after: np.ndarray, changed: np.ndarray,
                       learned: bool) -> None:
        art, base, session = self.art, self.art.bases[j], self.session
        proxies = self._proxy_of(j - 1, before), self._proxy_of(j - 1, after)  # the driver's, once for both uses
        new, fresh = follow_colour_stage(base, before, after, self.old_bases[j], session.bases[j], art.pm, changed,
                                         proxies, recolour=session.model.recolour if learned else None)
        if fresh is not None:  # a new shape on blank paper: generated there, as a new drawing's stages are
            made = apply_change(np.ascontiguousarray(after), session.bases[j] - session.bases[j - 1], after, art.pm,
                                fresh, proxies[1])
            y0, y1, x0, x1 = changed_box(fresh)  # (a masked copy over the whole sheet took 30 ms at 2048 px)
            inside = fresh[y0:y1, x0:x1]
            np.copyto(new[y0:y1, x0:x1], made[y0:y1, x0:x1], where=inside[..., None] if new.ndim == 3 else inside)
        self._commit(j, base, new)

    def proxy(self, j: int) -> torch.Tensor:
        return self.art.base_proxy(j)

    def _proxy_of(self, k: int, image: np.ndarray) -> torch.Tensor:
        """proxy_of_u8(image) of a picture of stage k: the artwork's cached proxy when it is stage k's base (now
        or before the walk replaced it)."""
        if image is self.art.bases[k]:
            return self.art.base_proxy(k)
        known = next((p for a, p in self._replaced_proxies if a is image), None)
        return proxy_of_u8(image, self.art.pm) if known is None else known

    def _commit(self, j: int, base: np.ndarray, new: np.ndarray) -> None:
        hit = self.art._proxies.get(j)
        if hit is not None and hit[0] is base:
            self._replaced_proxies.append(hit)
        self.art._proxy_follows(j, base, new)
        self.art.bases[j] = frozen(new)
