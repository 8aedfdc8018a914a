"""Shared helpers for the core engine tests: tiny seeded models and images (32 px, milliseconds on a CPU)."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator

import pytest
import torch

from core import config
from core.config import StageSpec, WorkflowConfig
from core.model import WorkflowModel
from core.session_state import SessionState

RES = 32

FOUR_STAGES = (
    StageSpec("sketch", 1, "Sketch"),
    StageSpec("flat", 3, "Flat colours"),
    StageSpec("shading", 1, "Shading"),  # a 1-channel stage in the middle
    StageSpec("detail", 3, "Detail"),
)


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Import this into a test module: 32 px models gain nothing from threads, and on a shared 2-core machine
    OpenMP threads spinning against other processes make them several times slower. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(stages: tuple[StageSpec, ...] | None = None) -> WorkflowConfig:
    return config.tiny(stages=stages, resolution=RES)


def tiny_model(seed: int = 0, stages: tuple[StageSpec, ...] | None = None) -> WorkflowModel:
    torch.manual_seed(seed)
    return WorkflowModel(tiny_config(stages)).eval().requires_grad_(False)


def float64_model(up_kernel: int) -> WorkflowModel:
    """A tiny 32 px model in float64 with the given upsampling kernel, its biases and norm weights drawn away from
    their initial 0 / 1 (so that a wrong layout or fold shows): for comparing decoder paths to rounding."""
    cfg = config.tiny(resolution=32)
    cfg = dataclasses.replace(cfg, generator=dataclasses.replace(cfg.generator, up_kernel=up_kernel))
    torch.manual_seed(0)
    m = WorkflowModel(cfg).double().eval().requires_grad_(False)
    for p in m.parameters():
        if p.dim() == 1:
            p.normal_(0, 0.5)
    return m


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


def same(a, b) -> bool:
    """Bit-exact equality of tensors, or of (nested) tuples/lists of tensors and None."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b, strict=True)))
    return a is None and b is None


def states_equal(a: SessionState, b: SessionState) -> bool:
    """Bit-exact equality of two session snapshots, field by field (whatever fields SessionState has)."""
    return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(SessionState))


def stages_of(session) -> list[torch.Tensor]:
    """Copies of the session's stage images as seen (composites)."""
    return [s.clone() for s in session.stages]


def changed(before: list[torch.Tensor], after: list[torch.Tensor]) -> list[int]:
    """Indices of the stages that are not bit-identical."""
    return [k for k, (x, y) in enumerate(zip(before, after, strict=True)) if not torch.equal(x, y)]


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
