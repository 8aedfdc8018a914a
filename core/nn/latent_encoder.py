"""BicycleGAN latent encoder E_i: image of stage i+1 -> (mu, logvar) of the 8-d latent z."""

from __future__ import annotations

import torch
from torch import nn

from core.config import EncoderConfig

LOGVAR_INIT = -6.0


class LatentEncoder(nn.Module):
    def __init__(self, in_channels: int, z_dim: int, cfg: EncoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, cfg.dim, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = cfg.dim
        for i in range(1, cfg.n_down):
            nxt = cfg.dim * min(2 ** i, cfg.max_mult)
            layers += [nn.Conv2d(ch, nxt, 4, 2, 1), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, inplace=True)]
            ch = nxt
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.features = nn.Sequential(*layers)
        self.fc_mu = nn.Linear(ch, z_dim)
        self.fc_logvar = nn.Linear(ch, z_dim)
        # Start near-deterministic (sigma = e^-3): an untrained E's means barely differ between images, and
        # unit-variance noise on top would drown them, so G would learn to ignore z before E learns to encode
        # (measured: posterior collapse within 150 steps). The KL term widens sigma towards 1 as training goes.
        nn.init.zeros_(self.fc_logvar.weight)
        nn.init.constant_(self.fc_logvar.bias, LOGVAR_INIT)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) in [-1, 1] -> mu, logvar, each (B, z_dim)."""
        h = self.features(x).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)
