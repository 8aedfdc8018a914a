"""Evaluate a model bundle on a stage dataset's test split (e.g. data/fluent128/test): workflow-inference L1,
generation L1/PSNR, reconstruction PSNR (encoder only, AdaIN optimisation without and with the learned regulariser,
wall time), diversity of random-z samples and editing tests. Writes OUT/metrics.json, OUT/samples.png and
OUT/diversity.png and prints a table.
"""

from __future__ import annotations

import argparse

from core import bundle
from core.cli.common import add_common, model_path
from core.device import resolve_device
from core.eval import DIVERSITY_SAMPLES, REFINE_LIMIT, SHEET_ROWS, EvalOptions, default_out_folder, evaluate_bundle
from core.eval_report import format_table
from core.refine import DEFAULT_SCHEDULE, SCHEDULES, STEPS


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a test split: inference, generation, reconstruction, "
                                    "diversity, editing",
                       description=__doc__)
    p.add_argument("data", metavar="TEST_DATA_DIR", help="stage dataset folder (0-<stage>/, 1-<stage>/, ...) whose "
                                                         "stages match the model's")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default: eval/<model>-<data folder>)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N test drawings (a fixed pseudo-random order)")
    p.add_argument("--refine-limit", type=int, default=REFINE_LIMIT, metavar="N",
                   help=f"reconstruction and editing on the first N of them (default {REFINE_LIMIT}; 0: skip)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"refinement steps per transition (default {STEPS})")
    p.add_argument("--schedule", default=DEFAULT_SCHEDULE, choices=list(SCHEDULES),
                   help="the refinement's schedule: 'exact' (the paper's, the default) or 'fast' (see reconstruct)")
    p.add_argument("--diversity-samples", type=int, default=DIVERSITY_SAMPLES, metavar="K",
                   help=f"random z per drawing for the diversity measure (default {DIVERSITY_SAMPLES})")
    p.add_argument("--rows", type=int, default=SHEET_ROWS, help=f"rows of samples.png (default {SHEET_ROWS})")
    p.add_argument("--batch-size", type=int, default=16, help="batch size of the batched passes")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = EvalOptions(limit=args.limit, refine_limit=args.refine_limit, steps=args.steps,
                          schedule=args.schedule, diversity_samples=args.diversity_samples, rows=args.rows,
                          seed=args.seed, batch_size=args.batch_size)
    options.check()
    device = resolve_device(args.device)
    path = model_path(args)
    out = args.out or default_out_folder(bundle.load_config(path).name, args.data)
    metrics = evaluate_bundle(path, args.data, out, options, device=device)
    print(format_table(metrics))
    print(metrics["files"]["metrics"])
    return 0
