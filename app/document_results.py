"""Applying the engine's answers to the document, on the GUI thread.

Each answer is dispatched by the type of the request it answers (a table, mirrored by the engine thread's own
handler table in app/engine_worker.py): results, failures and refinement progress. The rules for what a result may
overwrite are the Document's (see its module notes); this module carries them out through its public methods.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PySide6.QtCore import QObject

from app.engine_worker import (
    ApplyEdits,
    EngineResult,
    LoadArtwork,
    LoadModel,
    NewArtwork,
    OpenLineArt,
    OpenProject,
    PreviewLatent,
    Refine,
    RefineProgress,
    Regenerate,
    Request,
    SampleLatent,
    SaveProject,
)
from app.project_extra import AppExtra, AppExtraVersionError
from app.stage_status import StageStatus
from app.variations import Variations
from core.editing.refine import EDIT_READY_STEPS
from core.errors import shown

if TYPE_CHECKING:
    from app.document import Document

FAILURE_TITLES: dict[type[Request], str] = {
    LoadArtwork: "Cannot open the image", OpenProject: "Cannot open the project",
    SaveProject: "Cannot save the project", SampleLatent: "Cannot make a variation"}


def apply_results_of(engine, doc: Document) -> ResultApplier:
    """Attach a ResultApplier to `doc`: the engine's answers, failures and progress are applied to it from now on.
    (The window calls this once it has made the document.)"""
    results = doc.results = ResultApplier(doc)
    engine.resultReady.connect(results.apply)
    engine.failed.connect(results.failed)
    engine.progress.connect(results.progress)
    return results


class ResultApplier(QObject):
    """Connected to the engine's signals by the Document that owns it. A QObject living on the GUI thread (the
    document's child), so that Qt queues the engine thread's signals to it: every answer is applied there."""

    def __init__(self, doc: Document) -> None:
        super().__init__(doc)
        self.doc = doc
        self._on_result: dict[type[Request], Callable[[EngineResult], None]] = {
            LoadModel: self._model_loaded,
            NewArtwork: self._start_over,
            OpenLineArt: self._start_over,
            LoadArtwork: self._start_over,
            OpenProject: self._project_opened,
            ApplyEdits: self._regenerated,
            PreviewLatent: self._previewed,
            Regenerate: self._regenerated,
            SampleLatent: self._sampled,
            Refine: self._refined,
            SaveProject: self._saved,
        }
        self._on_failure: dict[type[Request], Callable[[int, Request, str], None]] = {
            LoadModel: self._model_failed,
            Refine: self._refine_failed,
            SaveProject: self._save_failed,
        }

    @property
    def requests_handled(self) -> frozenset[type[Request]]:
        """The request types whose results this applies (the same set the engine thread runs)."""
        return frozenset(self._on_result)

    # ----- entry points (engine signals) -----
    def apply(self, res: EngineResult) -> None:
        doc = self.doc
        doc.requests.result_arrived(res.rid)
        if not isinstance(res.request, LoadModel) and not doc.has_model:
            return
        self._on_result[type(res.request)](res)

    def failed(self, rid: int, request: Request, message: str) -> None:
        if not isinstance(request, LoadModel):
            self.doc.clear_stale(rid)
        if isinstance(request, ApplyEdits) and request.first_stage() is not None:
            for k in self._drop_previews(range(request.first_stage() + 1, self.doc.num_stages)):
                self.doc.invalidate(k)
        self._on_failure.get(type(request), self._request_failed)(rid, request, message)

    def progress(self, p: RefineProgress) -> None:
        doc = self.doc
        if p.rid != doc.refine_rid or not doc.has_model:
            return
        if p.preview_full is not None:
            k = p.transition + 1
            doc.previews[k] = p.preview_full
            doc.invalidate(k)
            doc.statusChanged.emit(k)
        doc.refineProgress.emit(p)

    # ----- results -----
    def _take_state(self, res: EngineResult, authoritative_latents: set[int] = frozenset(),
                    authoritative_layers: bool = False) -> None:
        doc, st, art = self.doc, res.state, res.art
        if st is None:
            return
        resized = (art.width, art.height) != doc.artwork_size
        if resized:
            doc.artwork_size = (art.width, art.height)
        for k in range(doc.num_stages):
            if authoritative_layers and not doc.requests.layer_newer_than(k, res.rid):
                doc.layers.set(k, art.layers[k])
                doc.drop_cached_picture(k)
            doc.bases[k] = st.bases[k]
            if doc.set_full_base(k, art.bases[k]) or not doc.has_cached_picture(k) or resized:
                doc.invalidate(k)
        for i in authoritative_latents:
            if not doc.requests.latent_newer_than(i, res.rid) and not torch.equal(doc.latents[i], st.latents[i]):
                doc.latents[i] = st.latents[i].clone()
                doc.latentChanged.emit(i)
        doc.deltas = list(st.deltas)
        doc.targets = list(st.targets) if st.targets is not None else None

    def _previewed(self, res: EngineResult) -> None:
        """A slider drag's quick pictures: shown instead of the stages' bases (which stay stale) until the full
        answer to the edit sent on release replaces them."""
        doc = self.doc
        if doc.refining or not doc.requests.latent_newer_than(res.request.transition, res.rid):
            return  # no newer value of this code is on its way: the full picture is already here
        for k, picture in zip(res.changed, res.info["previews"]):
            doc.previews[k] = picture
            doc.invalidate(k)

    def _drop_previews(self, stages) -> list[int]:
        """Slider previews of `stages` make way for their bases (refinement previews stay until it ends); returns
        the stages whose picture must be shown again (_take_state does it for the bases it takes)."""
        doc = self.doc
        if doc.refining:
            return []
        dropped = [k for k in stages if doc.previews.pop(k, None) is not None]
        for k in dropped:
            doc.drop_cached_picture(k)
        return dropped

    def _regenerated(self, res: EngineResult, authoritative_latents: set[int] = frozenset()) -> None:
        self._drop_previews(res.changed)
        self._take_state(res, authoritative_latents)
        self._mark_generated(res.changed)
        self._answered(res.rid)

    def _sampled(self, res: EngineResult) -> None:
        i = res.request.transition
        self._take_state(res, {i})
        self._mark_generated(res.changed)
        self.doc.variations.sampled(i, res.rid, res.state.latents[i])
        self._answered(res.rid)

    def _refined(self, res: EngineResult) -> None:
        doc = self.doc
        self._take_state(res)
        self._end_refine(res)
        self._mark_generated(res.changed)
        report = res.info.get("report")
        if report is not None and report.completed:
            for k in range(1, doc.num_stages):
                doc.origin[k] = StageStatus.REFINED
        self._answered(res.rid)

    def _mark_generated(self, stages) -> None:
        for k in stages:
            if k > 0 and self.doc.origin[k] != StageStatus.REFINED:
                self.doc.origin[k] = StageStatus.GENERATED

    def _answered(self, rid: int) -> None:
        doc = self.doc
        doc.clear_stale(rid)
        for k in range(doc.num_stages):
            doc.statusChanged.emit(k)
        doc.fill_variation_thumbs()

    def _saved(self, res: EngineResult) -> None:
        doc, req = self.doc, res.request
        if req.autosave:
            doc.message.emit("Autosaved")
        else:
            doc.project_path = Path(res.info["path"])
            doc.saved_serial = doc.serial
            doc.dirtyChanged.emit(False)
            doc.titleChanged.emit(doc.title())
            doc.message.emit(f"Saved {doc.project_path}")
        doc.projectSaved.emit(res.info["path"], req.autosave)
        if not req.autosave:
            doc.saveFinished.emit(res.rid, True)

    def _model_loaded(self, res: EngineResult) -> None:
        doc = self.doc
        info = res.info["model"]
        doc.model_loading = ""
        doc.model_info = info
        doc.config = info.config
        doc.clear_state()
        doc.requests.result_arrived(res.rid)  # a fresh tracker: this answer is its first
        st = res.state
        doc.bases = list(st.bases)
        doc.full = list(res.art.bases)
        doc.artwork_size = (res.art.width, res.art.height)
        doc.full_target = None
        doc.latents = [z.clone() for z in st.latents]
        doc.reset_latents = [z.clone() for z in st.latents]
        doc.deltas = list(st.deltas)
        doc.origin = [StageStatus.BLANK] + [StageStatus.GENERATED] * (doc.num_stages - 1)
        doc.current_stage = 0
        doc.project_path = None
        doc.artwork_name = ""
        doc.serial = doc.saved_serial = doc.autosaved_serial = 0
        doc.refine_rid = None
        for i in range(doc.num_transitions):
            doc.variations.now_showing(i, doc.latents[i], res.rid, "Start")
        doc.modelChanged.emit()
        doc.fill_variation_thumbs()
        doc.titleChanged.emit(doc.title())
        doc.dirtyChanged.emit(False)
        doc.message.emit(f"Model {info.config.name} loaded ({info.device_label})")

    def _project_opened(self, res: EngineResult) -> None:
        if res.info.get("applied"):
            self._start_over(res)
        else:
            project = res.info["project"]
            project.warning = read_only_warning(Path(res.request.path).name, project, self.doc.config)
            self.doc.readOnlyProject.emit(project)

    def _start_over(self, res: EngineResult) -> None:
        """A new, opened or recovered artwork replaces the document (undo history and variations start afresh),
        except for edits the artist made after asking for it."""
        doc, req, st = self.doc, res.request, res.state
        n = doc.num_stages
        doc.layers.restart_history(doc.requests.layer_newer_than(k, res.rid) for k in range(n))
        self._take_state(res, authoritative_latents=set(range(doc.num_transitions)), authoritative_layers=True)
        doc.reset_latents = [z.clone() for z in st.latents]
        doc.variations = Variations(doc.num_transitions)
        doc.before_final = None
        doc.previews.clear()
        doc.full_target = None if res.art.identity else self._target(res)
        if isinstance(req, NewArtwork):
            doc.origin = [StageStatus.BLANK] + [StageStatus.GENERATED] * (n - 1)
            doc.project_path, doc.artwork_name = None, ""
            label = "Start"
        elif isinstance(req, OpenLineArt):
            doc.origin = [StageStatus.EDITED] + [StageStatus.GENERATED] * (n - 1)
            doc.project_path, doc.artwork_name = None, Path(req.path).stem
            label = "Line art"
        elif isinstance(req, LoadArtwork):
            doc.origin = [StageStatus.INFERRED] + [StageStatus.GENERATED] * (n - 1)
            doc.project_path, doc.artwork_name = None, Path(req.path).stem if req.path else "artwork"
            label = "Encoded"
        else:
            project = res.info["project"]
            doc.origin = [StageStatus.GENERATED] * n
            doc.project_path = None if req.recovered else Path(req.path)
            doc.artwork_name = ""
            self._restore_app_extra(project.extra)
            label = "Opened"
        # The artist's own line art (a new drawing, one opened as line art, a project drawn, not fitted to an
        # artwork) sits over the colours; an opened finished artwork shows its stages as they are.
        doc.set_lines_over(doc.origin[0] != StageStatus.INFERRED and doc.targets is None)
        for i in range(doc.num_transitions):
            doc.variations.now_showing(i, doc.latents[i], res.rid, label)
        doc.clear_stale(res.rid)
        for k in range(n):
            doc.drop_cached_picture(k)
            doc.stageChanged.emit(k)
            doc.statusChanged.emit(k)
        for i in range(doc.num_transitions):
            doc.latentChanged.emit(i)
            doc.variationsChanged.emit(i)
        if isinstance(req, OpenProject) and not req.recovered:
            doc.serial = doc.saved_serial = doc.autosaved_serial = doc.serial + 1
        else:
            doc.serial += 1
            doc.saved_serial = -1 if not isinstance(req, NewArtwork) else doc.serial
        doc.fill_variation_thumbs()
        doc.compareChanged.emit()
        doc.undoChanged.emit()
        doc.dirtyChanged.emit(doc.dirty)
        doc.titleChanged.emit(doc.title())
        if not isinstance(req, OpenLineArt) and doc.line_art_opened is not None:
            doc.line_art_opened = None  # another artwork replaced it: nothing to open again
            doc.lineArtOpened.emit(False)
        if isinstance(req, LoadArtwork):
            doc.message.emit(f"Opened {doc.artwork_name}: earlier stages inferred")
            doc.artworkOpened.emit()
            if doc.settings.refine_after_open:
                # The short edit-ready fit the edit benchmark chose (core.editing.refine.EDIT_READY_STEPS); Refine runs
                # the paper's steps (the panel's count) whenever the artist asks.
                doc.refine(min(EDIT_READY_STEPS, doc.settings.refine_steps))
        elif isinstance(req, OpenLineArt):
            cleaned = (res.info.get("lineart") or {}).get("cleaned", False)
            doc.line_art_opened = (req.path, cleaned, doc.serial)
            doc.message.emit(f"Opened {doc.artwork_name} as line art: the scan was cleaned up (paper levelled, "
                             "lines darkened, specks removed, small gaps closed; Edit > Use the line art as it was "
                             "undoes it)" if cleaned else f"Opened {doc.artwork_name} as line art")
            doc.lineArtOpened.emit(cleaned)

    @staticmethod
    def _target(res: EngineResult):
        """The opened artwork at its own size, for the compare view: the last stage's base right after opening
        an image (the engine keeps it exactly)."""
        return res.art.bases[-1] if isinstance(res.request, LoadArtwork) else None

    def _restore_app_extra(self, extra: dict) -> None:
        doc = self.doc
        try:
            record = AppExtra.from_extra(extra, doc.num_stages, doc.z_dim)
        except AppExtraVersionError as exc:
            doc.message.emit(f"Note: {exc}")
            return
        if record is not None:
            doc.restore_app_extra(record)

    def _end_refine(self, res: EngineResult) -> None:
        doc = self.doc
        self._stop_refining()
        report = res.info.get("report")
        doc.last_refine_report = report
        doc.refineStateChanged.emit(False)
        if res.info.get("cancelled"):
            msg = "Refinement cancelled: the stages are as they were"
            doc.refineFinished.emit(False, msg)
        else:
            losses = ", ".join(f"{t.loss_start:.3f}→{t.loss_end:.3f}" for t in report.transitions)
            msg = f"Refinement done in {res.info.get('seconds', 0):.1f} s (loss {losses})"
            doc.touch()
            doc.refineFinished.emit(True, msg)
        doc.message.emit(msg)

    def _stop_refining(self) -> None:
        doc = self.doc
        doc.refine_rid = None
        doc.previews.clear()
        for k in range(doc.num_stages):
            doc.invalidate(k)

    # ----- failures -----
    def _model_failed(self, rid: int, request: Request, message: str) -> None:
        self.doc.model_load_failed()
        self.doc.modelFailed.emit(message)

    def _refine_failed(self, rid: int, request: Request, message: str) -> None:
        doc = self.doc
        if rid != doc.refine_rid:
            self._request_failed(rid, request, message)
            return
        self._stop_refining()
        doc.refineStateChanged.emit(False)
        doc.refineFinished.emit(False, message)
        doc.error.emit("Refinement failed", message)

    def _save_failed(self, rid: int, request: SaveProject, message: str) -> None:
        if request.autosave:
            self.doc.message.emit(f"Autosave failed: {message}")
            self.doc.autosaved_serial = -1
            return
        self._request_failed(rid, request, message)
        self.doc.saveFinished.emit(rid, False)

    def _request_failed(self, rid: int, request: Request, message: str) -> None:
        self.doc.error.emit(FAILURE_TITLES.get(type(request), "Something went wrong"), message)


def read_only_warning(file_name: str, project, config) -> str:
    """What the window says of a project made with another model: one line, its names shortened and escaped (a
    forged million-character model name once took a dialog 2 GB and 30 s to lay out)."""
    from core.files.project import config_hash

    theirs = shown(project.model_name, 60)
    return (f"{shown(file_name)} was made with the model '{theirs}' (config {shown(project.config_hash, 24)}), "
            f"not the open model '{shown(config.name, 60)}' (config {config_hash(config)}); open it with the model "
            f"'{theirs}' to edit it")
