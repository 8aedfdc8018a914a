"""pix2pix U-Net generator for workflow inference (stage i+1 -> stage i)."""

from __future__ import annotations

import torch
from torch import nn

from core.config import UNetConfig


class UNet(nn.Module):
    """Encoder-decoder with skip connections. Instance norm everywhere but the outermost layers and the innermost
    down-conv (whose output may be 1x1, where instance norm would zero it)."""

    def __init__(self, in_channels: int, out_channels: int, cfg: UNetConfig) -> None:
        super().__init__()
        chans = [cfg.ngf * min(2 ** i, cfg.max_mult) for i in range(cfg.n_down)]
        self.downs = nn.ModuleList()
        prev = in_channels
        for i, ch in enumerate(chans):
            mods: list[nn.Module] = []
            if i > 0:
                mods.append(nn.LeakyReLU(0.2, inplace=False))
            mods.append(nn.Conv2d(prev, ch, 4, 2, 1))
            if 0 < i < cfg.n_down - 1:
                mods.append(nn.InstanceNorm2d(ch))
            self.downs.append(nn.Sequential(*mods))
            prev = ch
        self.ups = nn.ModuleList()
        for i in reversed(range(cfg.n_down)):
            cin = chans[i] if i == cfg.n_down - 1 else chans[i] * 2
            outermost = i == 0
            cout = out_channels if outermost else chans[i - 1]
            mods = [nn.ReLU(inplace=False), nn.ConvTranspose2d(cin, cout, 4, 2, 1)]
            mods.append(nn.Tanh() if outermost else nn.InstanceNorm2d(cout))
            self.ups.append(nn.Sequential(*mods))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Cin, H, W) in [-1, 1] -> (B, Cout, H, W) in [-1, 1]."""
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        skips.pop()  # the bottleneck feeds the first up directly
        for up in self.ups:
            h = up(h)
            if skips:
                h = torch.cat([h, skips.pop()], dim=1)
        return h
