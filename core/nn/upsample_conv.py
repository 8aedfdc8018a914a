"""MUNIT's upsampling step, a nearest 2x upsampling followed by a reflection-padded k x k convolution, computed on
the small picture: the same numbers (to float rounding), differentiable, for any odd k >= 5.

Why: in the paper's configuration (256 px, dim 64, k = 5) the two upsampling convolutions are most of the
decoder's work, and the decoder runs forward and backward at every step of the AdaIN optimisation. After a nearest
upsampling, each output pixel of a given phase (row and column parity) reads the small picture at 3 offsets per
axis instead of the upsampled one at 5, so the four phases are four 3x3 convolutions of the small picture with
folded kernels (the taps that land on the same small pixel summed): 2.8x fewer multiply-adds, and no upsampled or
padded copy of the large picture. They run as one convolution with 4 x Cout channels, interleaved by
pixel_shuffle. (For k = 3 the union of the phases' taps is 3 wide, as many multiply-adds as the reference:
core/nn/inference.py does that case phase by phase, inference only, and the reference modules do it here.)

Edges: reflection padding of the upsampled picture is not a padding of the small one once the kernel reaches
two pixels past the edge, so the few output rows and columns on each side where they differ (one for k = 5) are
computed the reference way on thin strips and put in place of the folded result's.

benchmarks/bench_paper.py measures it (the paper configuration's refinement), tests/core/test_upsample_conv.py
holds it to the reference, forward and backward.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

MIN_KERNEL = 5  # below it the folded kernels save nothing (see above)


# A pure function of (k, device, dtype), asked at every decoder step. Kept per device and dtype so that a step
# copies nothing from the host: a CUDA graph capture (core/editing/refine_graph.py, after its warm-up steps)
# forbids that.
@lru_cache(maxsize=16)
def _fold_matrices(k: int, device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32
                   ) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """(fold of phase 0, fold of phase 1, low, high): fold_p[o - low, t] = 1 where tap t (0..k-1) of an output
    of phase p reads the small picture at offset o (low <= o <= high) from the output's small pixel."""
    r = k // 2
    offsets = [[(p + t - r) // 2 for t in range(k)] for p in (0, 1)]
    low, high = min(min(o) for o in offsets), max(max(o) for o in offsets)
    folds = []
    for p in (0, 1):
        f = torch.zeros(high - low + 1, k)
        for t, o in enumerate(offsets[p]):
            f[o - low, t] = 1.0
        folds.append(f.to(device, dtype))
    return folds[0], folds[1], low, high


def folded_weight(weight: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """(4 * Cout, Cin, K, K) kernels of the four phases, ordered as pixel_shuffle interleaves them (channel
    4c + 2a + b is phase (row a, column b) of output channel c), and the small picture's padding (low, high)."""
    k = weight.shape[-1]
    f0, f1, low, high = _fold_matrices(k, weight.device, weight.dtype)
    folds = (f0, f1)
    phases = [torch.einsum("pi,qj,ocij->ocpq", folds[a], folds[b], weight) for a in (0, 1) for b in (0, 1)]
    stacked = torch.stack(phases, dim=1)  # (Cout, 4, Cin, K, K)
    return stacked.reshape(-1, *stacked.shape[2:]), -low, high


def reference_upsample_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The definition: conv(reflection_pad(nearest_upsample_2x(x), k // 2), weight, bias)."""
    r = weight.shape[-1] // 2
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    return F.conv2d(F.pad(up, (r, r, r, r), mode="reflect"), weight, bias)


def is_nearest_2x(m: nn.Module) -> bool:
    return isinstance(m, nn.Upsample) and m.mode == "nearest" and m.scale_factor in (2, 2.0, (2, 2), (2.0, 2.0))


def supports(upsample: nn.Module, block: nn.Module) -> bool:
    """Whether (upsample, block) is a nearest 2x upsampling followed by a ConvBlock whose reflection-padded
    convolution (odd k >= MIN_KERNEL, stride 1, no dilation, no groups) this module computes."""
    if not is_nearest_2x(upsample):
        return False
    if not (isinstance(block, nn.Sequential) and len(block) >= 2 and isinstance(block[0], nn.ReflectionPad2d)
            and isinstance(block[1], nn.Conv2d)):
        return False
    conv = block[1]
    k = conv.kernel_size[0]
    r = k // 2
    return (conv.kernel_size == (k, k) and k % 2 == 1 and k >= MIN_KERNEL and conv.stride == (1, 1)
            and conv.padding == (0, 0) and conv.dilation == (1, 1) and conv.groups == 1
            and tuple(block[0].padding) == (r, r, r, r))


@lru_cache(maxsize=8)
def _edge_width(k: int) -> int:
    """How many outputs at each edge the folded kernels on the edge-replicated small picture get wrong: those
    where a tap of the reference reads a reflected pixel that edge replication does not give (1 for k = 5)."""
    r = k // 2
    size = 2 * k + 2  # small picture's side: big enough that only the edge near 0 is in play

    def up_reflected(u: int) -> int:  # the small pixel the reference reads at upsampled index u
        return (-u if u < 0 else u) // 2

    wrong = [u for u in range(k) for t in range(k)
             if up_reflected(u + t - r) != min(max(u // 2 + (u % 2 + t - r) // 2, 0), size - 1)]
    return max(wrong) + 1 if wrong else 0


def upsample_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  folded: tuple[torch.Tensor, int, int] | None = None) -> torch.Tensor:
    """reference_upsample_conv(x, weight, bias) for (B, Cin, H, W) x and an odd k x k weight, computed on the small
    picture (see the module's docstring); the reference itself where the picture is too small for edge strips.
    folded: folded_weight(weight) when the caller keeps it (fixed weights); else it is made here."""
    k = weight.shape[-1]
    if k < MIN_KERNEL or k % 2 == 0:
        return reference_upsample_conv(x, weight, bias)
    r, e = k // 2, _edge_width(k)
    m = (e - 1 + r) // 2 + 1  # small pixels the edge outputs read (reflection included)
    h, w = x.shape[-2:]
    if min(h, w) < m + 1:
        return reference_upsample_conv(x, weight, bias)
    kernels, low, high = folded_weight(weight) if folded is None else folded
    phases = F.conv2d(F.pad(x, (low, high, low, high), mode="replicate"), kernels,
                      None if bias is None else bias.repeat_interleave(4))
    out = F.pixel_shuffle(phases, 2)
    if e:
        # The outermost e output columns, then rows (corners included), the reference way on strips of the small
        # picture m pixels deep: exact, since a strip's own reflection at the picture's edge is the picture's.
        def strip(part: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
            return F.conv2d(F.pad(F.interpolate(part, scale_factor=2, mode="nearest"), pad, mode="reflect"),
                            weight, bias)

        left = strip(x[..., :m], (r, 0, r, r))[..., :e]
        right = strip(x[..., w - m:], (0, r, r, r))[..., -e:]
        top = strip(x[..., :m, :], (r, r, r, 0))[..., :e, :]
        bottom = strip(x[..., h - m:, :], (r, r, 0, r))[..., -e:, :]
        middle = torch.cat([left[..., e:-e, :], out[..., e:-e, e:-e], right[..., e:-e, :]], dim=-1)
        out = torch.cat([top, middle, bottom], dim=-2)
    return out
