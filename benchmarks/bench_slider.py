"""Benchmark of the live latent slider: from a latent change to every later stage's proxy picture ready, on the
bundled model (or any bundle), in one run:

    python benchmarks/bench_slider.py [--model resources/models/fluent-emoji-128] [--threads 1,2] [--moves 40]
                                      [--transition 0] [--first-stage LINEART.png] [--wait-policy both]

Variants, interleaved move by move (and thread count by thread count) so that a shared machine's load hits them
alike:
  uncached   set_latent + propagate(t, cache=False): every generator re-encodes its input (the old path)
  cached     set_latent + propagate(t): transition t's content code comes from the cache (its input is unchanged);
             only the stages after t are recomputed
  preview    Session.preview(t, res/2, z): transition t decodes the cached content code without its last
             upsampling, the later transitions run at res/2 (the picture while dragging; the full one on release)
  input-half the earlier preview: the whole chain from the first stage area-downsized to res/2 (cost and likeness
             only, for comparison)
Each move draws a new z for transition t (a slider step); every stage after t is ready when a variant returns.
Process CPU time is printed beside the wall time: with one thread on a loaded machine it is close to what the
wall time would be on an idle core. Likeness: PSNR of each preview against the full picture area-downsized to the
preview's size, beside the PSNR between the full pictures of two different codes (what a wrong preview would
score). OMP_WAIT_POLICY is read when OpenMP starts, so --wait-policy both runs the benchmark once per policy in a
child process (one after the other: compare the ratios within each). A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from core.editing.session import Session  # noqa: E402
from core.evaluation.metrics import psnr  # noqa: E402
from core.files import bundle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "resources" / "models" / "fluent-emoji-128"
POLICIES = ("default", "passive")


def _line_art(res: int) -> torch.Tensor:
    """A face in black outlines on white (1, res, res) in [-1, 1]: a first stage like the artist's."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (res, res), 255)
    d, w = ImageDraw.Draw(img), max(1, res // 64)
    r = lambda a, b, c, e: [int(v * res) for v in (a, b, c, e)]  # noqa: E731
    d.ellipse(r(.1, .1, .9, .9), outline=0, width=w)
    d.ellipse(r(.3, .3, .42, .45), outline=0, width=w)
    d.ellipse(r(.58, .3, .7, .45), outline=0, width=w)
    d.arc(r(.28, .4, .72, .75), 20, 160, fill=0, width=w)
    return torch.from_numpy(np.asarray(img, dtype=np.float32)).reshape(1, res, res) / 127.5 - 1


def _area(x: torch.Tensor, n: int) -> torch.Tensor:
    return F.interpolate(x[None], size=(n, n), mode="area")[0]


def _q(values: list[float], f: float) -> float:
    q = sorted(values)
    return q[min(len(q) - 1, int(f * len(q)))]


def run(args: argparse.Namespace) -> int:
    threads = [int(t) for t in args.threads.split(",")]
    session = Session(bundle.load(args.model), "cpu")
    cfg = session.config
    res, t = cfg.resolution, args.transition
    if args.first_stage:
        from core.files.imageio import load_image

        session.start_from(load_image(args.first_stage, cfg.stages[0].channels, res))
    else:
        session.start_from(_line_art(res).expand(cfg.stages[0].channels, res, res))
    half = res // 2
    gen = torch.Generator().manual_seed(1)

    def move() -> torch.Tensor:
        z = session.model.sample_latents(t, 1, gen, clip=3.0)[0]
        session.set_latent(t, z, propagate=False)
        return z

    def input_half() -> list[torch.Tensor]:
        src, out = _area(session.stages[t], half), []
        for i in range(t, cfg.num_stages - 1):
            src = session.generate(i, source=src, cache=False)
            out.append(src)
        return out

    variants = {
        "uncached": lambda: session.propagate(t, cache=False),
        "cached": lambda: session.propagate(t),
        "preview": lambda: session.preview(t, half, session.latents[t]),
        "input-half": input_half,
    }
    times: dict[tuple[str, int], list[float]] = {(k, n): [] for k in variants for n in threads}
    cpu: dict[tuple[str, int], list[float]] = {(k, n): [] for k in variants for n in threads}
    for r in range(args.warmup + args.moves):
        for n in threads:
            torch.set_num_threads(n)
            for name, f in variants.items():
                move()
                t0, c0 = time.perf_counter(), time.process_time()
                f()
                if r >= args.warmup:
                    times[name, n].append((time.perf_counter() - t0) * 1e3)
                    cpu[name, n].append((time.process_time() - c0) * 1e3)
        session.propagate(t)  # the release after a drag: the cache holds the new inputs' codes again

    # Same results: the cached path equals the uncached one; the previews against the full picture (downsized).
    torch.set_num_threads(threads[-1])
    likeness: dict[str, list[list[float]]] = {"preview": [], "input-half": [], "other code": []}
    same = True
    for _ in range(args.likeness):
        z = move()
        session.propagate(t, cache=False)
        ref = [s.clone() for s in session.stages[t + 1:]]
        session.propagate(t)
        same &= all(torch.equal(a, b) for a, b in zip(ref, session.stages[t + 1:]))
        likeness["preview"].append([psnr(p, _area(r, half)) for p, r in zip(session.preview(t, half, z), ref)])
        likeness["input-half"].append([psnr(p, _area(r, half)) for p, r in zip(input_half(), ref)])
        move()
        session.propagate(t)
        likeness["other code"].append([psnr(_area(a, half), _area(r, half))
                                       for a, r in zip(session.stages[t + 1:], ref)])

    load = load_average()
    print(f"model {Path(args.model).name}: {res} px, {cfg.num_stages} stages; torch {torch.__version__}, "
          f"cpu count {os.cpu_count()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
          f"load avg {load:.2f}")
    print(f"latent change of transition {t} -> stages {t + 1}..{cfg.num_stages - 1} all ready, {args.moves} moves "
          f"per variant (interleaved); ratios against uncached at the same thread count:")
    for n in threads:
        base = statistics.median(times["uncached", n])
        for name in variants:
            v = times[name, n]
            med = statistics.median(v)
            print(f"  {n} thread{'s' if n > 1 else ' '} {name:10s} median {med:7.1f} ms  p90 {_q(v, .9):7.1f} ms  "
                  f"{med / base:5.2f}x uncached  ({1e3 / med:5.1f} per s; process CPU "
                  f"{statistics.median(cpu[name, n]):6.1f} ms)")
    if len(threads) > 1:
        a, b = threads[0], threads[-1]
        ratio = {name: statistics.median(times[name, b]) / statistics.median(times[name, a]) for name in variants}
        print("  " + ", ".join(f"{name} {b}/{a} threads {r:.2f}x" for name, r in ratio.items()))
    print(f"cached == uncached bit for bit ({args.likeness} codes): {same}")
    for name, rows in likeness.items():
        per_stage = [statistics.median(col) for col in zip(*rows)]
        what = "full picture of another code" if name == "other code" else f"{name} ({half} px)"
        print(f"likeness to the full picture downsized to {half} px, {what}: PSNR per stage "
              + ", ".join(f"{p:.1f}" for p in per_stage) + " dB (median)")
    print_load_note(load)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--threads", default="1,2", help="torch thread counts, comma-separated (interleaved)")
    ap.add_argument("--moves", type=int, default=40, help="timed slider moves per variant and thread count")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--likeness", type=int, default=6, help="codes for the likeness and bit-exactness check")
    ap.add_argument("--transition", type=int, default=0)
    ap.add_argument("--first-stage", default="", help="a first-stage drawing (default: a drawn face)")
    ap.add_argument("--wait-policy", choices=("inherit", *POLICIES, "both"), default="inherit",
                    help="OMP_WAIT_POLICY for the run (both: one child process per policy)")
    args = ap.parse_args(argv)
    if args.wait_policy == "inherit":
        return run(args)
    rc = 0
    for policy in POLICIES if args.wait_policy == "both" else (args.wait_policy,):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        given, child = list(sys.argv[1:] if argv is None else argv), []
        while given:
            a = given.pop(0)
            if a == "--wait-policy":
                given.pop(0)
            elif not a.startswith("--wait-policy="):
                child.append(a)
        print(f"--- OMP_WAIT_POLICY {policy} ---", flush=True)
        rc |= subprocess.run([sys.executable, __file__, *child, "--wait-policy", "inherit"], env=env).returncode
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
