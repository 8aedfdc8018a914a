"""Benchmark of time to quality: the whole refinement (every transition) of bundled-model artworks from a TEST split,
per schedule, in one run:

    python benchmarks/bench_refine.py TEST_DIR [--model resources/models/fluent-emoji-128] [--limit 12]
        [--threads 2] [--variants exact,fast,short60,short60-c2f]

TEST_DIR is a stage dataset (0-lineart/, 1-flat/, 2-detail/), e.g. the test/ folder written by
`python main.py dataset fluent-emoji /work/shared/data/fluent-emoji -o OUT --size 128`. The first --limit drawings
in the evaluation order of `artflow eval` are used. Each artwork is loaded (workflow inference + encoder), then
every variant refines it from that same state, one after the other (so a shared machine's load hits them alike),
with the learned regulariser. Printed per variant: mean PSNR of the final stage against the artwork (as
`artflow reconstruct` reports it), its difference to "exact", mean wall and process-CPU seconds, and the time
ratio to "exact". A script, not a test: it asserts nothing.

Variants: the schedules of core.editing.refine.SCHEDULES ("exact": the paper's 150 steps; "fast": at most as many, the
step size decaying from 0.12 to 0.05, ended when the loss has flattened), and options measured beside them: "short60"
(60 steps, step size decaying 0.15 -> 0.03, early stop), "short60-c2f" (the same with half of its steps at half size),
"steps60" (60 constant steps of 0.1), or any schedule spelt out as "aSTEPS-LR[-LREND][-cCOARSE][-sWINDOW]" (see
`variant`). Any of them with "@nchw" appended runs the decoder in NCHW throughout (the layout before channels_last, e.g.
`--variants exact,exact@nchw`).

Tried and not kept (2026-12-01, 2-core AMD EPYC, 12 Fluent TEST drawings with thin line art, the bundle before
its run-6 regulariser):
L-BFGS (torch.optim.LBFGS, strong-Wolfe line search, one iteration per call with the last evaluations reused) on
the same objective, loss + w/2 * delta**2, each evaluation costing one Adam step. Against "exact" (24.85 dB,
13.9 s): 50 evaluations per transition -1.09 dB at 0.36x the time, 60 -0.72 dB at 0.42x (history 10: -0.86 dB
at 0.40x), 70 -0.51 dB at 0.49x, with single drawings down to -2.9 dB (name-badge). Plain Adam steps are as good
or better for the same time (60 steps: -0.44 dB at 0.42x, issue 14's prototype), so the refinement stays Adam's.

Measured 2026-12-01 (same machine, the run-6 regulariser, the first 6 drawings; "exact" 27.49 dB):
- Shorter schedules with a decaying step size: a100-0.1-0.02 -0.47 dB at 0.69x the time, a100-0.15-0.01 -0.63 dB
  at 0.66x, a80-0.15-0.02 -0.79 dB at 0.52x, a60-0.2-0.02 -1.11 dB at 0.40x. The 150-step loop is far from
  converged: 300 steps per transition reach +0.36 dB, and the last transition's PSNR still climbs 0.15 dB between
  steps 120 and 150. Both transitions count: 50 steps for the first and 150 for the last -0.29 dB, none for the
  first -1.70 dB.
- A learned warm start (issue 14's suggestion), prototyped: a small network (4 strided convolutions from 16
  channels, channel means and maxima, a 256-wide head) per transition, predicting delta from (target, stage
  generated without delta, input stage), trained on the refinement's own objective (L1 + 10 x perceptual + the
  learned L2 term) over 600 TRAIN artworks, 1,200 iterations of batch 8 per transition (20 CPU minutes). It lowered
  the first transition's starting loss from 0.91 to 0.82 (150 refined steps reach 0.32) and the last one's not at
  all (0.24 -> 0.25), and then 60 steps per transition from it ended 0.31 dB below 60 steps from delta = 0
  (26.29 against 26.60 dB). What the refinement finds per artwork is not predictable from the pictures by a
  network of this size and training; not kept.
- Early stops over 12 drawings ("exact" 26.52 dB, 300 steps): "fast" as it was (the 150 steps of 0.1, stopped when flat
  over 10 steps) -0.25 dB at 0.65x the time (192 steps); the same flat over 20 steps -0.01 dB at 0.92-0.97x (269 steps);
  a step size decaying from 0.12 to 0.05 with the 10-step stop +0.00 dB at 0.74-0.75x (236 steps), "fast" now (a second
  run: 0.80x, beside a150-0.15-0.03-s10 -0.05 dB at 0.84x and a120-0.12-0.04-s10 -0.14 dB at 0.74x). Single drawings
  move by up to +-0.7 dB between such near-identical schedules: constant-step Adam's last iterate is noisy. Then
  `artflow eval DIR --limit 64 --refine-limit 12 --schedule fast` (2 threads): the same learned-regulariser
  reconstruction (26.53 dB) and edits (flip 19.86, shrink 19.58 dB against 19.67 and 19.45), but plain refinement 0.48
  dB below exact's (28.88 against 29.36 dB): "fast" is tuned for the learned regulariser, the default.
- "fast" elsewhere (one thread each, beside a training run): Emoji One TEST (`data/emojione128/test --limit 6`, an
  artist the model never saw) -0.34 dB at 0.99x the time (284 steps; the loss rarely flattens within 150); the
  thin-line-art model (`--model resources/models/emoji-lines-128`, Fluent, 6 drawings) -0.25 dB at 0.79x (242 steps).
  Its early stop is tuned to one model and one artist; "exact" stays the default.
- The decoder's upsampler in channels_last (AdaINGenerator.decode's CPU default since 2026-12-01) against NCHW
  (`--variants exact,exact@nchw --limit 4 --threads 2`, the training paused): 16.63 against 18.37 s, 0.91x, the
  same PSNR to 0.01 dB on every drawing.

Measured 2026-12-01, second session (same machine, idle, 2 threads, the default bundle unless said):
- The arithmetic per step (torch.utils.flop_counter.FlopCounterMode, either bundle, either transition): 2.90
  GFLOP, 2.61 of them the decoder's forward and input gradient, 0.29 the discriminator features of the perceptual
  term; "exact" runs 300 steps, 871 GFLOP per artwork. Issue 14's 6 s would need 145 GFLOP/s throughout; the two
  cores' fp32 peak is 2 x 2.45 GHz x 32 FLOP/cycle (two 256-bit FMA pipes, AVX2, no AVX-512) = 157 GFLOP/s, and a
  step runs at about 72 (40 ms): the convolutions are 2/3 of its time, at 32-128 px with 3 to 96 channels. So on
  this CPU no schedule of ~300 steps gets there, and the schedules with fewer steps lose PSNR (above).
- torch.compile (inductor, static shapes, its C++ compiler present) of one whole step (decoder, perceptual
  features, loss, input gradient): 27 s to compile, then 41.5-42.9 ms per step against 39.3-47.2 ms eager in three
  interleaved rounds: no gain (the convolutions stay oneDNN's; what it fuses is a fifth of the step). Not kept.
- Returning the iterate with the lowest objective (loss + w/2 * delta**2) instead of the last: "fast" with it
  +0.06 dB against "fast" (26.59 against 26.53 dB, 12 drawings), -0.08 dB on 6 Emoji One drawings and -0.20 dB with
  emoji-lines-128 (6 Fluent drawings): the objective's minimum is not PSNR's. Not kept. The same runs put "fast"
  at -0.34 dB on Emoji One again (0.78x the time) but -0.02 dB with emoji-lines-128 (0.76x; -0.25 dB with one
  thread): oneDNN's results differ with the thread count, so the trajectories do, and 6-drawing means move by
  tenths of a dB from that alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from core.editing.refine import SCHEDULES, Schedule  # noqa: E402
from core.editing.session import Session, run_to_end  # noqa: E402
from core.evaluation.metrics import psnr_01  # noqa: E402
from core.evaluation.workflow import eval_order, open_test_set  # noqa: E402
from core.files import bundle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "resources" / "models" / "fluent-emoji-128"

_SHORT = Schedule("short60", steps=60, lr=0.15, lr_end=0.03, stop_window=10, stop_tol=0.002)
VARIANTS: dict[str, Schedule] = {
    **SCHEDULES,
    "short60": _SHORT,  # 60 steps, step size decaying from 0.15 to 0.03, early stop
    "short60-c2f": replace(_SHORT, name="short60-c2f", coarse_steps=_SHORT.steps // 2),  # half of them at half size
    "steps60": Schedule("steps60", steps=60),  # 60 constant steps of 0.1
}


NCHW_SUFFIX = "@nchw"


def split_layout(name: str) -> tuple[str, bool]:
    """(schedule name, channels_last): a variant ending in "@nchw" runs the decoder's upsampler in NCHW, as before
    channels_last became the CPU's default (AdaINGenerator.decode)."""
    if name.endswith(NCHW_SUFFIX):
        return name[: -len(NCHW_SUFFIX)], False
    return name, True


