"""Training hyper-parameters. `paper()` holds the supplementary's values; every field can be overridden."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from core.config import StageSpec, default_stages
from core.data.stage_dataset import StageDataset, scan_stage_folders
from core.errors import ArtflowError

PHASES = ("inference", "inference-joint", "generation", "generation-joint", "regularizer")


@dataclass(frozen=True)
class TrainConfig:
    # Iterations per phase (supplementary: 450k + 450k inference, 1.2M + 600k generation, 40k regulariser).
    iters: dict[str, int] = field(default_factory=lambda: {
        "inference": 450_000, "inference-joint": 450_000, "generation": 1_200_000,
        "generation-joint": 600_000, "regularizer": 40_000})
    batch_size: int = 8
    lr: float = 2e-4
    lr_d: float | None = None  # discriminators' learning rate; None: the same as lr
    beta1: float = 0.5  # BicycleGAN / pix2pix use Adam(0.5, 0.999)
    beta2: float = 0.999
    lambda_l1: float = 10.0  # lambda^1 (inference and generation)
    lambda_latent: float = 0.5
    lambda_kl: float = 0.01
    lambda_cycle: float = 1.0  # lambda^c, cycle consistency to the inference networks
    # Learned regularisation (Algorithm 1)
    reg_lr: float = 1e-3  # eta
    reg_lambda_gan: float = 1.0
    reg_batch_size: int = 1
    reg_unroll: int = 3  # differentiable AdaIN steps per iteration (see core/train/phases.py for why > 1)
    # Ordinary AdaIN steps before the differentiable ones, drawn uniformly from [0, reg_warm_max] per iteration, so
    # that w learns over the whole test-time refinement (150 steps), not only its start. 0: unroll from delta = 0.
    reg_warm_max: int = 0
    refine_lr: float = 0.1  # alpha
    lambda_p: float = 10.0
    # Mechanics
    seed: int = 0
    augment: bool = True
    # Probabilities per sample (with augment; core/train/augment.py): region-wise recolouring of the flat and
    # detail, and hand-drawn line art (only where the line art is an input, never as workflow inference's target).
    recolour: float = 0.0
    hand_drawn: float = 0.0
    amp: bool = True  # bf16 autocast on CUDA only
    checkpoint_minutes: float = 3.0
    log_every: int = 25
    sample_every: int = 500

    def __post_init__(self) -> None:
        unknown = set(self.iters) - set(PHASES)
        if unknown:
            raise ArtflowError(f"unknown training phase(s) {', '.join(sorted(unknown))}; phases: {', '.join(PHASES)}")
        for k, v in self.iters.items():
            if not isinstance(v, int) or v < 0:
                raise ArtflowError(f"iterations of phase {k!r} must be a non-negative integer")
        if self.batch_size < 1:
            raise ArtflowError("batch size must be at least 1")
        if self.lr <= 0 or (self.lr_d is not None and self.lr_d <= 0):
            raise ArtflowError("learning rates must be positive")
        if self.reg_unroll < 2:
            raise ArtflowError("the regulariser needs at least 2 unrolled steps (reg_unroll >= 2)")
        if not (0.0 <= self.recolour <= 1.0 and 0.0 <= self.hand_drawn <= 1.0):
            raise ArtflowError("augmentation probabilities (recolour, hand_drawn) must lie in [0, 1]")
        if self.reg_warm_max < 0:
            raise ArtflowError("reg_warm_max must be a non-negative integer")

    def with_iters(self, **changes: int) -> TrainConfig:
        return dataclasses.replace(self, iters={**self.iters, **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ArtflowError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def paper() -> TrainConfig:
    return TrainConfig()


def quick(n: int = 20) -> TrainConfig:
    """A few iterations of every phase (tests, smoke runs)."""
    return TrainConfig(iters={p: n for p in PHASES}, batch_size=2, log_every=5, sample_every=0)


def parse_phases(text: str | None) -> tuple[str, ...]:
    """A comma-separated list of phases (None: all, in order); ArtflowError for an unknown one."""
    if not text:
        return PHASES
    phases = tuple(p.strip() for p in text.split(","))
    for ph in phases:
        if ph not in PHASES:
            raise ArtflowError(f"unknown phase {ph!r}; phases: {', '.join(PHASES)}")
    return phases


def stage_specs_from_folder(data_dir: str | os.PathLike[str]) -> tuple[StageSpec, ...]:
    """The stages of a model trained on the stage dataset `data_dir`: names from its stage folders, channels from
    its images, and the labels of the known stages (core.config.default_stages)."""
    folders = scan_stage_folders(data_dir)
    probe = StageDataset(data_dir, size=16)
    known = {s.name: s.label for s in default_stages()}
    return tuple(StageSpec(name, ch, known.get(name, "")) for (_, name, _), ch in zip(folders, probe.channels))
