"""The folded upsampling convolution (core.nn.upsample_conv): the reference's numbers, forward and backward, for
every kernel size, picture size and memory format it takes; and the generator's decode, folded or not, alike."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.model import WorkflowModel
from core.nn.blocks import ConvBlock
from core.nn.upsample_conv import (
    _edge_width,
    _fold_matrices,
    folded_weight,
    reference_upsample_conv,
    supports,
    upsample_conv,
)
from tests.core.engine_util import float64_model


def _grads(out: torch.Tensor, probe: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad((out * probe).sum(), inputs)


@pytest.mark.parametrize("k", [5, 7, 9])
@pytest.mark.parametrize("size", [(3, 3), (3, 5), (7, 6), (16, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_the_reference_forward_and_backward(k: int, size: tuple[int, int], channels_last: bool) -> None:
    gen = torch.Generator().manual_seed(k * 100 + size[0] * 10 + size[1])
    x = torch.randn(2, 3, *size, generator=gen, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    w = torch.randn(4, 3, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    ref = reference_upsample_conv(x, w, b)
    out = upsample_conv(x, w, b)
    assert out.shape == ref.shape == (2, 4, 2 * size[0], 2 * size[1])
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-11)
    probe = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    for got, want in zip(_grads(out, probe, (x, w, b)), _grads(ref, probe, (x, w, b))):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_edges_are_where_the_folding_differs_and_are_replaced() -> None:
    """Without the edge strips the folded result is wrong exactly on the outermost _edge_width rows and columns."""
    assert [_edge_width(k) for k in (3, 5, 7, 9)] == [0, 1, 2, 3]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 8, 8, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 2, 5, 5, generator=gen, dtype=torch.float64)
    kernels, low, high = folded_weight(w)
    raw = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (low, high, low, high), mode="replicate"), kernels), 2)
    wrong = (raw - reference_upsample_conv(x, w, None)).abs().amax(dim=(0, 1)) > 1e-9
    assert wrong[0].all() and wrong[-1].all() and wrong[:, 0].all() and wrong[:, -1].all()
    assert not wrong[1:-1, 1:-1].any()


def test_small_pictures_and_three_by_three_fall_back_to_the_reference() -> None:
    gen = torch.Generator().manual_seed(2)
    for k, size in ((5, (1, 4)), (3, (5, 5)), (9, (2, 2))):
        x = torch.randn(1, 2, *size, generator=gen, dtype=torch.float64)
        w = torch.randn(3, 2, k, k, generator=gen, dtype=torch.float64)
        if 2 * min(size) <= k // 2:  # the reference's own reflection padding needs a bigger picture
            continue
        torch.testing.assert_close(upsample_conv(x, w, None), reference_upsample_conv(x, w, None), rtol=0, atol=0)


def test_supports_only_munit_upsampling_blocks() -> None:
    up = nn.Upsample(scale_factor=2, mode="nearest")
    assert supports(up, ConvBlock(8, 4, 5, norm="ln"))
    assert not supports(up, ConvBlock(8, 4, 3, norm="ln"))  # nothing saved at k = 3
    assert not supports(nn.Upsample(scale_factor=2, mode="bilinear"), ConvBlock(8, 4, 5))
    assert not supports(up, ConvBlock(8, 4, 5, stride=2))
    assert not supports(up, nn.Identity())


def _model(up_kernel: int) -> WorkflowModel:
    return float64_model(up_kernel)


@pytest.mark.parametrize("halvings", [0, 1])
def test_decode_folded_is_the_modules_picture_and_gradient(halvings: int) -> None:
    g = _model(5).generators[0]
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(1, g.content_encoder[0][1].in_channels, 32, 32, generator=gen, dtype=torch.float64) * 2 - 1
    content = g.encode_content(x)
    params = g.adain_params(torch.randn(1, g.cfg.z_dim, generator=gen, dtype=torch.float64))
    pictures, grads = [], []
    for folded in (True, False):
        d = torch.zeros_like(params, requires_grad=True)
        out = g.decode(content, params + d, halvings=halvings, folded=folded)
        pictures.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), d)[0])
    assert pictures[0].shape[-1] == 32 // 2 ** halvings
    torch.testing.assert_close(pictures[0], pictures[1], rtol=0, atol=1e-11)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-9)


def test_training_gradients_reach_the_upsampling_weights_alike() -> None:
    """Training runs the folded path too: the weight gradients of the upsampling convolutions are the modules'."""
    g = _model(5).generators[0].requires_grad_(True)
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(2, g.content_encoder[0][1].in_channels, 32, 32, generator=gen, dtype=torch.float64) * 2 - 1
    z = torch.randn(2, g.cfg.z_dim, generator=gen, dtype=torch.float64)
    weights = [m[1].weight for m in g.upsampler if isinstance(m, ConvBlock) and m[1].kernel_size == (5, 5)]
    assert weights
    got = torch.autograd.grad(g(x, z).square().sum(), weights)
    want = torch.autograd.grad(g.decode(g.encode_content(x), g.adain_params(z), folded=False).square().sum(), weights)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_fold_matrices_are_kept_on_the_weights_device_and_dtype() -> None:
    """A step must copy nothing from the host (a CUDA graph capture forbids it): the fold matrices are made once
    per device and dtype, where the weight lives. The meta device stands in for a GPU here."""
    w = torch.empty(4, 3, 5, 5, device="meta", dtype=torch.float64)
    first = _fold_matrices(5, w.device, w.dtype)
    assert all(f.device.type == "meta" and f.dtype == torch.float64 for f in first[:2])
    assert _fold_matrices(5, w.device, w.dtype)[0] is first[0]
    kernels, _, _ = folded_weight(w)
    assert kernels.device.type == "meta" and kernels.shape == (16, 3, 3, 3)


def test_decode_folds_by_default_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import core.nn.generator as generator_module
    calls = []
    monkeypatch.setattr(generator_module, "upsample_conv", lambda *a: calls.append(1) or upsample_conv(*a))
    g = _model(5).generators[0]
    x = torch.rand(1, g.content_encoder[0][1].in_channels, 32, 32, dtype=torch.float64) * 2 - 1
    g.decode(g.encode_content(x), g.adain_params(torch.zeros(1, g.cfg.z_dim, dtype=torch.float64)))
    assert calls, "the CPU decode did not take the folded path"
