"""The inference-only generator forward (core.nn.inference): the same pictures as the reference modules, to float
rounding, for every path the session takes (content code, decoder start, decode at every size)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.config import tiny
from core.model import WorkflowModel
from core.nn.inference import FastGenerator
from tests.core.engine_util import RES, image, single_thread  # noqa: F401

TOL = dict(rtol=0, atol=1e-4)  # float rounding (1/78 of an 8-bit level); a wrong formula is off by >1e-2


def model(up_kernel: int, seed: int = 0) -> WorkflowModel:
    cfg = tiny(resolution=RES)
    cfg = dataclasses.replace(cfg, generator=dataclasses.replace(cfg.generator, up_kernel=up_kernel))
    torch.manual_seed(seed)
    m = WorkflowModel(cfg).eval().requires_grad_(False)
    # Trained AdaIN layers and norms are not at their initial identity: random affine parameters everywhere.
    for p in m.parameters():
        if p.dim() == 1:
            p.normal_(0, 0.5)
    return m.to(memory_format=torch.channels_last)


def blank_page(seed: int) -> torch.Tensor:
    """A short dark stroke on white: most of the page is constant, where a norm's variance loses digits when it
    is computed as E[x^2] - E[x]^2 (batch norm's channels_last kernel for one picture does)."""
    x = torch.ones(1, RES, RES)
    r = 4 + seed % (RES - 8)
    x[0, r, r:r + 3] = -1
    return x


@pytest.mark.parametrize("up_kernel", [3, 5])  # 3: the phase convolutions; 5: the reference upsampling
@pytest.mark.parametrize("batch", [1, 2])
def test_fast_forward_equals_the_reference(up_kernel, batch):
    m = model(up_kernel)
    for i, g in enumerate(m.generators):
        fast, eager = FastGenerator(g), FastGenerator(g, traced=False)
        cin = m.config.stages[i].channels
        x = torch.stack([image(cin, seed=10 + b) for b in range(batch)])
        if cin == 1:
            x[0] = blank_page(seed=i)
        z = torch.randn(batch, g.cfg.z_dim, generator=torch.Generator().manual_seed(i))
        with torch.inference_mode():
            code, params = g.encode_content(x), g.adain_params(z)
            torch.testing.assert_close(fast.encode_content(x), code, **TOL)
            start = fast.decode_start(code)
            torch.testing.assert_close(start, g.decode_start(code), **TOL)
            for h in range(g.cfg.n_down + 1):
                want = g.decode(code, params, h)
                got = fast.decode(code, params, h)
                assert got.shape == want.shape and got.is_contiguous(memory_format=torch.channels_last)
                torch.testing.assert_close(got, want, **TOL)
                # A cached start is the same picture bit for bit (the session's cache must not change it), and
                # the trace runs the eager operators, bit for bit.
                assert torch.equal(fast.decode(code, params, h, start), got)
                assert torch.equal(eager.decode(code, params, h, start), got)
            assert torch.equal(eager.encode_content(x), fast.encode_content(x))
            assert fast._traces and not eager._traces
            with pytest.raises(ValueError, match="halvings"):
                fast.decode(code, params, g.cfg.n_down + 1)


@pytest.mark.parametrize("up_kernel", [3, 5])  # 3: the phase kernels; 5: the folded kernels (both kept)
def test_phase_kernels_follow_a_change_of_the_weights(up_kernel):
    m = model(up_kernel)
    g = m.generators[0]
    fast = FastGenerator(g)
    with torch.inference_mode():
        code = g.encode_content(image(1, seed=3)[None])
        params = g.adain_params(torch.zeros(1, g.cfg.z_dim))
        before = fast.decode(code, params)
        for mod in g.upsampler.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.mul_(-0.5)
        after = fast.decode(code, params)
        torch.testing.assert_close(after, g.decode(code, params), **TOL)
    assert not torch.allclose(before, after, atol=1e-2)


def test_a_torch_that_cannot_trace_runs_the_forward_eagerly(monkeypatch):
    g = model(3).generators[0]
    x = image(1, seed=2)[None]
    want = FastGenerator(g, traced=False).encode_content(x)

    def no_trace(*a, **k):
        raise RuntimeError("tracing is gone")
    monkeypatch.setattr(torch.jit, "trace", no_trace)
    fast = FastGenerator(g)
    assert torch.equal(fast.encode_content(x), want) and not fast.traced
    with torch.inference_mode():
        torch.testing.assert_close(fast.decode(want, g.adain_params(torch.zeros(1, g.cfg.z_dim))),
                                   g.decode(want, g.adain_params(torch.zeros(1, g.cfg.z_dim))), **TOL)
