"""The `.artflow` project format that the reader and the writer share: the Project dataclass, the member names and
format version, stage file names and the model check (made_with). No Qt here, no pickle.

A project is a zip archive:

    manifest.json          format "artflow-project", version, app version, model name + config hash, resolution,
                           stages (name, channels, has_layer, image), has_targets, latent_dim, extra (app metadata)
    tensors.safetensors    float32, bit-exact: bases.K, layers.K.colour, layers.K.alpha (stages with a layer),
                           latents.I, deltas.I (transition I: stage I -> I+1), targets.K (when the session has them)
    stages/NN-<name>.png   each stage as seen: the full-resolution stage when the manifest has "artwork" (read back,
                           bit-exact: full-res stages live on 8-bit levels); else the proxy composite (layer over
                           base), for other tools, not read back
    layers/NN-<name>.png   a full-res project's artist layer of a stage (RGBA, straight alpha; the app paints it),
    bases/NN-<name>.png    and the picture under it, for the stages whose manifest entry has "fullres_layer": true

Full resolution (issue 12): the manifest's "artwork" {"width", "height"} says the project holds full-res stages of
that size (long side at most core.fullres.MAX_SIDE), and layers/ + bases/ the app's full-res layers (read by older
versions as plain full-res stages: the layer stays baked into stages/). Projects without it (written before full
resolution, or whose session never had full-res stages) are artworks of the model's own size: their full-res
stages are the proxies.

This layout is the contract core.files.project_write writes and core.files.project_read checks member by member (names,
shapes, dtypes); a format change is a diff to this module and both (the round trips in tests/core/test_project.py hold
them to each other).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.artwork_size import ProxyMap
from core.config import WorkflowConfig
from core.files.bundle import config_hash
from core.files.imageio import uint8_to_tensor
from core.session_state import SessionState, compose

PROJECT_VERSION = 1
PROJECT_FORMAT = "artflow-project"
PROJECT_SUFFIX = ".artflow"
MANIFEST = "manifest.json"
TENSORS = "tensors.safetensors"


@dataclass
class Project:
    """One artwork as saved. Stage images in `state` are (C, H, W) float32 in [-1, 1]; layer alphas (1, H, W) in
    [0, 1]; latents (z_dim,); deltas (P,)."""

    model_name: str
    config_hash: str
    stage_names: list[str]
    stage_channels: list[int]
    resolution: int
    state: SessionState
    extra: dict = field(default_factory=dict)  # JSON-serialisable app metadata (variation history, stage status)
    read_only: bool = False  # opened with a different model: images viewable, not editable
    warning: str = ""
    # The full-resolution stages as a PNG holds them, uint8 (height, width) or (height, width, 3), or None: the
    # artwork is the proxies. Kept in 8 bits (a 4096 x 3072 colour stage is 36 MiB, 144 MiB as float32): `fullres`
    # gives them as tensors.
    fullres_u8: list[np.ndarray] | None = None
    # With fullres_u8: per stage the artist's full-res layer (H, W, 4) uint8 RGBA or None, and the base under it
    # (uint8 like the stage; None where the stage has no layer: its base is its full-res stage).
    fullres_layers: list[np.ndarray | None] | None = None
    fullres_bases_u8: list[np.ndarray | None] | None = None

    @property
    def fullres(self) -> list[torch.Tensor] | None:
        """The full-resolution stages (C_k, height, width) float32 on 8-bit levels (new tensors), or None."""
        return None if self.fullres_u8 is None else [uint8_to_tensor(a) for a in self.fullres_u8]

    @property
    def fullres_bases(self) -> list[torch.Tensor | None] | None:
        """The bases under the full-res layers as (C_k, H, W) float32 (new tensors), or None."""
        if self.fullres_bases_u8 is None:
            return None
        return [None if b is None else uint8_to_tensor(b) for b in self.fullres_bases_u8]

    def has_fullres_layer(self, k: int) -> bool:
        return self.fullres_layers is not None and self.fullres_layers[k] is not None

    def proxy_images(self) -> list[torch.Tensor]:
        """Each stage's proxy as the model sees it: the artist's layer composited over the base, (C_k, R, R)."""
        return [compose(b, ly) for b, ly in zip(self.state.bases, self.state.layers, strict=True)]

    def stage_images(self) -> list[torch.Tensor]:
        """Each stage as the artist sees it (what exports write): the full-res stages when the project has them,
        else the proxy composites."""
        return self.fullres if self.fullres_u8 is not None else self.proxy_images()

    def export_images(self) -> list[torch.Tensor] | list[np.ndarray]:
        """stage_images as core.files.export takes them without copies: the full-res stages as kept (uint8, shared: only
        to be read), else the proxy composites (the model's size). stage_images would add a float32 copy of every
        stage (4 bytes a pixel per channel: 1.8 GB for nine colour stages of 4096 x 4096)."""
        return self.fullres_u8 if self.fullres_u8 is not None else self.proxy_images()

    @property
    def artwork_size(self) -> tuple[int, int]:
        """(width, height) of the artwork: the full-res stages', or the model's resolution."""
        if self.fullres_u8 is not None:
            return int(self.fullres_u8[0].shape[1]), int(self.fullres_u8[0].shape[0])
        return self.resolution, self.resolution

    def proxy_map(self) -> ProxyMap:
        width, height = self.artwork_size
        return ProxyMap(width, height, self.resolution)

    @property
    def num_stages(self) -> int:
        return len(self.stage_names)


def stage_file_name(k: int, name: str, suffix: str = ".png") -> str:
    """`NN-<name>.png`: the zero-padded stage index keeps files in workflow order in any file browser."""
    return f"{k:02d}-{name}{suffix}"


def made_with(model_name: str, model_config_hash: str, config: WorkflowConfig) -> bool:
    """Whether a project that names this model (name and config hash) was made with the model of `config`. Both
    count: two bundles of one architecture (the shipped fluent-emoji-128 and emoji-lines-128) share the hash, and
    one's latent codes and refined deltas mean nothing to the other's weights."""
    return model_config_hash == config_hash(config) and model_name == config.name
