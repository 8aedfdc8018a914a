"""The observable document: what the widgets show and edit, kept in step with the engine thread's Session.

Who owns what:
- the artist's inputs (each stage's painted layer, the latent sliders) are authored here, on the GUI thread, and
  sent to the engine as copies (`ApplyEdits`); this document is their truth;
- the generated images (bases), refinement deltas and targets come back from the engine in each result's
  snapshot; the engine is their truth.
A result can also carry new inputs (opening an artwork or a project, a seeded variation): those replace the
document's values only where the artist has not changed them since the request was made (each input remembers the
id of the latest request that sent it), so a late result never overwrites newer work.

Widgets connect to the signals and call the methods; none of them talks to the engine.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, QTimer, Signal

from app import autosave
from app.engine_worker import (
    ApplyEdits,
    EngineResult,
    EngineThread,
    LoadArtwork,
    LoadModel,
    NewArtwork,
    OpenProject,
    Refine,
    RefineProgress,
    Regenerate,
    Request,
    SampleLatent,
    SaveProject,
)
from app.layers import RGBA, composite, is_empty, layer_to_tensors, tensors_to_layer, to_rgb
from app.settings import Settings
from core.session import Z_RANGE, compose

log = logging.getLogger(__name__)

UNDO_LIMIT = 100  # steps per stage (the brief asks for at least 50)
VARIATION_LIMIT = 40  # per transition
_UNSENT = 1 << 62  # a stale marker for edits not sent yet (auto-regenerate off, or the debounce running)

STATUS_TEXT = {
    "blank": "Blank",
    "generated": "Generated",
    "inferred": "Inferred from the artwork",
    "refined": "Generated (refined)",
    "edited": "Hand-edited",
    "stale": "Stale",
}


class UndoStack:
    """Layer states of one stage. Entries are (label, layer before the change)."""

    def __init__(self, limit: int = UNDO_LIMIT) -> None:
        self.limit = limit
        self._undo: list[tuple[str, RGBA | None]] = []
        self._redo: list[tuple[str, RGBA | None]] = []

    def push(self, before: RGBA | None, label: str) -> None:
        self._undo.append((label, before))
        del self._undo[:-self.limit]
        self._redo.clear()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_label(self) -> str:
        return self._undo[-1][0] if self._undo else ""

    def redo_label(self) -> str:
        return self._redo[-1][0] if self._redo else ""

    def undo(self, current: RGBA | None) -> RGBA | None:
        label, before = self._undo.pop()
        self._redo.append((label, current))
        return before

    def redo(self, current: RGBA | None) -> RGBA | None:
        label, after = self._redo.pop()
        self._undo.append((label, current))
        return after

    def __len__(self) -> int:
        return len(self._undo)


@dataclass
class Variation:
    """One entry of a transition's variation history: a latent code and the final stage it gave."""

    z: torch.Tensor | None  # None until a seeded sample comes back from the engine
    label: str
    seed: int | None = None
    rid: int = 0  # the request that produces its picture
    thumb: np.ndarray | None = None  # (H, W, 3) uint8, the final stage


