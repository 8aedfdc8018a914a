"""Shared helpers for the core engine tests: tiny seeded models and images (32 px, milliseconds on a CPU)."""

from __future__ import annotations

from collections.abc import Generator

import torch

from core import config
from core.config import StageSpec, WorkflowConfig
from core.model import WorkflowModel
from core.session import SessionState

RES = 32

FOUR_STAGES = (
    StageSpec("sketch", 1, "Sketch"),
    StageSpec("flat", 3, "Flat colours"),
    StageSpec("shading", 1, "Shading"),  # a 1-channel stage in the middle
    StageSpec("detail", 3, "Detail"),
)


def tiny_config(stages: tuple[StageSpec, ...] | None = None) -> WorkflowConfig:
    return config.tiny(stages=stages, resolution=RES)


def tiny_model(seed: int = 0, stages: tuple[StageSpec, ...] | None = None) -> WorkflowModel:
    torch.manual_seed(seed)
    return WorkflowModel(tiny_config(stages)).eval().requires_grad_(False)


def image(channels: int, seed: int, res: int = RES) -> torch.Tensor:
    """A smooth random image in [-1, 1] (blurred noise, so that it looks like a picture rather than static)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, res // 4, res // 4, generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)
    return x[0].clamp(-1, 1)


def drive(gen: Generator, on_step=None):
    """Run a refine generator to its end; return (list of yielded steps, returned value)."""
    steps = []
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            return steps, stop.value
        steps.append(step)
        if on_step is not None:
            on_step(step)


def states_equal(a: SessionState, b: SessionState) -> bool:
    """Bit-exact equality of two session snapshots (stages, latents, deltas, targets)."""
    def same(xs, ys):
        if xs is None or ys is None:
            return xs is None and ys is None
        return len(xs) == len(ys) and all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(xs, ys))

    return (same(a.stages, b.stages) and same(a.latents, b.latents) and same(a.deltas, b.deltas)
            and same(a.targets, b.targets))


class StopAfter:
    """A should_stop callable that flips to True once `n` steps have been seen (count them with `seen`)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.calls = 0

    def seen(self, _step) -> None:
        self.count += 1

    def __call__(self) -> bool:
        self.calls += 1
        return self.count >= self.n
