"""Memory-format boundaries for autograd graphs on the CPU.

Why a custom boundary rather than `x.contiguous(memory_format=torch.channels_last)`: the gradient of that copy is
channels_last too, and torch (2.13, CPU) computes instance norm's input gradient wrongly for a one-picture batch
whose incoming gradient is channels_last while its input is not (errors of the gradient's own size, silently;
tests/core/test_memory_format.py holds the case). The refinement's decoder is such a graph: AdaIN blocks (instance norm,
NCHW) upstream of a channels_last upsampler. Here the gradient is handed back in NCHW, as upstream expects."""

from __future__ import annotations

import torch


class _ChannelsLastBoundary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 (autograd's signature)
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        return grad.contiguous()


def channels_last_boundary(x: torch.Tensor) -> torch.Tensor:
    """x as channels_last (B, C, H, W); its gradient comes back NCHW-contiguous."""
    return _ChannelsLastBoundary.apply(x)
