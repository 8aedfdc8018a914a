"""A quicker inference-only forward of AdaINGenerator, with the same weights and the same pictures (to float
rounding): the session's pictures, the live slider's path. Runs under torch.inference_mode; never for training or
refinement (no autograd graph is kept, and the reference modules in core.nn stay the definition).

Why it is quicker on a CPU (benchmarks/bench_preview_options.py measures each choice):
- Every activation stays channels_last. The reference's instance norm turns channels_last into NCHW, and the next
  convolution turns it back: a copy per norm, a sixth of a preview's time.
- Instance norm, AdaIN and layer norm are two plain statistics passes and one multiply-add over the tensor, in
  place, with the ReLU in place (torch's var_mean and batch norm's one-picture kernel are slower on channels_last
  or lose digits on a blank page).
- A nearest 2x upsampling followed by a reflection-padded 3x3 convolution is four 2x2 convolutions on the small
  picture (one per output phase) interleaved: the same numbers, 2.25x fewer multiply-adds, and no upsampled or
  padded copy of the large input. (Reflection padding of the upsampled picture is edge replication of the small
  one, so the phases are exact.)
  After a 5x5 (MUNIT's) or larger one the four phases run as one convolution with folded kernels
  (core/nn/upsample_conv.py, which the refinement's decoder uses too): measured 0.63x the reference decode for the
  paper's configuration (256 px, dim 64) on 2 CPU threads.
- Each forward runs as one TorchScript trace per input shape (FastGenerator._run): no Python between operators,
  so the engine thread does not wait for the GIL after each one while the GUI thread runs Python.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.nn.blocks import AdaINResBlock, ConvBlock, LayerNorm2d, ResBlock
from core.nn.generator import AdaINGenerator
from core.nn.upsample_conv import folded_weight, is_nearest_2x, supports, upsample_conv

CL = torch.channels_last
EPS = 1e-5
# Along one axis, output phase 0 reads small rows (i-1, i, i) with the 3x3 kernel's taps (0, 1, 2); phase 1 reads
# (i, i, i+1): each phase's 2-tap kernel is its fold matrix times the 3 taps.
_FOLD = (torch.tensor([[1.0, 0, 0], [0, 1, 1]]), torch.tensor([[1.0, 1, 0], [0, 0, 1]]))
log = logging.getLogger(__name__)
MAX_TRACES = 32  # traces kept per generator (a session uses a handful: its resolution and the preview sizes)
# torch.jit.trace is deprecated for export; here it only runs a forward without the GIL, with an eager fallback.
# Filtered once at import (warnings.catch_warnings per call would not be thread-safe).
warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.*is deprecated", category=DeprecationWarning)
# The folded upsampling reads its kernel's and picture's sizes as numbers: a trace is made per input shape, so
# they are constants of it, as the tracer warns.
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"core\.nn\.upsample_conv")


def _stats(x: torch.Tensor, dims: tuple[int, ...], eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, 1 / std) over dims, broadcastable. Two plain passes: var_mean's Welford reduction is ~8x slower on a
    channels_last tensor."""
    mean = x.mean(dims, keepdim=True)
    var = (x - mean).square_().mean(dims, keepdim=True)
    return mean, var.add_(eps).rsqrt_()


def _instance_norm_(x: torch.Tensor, scale: torch.Tensor | None, bias: torch.Tensor | None, relu: bool,
                    eps: float = EPS) -> torch.Tensor:
    """Instance norm of x (B, C, H, W), then * scale + bias (B, C, 1, 1) and ReLU: AdaIN (scale given as 1 + s).
    x is a fresh tensor, changed in place. (Not batch norm's fused channels_last kernel for one picture: quicker,
    but its variance loses digits on the near-constant channels of a mostly blank page.)"""
    return _affine_(x, *_stats(x, (2, 3), eps), scale, bias, relu)


def _affine_(x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor, scale: torch.Tensor | None,
             bias: torch.Tensor | None, relu: bool) -> torch.Tensor:
    """(x - mean) * rstd * scale + bias (then ReLU), as x * a + b in one pass over x, in place."""
    a = rstd if scale is None else rstd * scale
    b = -mean * a if bias is None else bias - mean * a
    x = torch.addcmul(b, x, a, out=x)
    return x.relu_() if relu else x


