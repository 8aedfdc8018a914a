"""The document's editing of the artist's inputs: painting each stage's layer with undo, and the latent codes
(sliders, seeds, resets) with their variation history.

A mixin of app.document.Document: each edit changes the document at once, marks the later stages stale and the
input unsent, and leaves the sending to the Document (`_flush`, `_submit`). It does not import
the Document, so the two never import each other.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import numpy as np
import torch
from PySide6.QtCore import SignalInstance

from app.engine_worker import PreviewLatent, Request, SampleLatent
from app.layers import RGBA
from app.request_tracking import UNSENT, RequestTracker, Wait
from app.stage_layers import StageLayers
from app.variations import Variation, Variations
from core.editing.session import Z_RANGE


class DocumentInputs:
    """Painting and latent editing. Annotations only below: what the Document (and its DocumentPictures)
    provide (nothing here shadows them)."""

    layers: StageLayers
    latents: list[torch.Tensor]
    reset_latents: list[torch.Tensor]
    variations: Variations
    requests: RequestTracker
    model_info: object  # engine_worker.ModelInfo (its latent_priors) or None
    before_final: np.ndarray | None
    current_stage: int
    num_stages: int
    has_model: bool
    editable: bool
    refining: bool
    auto_regenerate: bool
    live_preview: bool
    clean_flats: bool
    _latent_drag: bool  # a slider drag is under way (its before-image is taken)
    stageChanged: SignalInstance
    statusChanged: SignalInstance
    latentChanged: SignalInstance
    variationsChanged: SignalInstance
    undoChanged: SignalInstance
    compareChanged: SignalInstance
    touch: Callable[[], None]
    _flush: Callable[[], None]
    _submit: Callable[[Request], int]
    _mark_stale: Callable[[Iterable[int], Wait], None]
    stage_rgb: Callable[[int], np.ndarray]
    _capture_before: Callable[[], None]
    _final_before: Callable[[int], np.ndarray]
    _update_cached_rect: Callable[[int, object], None]
    _set_cached_picture: Callable[[int, np.ndarray], None]

    # ----- painting -----
    def commit_layer(self, k: int, layer: RGBA | None, label: str = "Paint", rect=None) -> None:
        """A finished edit of stage k's artist layer (a stroke, a fill, a clear): undoable; later stages follow.
        `rect` (x0, y0, x1, y1): the only pixels the edit changed (undo and the shown picture are updated there
        only)."""
        if not self.editable:
            return
        before_final = self._final_before(k)
        if self.layers.commit(k, layer, label, rect):
            self._layer_changed(k, before_final, rect)

    def commit_fill(self, k: int, layer: RGBA, rect, before: np.ndarray, picture: np.ndarray,
                    label: str = "Fill") -> None:
        """A fill computed off the GUI thread (app/canvas/fill.py) from stage k's current layer and picture: the
        new layer, the undo step's pixels (`before`: the old layer's in `rect`) and the stage as shown afterwards
        are swapped in; nothing the size of the region is computed here."""
        if not self.editable:
            return
        before_final = self.stage_rgb(self.num_stages - 1)  # replaced below, not mended: no copy needed
        if self.layers.commit(k, layer, label, rect, before=before):
            self._set_cached_picture(k, picture)
            self._layer_changed(k, before_final, rect, mended=True)

    def _layer_changed(self, k: int, before_final: np.ndarray, rect=None, mended: bool = False) -> None:
        self.before_final = before_final
        self.compareChanged.emit()
        self.requests.layer_edited(k)
        self._mark_stale(range(k + 1, self.num_stages), UNSENT)
        if self.auto_regenerate:
            # Sent at once, before this thread redraws the stage: the engine works while the canvas composites
            # (84 ms for a stroke on a 2048 px sheet here). A 120 ms debounce used to come first; quick bursts
            # (undo held down) still go as one request, merged in the engine's queue while it is busy.
            self._flush()
        if not mended:  # (a fill brings its picture along)
            self._update_cached_rect(k, rect)
        self.stageChanged.emit(k)
        self.statusChanged.emit(k)
        self.touch()
        self.undoChanged.emit()

    def clear_layer(self, k: int | None = None) -> None:
        """Remove the artist's paint from stage k: the generated image shows again."""
        k = self.current_stage if k is None else k
        if self.has_model and self.layers[k] is not None:
            self.commit_layer(k, None, "Remove my paint")

    def can_undo(self, k: int | None = None) -> bool:
        k = self.current_stage if k is None else k
        return self.has_model and self.layers.can_undo(k)

    def can_redo(self, k: int | None = None) -> bool:
        k = self.current_stage if k is None else k
        return self.has_model and self.layers.can_redo(k)

    def undo_label(self, k: int | None = None) -> str:
        return self.layers.undo_label(self.current_stage if k is None else k) if self.has_model else ""

    def redo_label(self, k: int | None = None) -> str:
        return self.layers.redo_label(self.current_stage if k is None else k) if self.has_model else ""

    def undo(self, k: int | None = None) -> None:
        k = self.current_stage if k is None else k
        if self.editable and self.can_undo(k):
            before_final = self._final_before(k)
            self.layers.undo(k)
            self._layer_changed(k, before_final)

    def redo(self, k: int | None = None) -> None:
        k = self.current_stage if k is None else k
        if self.editable and self.can_redo(k):
            before_final = self._final_before(k)
            self.layers.redo(k)
            self._layer_changed(k, before_final)

    # ----- latents -----
    def set_latent(self, i: int, z, live: bool = False) -> None:
        """New values of transition i's latent code (clipped to the prior's range). live=True during a slider drag:
        the before-image for the compare view is taken once, at the start of the drag."""
        if not self.editable:
            return
        z = self.clip_latent(i, torch.as_tensor(z, dtype=torch.float32).reshape(-1))
        if torch.equal(z, self.latents[i]):
            return
        if not (live and self._latent_drag):
            self._capture_before()
        self._latent_drag = live
        self.latents[i] = z
        self.requests.latent_edited(i)
        self._mark_stale(range(i + 1, self.num_stages), UNSENT)
        self.touch()
        self.latentChanged.emit(i)
        if self.auto_regenerate:
            if live and self.live_preview and not self.refining:
                self._submit(PreviewLatent(i, z.clone()))  # the value stays unsent: end_latent_edit sends it
            else:
                self._flush()

    def _prior(self, i: int):
        """Transition i's core.latent_prior.LatentPrior, or None (no model yet)."""
        priors = self.model_info.latent_priors if self.model_info is not None else ()
        return priors[i] if i < len(priors) else None

    def clip_latent(self, i: int, z: torch.Tensor) -> torch.Tensor:
        """z within Z_RANGE standard deviations of transition i's latent prior (the sliders' range)."""
        prior = self._prior(i)
        return prior.clip(z, Z_RANGE).float() if prior is not None else z.clamp(-Z_RANGE, Z_RANGE).clone()

    def latent_coords(self, i: int) -> torch.Tensor:
        """Transition i's latent code in the sliders' coordinates: standard deviations of its latent prior."""
        prior = self._prior(i)
        return prior.to_standard(self.latents[i]).float() if prior is not None else self.latents[i].clone()

    def set_latent_coords(self, i: int, u, live: bool = False) -> None:
        """set_latent from the sliders' coordinates (see latent_coords)."""
        u = torch.as_tensor(u, dtype=torch.float32).reshape(-1).clamp(-Z_RANGE, Z_RANGE)
        prior = self._prior(i)
        self.set_latent(i, prior.from_standard(u).float() if prior is not None else u, live=live)

    def end_latent_edit(self, i: int) -> None:
        """The artist let go of a slider (or typed a value): the value goes to the engine in full (a drag showed
        previews), and the result is remembered as a variation."""
        self._latent_drag = False
        if self.auto_regenerate:
            self._flush()
        self._add_variation(i, Variation(self.latents[i].clone(), "Edited"))

    def randomize(self, i: int) -> int:
        seed = random.randrange(1, 2**31 - 1)
        self.apply_seed(i, seed)
        return seed

    def apply_seed(self, i: int, seed: int) -> None:
        """Draw transition i's latent code from the prior with `seed` (repeatable)."""
        if not self.editable:
            return
        self._flush()
        self._capture_before()
        rid = self._submit(SampleLatent(i, int(seed), self.clean_flats))
        self.requests.latent_requested(i, rid)
        self._mark_stale(range(i + 1, self.num_stages), Wait(rid))
        self.touch()
        self._add_variation(i, Variation(None, f"Seed {seed}", seed=int(seed), picture=Wait(rid)))

    def reset_latent(self, i: int) -> None:
        """Back to the code this artwork started with (the prior's mean for a new drawing, the encoder's estimate
        for an opened artwork)."""
        if self.has_model:
            self.set_latent(i, self.reset_latents[i])
            self._latent_drag = False
            self._add_variation(i, Variation(self.latents[i].clone(), "Reset"))

    def restore_variation(self, i: int, index: int) -> None:
        var = self.variations[i][index]
        if var.z is not None:
            self.set_latent(i, var.z)
            self._latent_drag = False

    def _add_variation(self, i: int, var: Variation) -> None:
        if var.picture is None:
            var.picture = self.requests.latent_wait(i)  # the request that sent (or will send) this code
        if self.variations.add(i, var):
            self.fill_variation_thumbs()
            self.variationsChanged.emit(i)

    def fill_variation_thumbs(self) -> None:
        """A variation's picture is the final stage once the engine has answered the request that made it."""
        if not self.has_model or self.refining:
            return
        final = self.num_stages - 1
        for i in self.variations.fill_thumbs(self.requests.last_result, lambda: self.stage_rgb(final)):
            self.variationsChanged.emit(i)
