"""The long fuzz run of issue 13: forged images, model bundles and projects through Artflow's readers, in one
process (no subprocess per case), counting clean errors against tracebacks and hangs, with the peak RSS.

    python tools/fuzz_readers.py [IMAGES [BUNDLES [PROJECTS]]] [--seed S] [--timeout SECONDS]

Defaults: 1000 images, 500 bundles, 500 projects, seed 0, 20 s per case (a case over it counts as a hang).
Each case is reproducible: tests/forgery.py derives it from (kind, seed + index). Exit status 1 if any case
failed or hung. Unix only (SIGALRM for the per-case timeout).
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from tests import forgery  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def run(kind: str, count: int, seed: int, timeout: int, forge, check) -> dict:
    """`forge(rng, folder)` makes the case (its own errors are the fuzzer's, counted apart); `check(made, rng)`
    reads it and returns "ok" or "clean"."""
    tally = {"tried": 0, "ok": 0, "clean": 0, "failed": 0, "hung": 0, "forge_errors": 0}
    failures: list[str] = []
    t0 = time.perf_counter()
    for i in range(count):
        rng = random.Random(f"{kind}-{seed + i}")
        folder = Path(tempfile.mkdtemp(prefix=f"fuzz-{kind}-"))
        try:
            made = forge(rng, folder)
        except Exception as exc:  # noqa: BLE001
            tally["forge_errors"] += 1
            failures.append(f"{kind} #{seed + i}: could not forge the case: {type(exc).__name__}: {exc}")
            shutil.rmtree(folder, ignore_errors=True)
            continue
        signal.alarm(timeout)
        try:
            tally[check(made, rng)] += 1
        except Hang:
            tally["hung"] += 1
            failures.append(f"{kind} #{seed + i}: hung over {timeout} s")
        except BaseException as exc:  # noqa: BLE001 - anything but the reader's own error is a finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            tally["failed"] += 1
            failures.append(f"{kind} #{seed + i}: {type(exc).__name__}: {str(exc)[:200]}\n"
                            + "".join(traceback.format_exception(exc)[-3:]))
        finally:
            signal.alarm(0)
            shutil.rmtree(folder, ignore_errors=True)
        tally["tried"] += 1
    tally["seconds"] = round(time.perf_counter() - t0, 1)
    tally["peak_rss_mb"] = round(peak_rss_mb(), 1)
    for f in failures[:10]:
        print(f, file=sys.stderr)
    return tally


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("images", type=int, nargs="?", default=1000)
    p.add_argument("bundles", type=int, nargs="?", default=500)
    p.add_argument("projects", type=int, nargs="?", default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=int, default=20)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    base = Path(tempfile.mkdtemp(prefix="fuzz-base-"))
    try:
        good_bundle, good_project, session = forgery.make_bases(base)
        print(f"baseline peak RSS {peak_rss_mb():.1f} MB", file=sys.stderr)

        results = {
            "images": run("image", args.images, args.seed, args.timeout, forgery.forge_image,
                          lambda path, rng: forgery.check_image(path, rng.choice((1, 3)))),
            "bundles": run("bundle", args.bundles, args.seed, args.timeout,
                           lambda rng, folder: forgery.forge_bundle(rng, good_bundle, folder),
                           lambda path, rng: forgery.check_bundle(path)),
            "projects": run("project", args.projects, args.seed, args.timeout,
                            lambda rng, folder: forgery.forge_project(rng, good_project, folder),
                            lambda path, rng: forgery.check_project(path, session))}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{'kind':<9} {'tried':>6} {'read':>6} {'refused':>8} {'failed':>7} {'hung':>5} {'unforged':>9} "
          f"{'seconds':>8} {'peak RSS MB':>12}")
    for kind, r in results.items():
        print(f"{kind:<9} {r['tried']:>6} {r['ok']:>6} {r['clean']:>8} {r['failed']:>7} {r['hung']:>5} "
              f"{r['forge_errors']:>9} {r['seconds']:>8} {r['peak_rss_mb']:>12}")
    bad = sum(r["failed"] + r["hung"] + r["forge_errors"] for r in results.values())
    print(f"{'total':<9} {sum(r['tried'] for r in results.values()):>6}  failures+hangs: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