def _conv(block: ConvBlock | nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The block's (reflection pad, convolution) on a channels_last x."""
    pad, conv = block[0], block[1]
    if isinstance(pad, nn.ReflectionPad2d):
        x = F.pad(x, tuple(pad.padding), mode="reflect")
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _norm_act(block: ConvBlock, x: torch.Tensor) -> torch.Tensor:
    """The block's norm and activation on its convolution's output x (a fresh tensor, changed in place)."""
    norm, act = block[2], block[3]
    relu = isinstance(act, nn.ReLU)
    if isinstance(norm, nn.InstanceNorm2d):
        x = _instance_norm_(x, None, None, relu, norm.eps)
    elif isinstance(norm, LayerNorm2d):
        g, b = norm.gamma.view(1, -1, 1, 1), norm.beta.view(1, -1, 1, 1)
        x = _affine_(x, *_stats(x, (1, 2, 3), norm.eps), g, b, relu)
    elif not isinstance(norm, nn.Identity):
        raise TypeError(f"no fast path for norm {type(norm).__name__}")
    elif relu:
        x = x.relu_()
    if isinstance(act, nn.Tanh):
        x = x.tanh_()
    elif isinstance(act, nn.LeakyReLU):
        x = F.leaky_relu_(x, act.negative_slope)
    return x


def _conv_block(block: ConvBlock, x: torch.Tensor) -> torch.Tensor:
    return _norm_act(block, _conv(block, x))


def _phase_weights(conv: nn.Conv2d) -> list[torch.Tensor]:
    """For a 3x3 convolution after a nearest 2x upsampling: the 2x2 kernel of each output phase (row a, column b)
    on the edge-replicated small picture, as [w00, w01, w10, w11] (channels_last)."""
    w = conv.weight
    fold = [f.to(w) for f in _FOLD]
    out = []
    for a in range(2):
        for b in range(2):
            k = torch.einsum("pi,qj,ocij->ocpq", fold[a], fold[b], w)
            out.append(k.contiguous(memory_format=CL))
    return out


def _upsample_conv(block: ConvBlock, phases: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """conv(reflect_pad(nearest_upsample_2x(x))) from x, phase by phase, as channels_last (B, Cout, 2H, 2W)."""
    bsz, _, h, w = x.shape
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    bias = block[1].bias
    cout = phases[0].shape[0]
    out = torch.empty(bsz, h, 2, w, 2, cout, dtype=x.dtype, device=x.device)
    for a in range(2):
        for b in range(2):
            y = F.conv2d(xp[:, :, a:a + h + 1, b:b + w + 1], phases[2 * a + b], bias)
            out[:, :, a, :, b, :].copy_(y.permute(0, 2, 3, 1))
    return out.view(bsz, 2 * h, 2 * w, cout).permute(0, 3, 1, 2)


def _version(t: torch.Tensor) -> int:
    """t's in-place version counter (-1 for an inference tensor, which keeps none)."""
    return -1 if t.is_inference() else t._version


class FastGenerator:
    """The inference forward of one AdaINGenerator (encode_content, decode_start, decode), with the generator's
    weights (what is derived from them, the phase kernels and the traces, is remade when a weight changes). Inputs
    may be any memory format; outputs are channels_last. phases=False upsamples as the reference does, traced=False
    runs the operators one by one from Python (both for comparison)."""

    def __init__(self, g: AdaINGenerator, phases: bool = True, traced: bool = True) -> None:
        self.g = g
        self.phases = phases
        self.traced = traced
        self._phases: dict[int, list[torch.Tensor]] = {}
        self._folded: dict[int, tuple[torch.Tensor, int, int]] = {}
        self._traces: dict[tuple, Callable[..., torch.Tensor]] = {}
        self._weights: tuple = ()

    # ----- the public forward: each call one trace for its shapes -----
    def encode_content(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(("encode",), self._encode, x)

    def decode_start(self, content: torch.Tensor) -> torch.Tensor:
        """The normalised first convolution of the first AdaIN block (AdaINGenerator.decode_start)."""
        return self._run(("start",), self._decode_start, content)

    def decode(self, content: torch.Tensor, params: torch.Tensor, halvings: int = 0,
               start: torch.Tensor | None = None) -> torch.Tensor:
        """AdaINGenerator.decode (the same arguments and picture)."""
        if not 0 <= halvings <= self.g.cfg.n_down:
            raise ValueError(f"halvings must be between 0 and {self.g.cfg.n_down}, got {halvings}")
        if start is None:
            return self._run(("decode", halvings), lambda c, p: self._decode(c, p, halvings, None), content, params)
        return self._run(("decode+start", halvings), lambda c, p, s: self._decode(c, p, halvings, s),
                         content, params, start)

    def _run(self, key: tuple, fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
        """fn(*args) under inference mode, through a TorchScript trace of fn made for these shapes on first use.
        Why: the engine thread shares the GIL with the GUI thread, and an eager preview takes it back after each
        of its hundreds of operators; while the GUI runs Python (a slider drag) each of those can wait up to the
        switch interval. A trace runs them all in one call without the GIL: the same numbers bit for bit, and a
        preview beside a busy GUI thread 1.6-3x quicker (benchmarks/bench_preview_options.py). Where tracing
        fails, eager, for good."""
        weights = tuple((id(p), _version(p)) for p in self.g.parameters())
        if weights != self._weights:  # new weights: remake what was derived from the old ones
            self._phases, self._folded, self._traces, self._weights = {}, {}, {}, weights
            with torch.inference_mode():
                self._phases = self._phase_kernels() if self.phases else {}
                self._folded = self._folded_kernels() if self.phases else {}
        with torch.inference_mode():
            if not self.traced:
                return fn(*args)
            key = (*key, *((tuple(a.shape), a.dtype, a.device) for a in args))
            graph = self._traces.get(key)
            if graph is None:
                if len(self._traces) >= MAX_TRACES:  # sizes beyond the few a session uses: start afresh
                    self._traces.clear()
                try:
                    graph = torch.jit.trace(fn, args, check_trace=False)
                except Exception as e:  # noqa: BLE001 - a torch without tracing, or an operator it cannot trace
                    log.info("inference: eager forward (tracing failed: %s)", e)
                    self.traced = False
                    return fn(*args)
                self._traces[key] = graph
            # As traced: the optimising executor's profiling runs made the second call 2x slower, for no gain.
            with torch.jit.optimized_execution(False):
                return graph(*args)

    # ----- the forward itself (traced) -----
    def _folded_kernels(self) -> dict[int, tuple[torch.Tensor, int, int]]:
        """{index in the upsampler of a k >= 5 ConvBlock right after a nearest 2x upsampling: its folded kernels}."""
        ups = self.g.upsampler
        return {j: folded_weight(m[1].weight) for j, m in enumerate(ups) if j > 0 and supports(ups[j - 1], m)}

    def _phase_kernels(self) -> dict[int, list[torch.Tensor]]:
        """{index in the upsampler of a 3x3 ConvBlock right after a nearest 2x upsampling: its phase kernels}."""
        ups = self.g.upsampler
        return {j: _phase_weights(m[1]) for j, m in enumerate(ups)
                if j > 0 and is_nearest_2x(ups[j - 1]) and isinstance(m, ConvBlock)
                and isinstance(m[0], nn.ReflectionPad2d) and tuple(m[0].padding) == (1, 1, 1, 1)
                and m[1].kernel_size == (3, 3) and m[1].stride == (1, 1) and m[1].padding == (0, 0)
                and m[1].dilation == (1, 1) and m[1].groups == 1}

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        h = x.contiguous(memory_format=CL)
        for m in self.g.content_encoder:
            if isinstance(m, ResBlock):
                h = h + _conv_block(m.body[1], _conv_block(m.body[0], h))
            else:
                h = _conv_block(m, h)
        return h

    def _decode_start(self, content: torch.Tensor) -> torch.Tensor:
        x = _conv(self.g.adain_blocks[0].conv1, content.contiguous(memory_format=CL))
        return _instance_norm_(x, None, None, False)

    def _decode(self, content: torch.Tensor, params: torch.Tensor, halvings: int,
                start: torch.Tensor | None) -> torch.Tensor:
        g = self.g
        h = content.contiguous(memory_format=CL)
        offset = 0
        for j, block in enumerate(g.adain_blocks):
            h = self._adain_block(block, h, params[:, offset:offset + block.num_params], start if j == 0 else None)
            offset += block.num_params
        ups = [j for j, m in enumerate(g.upsampler) if isinstance(m, nn.Upsample)]
        skipped = set(ups[len(ups) - halvings:]) if halvings else set()
        after_up = folded_next = False
        for j, m in enumerate(g.upsampler):
            if isinstance(m, nn.Upsample):
                after_up = j not in skipped
                if after_up and j + 1 not in self._phases:
                    nxt = g.upsampler[j + 1] if j + 1 < len(g.upsampler) else None
                    if self.phases and supports(m, nxt):  # k >= 5: the folded kernels (core.nn.upsample_conv)
                        h = upsample_conv(h, nxt[1].weight, nxt[1].bias, self._folded[j + 1]
                                          ).contiguous(memory_format=CL)
                        h = _norm_act(nxt, h)
                        folded_next = True
                    else:
                        h = m(h)
                    after_up = False
                continue
            if folded_next:
                folded_next = False
                continue
            if after_up:
                h = _norm_act(m, _upsample_conv(m, self._phases[j], h))
                after_up = False
            else:
                h = _conv_block(m, h)
        return h

    @staticmethod
    def _adain_block(block: AdaINResBlock, x: torch.Tensor, params: torch.Tensor,
                     first: torch.Tensor | None) -> torch.Tensor:
        """AdaINResBlock.forward. The first norm is computed apart (as decode_start) and its affine applied after,
        with or without a cached `first`: a cached start gives the same picture bit for bit."""
        s1, b1, s2, b2 = (p[:, :, None, None] for p in params.split(block.dim, dim=1))
        if first is None:
            first = _instance_norm_(_conv(block.conv1, x), None, None, False)
        h = torch.addcmul(b1, first, 1.0 + s1).relu_()
        h = _instance_norm_(_conv(block.conv2, h), 1.0 + s2, b2, False)
        return h.add_(x)
