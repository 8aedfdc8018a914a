"""What an editing session holds, as data: the state that undo, projects and the engine's requests pass around.
A module of its own so that the file formats (core.files) read and write it without importing the session."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Artist paint over a stage: colour (C, H, W) in [-1, 1], alpha (1, H, W) in [0, 1].
Layer = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class SessionState:
    """An immutable snapshot of a session (undo, projects, requests to the engine thread)."""

    bases: tuple[torch.Tensor, ...]
    layers: tuple[Layer | None, ...]
    latents: tuple[torch.Tensor, ...]
    deltas: tuple[torch.Tensor, ...]
    targets: tuple[torch.Tensor, ...] | None = None


def compose(base: torch.Tensor, layer: Layer | None) -> torch.Tensor:
    """The stage as seen and as fed to the next generator: the artist's layer over the generated base."""
    if layer is None:
        return base
    colour, alpha = layer
    return base * (1 - alpha) + colour * alpha
