"""Benchmark of the engine on a CPU shared with other programs: a fixed torch thread team against the governed one
(core/platform/threads.py), each with OpenMP's default (spinning) waits and with passive waits (the desktop app's
setting), while 0, 1 and 2 busy-looping neighbour processes run:

    python benchmarks/bench_threads.py [--model resources/models/fluent-emoji-128] [--neighbours 0,1,2]
        [--steps 20] [--configs fixed,governed,fixed-passive,governed-passive]

Each configuration runs in its own process (OpenMP reads its wait policy once, at start) on a blank-sheet artwork
of the bundled model: 8 regenerations of every later stage (`propagate`, median of the last 6) and a refinement of
--steps steps per transition (mean per step). The neighbours are started in their own sessions, as another
program would be. Printed per neighbour count: each configuration's times and their ratio to "fixed". A script,
not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_MODEL = ROOT / "resources" / "models" / "fluent-emoji-128"
CONFIGS = {  # name: (governed, OMP_WAIT_POLICY or None for OpenMP's default)
    "fixed": (False, None),
    "governed": (True, None),
    "fixed-passive": (False, "passive"),
    "governed-passive": (True, "passive"),
}


def worker(model_path: str, governed: bool, steps: int) -> dict:
    import torch

    from core.editing.session import Session, run_to_end
    from core.files import bundle

    session = Session(bundle.load(model_path), "cpu", adapt_threads=governed)
    res = session.config.resolution
    # A drawn-looking first stage: a dark ring on white, so every later stage has something to generate.
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, res), torch.linspace(-1, 1, res), indexing="ij")
    ring = ((xx ** 2 + yy ** 2).sqrt() - 0.6).abs() < 0.03
    first = torch.ones(session.config.stages[0].channels, res, res)
    first[:, ring] = -1.0
    session.start_from(first)
    times = []
    threads = []
    for _ in range(8):
        session._content_cache.clear()  # each regeneration encodes its inputs, as after an edit
        t = time.perf_counter()
        session.propagate(0)
        times.append(time.perf_counter() - t)
        threads.append(torch.get_num_threads())
    t = time.perf_counter()
    run_to_end(session.refine(steps=steps, preview_every=0), lambda step: threads.append(torch.get_num_threads()))
    per_step = (time.perf_counter() - t) / (steps * (session.num_stages - 1))
    return {"propagate_ms": 1000 * statistics.median(times[2:]), "refine_step_ms": 1000 * per_step,
            "threads_used": sorted(set(threads))}


def run_config(name: str, model: str, steps: int) -> dict:
    governed, policy = CONFIGS[name]
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, __file__, "--worker", name, "--model", model, "--steps", str(steps)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def start_neighbours(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)]


def stop_neighbours(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--neighbours", default="0,1,2", help="busy neighbour counts to run beside, comma-separated")
    ap.add_argument("--steps", type=int, default=20, help="refinement steps per transition")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--worker", choices=tuple(CONFIGS), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.model, CONFIGS[args.worker][0], args.steps)))
        return 0
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    print(f"cpu count {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))} cores, load avg "
          f"{os.getloadavg()[0]:.2f}; {args.steps} refinement steps per transition")
    for n in (int(v) for v in args.neighbours.split(",")):
        procs = start_neighbours(n)
        try:
            time.sleep(1.0)
            rows = {c: run_config(c, args.model, args.steps) for c in configs}
        finally:
            stop_neighbours(procs)
        ref = rows.get("fixed") or rows[configs[0]]
        print(f"\n{n} busy neighbour process(es):")
        for c, r in rows.items():
            print(f"  {c:17s} propagate {r['propagate_ms']:7.0f} ms ({r['propagate_ms'] / ref['propagate_ms']:5.2f}x)"
                  f"   refine step {r['refine_step_ms']:7.1f} ms ({r['refine_step_ms'] / ref['refine_step_ms']:5.2f}x)"
                  f"   threads used {r['threads_used']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
