"""The observable document: what the widgets show and edit, kept in step with the engine thread's Session.

Who owns what:
- the artist's inputs (each stage's painted layer, the latent sliders) are authored here, on the GUI thread, and
  sent to the engine as copies (`ApplyEdits`); this document is their truth;
- the generated images (bases), refinement deltas and targets come back from the engine in each result's
  snapshot; the engine is their truth.
A result can also carry new inputs (opening an artwork or a project, a seeded variation): those replace the
document's values only where the artist has not changed them since the request was made (each input remembers the
id of the latest request that sent it: app/request_tracking.py), so a late result never overwrites newer work.

Document is the one object the widgets bind to: its signals are declared here, and its API is combined from
mixins, so that no widget talks to several objects about one artwork. This module holds the state, the facts, the
sending of edits (stale stages) and the whole-artwork actions (model, new, open, refine, save); the
painting with undo and the latent codes are app/document_inputs.py, the pictures and their caches
app/document_pictures.py. The parts with state of their own live in their own modules: the layers and their undo
(app/stage_layers.py), the variation history (app/variations.py), the request bookkeeping
(app/request_tracking.py), the app's record in a project (app/project_extra.py); engine answers are applied by
app/document_results.py. Widgets connect to the signals and call the methods; none of them talks to the engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from app import autosave
from app.document_inputs import DocumentInputs
from app.document_pictures import DocumentPictures
from app.engine_worker import (
    ApplyEdits,
    EngineThread,
    LoadArtwork,
    LoadModel,
    NewArtwork,
    OpenLineArt,
    OpenProject,
    Refine,
    Regenerate,
    Request,
    SaveProject,
)
from app.project_extra import AppExtra, SavedVariation
from app.request_tracking import RequestTracker, Wait
from app.settings import Settings
from app.stage_layers import StageLayers
from app.stage_status import StageStatus
from app.variations import Variation, Variations


class Document(DocumentInputs, DocumentPictures, QObject):
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
    lineArtOpened = Signal(bool)  # an image was opened as line art (True: the scan was cleaned up)
    linesOverChanged = Signal(bool)  # "Line art over colours" turned on or off
    projectSaved = Signal(str, bool)  # path, autosave
    saveFinished = Signal(int, bool)  # the id save_project returned, saved (False: it failed, the error is shown)
    readOnlyProject = Signal(object)  # a core.files.project.Project made with another model
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
        self.clean_flats = self.settings.clean_flats
        self.restyle = self.settings.edit_restyles
        # (path, cleaned up, serial just after opening) of the line art opened last; None once another artwork
        # replaced it.
        self.line_art_opened: tuple[str, bool, int] | None = None
        # "Line art over colours" (issue 28): the line art multiplied over the later stages when shown and in the
        # final export. On for drawings (made in the app, opened as line art), off for opened finished artworks,
        # whose inferred line art is the model's guess.
        self.lines_over = False
        self.auto_regenerate = self.settings.auto_regenerate
        # A slider drag shows quick half-size pictures (PreviewLatent) and regenerates in full on release; False:
        # every value of the drag regenerates in full (the older path, kept for benchmarks).
        self.live_preview = True
        self.project_path: Path | None = None
        self.artwork_name = ""
        self.clear_state()
        self.serial = 0  # bumps on every change of the artwork
        self.saved_serial = 0  # the serial of the last save (-1: never saved, e.g. an opened image)
        self.autosaved_serial = 0
        self.refine_rid: int | None = None
        self.last_refine_report = None
        # The engine's answers are applied by a ResultApplier (app/document_results.py), which the window attaches
        # (apply_results_of): this module does not import it, so the two never import each other.
        self.results = None
        engine.activity.connect(self.activityChanged)

    def clear_state(self) -> None:
        """Forget the artwork (a model is being installed: the stage count may change)."""
        n = self.num_stages
        self.bases: list[torch.Tensor] = []  # the session's bases (the model's proxies)
        # The artwork at its own size: each stage's full-res base, (H, W) or (H, W, 3) uint8, read-only (the
        # engine's arrays, shared); the layers above are at this size too.
        self.full: list[np.ndarray] = []
        self.artwork_size: tuple[int, int] = (0, 0)  # width, height
        self.full_target: np.ndarray | None = None  # the opened artwork at its own size (compare view)
        self.layers = StageLayers(n)
        self.latents: list[torch.Tensor] = []
        self.deltas: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] | None = None
        self.origin: list[StageStatus] = [StageStatus.GENERATED] * n
        self.reset_latents: list[torch.Tensor] = []
        self.variations = Variations(max(0, n - 1))
        self.before_final: np.ndarray | None = None
        self.requests = RequestTracker(n)
        self.previews: dict[int, np.ndarray] = {}  # refinement previews (full-res uint8) shown while it runs
        self._rgb: dict[int, np.ndarray] = {}  # the pictures' caches (DocumentPictures)
        self._base_rgb: dict[int, np.ndarray] = {}
        self._latent_drag = False  # (DocumentInputs)

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
        return self.serial != self.saved_serial

    @property
    def refining(self) -> bool:
        return self.refine_rid is not None

    def title(self) -> str:
        return self.project_path.name if self.project_path else (self.artwork_name or "Untitled")

    def status(self, k: int) -> StageStatus:
        """STALE (waiting to be regenerated), EDITED (has the artist's paint), or where its base came from."""
        if self.requests.is_stale(k) or (self.refining and k in self.previews):
            return StageStatus.STALE
        if self.layers[k] is not None:
            return StageStatus.EDITED
        return self.origin[k]

    def status_text(self, k: int) -> str:
        st = self.status(k)
        if st == StageStatus.STALE:
            if self.refining:
                return "Stale: refining…"
            return "Stale: press Regenerate (F5)" if self.requests.waits_for_sending(k) and not self.auto_regenerate \
                else "Stale: updating…"
        if st == StageStatus.EDITED:
            return f"{st.text} over {self.origin[k].text.lower()}"
        return st.text

    def is_stale(self, k: int) -> bool:
        return self.status(k) == StageStatus.STALE

    def waiting_for_engine(self) -> bool:
        """Something asked of the engine is not answered and applied yet."""
        return bool(self.refining or self.model_loading or not self.requests.settled())

    def has_unsent_edits(self) -> bool:
        return self.requests.has_unsent()

    def touch(self) -> None:
        """The artwork changed (it needs saving)."""
        was = self.dirty
        self.serial += 1
        if not was:
            self.dirtyChanged.emit(True)

    # ----- navigation -----
    def set_current_stage(self, k: int) -> None:
        if self.has_model and 0 <= k < self.num_stages and k != self.current_stage:
            self.current_stage = k
            self.currentStageChanged.emit(k)
            self.undoChanged.emit()

    # ----- sending edits -----
    def _mark_stale(self, stages, wait: Wait) -> None:
        for j in self.requests.mark_stale(stages, wait):
            self.statusChanged.emit(j)

    def clear_stale(self, rid: int) -> None:
        """The engine answered request `rid`: the stages it regenerated are no longer stale."""
        for j in self.requests.answered(rid):
            self.statusChanged.emit(j)

    def _submit(self, request: Request) -> int:
        return self.engine.submit(request)

    def _flush(self) -> None:
        """Send the pending edits (strokes, slider values) as one request."""
        if not self.has_model or not self.requests.has_unsent():
            return
        stages, transitions = self.requests.unsent_inputs()
        layers = {k: self.layers[k] for k in stages}  # read-only arrays: sent without a copy
        latents = {i: self.latents[i].clone() for i in transitions}
        request = ApplyEdits(layers, latents, self.keep_unedited, self.clean_flats,
                             "global" if self.restyle else "regions")
        rid = self._submit(request)
        self.requests.sent(rid, layers, latents, request.first_stage())
        self.variations.sent(rid)

    def regenerate(self) -> None:
        """Send pending edits, or regenerate every later stage from the first one."""
        if not self.has_model:
            return
        if self.requests.has_unsent():
            self._flush()
            return
        rid = self._submit(Regenerate(0, self.clean_flats))
        self._mark_stale(range(1, self.num_stages), Wait(rid))

    def set_auto_regenerate(self, on: bool) -> None:
        self.auto_regenerate = self.settings.auto_regenerate = bool(on)
        if on:
            self._flush()
        for k in range(self.num_stages):
            self.statusChanged.emit(k)

    def set_keep_unedited(self, on: bool) -> None:
        self.keep_unedited = self.settings.keep_unedited = bool(on)

    def set_lines_over(self, on: bool) -> None:
        if bool(on) != self.lines_over:
            self.lines_over = bool(on)
            self.linesOverChanged.emit(self.lines_over)

    def set_restyle(self, on: bool) -> None:
        """"Let an edit restyle the whole picture": the paper's global propagation instead of region-bounded
        change (an edit then moves every later stage everywhere). Takes effect with the next edit."""
        self.restyle = self.settings.edit_restyles = bool(on)

    def set_clean_flats(self, on: bool) -> None:
        """"Clean flats": a "flat" stage regenerated after its line art gets one colour per closed region at the
        artwork's size (core.fullres.flats). Takes effect with the next regeneration."""
        self.clean_flats = self.settings.clean_flats = bool(on)

    def flush_now(self) -> None:
        self._flush()


    # ----- whole-artwork actions -----
    def load_model(self, path: str | Path) -> int:
        self._flush()  # edits for the current model go to the current model
        self.model_loading = str(path)
        self.modelLoading.emit(str(path))
        return self._submit(LoadModel(str(path), self.device))

    def model_load_failed(self) -> None:
        self.model_loading = ""
        self.modelLoading.emit("")

    def new_artwork(self, width: int | None = None, height: int | None = None) -> None:
        """A blank sheet of width x height pixels (None: the model's own size)."""
        if self.has_model:
            self._flush()
            self._submit(NewArtwork(width, height, self.clean_flats))

    def _needs_model(self) -> bool:
        if not self.has_model and not self.model_loading:
            self.error.emit("No model", "Open a model first (File > Open model…).")
            return True
        return False

    def open_line_art(self, path: str | Path, cleanup: bool = True) -> int:
        """Open an image as the first stage at its own size (a scan cleaned up unless `cleanup` is off); the later
        stages are generated from it."""
        if self._needs_model():
            return 0
        self._flush()
        return self._submit(OpenLineArt(str(path), cleanup, self.clean_flats))

    def undo_line_art_cleanup(self) -> int:
        """The line art last opened, again, as it was (no scan clean-up)."""
        if self.line_art_opened is None or not self.line_art_opened[1]:
            return 0
        return self.open_line_art(self.line_art_opened[0], cleanup=False)

    def open_image(self, path: str | Path) -> int:
        """Open a finished artwork: its earlier stages are inferred (then refined, if the preference says so)."""
        if self._needs_model():
            return 0
        self._flush()
        return self._submit(LoadArtwork(str(path), clean_flats=self.clean_flats))

    def open_image_tensor(self, image: torch.Tensor, name: str) -> int:
        self._flush()
        return self._submit(LoadArtwork(name, image, self.clean_flats))

    def open_project(self, path: str | Path, recovered: bool = False) -> int:
        if self._needs_model():
            return 0
        self._flush()
        return self._submit(OpenProject(str(path), recovered))

    def refine(self, steps: int | None = None) -> None:
        """Fit the refinement deltas to the opened artwork (the paper's AdaIN optimisation) on the engine thread."""
        if not self.editable or self.refining:
            return
        if self.targets is None:
            self.message.emit("Nothing to refine: refinement fits the stages to an opened artwork (File > Open image)")
            return
        self._flush()
        steps = self.settings.refine_steps if steps is None else int(steps)
        schedule = "fast" if self.settings.refine_stop_early else "exact"
        self.refine_rid = self._submit(Refine(steps, self.settings.preview_every, self.clean_flats, schedule))
        self.refineStateChanged.emit(True)
        for k in range(1, self.num_stages):
            self.statusChanged.emit(k)

    def cancel_refine(self) -> None:
        if self.refining:
            self.engine.cancel_refine()
            self.message.emit("Cancelling the refinement…")

    def save_project(self, path: str | Path) -> int:
        """Queue a save; returns its id (0: nothing to save). saveFinished(id, saved) says how it ended."""
        if not self.has_model:
            return 0
        self._flush()
        return self._submit(SaveProject(str(path), self.app_extra().to_extra()))

    def autosave(self) -> bool:
        """Autosave if something changed since the last autosave. Returns whether one was queued."""
        if not self.has_model or self.serial in (self.autosaved_serial, self.saved_serial):
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
        self._submit(SaveProject(str(path), self.app_extra().to_extra(), autosave=True))
        self.autosaved_serial = self.serial
        return True

    def discard_autosave(self) -> None:
        autosave.remove(autosave.autosave_path())

    def app_extra(self) -> AppExtra:
        """The app's record for a project file (what core's project format does not hold)."""
        return AppExtra(tuple(self.origin), tuple(self.reset_latents),
                        tuple(tuple(SavedVariation(v.z, v.label, v.seed) for v in h if v.z is not None)
                              for h in self.variations),
                        self.artwork_name, self.model_info.path if self.model_info else "")

    def restore_app_extra(self, record: AppExtra) -> None:
        """Take back what app_extra() saved (codes clipped to the open model's priors)."""
        if record.origins:
            self.origin = list(record.origins)
        if record.reset_latents:
            self.reset_latents = [self.clip_latent(i, z) for i, z in enumerate(record.reset_latents)]
        for i, history in enumerate(record.variations):
            for v in history:
                self.variations.add(i, Variation(self.clip_latent(i, v.z), v.label, v.seed))
        self.artwork_name = record.artwork_name