class Document(QObject):
    modelLoading = Signal(str)  # folder being loaded
    modelChanged = Signal()  # a model was installed: stages, tabs and sliders must be rebuilt
    modelFailed = Signal(str)  # a model folder could not be loaded (the current model, if any, stays)
    stageChanged = Signal(int)  # the picture of stage k changed
    statusChanged = Signal(int)  # generated / hand-edited / stale ... of stage k
    latentChanged = Signal(int)  # the values of transition i changed
    variationsChanged = Signal(int)
    currentStageChanged = Signal(int)
    undoChanged = Signal()
    dirtyChanged = Signal(bool)
    titleChanged = Signal(str)
    activityChanged = Signal(str)  # what the engine is doing ("" idle)
    refineStateChanged = Signal(bool)  # running
    refineProgress = Signal(object)  # RefineProgress
    refineFinished = Signal(bool, str)  # completed, message
    compareChanged = Signal()
    artworkOpened = Signal()  # an image was opened (its stages inferred)
    projectSaved = Signal(str, bool)  # path, autosave
    readOnlyProject = Signal(object)  # a core.project.Project made with another model
    error = Signal(str, str)  # title, message: shown in a message box
    message = Signal(str)  # a transient status-bar message

    def __init__(self, engine: EngineThread, settings: Settings | None = None, parent: QObject | None = None,
                 device: str = "auto") -> None:
        super().__init__(parent)
        self.engine = engine
        self.settings = settings or Settings()
        self.device = device
        self.config = None  # core.config.WorkflowConfig of the loaded model; None = no model
        self.model_info = None  # engine_worker.ModelInfo
        self.model_loading = ""
        self.current_stage = 0
        self.keep_unedited = self.settings.keep_unedited
        self.auto_regenerate = self.settings.auto_regenerate
        self.debounce_ms = 120
        self.project_path: Path | None = None
        self.artwork_name = ""
        self._clear_state()
        self._serial = 0  # bumps on every change of the artwork
        self._saved_serial = 0
        self._autosaved_serial = 0
        self.refine_rid: int | None = None
        self.last_refine_report = None
        self._open_rid = 0
        self._last_result_rid = 0
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self._flush)
        engine.resultReady.connect(self._on_result)
        engine.failed.connect(self._on_failed)
        engine.progress.connect(self._on_progress)
        engine.activity.connect(self.activityChanged)

    def _clear_state(self) -> None:
        n = self.num_stages
        self.bases: list[torch.Tensor] = []
        self.layers: list[RGBA | None] = [None] * n
        self.latents: list[torch.Tensor] = []
        self.deltas: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] | None = None
        self.origin: list[str] = ["generated"] * n
        self.undo_stacks = [UndoStack() for _ in range(n)]
        self.reset_latents: list[torch.Tensor] = []
        self.variations: list[list[Variation]] = [[] for _ in range(max(0, n - 1))]
        self.before_final: np.ndarray | None = None
        self._stale: dict[int, int] = {}  # stage -> id of the request that will regenerate it
        self._layer_rev = [0] * n
        self._latent_rev = [0] * max(0, n - 1)
        self._pending_layers: set[int] = set()
        self._pending_latents: set[int] = set()
        self._previews: dict[int, torch.Tensor] = {}
        self._rgb: dict[int, np.ndarray] = {}
        self._latent_drag = False

    # ----- facts -----
    @property
    def has_model(self) -> bool:
        return self.config is not None and bool(self.bases)

    @property
    def editable(self) -> bool:
        """Edits are accepted (a model is loaded and no other model is on its way in)."""
        return self.has_model and not self.model_loading

    @property
    def num_stages(self) -> int:
        return self.config.num_stages if self.config is not None else 0

    @property
    def num_transitions(self) -> int:
        return max(0, self.num_stages - 1)

    @property
    def resolution(self) -> int:
        return self.config.resolution if self.config is not None else 0

    @property
    def z_dim(self) -> int:
        return self.config.generator.z_dim if self.config is not None else 0

    def stage_title(self, k: int) -> str:
        return self.config.stages[k].title

    def stage_channels(self, k: int) -> int:
        return self.config.stages[k].channels

    def transition_title(self, i: int) -> str:
        return f"{self.stage_title(i)} → {self.stage_title(i + 1)}"

    @property
    def dirty(self) -> bool:
        return self._serial != self._saved_serial

    @property
    def refining(self) -> bool:
        return self.refine_rid is not None

    def title(self) -> str:
        name = self.project_path.name if self.project_path else (self.artwork_name or "Untitled")
        return name

    def status(self, k: int) -> str:
        """'stale' (waiting to be regenerated), 'edited' (has the artist's paint), or where its base came from:
        'blank', 'generated', 'inferred', 'refined'."""
        if k in self._stale or (self.refining and k in self._previews):
            return "stale"
        if not is_empty(self.layers[k]):
            return "edited"
        return self.origin[k]

    def status_text(self, k: int) -> str:
        st = self.status(k)
        if st == "stale":
            if self.refining:
                return "Stale: refining…"
            return "Stale: press Regenerate (F5)" if self._stale.get(k) == _UNSENT and not self.auto_regenerate \
                else "Stale: updating…"
        text = STATUS_TEXT[st]
        if st == "edited":
            text += f" over {STATUS_TEXT[self.origin[k]].lower()}"
        return text

    def is_stale(self, k: int) -> bool:
        return self.status(k) == "stale"

    # ----- images -----
    def base_rgb(self, k: int) -> np.ndarray:
        src = self._previews.get(k, self.bases[k])
        return to_rgb(src)

    def stage_rgb(self, k: int) -> np.ndarray:
        """Stage k as shown: (H, W, 3) uint8, the artist's layer over the generated (or preview) image."""
        img = self._rgb.get(k)
        if img is None:
            img = composite(self.base_rgb(k), self.layers[k])
            self._rgb[k] = img
        return img

    def stage_tensor(self, k: int) -> torch.Tensor:
        """Stage k as the engine sees it (for export): (C, H, W) in [-1, 1]."""
        return compose(self.bases[k], layer_to_tensors(self.layers[k], self.stage_channels(k)))

    def stage_tensors(self) -> list[torch.Tensor]:
        return [self.stage_tensor(k) for k in range(self.num_stages)]

    def compare_reference(self) -> tuple[np.ndarray, str] | None:
        """What the final stage is compared with: the opened artwork, or the final stage before the last change."""
        if not self.has_model:
            return None
        if self.targets is not None:
            return to_rgb(self.targets[-1]), "Original"
        if self.before_final is not None:
            return self.before_final, "Before"
        return None

    def _invalidate(self, k: int) -> None:
        self._rgb.pop(k, None)
        self.stageChanged.emit(k)

    def _touch(self) -> None:
        was = self.dirty
        self._serial += 1
        if not was:
            self.dirtyChanged.emit(True)

    def _capture_before(self) -> None:
        if self.has_model:
            self.before_final = self.stage_rgb(self.num_stages - 1).copy()
            self.compareChanged.emit()

    # ----- navigation -----
    def set_current_stage(self, k: int) -> None:
        if self.has_model and 0 <= k < self.num_stages and k != self.current_stage:
            self.current_stage = k
            self.currentStageChanged.emit(k)
            self.undoChanged.emit()

    # ----- painting -----
    def commit_layer(self, k: int, layer: RGBA | None, label: str = "Paint") -> None:
        """A finished edit of stage k's artist layer (a stroke, a fill, a clear): undoable; later stages follow."""
        if not self.editable:
            return
        before = self.layers[k]
        if before is None and is_empty(layer):
            return
        self.undo_stacks[k].push(None if before is None else before.copy(), label)
        self._set_layer(k, layer)

    def _set_layer(self, k: int, layer: RGBA | None) -> None:
        self._capture_before()
        self.layers[k] = None if is_empty(layer) else np.ascontiguousarray(layer)
        self._layer_rev[k] = _UNSENT
        self._pending_layers.add(k)
        self._mark_stale(range(k + 1, self.num_stages), _UNSENT)
        self._invalidate(k)
        self.statusChanged.emit(k)
        self._touch()
        self.undoChanged.emit()
        if self.auto_regenerate:
            self._flush_timer.start(self.debounce_ms)

    def clear_layer(self, k: int | None = None) -> None:
        """Remove the artist's paint from stage k: the generated image shows again."""
        k = self.current_stage if k is None else k
        if self.has_model and self.layers[k] is not None:
            self.commit_layer(k, None, "Remove my paint")

    def can_undo(self, k: int | None = None) -> bool:
        k = self.current_stage if k is None else k
        return self.has_model and self.undo_stacks[k].can_undo()

    def can_redo(self, k: int | None = None) -> bool:
        k = self.current_stage if k is None else k
        return self.has_model and self.undo_stacks[k].can_redo()

    def undo(self, k: int | None = None) -> None:
        k = self.current_stage if k is None else k
        if self.editable and self.can_undo(k):
            self._set_layer(k, self.undo_stacks[k].undo(self.layers[k]))

    def redo(self, k: int | None = None) -> None:
        k = self.current_stage if k is None else k
        if self.editable and self.can_redo(k):
            self._set_layer(k, self.undo_stacks[k].redo(self.layers[k]))

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
        self._latent_rev[i] = _UNSENT
        self._pending_latents.add(i)
        self._mark_stale(range(i + 1, self.num_stages), _UNSENT)
        self._touch()
        self.latentChanged.emit(i)
        if self.auto_regenerate:
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
        """The artist let go of a slider (or typed a value): remember the result as a variation."""
        self._latent_drag = False
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
        rid = self._submit(SampleLatent(i, int(seed)))
        self._latent_rev[i] = rid
        self._mark_stale(range(i + 1, self.num_stages), rid)
        self._touch()
        self._add_variation(i, Variation(None, f"Seed {seed}", seed=int(seed), rid=rid))

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
        history = self.variations[i]
        if var.z is not None and history and history[-1].z is not None and torch.equal(history[-1].z, var.z):
            return
        if not var.rid:
            var.rid = self._latent_rev[i]
        history.append(var)
        del history[:-VARIATION_LIMIT]
        self._fill_variation_thumbs()
        self.variationsChanged.emit(i)

    def _fill_variation_thumbs(self) -> None:
        """A variation's picture is the final stage once the engine has answered the request that made it."""
        if not self.has_model:
            return
        final = self.num_stages - 1
        for i, history in enumerate(self.variations):
            changed = False
            for var in history:
                if (var.thumb is None and var.z is not None and 0 <= var.rid != _UNSENT
                        and var.rid <= self._last_result_rid and not self.refining):
                    var.thumb = self.stage_rgb(final).copy()
                    changed = True
            if changed:
                self.variationsChanged.emit(i)

    # ----- sending edits -----
    def _mark_stale(self, stages, rid: int) -> None:
        for j in stages:
            old = self._stale.get(j)
            if old == _UNSENT:
                continue  # edits not sent yet: stale until they are sent and answered
            self._stale[j] = rid if old is None or rid == _UNSENT else max(old, rid)
            if old is None:
                self.statusChanged.emit(j)

    def _submit(self, request: Request) -> int:
        return self.engine.submit(request)

    def _flush(self) -> None:
        """Send the pending edits (debounced strokes, slider values) as one request."""
        self._flush_timer.stop()
        if not self.has_model or not (self._pending_layers or self._pending_latents):
            return
        layers = {k: layer_to_tensors(self.layers[k], self.stage_channels(k)) for k in self._pending_layers}
        latents = {i: self.latents[i].clone() for i in self._pending_latents}
        request = ApplyEdits(layers, latents, self.keep_unedited)
        rid = self._submit(request)
        for k in layers:
            self._layer_rev[k] = rid
        for i in latents:
            self._latent_rev[i] = rid
        first = request.first_stage()
        for j, r in list(self._stale.items()):
            if r == _UNSENT and j > first:
                self._stale[j] = rid
        for history in self.variations:
            for var in history:
                if var.rid == _UNSENT:
                    var.rid = rid
        self._pending_layers.clear()
        self._pending_latents.clear()

    def regenerate(self) -> None:
        """Send pending edits, or regenerate every later stage from the first one."""
        if not self.has_model:
            return
        if self._pending_layers or self._pending_latents:
            self._flush()
            return
        rid = self._submit(Regenerate(0))
        self._mark_stale(range(1, self.num_stages), rid)

    def set_auto_regenerate(self, on: bool) -> None:
        self.auto_regenerate = self.settings.auto_regenerate = bool(on)
        if on:
            self._flush()
        for k in range(self.num_stages):
            self.statusChanged.emit(k)

    def set_keep_unedited(self, on: bool) -> None:
        self.keep_unedited = self.settings.keep_unedited = bool(on)

    def flush_now(self) -> None:
        self._flush()

    # ----- whole-artwork actions -----
    def load_model(self, path: str | Path) -> int:
        self._flush()  # edits for the current model go to the current model
        self.model_loading = str(path)
        self.modelLoading.emit(str(path))
        return self._submit(LoadModel(str(path), self.device))

    def new_artwork(self) -> None:
        if self.has_model:
            self._flush()
            self._open_rid = self._submit(NewArtwork())

    def open_image(self, path: str | Path) -> int:
        """Open a finished artwork: its earlier stages are inferred (then refined, if the preference says so)."""
        if not self.has_model and not self.model_loading:
            self.error.emit("No model", "Open a model first (File > Open model…).")
            return 0
        self._flush()
        self._open_rid = self._submit(LoadArtwork(str(path)))
        return self._open_rid

    def open_image_tensor(self, image: torch.Tensor, name: str) -> int:
        self._flush()
        self._open_rid = self._submit(LoadArtwork(name, image))
        return self._open_rid

    def refine(self, steps: int | None = None) -> None:
        """Fit the refinement deltas to the opened artwork (the paper's AdaIN optimisation) on the engine thread."""
        if not self.editable or self.refining:
            return
        if self.targets is None:
            self.message.emit("Nothing to refine: refinement fits the stages to an opened artwork (File > Open image)")
            return
        self._flush()
        steps = self.settings.refine_steps if steps is None else int(steps)
        self.refine_rid = self._submit(Refine(steps, self.settings.preview_every))
        self.refineStateChanged.emit(True)
        for k in range(1, self.num_stages):
            self.statusChanged.emit(k)

    def cancel_refine(self) -> None:
        if self.refining:
            self.engine.cancel_refine()
            self.message.emit("Cancelling the refinement…")

    def save_project(self, path: str | Path) -> None:
        if not self.has_model:
            return
        self._flush()
        self._submit(SaveProject(str(path), self.project_extra()))

    def autosave(self) -> bool:
        """Autosave if something changed since the last autosave. Returns whether one was queued."""
        if not self.has_model or self._serial == self._autosaved_serial or self._serial == self._saved_serial:
            return False
        path = autosave.autosave_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            autosave.write_info(path, {"project": str(self.project_path or ""), "model": self.model_info.path,
                                       "title": self.title()})
        except OSError as exc:
            self.message.emit(f"Autosave failed: {exc}")
            return False
        self._flush()
        self._submit(SaveProject(str(path), self.project_extra(), autosave=True))
        self._autosaved_serial = self._serial
        return True

    def discard_autosave(self) -> None:
        autosave.remove(autosave.autosave_path())

    def open_project(self, path: str | Path, recovered: bool = False) -> int:
        if not self.has_model and not self.model_loading:
            self.error.emit("No model", "Open a model first (File > Open model…).")
            return 0
        self._flush()
        self._open_rid = self._submit(OpenProject(str(path), recovered))
        return self._open_rid

    def project_extra(self) -> dict:
        return {"app": {
            "version": 1,
            "origins": list(self.origin),
            "reset_latents": [z.tolist() for z in self.reset_latents],
            "variations": [[{"z": v.z.tolist(), "label": v.label, "seed": v.seed} for v in h if v.z is not None]
                           for h in self.variations],
            "artwork_name": self.artwork_name,
            "model_path": self.model_info.path if self.model_info else "",
        }}

    def _read_extra(self, extra: dict) -> None:
        app = extra.get("app") if isinstance(extra, dict) else None
        if not isinstance(app, dict):
            return
        n, t, zd = self.num_stages, self.num_transitions, self.z_dim
        origins = app.get("origins")
        if isinstance(origins, list) and len(origins) == n and all(o in STATUS_TEXT for o in origins):
            self.origin = list(origins)
        try:
            reset = [torch.tensor(z, dtype=torch.float32) for z in app.get("reset_latents", [])]
            if len(reset) == t and all(z.shape == (zd,) for z in reset):
                self.reset_latents = [self.clip_latent(i, z) for i, z in enumerate(reset)]
            hist = app.get("variations", [])
            if isinstance(hist, list) and len(hist) == t:
                for i, h in enumerate(hist):
                    for v in h[-VARIATION_LIMIT:]:
                        z = torch.tensor(v["z"], dtype=torch.float32)
                        if z.shape == (zd,):
                            # rid -1: saved without its picture (it shows its label until chosen again)
                            self.variations[i].append(Variation(self.clip_latent(i, z), str(v.get("label", "")),
                                                                v.get("seed") if isinstance(v.get("seed"), int)
                                                                else None, rid=-1))
        except (TypeError, ValueError, KeyError, RuntimeError) as exc:
            log.warning("ignoring the project's variation history: %s", exc)
        name = app.get("artwork_name")
        if isinstance(name, str):
            self.artwork_name = name

    # ----- results from the engine -----
    def _on_result(self, res: EngineResult) -> None:
        req = res.request
        self._last_result_rid = max(self._last_result_rid, res.rid)
        if isinstance(req, LoadModel):
            self._install_model(res)
            return
        if not self.has_model:
            return
        if isinstance(req, SaveProject):
            if req.autosave:
                self.message.emit("Autosaved")
            else:
                self.project_path = Path(res.info["path"])
                self._saved_serial = self._serial
                self.dirtyChanged.emit(False)
                self.titleChanged.emit(self.title())
                self.message.emit(f"Saved {self.project_path}")
            self.projectSaved.emit(res.info["path"], req.autosave)
            return
        if isinstance(req, OpenProject) and not res.info.get("applied"):
            self.readOnlyProject.emit(res.info["project"])
            return
        if isinstance(req, (NewArtwork, LoadArtwork, OpenProject)):
            self._start_over(res)
            return
        self._take_state(res, authoritative_latents={req.transition} if isinstance(req, SampleLatent) else set())
        if isinstance(req, Refine):
            self._end_refine(res)
        for k in res.changed:
            if self.origin[k] not in ("refined",) and k > 0:
                self.origin[k] = "generated"
        if isinstance(req, Refine) and res.info.get("report") is not None and res.info["report"].completed:
            for k in range(1, self.num_stages):
                self.origin[k] = "refined"
        if isinstance(req, SampleLatent):
            for var in self.variations[req.transition]:
                if var.rid == res.rid and var.z is None:
                    var.z = res.state.latents[req.transition].clone()
        self._clear_stale(res.rid)
        for k in range(self.num_stages):
            self.statusChanged.emit(k)
        self._fill_variation_thumbs()

    def _take_state(self, res: EngineResult, authoritative_latents: set[int] | None = None,
                    authoritative_layers: bool = False) -> None:
        st = res.state
        if st is None:
            return
        for k in range(self.num_stages):
            if authoritative_layers and res.rid >= self._layer_rev[k]:
                self.layers[k] = tensors_to_layer(st.layers[k])
                self._rgb.pop(k, None)
            if not torch.equal(self.bases[k], st.bases[k]) or k not in self._rgb:
                self.bases[k] = st.bases[k]
                self._invalidate(k)
        for i in range(self.num_transitions):
            if i in (authoritative_latents or ()) and res.rid >= self._latent_rev[i]:
                if not torch.equal(self.latents[i], st.latents[i]):
                    self.latents[i] = st.latents[i].clone()
                    self.latentChanged.emit(i)
        self.deltas = list(st.deltas)
        self.targets = list(st.targets) if st.targets is not None else None

    def _clear_stale(self, rid: int) -> None:
        for j, r in list(self._stale.items()):
            if r != _UNSENT and r <= rid:
                del self._stale[j]
                self.statusChanged.emit(j)

    def _install_model(self, res: EngineResult) -> None:
        info = res.info["model"]
        self.model_loading = ""
        self.model_info = info
        self.config = info.config
        self._clear_state()
        st = res.state
        self.bases = list(st.bases)
        self.latents = [z.clone() for z in st.latents]
        self.reset_latents = [z.clone() for z in st.latents]
        self.deltas = list(st.deltas)
        self.origin = ["blank"] + ["generated"] * (self.num_stages - 1)
        self.current_stage = 0
        self.project_path = None
        self.artwork_name = ""
        self._serial = self._saved_serial = self._autosaved_serial = 0
        self.refine_rid = None
        for i in range(self.num_transitions):
            self.variations[i].append(Variation(self.latents[i].clone(), "Start", rid=res.rid))
        self.modelChanged.emit()
        self._fill_variation_thumbs()
        self.titleChanged.emit(self.title())
        self.dirtyChanged.emit(False)
        self.message.emit(f"Model {info.config.name} loaded ({info.device_label})")

    def _start_over(self, res: EngineResult) -> None:
        """A new, opened or recovered artwork replaces the document (undo history and variations start afresh),
        except for edits the artist made after asking for it."""
        req = res.request
        st = res.state
        n = self.num_stages
        newer_layers = [self._layer_rev[k] > res.rid for k in range(n)]
        self.undo_stacks = [s if newer_layers[k] else UndoStack() for k, s in enumerate(self.undo_stacks)]
        self._take_state(res, authoritative_latents=set(range(self.num_transitions)), authoritative_layers=True)
        self.reset_latents = [z.clone() for z in st.latents]
        self.variations = [[] for _ in range(self.num_transitions)]
        self.before_final = None
        self._previews.clear()
        if isinstance(req, NewArtwork):
            self.origin = ["blank"] + ["generated"] * (n - 1)
            self.project_path, self.artwork_name = None, ""
            label = "Start"
        elif isinstance(req, LoadArtwork):
            self.origin = ["inferred"] + ["generated"] * (n - 1)
            self.project_path, self.artwork_name = None, Path(req.path).stem if req.path else "artwork"
            label = "Encoded"
        else:
            self.origin = ["generated"] * n
            project = res.info["project"]
            self.project_path = None if req.recovered else Path(req.path)
            self.artwork_name = ""
            self._read_extra(project.extra)
            label = "Opened"
        for i in range(self.num_transitions):
            history = self.variations[i]
            if history and torch.equal(history[-1].z, self.latents[i]):
                history[-1].rid = res.rid  # the current one: its picture is on screen
            else:
                history.append(Variation(self.latents[i].clone(), label, rid=res.rid))
        self._clear_stale(res.rid)
        for k in range(n):
            self._rgb.pop(k, None)
            self.stageChanged.emit(k)
            self.statusChanged.emit(k)
        for i in range(self.num_transitions):
            self.latentChanged.emit(i)
            self.variationsChanged.emit(i)
        if isinstance(req, OpenProject) and not req.recovered:
            self._serial = self._saved_serial = self._autosaved_serial = self._serial + 1
        else:
            self._serial += 1
            self._saved_serial = -1 if not isinstance(req, NewArtwork) else self._serial
        self._fill_variation_thumbs()
        self.compareChanged.emit()
        self.undoChanged.emit()
        self.dirtyChanged.emit(self.dirty)
        self.titleChanged.emit(self.title())
        if isinstance(req, LoadArtwork):
            self.message.emit(f"Opened {self.artwork_name}: earlier stages inferred")
            self.artworkOpened.emit()
            if self.settings.refine_after_open:
                self.refine()
        elif isinstance(req, OpenProject):
            self.message.emit("Recovered the autosaved work" if req.recovered else f"Opened {req.path}")

    def _end_refine(self, res: EngineResult) -> None:
        self.refine_rid = None
        self._previews.clear()
        for k in range(self.num_stages):
            self._invalidate(k)
        report = res.info.get("report")
        self.last_refine_report = report
        self.refineStateChanged.emit(False)
        if res.info.get("cancelled"):
            msg = "Refinement cancelled: the stages are as they were"
            self.refineFinished.emit(False, msg)
        else:
            losses = ", ".join(f"{t.loss_start:.3f}→{t.loss_end:.3f}" for t in report.transitions)
            msg = f"Refinement done in {res.info.get('seconds', 0):.1f} s (loss {losses})"
            self._touch()
            self.refineFinished.emit(True, msg)
        self.message.emit(msg)

    def _on_progress(self, p: RefineProgress) -> None:
        if p.rid != self.refine_rid or not self.has_model:
            return
        if p.preview is not None:
            k = p.transition + 1
            self._previews[k] = p.preview
            self._invalidate(k)
            self.statusChanged.emit(k)
        self.refineProgress.emit(p)

    def _on_failed(self, rid: int, request: Request, message: str) -> None:
        if isinstance(request, LoadModel):
            self.model_loading = ""
            self.modelLoading.emit("")
            self.modelFailed.emit(message)
            return
        self._clear_stale(rid)
        if isinstance(request, Refine) and rid == self.refine_rid:
            self.refine_rid = None
            self._previews.clear()
            for k in range(self.num_stages):
                self._invalidate(k)
            self.refineStateChanged.emit(False)
            self.refineFinished.emit(False, message)
            self.error.emit("Refinement failed", message)
            return
        if isinstance(request, SaveProject) and request.autosave:
            self.message.emit(f"Autosave failed: {message}")
            self._autosaved_serial = -1
            return
        titles = {LoadArtwork: "Cannot open the image", OpenProject: "Cannot open the project",
                  SaveProject: "Cannot save the project", SampleLatent: "Cannot make a variation"}
        self.error.emit(titles.get(type(request), "Something went wrong"), message)
