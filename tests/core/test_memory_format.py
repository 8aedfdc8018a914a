"""The decoder's channels_last upsampler (the CPU default) gives the NCHW decoder's picture and gradients, including
at a one-picture batch, where torch's instance norm gets its input gradient wrong if the incoming gradient is
channels_last (core/nn/memory_format.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.nn.memory_format import channels_last_boundary
from tests.core.engine_util import float64_model

CL = torch.channels_last


def _generator(up_kernel: int) -> torch.nn.Module:
    return float64_model(up_kernel).generators[0]  # line art (1 channel) -> the next stage


def test_boundary_hands_the_gradient_back_nchw_and_instance_norm_gets_it_right() -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 8, 12, 12, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    probe = torch.randn(1, 4, 10, 10, dtype=torch.float64)

    def loss(to_cl) -> torch.Tensor:
        h = to_cl(F.instance_norm(x * 2 + 1))
        out = F.conv2d(h, w)
        assert out.is_contiguous(memory_format=CL) or to_cl is _identity
        return (out * probe).sum()

    want = torch.autograd.grad(loss(_identity), x)[0]
    got = torch.autograd.grad(loss(channels_last_boundary), x)[0]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    assert channels_last_boundary(x).is_contiguous(memory_format=CL)


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


@pytest.mark.parametrize("up_kernel", [3, 5])
@pytest.mark.parametrize("batch", [1, 2])
def test_channels_last_decode_is_the_nchw_picture_and_gradient(up_kernel: int, batch: int) -> None:
    g = _generator(up_kernel)
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(batch, g.content_encoder[0][1].in_channels, 32, 32, generator=gen, dtype=torch.float64) * 2 - 1
    content = g.encode_content(x)
    params = g.adain_params(torch.randn(batch, g.cfg.z_dim, generator=gen, dtype=torch.float64))
    probe = torch.randn(batch, g.upsampler[-1][1].out_channels, 32, 32, generator=gen, dtype=torch.float64)
    pictures, grads = [], []
    for channels_last in (True, False):
        d = torch.zeros_like(params, requires_grad=True)
        out = g.decode(content, params + d, start=g.decode_start(content), channels_last=channels_last)
        assert out.is_contiguous()  # handed back NCHW whatever ran inside
        pictures.append(out)
        grads.append(torch.autograd.grad((out * probe).sum(), d)[0])
    torch.testing.assert_close(pictures[0], pictures[1], rtol=0, atol=1e-11)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-9)


def test_cpu_default_is_channels_last_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.nn.generator as generator_module
    calls = []
    monkeypatch.setattr(generator_module, "channels_last_boundary",
                        lambda h: calls.append(1) or channels_last_boundary(h))
    g = _generator(3)
    x = torch.rand(1, g.content_encoder[0][1].in_channels, 32, 32, dtype=torch.float64) * 2 - 1
    params = g.adain_params(torch.zeros(1, g.cfg.z_dim, dtype=torch.float64))
    g.decode(g.encode_content(x), params)
    assert calls == [1]
    g.channels_last_on_cpu = False
    g.decode(g.encode_content(x), params)
    assert calls == [1]
