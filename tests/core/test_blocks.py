"""The decoder's building blocks compute what their formulas say (they are written for speed, not by the formula)."""

from __future__ import annotations

import pytest
import torch

from core.nn.blocks import LayerNorm2d


@pytest.mark.parametrize("shape", [(1, 48, 64, 64), (3, 24, 17, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_layer_norm_is_munits_formula_forward_and_backward(shape, channels_last):
    torch.manual_seed(0)
    ln = LayerNorm2d(shape[1])
    with torch.no_grad():
        ln.gamma.uniform_(0.5, 1.5)
        ln.beta.normal_()
    x = torch.randn(shape) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)

    def formula(x: torch.Tensor) -> torch.Tensor:  # per sample over (C, H, W), biased variance, per-channel affine
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = (x.var(dim=(1, 2, 3), keepdim=True, unbiased=False) + ln.eps).sqrt()
        return (x - mean) / std * ln.gamma.view(1, -1, 1, 1) + ln.beta.view(1, -1, 1, 1)

    upstream = torch.randn(shape)
    got = ln(x)
    want = formula(x)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
    grads_got = torch.autograd.grad((got * upstream).sum(), (x, ln.gamma, ln.beta))
    grads_want = torch.autograd.grad((want * upstream).sum(), (x, ln.gamma, ln.beta))
    for a, b in zip(grads_got, grads_want):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
