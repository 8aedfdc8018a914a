"""Perceptual feature distance for the AdaIN optimisation: VGG16 when local weights are configured, otherwise the
stage's own discriminator features (always present in a bundle). `kind` records which one was used."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import torch
from torch import nn

from core.nn.vgg import VGG16Features

VGG_ENV = "ARTFLOW_VGG16"


class PerceptualKind(str, Enum):
    """Which features the perceptual distance uses. A str, so its value is what reports hold."""

    VGG16 = "vgg16"
    DISCRIMINATOR = "discriminator"

    def __str__(self) -> str:
        return self.value


class Perceptual(nn.Module):
    def __init__(self, extractor: nn.Module, kind: PerceptualKind) -> None:
        super().__init__()
        self.extractor = extractor
        self.kind = kind

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.extractor.features(x) if self.kind is PerceptualKind.DISCRIMINATOR else self.extractor(x)

    @staticmethod
    def distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        """Mean over layers of the mean absolute feature difference."""
        return sum((x - y).abs().mean() for x, y in zip(a, b)) / len(a)


def vgg_weights_path(explicit: str | Path | None = None) -> Path | None:
    p = explicit or os.environ.get(VGG_ENV)
    return Path(p) if p else None


def make_perceptual(discriminator: nn.Module, vgg: VGG16Features | None) -> Perceptual:
    if vgg is not None:
        return Perceptual(vgg, PerceptualKind.VGG16)
    return Perceptual(discriminator, PerceptualKind.DISCRIMINATOR)