def variant(name: str) -> Schedule:
    """A named variant, or one spelt out as "aSTEPS-LR[-LREND][-cCOARSE][-sWINDOW]" (e.g. "a100-0.15-0.02-s10":
    100 steps, step size 0.15 decaying to 0.02, stopping when flat over 10 steps with tolerance 0.002); either
    with "@nchw" appended (split_layout)."""
    name = split_layout(name)[0]
    if name in VARIANTS:
        return VARIANTS[name]
    parts = name.split("-")
    if not (parts[0].startswith("a") and len(parts) >= 2):
        raise ValueError(name)
    steps, lr = int(parts[0][1:]), float(parts[1])
    lr_end, coarse, window = None, 0, 0
    for part in parts[2:]:
        if part.startswith("c"):
            coarse = int(part[1:])
        elif part.startswith("s"):
            window = int(part[1:])
        else:
            lr_end = float(part)
    return Schedule(name, steps=steps, lr=lr, lr_end=lr_end, coarse_steps=coarse, stop_window=window,
                    stop_tol=0.002 if window else 0.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("test_dir", help="a stage dataset folder (the TEST split)")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--limit", type=int, default=12, help="drawings (first in the evaluation order)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="exact,fast,short60,short60-c2f")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = []
    for v in names:
        try:
            variant(v)
        except ValueError:
            unknown.append(v)
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    model = bundle.load(args.model)
    data = open_test_set(args.test_dir, model)
    session = Session(model, "cpu")
    order = eval_order(data.sample_names)[:args.limit]
    psnr: dict[str, list[float]] = {v: [] for v in names}
    wall: dict[str, list[float]] = {v: [] for v in names}
    cpu: dict[str, list[float]] = {v: [] for v in names}
    steps: dict[str, list[int]] = {v: [] for v in names}
    load = load_average()
    print(f"model {Path(args.model).name}, {len(order)} TEST drawings from {args.test_dir}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, cpu count {os.cpu_count()}, load avg {load:.2f}")
    for a in order:
        art = data.load(a)[-1]
        session.load_artwork(art)
        start = session.snapshot()
        row = []
        for v in names:
            session.restore(start)
            for g in model.generators:
                g.channels_last_on_cpu = split_layout(v)[1]
            seen: list[int] = []
            t, c = time.perf_counter(), time.process_time()
            report = run_to_end(session.refine(regularizer="learned", preview_every=0, schedule=variant(v)),
                                seen.append)
            wall[v].append(time.perf_counter() - t)
            cpu[v].append(time.process_time() - c)
            steps[v].append(len(seen))
            psnr[v].append(float(psnr_01(session.stages[-1][None], art[None])[0]))
            row.append(f"{v} {psnr[v][-1]:.2f} dB {wall[v][-1]:.1f} s ({len(seen)} steps)")
            assert report.completed
        print(f"  {data.sample_names[a]}: " + "; ".join(row), flush=True)
    ref = names[0]
    print(f"\nmeans over {len(order)} drawings (reference: {ref}):")
    for v in names:
        dp = statistics.mean(psnr[v]) - statistics.mean(psnr[ref])
        print(f"  {v:11s} PSNR {statistics.mean(psnr[v]):6.2f} dB ({dp:+.2f})  wall {statistics.mean(wall[v]):6.2f} s "
              f"({statistics.mean(wall[v]) / statistics.mean(wall[ref]):.2f}x)  CPU {statistics.mean(cpu[v]):6.2f} s "
              f"({statistics.mean(cpu[v]) / statistics.mean(cpu[ref]):.2f}x)  steps {statistics.mean(steps[v]):.0f}")
    load = load_average()
    print_load_note(load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
