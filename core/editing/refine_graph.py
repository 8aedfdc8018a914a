"""The refinement's step as a fixed-shape function over preallocated tensors, replayed as one CUDA graph on a GPU.

Why: on a GPU the eager step (decoder, perceptual network, their backward, the Adam-like update) is a few hundred
small kernels, and launching them from Python costs more than running them (the paper configuration measured
6.1 ms per step on an H200, most of it launch overhead). A CUDA graph launches the whole step at once.

`StaticStep` holds every tensor the step reads and writes (delta, Adam moments, the bias corrections and step size
as tensors, so one captured graph serves every step) and computes exactly the update of
`core.editing.regularizer.regularized_step`. On the CPU it runs eagerly (which is how the tests check it against the
eager loop); on CUDA, `capture()` records it into a graph, and `run()` replays that graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from core.editing.regularizer import BETAS, EPS, effective_weight
from core.nn.generator import AdaINGenerator

LossFn = Callable[[torch.Tensor], torch.Tensor]


class StaticStep:
    """One refinement step on fixed tensors. `content`: the cached content code (1, C, h, w); `base`: the AdaIN
    parameters from z (1, P); `delta0`: the start delta (1, P); `w`: the learned L2 weight (P,) or None; `loss_of`:
    output image -> scalar loss (target features bound in)."""

    def __init__(self, generator: AdaINGenerator, loss_of: LossFn, content: torch.Tensor, base: torch.Tensor,
                 delta0: torch.Tensor, w: torch.Tensor | None, autocast_dtype: torch.dtype | None = None,
                 start: torch.Tensor | None = None) -> None:
        self.generator, self.loss_of = generator, loss_of
        self.start = start  # generator.decode_start(content), when known: not recomputed every step
        self.autocast_dtype = autocast_dtype  # e.g. torch.bfloat16: the networks' passes in it, the update in fp32
        self.content, self.base = content, base
        self.w = effective_weight(w) if w is not None else None
        self.delta = delta0.detach().clone()
        self.m = torch.zeros_like(self.delta)
        self.v = torch.zeros_like(self.delta)
        dev = self.delta.device
        # Inputs of each step, set before it runs: 1 - beta1**t, 1 - beta2**t and the step size.
        self.c1 = torch.ones((), device=dev)
        self.c2 = torch.ones((), device=dev)
        self.lr = torch.zeros((), device=dev)
        # Outputs of each step: its loss and the image it was computed on (before the update, as the eager loop).
        self.loss = torch.zeros((), device=dev)
        self.output: torch.Tensor | None = None
        self.t = 0
        self._graph: torch.cuda.CUDAGraph | None = None

    def _body(self) -> None:
        d = self.delta.detach().requires_grad_(True)
        with torch.autocast(self.delta.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            out = self.generator.decode(self.content, self.base + d, start=self.start)
            loss = self.loss_of(out).float()
        (grad,) = torch.autograd.grad(loss, d)
        with torch.no_grad():
            g = grad if self.w is None else grad + self.w * self.delta
            self.m.mul_(BETAS[0]).add_(g, alpha=1 - BETAS[0])
            self.v.mul_(BETAS[1]).addcmul_(g, g, value=1 - BETAS[1])
            m_hat = self.m / self.c1
            v_hat = self.v / self.c2
            self.delta.sub_(self.lr * m_hat / (torch.sqrt(v_hat + EPS * EPS) + EPS))
            self.loss.copy_(loss.detach())
            if self.output is None:
                self.output = torch.empty_like(out, dtype=torch.float32)
            self.output.copy_(out.detach())

    def _set_inputs(self, lr: float) -> None:
        self.t += 1
        self.c1.fill_(1 - BETAS[0] ** self.t)
        self.c2.fill_(1 - BETAS[1] ** self.t)
        self.lr.fill_(lr)

    def capture(self, warmup: int = 2) -> None:
        """Record the step into a CUDA graph (CUDA tensors only). The warm-up steps it needs run on copies of the
        state, which is restored afterwards, so the captured loop starts from the same delta as the eager one."""
        if self.delta.device.type != "cuda":
            raise RuntimeError("CUDA graphs need CUDA tensors")
        saved = [x.clone() for x in (self.delta, self.m, self.v)]
        self.c1.fill_(1 - BETAS[0])
        self.c2.fill_(1 - BETAS[1])
        self.lr.zero_()  # warm-up steps move nothing
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.enable_grad():
            for _ in range(warmup):
                self._body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.enable_grad():
            self._body()
        for x, s in zip((self.delta, self.m, self.v), saved, strict=True):
            x.copy_(s)
        self._graph = graph

    def run(self, lr: float) -> None:
        """One step with step size lr: replays the graph if captured, else runs eagerly."""
        self._set_inputs(lr)
        if self._graph is not None:
            self._graph.replay()
        else:
            with torch.enable_grad():
                self._body()
