"""Benchmark of the paper's configuration: one transition's AdaIN optimisation at 256 px (generator dim 64, VGG16
perceptual loss), a naive baseline loop against Artflow's refine_transition, same machine and threads, one run:

    python benchmarks/bench_paper.py [--steps 150] [--threads 2] [--device auto] [--vgg PATH]

The baseline is written from the official implementation's description: every step runs the full generator
(content encoder included) on the input and VGG16 on both the output and the target, takes L1 + 10 x perceptual and
an Adam update of the AdaIN parameters; fp32, nothing cached. Artflow's loop caches the content code and the
target's VGG features, runs the session's channels_last model and, on the CPU, computes each upsampling with the
5x5 convolution after it on the small picture (core/nn/upsample_conv.py); "artflow-unfolded" is the same loop with
the upsampling modules as defined, the naive loop's. On CUDA Artflow replays each step as one CUDA graph
(core/editing/refine_graph.py) with the modules as defined (the decoder's default there), and its eager steps are timed
too ("artflow-eager"), as are the graph with the folded upsampling ("artflow-folded"), the graph with cudnn's
autotuner and the graph in bfloat16 autocast. Each final image is compared (PSNR) with the eager steps' on CUDA,
with the unfolded loop's elsewhere.

Printed: seconds for --steps steps of each (and, when --steps < 150, the 150-step figure extrapolated from the
per-step time after the first step, saying so), their ratio, the final losses, and the peak memory of each loop
(resident set size above the loaded model, sampled every 2 ms; on CUDA, the allocator's peak instead).
VGG16 weights: --vgg or ARTFLOW_VGG16 (a local safetensors file, see core/nn/vgg.py); without them the VGG16 is
randomly initialised, which costs the same time (said in the output). A script, not a test: it asserts nothing.

The arithmetic floor (torch.utils.flop_counter.FlopCounterMode over 1 and 3 steps of each loop, CPU, 2026-12-01):
a naive step is 300.7 GFLOP, an Artflow step 148.1 GFLOP (the content code and the target's VGG16 features are
computed once, 163 GFLOP with the final picture), a ratio of 0.49; the timed ratio on the 2-core AMD EPYC (AVX2)
is 0.52-0.53. Both loops spend their time in the same oneDNN convolutions, so in fp32 on this CPU Artflow cannot
reach issue 14's 0.33x without leaving out arithmetic the paper's objective needs; what is left is lower precision
(bfloat16 on CPUs that have it natively, or a GPU).
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from core import config  # noqa: E402
from core.editing.refine import LAMBDA_P, STEP_SIZE, STEPS, refine_transition  # noqa: E402
from core.model import WorkflowModel  # noqa: E402
from core.nn.generator import AdaINGenerator  # noqa: E402
from core.nn.perceptual import Perceptual, vgg_weights_path  # noqa: E402
from core.nn.vgg import VGG16Features  # noqa: E402
from core.platform.device import DEVICE_CHOICES, device_label, resolve_device  # noqa: E402


def naive_refine(generator: AdaINGenerator, vgg: VGG16Features, source: torch.Tensor, target: torch.Tensor,
                 base_params: torch.Tensor, steps: int, on_step=None) -> float:
    """The baseline: per step the full generator and VGG16 on output and target, L1 + 10 x perceptual, Adam."""
    src, tgt = source[None], target[None]
    delta = torch.zeros_like(base_params)[None].requires_grad_(True)
    opt = torch.optim.Adam([delta], lr=STEP_SIZE, betas=(0.9, 0.999), eps=1e-8)
    value = float("nan")
    for _ in range(steps):
        out = generator.decode(generator.encode_content(src), base_params[None] + delta, folded=False)
        feats_out, feats_tgt = vgg(out), vgg(tgt)
        perc = sum((a - b).abs().mean() for a, b in zip(feats_out, feats_tgt)) / len(feats_out)
        loss = F.l1_loss(out, tgt) + LAMBDA_P * perc
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = float(loss.detach())  # the host read that ends a step (as in refine_transition)
        if on_step is not None:
            on_step(value)
    return value


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident set size above the level at entry, sampled by a thread (CPU); the allocator's peak on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak, self._stop = device, 0, threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self._base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            return self
        self._base = _rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss() - self._base)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss() - self._base)


def _image(channels: int, res: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, res // 8, res // 8, generator=g) * 2 - 1
    return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=STEPS, help=f"steps timed per loop (default {STEPS}; fewer: the "
                                                             f"{STEPS}-step time is extrapolated)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    ap.add_argument("--vgg", default=None, help="VGG16 safetensors (default: ARTFLOW_VGG16, else random weights)")
    args = ap.parse_args(argv)
    if args.steps < 2:
        ap.error("--steps must be 2 or more (the first step is timed apart)")
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    cfg = config.paper()
    model = WorkflowModel(cfg).eval().requires_grad_(False)
    vgg_path = vgg_weights_path(args.vgg)
    vgg = VGG16Features.from_file(vgg_path) if vgg_path else VGG16Features().eval().requires_grad_(False)
    res = cfg.resolution
    src, tgt = _image(cfg.stages[0].channels, res, 1), _image(cfg.stages[1].channels, res, 2)
    # Each loop gets its own copy of the networks, as each implementation holds them.
    naive_g, naive_vgg = copy.deepcopy(model.generators[0]).to(device), copy.deepcopy(vgg).to(device)
    ours_g = copy.deepcopy(model.generators[0]).to(device, memory_format=torch.channels_last)
    ours_perc = Perceptual(copy.deepcopy(vgg).to(device), "vgg16")
    with torch.no_grad():
        base = model.generators[0].adain_params(torch.zeros(1, cfg.generator.z_dim))[0].to(device)
    src, tgt = src.to(device), tgt.to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(run) -> tuple[float, float, float, int, float]:
        """(total s, first step s, steady s per step, peak bytes, last step's loss) of run(on_step)."""
        marks: list[float] = []
        with PeakMemory(device) as mem:
            sync()
            t0 = time.perf_counter()
            loss = run(lambda *_: marks.append(time.perf_counter()))
            sync()
            total = time.perf_counter() - t0
        first = marks[0] - t0
        steady = (marks[-1] - marks[0]) / (len(marks) - 1)
        return total, first, steady, mem.peak, loss

    outputs: dict[str, torch.Tensor] = {}

    # Artflow's loop with the upsampling convolutions as defined (before core/nn/upsample_conv.py), to show that
    # step's share in the same run.
    unfolded_g = copy.deepcopy(ours_g)
    unfolded_g.decode = functools.partial(AdaINGenerator.decode, unfolded_g, folded=False)
    folded_g = copy.deepcopy(ours_g)
    folded_g.decode = functools.partial(AdaINGenerator.decode, folded_g, folded=True)

    def ours(on_step, name: str = "artflow", cuda_graph: bool = True, cuda_bf16: bool = False,
             generator: AdaINGenerator = ours_g) -> float:
        loss = float("nan")
        loop = refine_transition(generator, ours_perc, src, tgt, base, torch.zeros_like(base), None,
                                 steps=args.steps, preview_every=0, cuda_graph=cuda_graph, cuda_bf16=cuda_bf16)
        while True:
            try:
                step = next(loop)
            except StopIteration as done:
                outputs[name] = done.value.output
                return loss
            on_step()
            loss = step.loss

    load = load_average()
    print(f"paper configuration: {res} px, generator dim {cfg.generator.dim}, VGG16 "
          f"{'weights ' + str(vgg_path) if vgg_path else 'RANDOMLY INITIALISED (no local weights; same cost)'}")
    print(f"device {device_label(device)}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"cpu count {os.cpu_count()}, load avg {load:.2f}; {args.steps} steps per loop")
    results = {}
    loops = [("naive", lambda cb: naive_refine(naive_g, naive_vgg, src, tgt, base, args.steps, cb)),
             ("artflow", ours),
             ("artflow-unfolded", lambda cb: ours(cb, "artflow-unfolded", generator=unfolded_g))]
    if device.type == "cuda":  # "artflow" replays each step as a CUDA graph there; the eager steps for comparison
        loops += [("artflow-eager", lambda cb: ours(cb, "artflow-eager", cuda_graph=False)),
                  ("artflow-folded", lambda cb: ours(cb, "artflow-folded", generator=folded_g)),
                  ("artflow-cudnn-benchmark", lambda cb: ours(cb, "artflow-cudnn-benchmark")),
                  ("artflow-bf16", lambda cb: ours(cb, "artflow-bf16", cuda_bf16=True))]
    for name, run in loops:
        # cudnn's autotuner for the last two loops (a process-wide switch, so it stays on from here).
        torch.backends.cudnn.benchmark = name in ("artflow-cudnn-benchmark", "artflow-bf16")
        total, first, steady, peak, loss = timed(run)
        est = first + (STEPS - 1) * steady
        results[name] = (total, est)
        print(f"  {name:16s} {total:8.2f} s for {args.steps} steps (first {first:.2f} s, then {steady * 1e3:.1f} ms "
              f"per step)" + (f"; {STEPS} steps extrapolated: {est:.1f} s" if args.steps != STEPS else "")
              + f"; last step's loss {loss:.4f}; peak memory above the loaded model {peak / 2**20:.0f} MiB", flush=True)
    n = results["naive"]
    for name in ("artflow", "artflow-unfolded", "artflow-folded"):
        if name not in results:
            continue
        a = results[name]
        print(f"ratio {name} / naive: {a[0] / n[0]:.2f}x over the {args.steps} measured steps"
              + (f", {a[1] / n[1]:.2f}x extrapolated to {STEPS} steps" if args.steps != STEPS else ""))
    # Same result? PSNR of each loop's final image against the plain eager steps' (unfolded on the CPU).
    ref_name = "artflow-eager" if "artflow-eager" in outputs else "artflow-unfolded"
    ref = outputs[ref_name]
    for name, out in outputs.items():
        if name != ref_name:
            mse = float(((out - ref) ** 2).mean())
            psnr = 10 * math.log10(4 / mse) if mse > 0 else float("inf")  # images in [-1, 1]: peak 2
            print(f"  {name}: {results[name][0] / results[ref_name][0]:.2f}x the time of {ref_name}; final "
                  f"image against its {psnr:.1f} dB PSNR")
    print_load_note(load, "absolute times are inflated; compare the ratio.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
