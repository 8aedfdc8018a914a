"""Benchmark of the live latent slider: from a latent change to every later stage's picture ready, on the bundled
model (or any bundle), in one run:

    python benchmarks/bench_slider.py [--model resources/models/fluent-emoji-128] [--threads 2] [--moves 40]

Variants, interleaved move by move so that a shared machine's load hits them alike:
  uncached  set_latent + propagate(i, cache=False): every generator re-encodes its input (the old path)
  cached    set_latent + propagate(i): the changed transition's input content code comes from the cache
  previewN  set_latent + preview(i, N): the same chain at N px (the picture while dragging; full on release)
  contiguous  cached, with the weights in the default (not channels_last) memory format
Each move draws a new z for the transition (a slider step). The transition changed is 0 (every later stage
regenerates: the worst case) unless --transition says otherwise. A script, not a test: it asserts nothing.
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
import torch.nn.functional as F  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from core import bundle  # noqa: E402
from core.session import Session  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "resources" / "models" / "fluent-emoji-128"


def _artwork(channels: int, res: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, channels, res // 8, res // 8, generator=g) * 2 - 1
    return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)[0]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) / 2).pow(2).mean())
    return 10 * torch.log10(torch.tensor(1.0 / max(mse, 1e-12))).item()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--moves", type=int, default=40, help="timed slider moves per variant")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--transition", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    session = Session(bundle.load(args.model), "cpu")
    cfg = session.config
    session.load_artwork(_artwork(cfg.stages[-1].channels, cfg.resolution))
    i = args.transition
    gen = torch.Generator().manual_seed(1)

    def move() -> None:
        session.set_latent(i, session.model.sample_latents(i, 1, gen, clip=3.0)[0], propagate=False)

    def uncached() -> None:
        move()
        session.propagate(i, cache=False)

    def cached() -> None:
        move()
        session.propagate(i)

    res = cfg.resolution
    sizes = (res // 2, 3 * res // 4)

    def preview(size: int):
        def run() -> None:
            move()
            session.preview(i, size)
        return run

    # contiguous: a second session on the same weights in the default memory format.
    other = Session(bundle.load(args.model), "cpu")
    other.model.to(memory_format=torch.contiguous_format)
    other.restore(session.snapshot())

    def contiguous_only() -> None:
        other.set_latent(i, session.model.sample_latents(i, 1, gen, clip=3.0)[0], propagate=False)
        other.propagate(i)

    variants = {"uncached": uncached, "cached": cached, "contiguous": contiguous_only,
                **{f"preview{n}": preview(n) for n in sizes}}
    times: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.warmup):
        for f in variants.values():
            f()
    for _ in range(args.moves):
        for name, f in variants.items():
            t, c = time.perf_counter(), time.process_time()
            f()
            times[name].append((time.perf_counter() - t) * 1e3)
            cpu[name].append((time.process_time() - c) * 1e3)

    # Same results: the cached path equals the uncached one; the preview against the full picture (downsized).
    session.propagate(i, cache=False)
    ref = [s.clone() for s in session.stages[i + 1:]]
    session.propagate(i)
    same = all(torch.equal(a, b) for a, b in zip(ref, session.stages[i + 1:]))
    fidelity = {n: [_psnr(p, F.interpolate(r[None], size=(n, n), mode="area")[0])
                    for p, r in zip(session.preview(i, n), ref)] for n in sizes}

    load = load_average()
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"model {Path(args.model).name}: {cfg.resolution} px, {cfg.num_stages} stages; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, cpu count {os.cpu_count()}, load avg {load:.2f}")
    print(f"latent change of transition {i} -> stages {i + 1}..{cfg.num_stages - 1} ready, median of {args.moves} "
          f"moves (interleaved):")
    for k, v in med.items():
        q = sorted(times[k])
        print(f"  {k:10s} {v:7.1f} ms  (p10 {q[len(q) // 10]:.1f}, p90 {q[9 * len(q) // 10]:.1f}; "
              f"{v / med['uncached']:.2f}x uncached; process CPU {med_cpu[k]:.1f} ms, "
              f"{med_cpu[k] / med_cpu['uncached']:.2f}x)")
    print(f"cached == uncached bit for bit: {same}")
    for n, f in fidelity.items():
        print(f"preview{n} vs the full picture area-downsized to {n} px: PSNR per stage "
              + ", ".join(f"{p:.1f}" for p in f) + " dB")
    print_load_note(load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
