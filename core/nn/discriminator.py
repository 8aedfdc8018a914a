"""Multi-scale PatchGAN discriminator (hinge loss), also the perceptual feature extractor when no VGG is present."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.config import DiscriminatorConfig


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        ch, prev = cfg.ndf, in_channels
        for _ in range(cfg.n_layers):
            self.layers.append(nn.Sequential(nn.Conv2d(prev, ch, 4, 2, 1), nn.LeakyReLU(0.2, inplace=False)))
            prev, ch = ch, min(ch * 2, cfg.ndf * 8)
        self.head = nn.Conv2d(prev, 1, 3, 1, 1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[-1])


class MultiScaleDiscriminator(nn.Module):
    """PatchGANs at full, 1/2, 1/4 ... resolution. forward -> list of (B, 1, h, w) logit maps."""

    def __init__(self, in_channels: int, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, cfg) for _ in range(cfg.n_scales))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Intermediate activations of the full-resolution PatchGAN, used as perceptual features."""
        return self.scales[0].features(x)


def hinge_d_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits))
    return loss / len(real_logits)


def hinge_g_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    return -sum(f.mean() for f in fake_logits) / len(fake_logits)
