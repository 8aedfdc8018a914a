"""The engine thread's protocol types: the requests (immutable inputs, frozen dataclasses) and what comes back.

A request holds copies of its inputs, so the GUI thread can build it and go on while the engine thread runs it;
`label` is the status bar's text while it runs, `preview` marks an answer that a full-quality one follows. The
queue's merge and drop rules and the handler table are app/engine_worker.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch

from core.config import WorkflowConfig
from core.editing.refine import DEFAULT_SCHEDULE
from core.fullres.artwork import RGBA, ArtworkSnapshot
from core.latent_prior import LatentPrior
from core.nn.perceptual import PerceptualKind
from core.session_state import SessionState


# ----- requests (immutable inputs) -----
@dataclass(frozen=True)
class Request:
    """Base class. `label` is what the status bar shows while the request runs. `preview`: the answer is a
    stand-in, not the session's state; a full-quality answer follows (from a later request)."""

    preview: ClassVar[bool] = False

    @property
    def label(self) -> str:
        return "Working…"


@dataclass(frozen=True)
class LoadModel(Request):
    path: str
    device: str = "auto"

    @property
    def label(self) -> str:
        return f"Loading model {Path(self.path).name}…"


@dataclass(frozen=True)
class NewArtwork(Request):
    """A blank first stage (paper white) of width x height pixels (None: the model's own size), latents at the
    prior's mean, no layers; later stages generated at that size (clean flats: the "flat" stage one colour per
    closed region of the line art)."""

    width: int | None = None
    height: int | None = None
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return "Starting a new artwork…"


@dataclass(frozen=True)
class OpenLineArt(Request):
    """An image made the first stage at its own size (issue 28): a drawing's line art, a Krita line layer (alpha on
    white) or a scan of pencil or ink on paper, cleaned up (paper levelled to white, lines darkened, specks removed,
    small gaps closed: core.fullres.lineart_import) unless `cleanup` is off; the later stages generated, no
    refinement."""

    path: str
    cleanup: bool = True
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return "Opening line art…"


@dataclass(frozen=True)
class ApplyEdits(Request):
    """Set artist layers (stage -> full-res RGBA uint8, read-only, or None) and latents (transition -> z), then
    regenerate the later stages. keep_unedited: later stages keep their pixels outside the region the layer
    edits changed. clean_flats: "flat" stages after a changed line art get one colour per closed region."""

    layers: dict[int, RGBA | None] = field(default_factory=dict)
    latents: dict[int, torch.Tensor] = field(default_factory=dict)
    keep_unedited: bool = False
    clean_flats: bool = True
    # "regions": a painted edit changes later stages only inside the regions it touched; "global": the paper's
    # propagation restyles the whole picture (Edit > Let an edit restyle the whole picture).
    propagation: str = "regions"

    def merged_with(self, newer: ApplyEdits) -> ApplyEdits:
        return ApplyEdits({**self.layers, **newer.layers}, {**self.latents, **newer.latents},
                          self.keep_unedited and newer.keep_unedited, newer.clean_flats, newer.propagation)

    def first_stage(self) -> int | None:
        ks = list(self.layers) + list(self.latents)
        return min(ks) if ks else None

    @property
    def label(self) -> str:
        return "Regenerating later stages…"


@dataclass(frozen=True)
class PreviewLatent(Request):
    """The stages after transition `transition` with its code `z`, at half the resolution and enlarged to the
    artwork's size (Session.preview, preview_to_u8): the live picture while a slider is dragged. The session is not
    changed; the document sends the value as an ApplyEdits on release, whose answer is the full picture. The
    answer's info["previews"] holds stages transition+1 .. N-1."""

    preview: ClassVar[bool] = True
    transition: int
    z: torch.Tensor

    @property
    def label(self) -> str:
        return "Previewing…"


@dataclass(frozen=True)
class Regenerate(Request):
    """Regenerate stages after `stage` with the current latents (no change of inputs)."""

    stage: int = 0
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return "Regenerating…"


@dataclass(frozen=True)
class SampleLatent(Request):
    transition: int
    seed: int
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return "New variation…"


@dataclass(frozen=True)
class LoadArtwork(Request):
    """Open an artwork: from a file (`path`) or an image already in memory (`image`, the last stage's shape)."""

    path: str = ""
    image: torch.Tensor | None = None
    clean_flats: bool = True

    @property
    def label(self) -> str:
        return f"Inferring the stages of {Path(self.path).name or 'the artwork'}…"


@dataclass(frozen=True)
class Refine(Request):
    steps: int = 150
    preview_every: int = 5
    clean_flats: bool = True
    # core.editing.refine.SCHEDULES: "fast" ends a transition once its loss has flattened
    schedule: str = DEFAULT_SCHEDULE

    @property
    def label(self) -> str:
        return "Refining…"


@dataclass(frozen=True)
class SaveProject(Request):
    path: str
    extra: dict = field(default_factory=dict)
    autosave: bool = False

    @property
    def label(self) -> str:
        return "Autosaving…" if self.autosave else f"Saving {Path(self.path).name}…"


@dataclass(frozen=True)
class OpenProject(Request):
    """Read a project; it is applied at once when it fits the open model, else returned for the GUI to decide."""

    path: str
    recovered: bool = False

    @property
    def label(self) -> str:
        return f"Opening {Path(self.path).name}…"


# ----- what comes back -----
@dataclass(frozen=True)
class ModelInfo:
    path: str
    config: WorkflowConfig
    device_label: str
    perceptual: PerceptualKind
    latent_priors: tuple[LatentPrior, ...] = ()  # per transition (CPU copies)


@dataclass(frozen=True)
class EngineResult:
    rid: int
    request: Request
    state: SessionState | None  # the session after the request (a snapshot: safe to keep)
    changed: tuple[int, ...] = ()  # stages whose base was regenerated
    info: dict = field(default_factory=dict)
    art: ArtworkSnapshot | None = None  # the artwork at its own size after the request


@dataclass(frozen=True)
class RefineProgress:
    rid: int
    transition: int
    transitions: int
    step: int
    steps: int
    loss: float
    preview: torch.Tensor | None  # stage transition+1, (C, H, W) in [-1, 1] at the model's size
    preview_full: object = None  # the same at the artwork's size, uint8 (H, W) or (H, W, 3) (for display)

    @property
    def fraction(self) -> float:
        return (self.transition * self.steps + self.step) / max(1, self.transitions * self.steps)
