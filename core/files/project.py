"""Project files (`.artflow`): one artwork's editing state, shared by the app and the CLI. No Qt here, no pickle.

The public face of projects: a Project from a session (project_from_session) and back into one (apply_project), and,
re-exported, the format (core.files.project_format), the reader (core.files.project_read: load_project and its limits)
and the writer (core.files.project_write: save_project), so callers import everything from here.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from core.config import WorkflowConfig
from core.errors import ArtflowError, ProjectError
from core.files.bundle import config_hash
from core.files.imageio import tensor_to_uint8
from core.files.project_format import MANIFEST as MANIFEST
from core.files.project_format import PROJECT_FORMAT as PROJECT_FORMAT
from core.files.project_format import PROJECT_SUFFIX as PROJECT_SUFFIX
from core.files.project_format import PROJECT_VERSION as PROJECT_VERSION
from core.files.project_format import TENSORS as TENSORS
from core.files.project_format import Project as Project
from core.files.project_format import made_with as made_with
from core.files.project_format import stage_file_name as stage_file_name
from core.files.project_read import MAX_FULLRES_BYTES_WITHOUT_MODEL as MAX_FULLRES_BYTES_WITHOUT_MODEL
from core.files.project_read import MAX_TENSOR_BYTES_WITHOUT_MODEL as MAX_TENSOR_BYTES_WITHOUT_MODEL
from core.files.project_read import fullres_limit as fullres_limit
from core.files.project_read import load_project as load_project
from core.files.project_read import model_tensor_limit as model_tensor_limit
from core.files.project_read import png_limit as png_limit
from core.files.project_write import save_project as save_project
from core.session_state import SessionState


class SessionLike(Protocol):
    """What a project needs of an editing session (core.editing.session.Session): files never import the
    editing engine."""

    config: WorkflowConfig

    def snapshot(self) -> SessionState: ...

    def restore(self, state: SessionState) -> None: ...


def _as_u8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A full-res image as a project keeps it: uint8 (H, W) or (H, W, 3), from a (C, H, W) tensor in [-1, 1]
    (rounded to 8-bit levels) or a uint8 array in that layout (kept as it is, not copied: it is only read)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"a full-res image must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
        return image
    return tensor_to_uint8(image)


def project_from_session(session: SessionLike, extra: dict | None = None,
                         fullres: list[torch.Tensor | np.ndarray] | None = None,
                         layers: list[np.ndarray | None] | None = None,
                         bases: list[torch.Tensor | np.ndarray | None] | None = None) -> Project:
    """A Project holding a copy of the session's state (later edits to the session do not change it) and, when
    given, the full-resolution stages (rounded to 8-bit levels, as they are saved), with the artist's full-res
    layers (RGBA uint8 per stage or None) and the bases under them (None where no layer). Full-res images are
    (C, H, W) tensors in [-1, 1] or uint8 arrays (H, W) / (H, W, 3); arrays are shared, not copied (the app
    passes its read-only ones)."""
    cfg = session.config
    has_layers = fullres is not None and layers is not None and any(ly is not None for ly in layers)
    return Project(model_name=cfg.name, config_hash=config_hash(cfg), stage_names=list(cfg.stage_names),
                   stage_channels=[s.channels for s in cfg.stages], resolution=cfg.resolution,
                   state=session.snapshot(), extra=dict(extra or {}),
                   fullres_u8=None if fullres is None else [_as_u8(t) for t in fullres],
                   fullres_layers=list(layers) if has_layers else None,
                   fullres_bases_u8=[None if ly is None else _as_u8(b)
                                     for ly, b in zip(layers, bases, strict=True)] if has_layers else None)


def apply_project(session: SessionLike, project: Project) -> None:
    """Load the project's state into `session`. ProjectError (and the session unchanged) if the project is
    read-only, was made with another model, or its tensors do not fit the session's model."""
    if project.read_only:
        raise ProjectError(project.warning or "this project was made with another model and is open read-only")
    want = config_hash(session.config)
    if not made_with(project.model_name, project.config_hash, session.config):
        raise ProjectError(f"this project was made with the model '{project.model_name}' "
                           f"(config {project.config_hash}), not with the open model '{session.config.name}' "
                           f"(config {want}); open it with the model it was made with to edit it")
    try:
        session.restore(project.state)
    except ProjectError:
        raise
    except ArtflowError as exc:
        raise ProjectError(f"the project does not fit the open model: {exc}") from None
