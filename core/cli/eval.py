"""Evaluate a model bundle on a stage dataset's test split (e.g. data/fluent128/test): workflow-inference L1,
generation L1/PSNR, reconstruction PSNR (encoder only, AdaIN optimisation without and with the learned regulariser,
wall time), diversity of random-z samples and editing tests. Writes OUT/metrics.json, OUT/samples.png and
OUT/diversity.png and prints a table. With --edits EDIT_SET (tools/make_edit_set.py) it also (or only, without
TEST_DATA_DIR) runs the edit benchmark (core/evaluation/edits.py): the learned edit propagation against no-model
baselines on recolour edits with artist-drawn truth; writes OUT/edits.json and prints its table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.common import add_common, model_path, open_session, write_json
from core.editing.refine import DEFAULT_SCHEDULE, SCHEDULES, STEPS
from core.errors import ArtflowError
from core.evaluation.edits import evaluate_edits, format_edit_table
from core.evaluation.report import format_table
from core.evaluation.workflow import (
    DIVERSITY_SAMPLES,
    REFINE_LIMIT,
    SHEET_ROWS,
    EvalOptions,
    default_out_folder,
    evaluate_bundle,
)
from core.files import bundle
from core.files.atomic import ensure_folder
from core.platform.device import device_label, resolve_device


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a test split: inference, generation, reconstruction, "
                                    "diversity, editing",
                       description=__doc__)
    p.add_argument("data", metavar="TEST_DATA_DIR", nargs="?",
                   help="stage dataset folder (0-<stage>/, 1-<stage>/, ...) whose stages match the model's (may be "
                        "left out with --edits)")
    p.add_argument("--edits", metavar="EDIT_SET_DIR",
                   help="also run the edit benchmark on this edit set (tools/make_edit_set.py; the set or one of its "
                        "<W>x<H> folders): writes OUT/edits.json")
    p.add_argument("--edit-size", action="append", metavar="WxH",
                   help="the edit benchmark on this size folder only (repeatable; default: all)")
    p.add_argument("--edit-images", action="store_true",
                   help="the edit benchmark also writes every result as OUT/edits/<size>/<drawing>/<edit>-<method>.png")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default: eval/<model>-<data folder>)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N test drawings (a fixed pseudo-random order); "
                                                          "with --edits, at most N drawings per size")
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
    if args.data is None and args.edits is None:
        raise ArtflowError("give a TEST_DATA_DIR, --edits EDIT_SET_DIR, or both")
    options = EvalOptions(limit=args.limit, refine_limit=args.refine_limit, steps=args.steps,
                          schedule=args.schedule, diversity_samples=args.diversity_samples, rows=args.rows,
                          seed=args.seed, batch_size=args.batch_size)
    options.check()
    device = resolve_device(args.device)
    path = model_path(args)
    out = Path(args.out or default_out_folder(bundle.load_config(path).name, args.data or args.edits))
    if args.data is not None:
        metrics = evaluate_bundle(path, args.data, out, options, device=device)
        print(format_table(metrics))
        print(metrics["files"]["metrics"])
    if args.edits is not None:
        run_edits(args, out)
    return 0


def run_edits(args: argparse.Namespace, out: Path) -> None:
    """The edit benchmark (core/evaluation/edits.py) on --edits: OUT/edits.json and its table on stdout."""
    session, path = open_session(args)
    ensure_folder(out)
    result = evaluate_edits(session, args.edits, steps=args.steps, schedule=args.schedule, sizes=args.edit_size,
                            limit=args.limit, images_dir=out / "edits" if args.edit_images else None,
                            on_drawing=lambda size, name: print(f"artflow eval: edits {size} {name}",
                                                                file=sys.stderr))
    result["model"].update({"path": str(path), "config_hash": bundle.config_hash(session.config)})
    result["device"] = device_label(session.device)
    result["seed"] = args.seed
    write_json(result, out / "edits.json")
    print(format_edit_table(result))
    print(out / "edits.json")
