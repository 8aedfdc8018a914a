"""Small stateless building blocks (after MUNIT's networks.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """MUNIT's layer norm: normalise each sample over (C, H, W), then a per-channel affine."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Group norm with one group is exactly this (biased variance, eps inside the root, per-channel affine) in
        # one fused kernel: 4-5x faster forward + backward than the mean/var/sub/div/mul/add it replaces (measured
        # at the decoder's shapes on the CPU), which the refinement's every step and the slider's preview pay.
        return F.group_norm(x, 1, self.gamma, self.beta, self.eps)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "in":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "ln":
        return LayerNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def _act(kind: str) -> nn.Module:
    return {"relu": nn.ReLU(inplace=True), "lrelu": nn.LeakyReLU(0.2, inplace=True), "tanh": nn.Tanh(),
            "none": nn.Identity()}[kind]


class ConvBlock(nn.Sequential):
    """Reflection-padded conv -> norm -> activation."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: str = "none",
                 act: str = "relu") -> None:
        super().__init__(
            nn.ReflectionPad2d((kernel - 1) // 2) if kernel > 1 else nn.Identity(),
            nn.Conv2d(cin, cout, kernel, stride, 0, bias=True),
            _norm(norm, cout),
            _act(act),
        )


class ResBlock(nn.Module):
    """Residual block with instance norm (content encoder)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBlock(dim, dim, 3, norm="in", act="relu"),
                                  ConvBlock(dim, dim, 3, norm="in", act="none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def adain(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance norm. x (B, C, H, W); scale, bias (B, C). Scale is stored as an offset from 1 so that
    all-zero parameters mean plain instance norm (a well-behaved origin for the delta of the AdaIN optimisation)."""
    return _affine(F.instance_norm(x, eps=eps), scale, bias)


def _affine(normed: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    return normed * (1.0 + scale)[:, :, None, None] + bias[:, :, None, None]


class AdaINResBlock(nn.Module):
    """Residual block whose two norms are AdaIN; its 4*dim parameters are passed in, never stored
    (so a preview can run beside a refinement without racing on module state)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3))

    @property
    def num_params(self) -> int:
        return 4 * self.dim

    def first_norm(self, x: torch.Tensor) -> torch.Tensor:
        """The first convolution of x, instance-normalised: the part of the block its parameters do not touch
        (so a latent drag over an unchanged input computes it once)."""
        return F.instance_norm(self.conv1(x), eps=1e-5)

    def forward(self, x: torch.Tensor, params: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
        """first: first_norm(x) when already known (the same numbers, bit for bit)."""
        # Layout per block: [scale1, bias1, scale2, bias2], each of `dim` values.
        s1, b1, s2, b2 = params.split(self.dim, dim=1)
        h = F.relu(_affine(self.first_norm(x) if first is None else first, s1, b1))
        h = adain(self.conv2(h), s2, b2)
        return x + h


class MLP(nn.Sequential):
    def __init__(self, cin: int, cout: int, hidden: int, layers: int) -> None:
        mods: list[nn.Module] = []
        dims = [cin] + [hidden] * (layers - 1)
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        mods.append(nn.Linear(dims[-1], cout))
        super().__init__(*mods)
