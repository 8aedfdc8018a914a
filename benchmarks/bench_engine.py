"""Benchmark of the editing engine: ms per AdaIN refinement step and ms per propagation (the whole generator chain),
for the CPU-friendly `small` preset (128 px) and the paper's preset (256 px), on one device.

    python benchmarks/bench_engine.py [--device auto|cpu|cuda|mps] [--steps 8] [--warmup 2] [--propagations 5]

A script, not a test: it prints numbers and asserts nothing about them. The models are randomly initialised
(timing does not depend on the weights). Each refinement step ends with a host read of the loss, and each
propagation copies its images to the CPU, so wall-clock times are correct on CUDA too.

Beside wall-clock times it prints the process CPU time (all threads) per step: on a CPU shared with other work,
wall time grows with the contention while CPU time stays close to the work done (compare with --threads 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from core import config  # noqa: E402
from core.editing.refine import STEPS  # noqa: E402
from core.editing.session import Session  # noqa: E402
from core.model import WorkflowModel  # noqa: E402
from core.platform.device import DEVICE_CHOICES, device_label, resolve_device  # noqa: E402

PRESETS = (("small", config.small), ("paper", config.paper))


def _artwork(channels: int, res: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, channels, res // 8, res // 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)[0]


def bench_preset(name: str, make, device: torch.device, steps: int, warmup: int, propagations: int) -> dict:
    cfg = make()
    torch.manual_seed(0)
    session = Session(WorkflowModel(cfg), device)
    session.load_artwork(_artwork(cfg.stages[-1].channels, cfg.resolution))

    # Propagation: regenerate every stage after the first (the whole chain), as after an edit of stage 0.
    for _ in range(warmup):
        session.propagate(0)
    prop_ms, prop_cpu_ms = [], []
    for _ in range(propagations):
        t, c = time.perf_counter(), time.process_time()
        session.propagate(0)
        prop_ms.append((time.perf_counter() - t) * 1e3)
        prop_cpu_ms.append((time.process_time() - c) * 1e3)

    # Refinement: time between consecutive yields; the first `warmup` steps of each transition are dropped (they
    # include the per-transition setup: content encoding, target features, allocator / autotuner warm-up).
    per_transition: dict[int, list[float]] = {}
    cpu_per_step: list[float] = []
    first_step_ms: dict[int, float] = {}
    gen = session.refine(steps=warmup + steps, preview_every=0)
    last, last_cpu = time.perf_counter(), time.process_time()
    t_start = last
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            report = stop.value
            break
        now, now_cpu = time.perf_counter(), time.process_time()
        ms, cpu_ms = (now - last) * 1e3, (now_cpu - last_cpu) * 1e3
        last, last_cpu = now, now_cpu
        if step.step == 1:
            first_step_ms[step.transition] = ms
        if step.step > warmup:
            per_transition.setdefault(step.transition, []).append(ms)
            cpu_per_step.append(cpu_ms)
    total_s = time.perf_counter() - t_start
    step_ms = {i: statistics.median(v) for i, v in per_transition.items()}
    # Overhead beyond the steady-state steps (setup, final decode, warm-up excess), measured per transition.
    overhead_s = [t.seconds - (warmup + steps) * step_ms[t.transition] / 1e3 for t in report.transitions]
    est_s = sum(STEPS * step_ms[i] / 1e3 for i in step_ms) + sum(max(o, 0.0) for o in overhead_s)
    return {
        "name": name, "resolution": cfg.resolution, "transitions": cfg.num_transitions,
        "params_m": sum(p.numel() for p in session.model.parameters()) / 1e6,
        "step_ms": step_ms, "step_ms_mean": statistics.mean(step_ms.values()),
        "step_cpu_ms": statistics.median(cpu_per_step), "prop_cpu_ms": statistics.median(prop_cpu_ms),
        "first_step_ms": first_step_ms, "prop_ms": statistics.median(prop_ms), "prop_min_ms": min(prop_ms),
        "refine_total_s": total_s, "overhead_s": overhead_s, "estimate_150_s": est_s,
        "loss": [(t.loss_start, t.loss_end) for t in report.transitions],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    ap.add_argument("--steps", type=int, default=8, help="timed refinement steps per transition")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps / propagations")
    ap.add_argument("--propagations", type=int, default=5, help="timed propagations")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--presets", default="small,paper", help="comma-separated: small, paper")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    load = load_average()
    print(f"device: {device_label(device)} | torch {torch.__version__} | cpu count {os.cpu_count()} | "
          f"load avg {load:.2f}")
    print(f"refinement: {args.warmup} warm-up + {args.steps} timed steps per transition; "
          f"propagation: {args.warmup} warm-up + {args.propagations} timed\n")

    wanted = [p.strip() for p in args.presets.split(",") if p.strip()]
    results = {}
    for name, make in PRESETS:
        if name not in wanted:
            continue
        t = time.perf_counter()
        r = bench_preset(name, make, device, args.steps, args.warmup, args.propagations)
        results[name] = r
        per_t = ", ".join(f"t{i}: {ms:.1f}" for i, ms in sorted(r["step_ms"].items()))
        print(f"[{name}] {r['resolution']} px, {r['transitions']} transitions, {r['params_m']:.1f} M parameters "
              f"(benchmarked in {time.perf_counter() - t:.0f} s)")
        print(f"  refinement step   : {r['step_ms_mean']:8.1f} ms  (median per transition: {per_t}; "
              f"first step incl. setup: " + ", ".join(f"{v:.0f}" for v in r["first_step_ms"].values()) + " ms; "
              f"process CPU {r['step_cpu_ms']:.1f} ms)")
        print(f"  propagation       : {r['prop_ms']:8.1f} ms  (whole chain, {r['transitions']} generations; "
              f"min {r['prop_min_ms']:.1f} ms; process CPU {r['prop_cpu_ms']:.1f} ms)")
        print(f"  full refinement   : {r['estimate_150_s']:8.1f} s   (estimated: {STEPS} steps x "
              f"{r['transitions']} transitions + measured per-transition overhead "
              + ", ".join(f"{o:.2f}" for o in r["overhead_s"]) + " s)")
        print()

    if "small" in results and "paper" in results:
        s, p = results["small"], results["paper"]
        print("ratios paper / small:")
        print(f"  refinement step   : {p['step_ms_mean'] / s['step_ms_mean']:6.1f}x  "
              f"(process CPU: {p['step_cpu_ms'] / s['step_cpu_ms']:.1f}x)")
        print(f"  propagation       : {p['prop_ms'] / s['prop_ms']:6.1f}x  "
              f"(process CPU: {p['prop_cpu_ms'] / s['prop_cpu_ms']:.1f}x)")
        print(f"  full refinement   : {p['estimate_150_s'] / s['estimate_150_s']:6.1f}x")
    print_load_note(load, "other work competes for them, so wall-clock times are inflated; the process CPU times "
                          "are the steadier figure.", before="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
