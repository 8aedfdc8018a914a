"""Train a workflow model on a stage dataset. Phases: inference, inference-joint, generation, generation-joint,
regularizer. Re-running the same command resumes from the checkpoint in --out. Multi-GPU/CPU: torchrun
--nproc_per_node=K main.py train ...
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from core import config as mconfig
from core.cli.common import add_common, add_stage_data, parse_kv_ints
from core.errors import ArtflowError
from core.train.config import TrainConfig, parse_phases, stage_specs_from_folder
from core.train.data import StageBank
from core.train.trainer import Trainer


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a workflow model (the paper's three phases); resumes from --out",
                       description=__doc__)
    add_stage_data(p)
    p.add_argument("--out", required=True, help="run folder: checkpoint, logs, samples, bundle/")
    p.add_argument("--preset", default="small", choices=("paper", "small", "tiny"), help="network sizes")
    p.add_argument("--resolution", type=int, help="image size (default: the preset's)")
    p.add_argument("--name", help="model name (default: the data folder's name)")
    p.add_argument("--iters", action="append", metavar="PHASE=N",
                   help="iterations of a phase (repeatable); defaults are the paper's")
    p.add_argument("--phases", help="comma-separated phases to run (default: all, in order)")
    p.add_argument("--batch-size", type=int, help="batch size (paper: 8)")
    p.add_argument("--lr", type=float, help="Adam learning rate (paper: 2e-4)")
    p.add_argument("--lr-d", type=float, help="the discriminators' learning rate (default: --lr)")
    p.add_argument("--reg-unroll", type=int, help="differentiable AdaIN steps per regulariser iteration")
    p.add_argument("--reg-warm-max", type=int, help="ordinary AdaIN steps before the differentiable ones, drawn from "
                   "[0, N] per regulariser iteration (truncated unrolling over the refinement's 150 steps)")
    p.add_argument("--reg-lambda-gan", type=float, help="weight of the edited output's GAN loss in Algorithm 1's "
                   "regulariser objective (paper: 1)")
    p.add_argument("--no-augment", action="store_true", help="no paired flip/crop augmentation")
    p.add_argument("--recolour", type=float, metavar="P", help="probability of region-wise recolouring of a "
                   "sample's flat and detail (default 0)")
    p.add_argument("--hand-drawn", type=float, metavar="P", help="probability of hand-drawn-style line art "
                   "(width, gaps, wobble) where the line art is an input (default 0)")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--checkpoint-minutes", type=float, help="checkpoint interval (default 3)")
    p.add_argument("--sample-every", type=int, help="iterations between sample grids")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this long; re-run to resume")
    p.add_argument("--init", metavar="DIR", help="start from this bundle's weights")
    p.add_argument("--reset-encoders", action="store_true",
                   help="with --init: start the latent encoders afresh (after a posterior collapse)")
    p.add_argument("--reset-regularizer", action="store_true",
                   help="with --init: start the learned regulariser's weights afresh (Algorithm 1's 0.001)")
    p.add_argument("--export", metavar="DIR", help="also copy the final bundle here")
    add_common(p, model=False)
    p.set_defaults(func=run)


def _train_config(args: argparse.Namespace) -> TrainConfig:
    changes = {"seed": args.seed}
    for field, value in (("batch_size", args.batch_size), ("lr", args.lr), ("lr_d", args.lr_d),
                         ("reg_unroll", args.reg_unroll), ("reg_warm_max", args.reg_warm_max),
                         ("reg_lambda_gan", args.reg_lambda_gan),
                         ("checkpoint_minutes", args.checkpoint_minutes), ("sample_every", args.sample_every),
                         ("recolour", args.recolour), ("hand_drawn", args.hand_drawn)):
        if value is not None:
            changes[field] = value
    if args.no_augment:
        changes["augment"] = False
    if args.no_amp:
        changes["amp"] = False
    return dataclasses.replace(TrainConfig(), **changes).with_iters(**parse_kv_ints(args.iters, "--iters"))


def run(args: argparse.Namespace) -> int:
    stages = stage_specs_from_folder(args.data)
    kw = {"stages": stages, "name": args.name or Path(args.data).resolve().name}
    if args.resolution:
        kw["resolution"] = args.resolution
    mcfg = mconfig.PRESETS[args.preset](**kw)
    tcfg = _train_config(args)
    phases = parse_phases(args.phases)
    if args.reset_encoders and not args.init:
        raise ArtflowError("--reset-encoders needs --init (a fresh model's encoders are new anyway)")
    if args.reset_regularizer and not args.init:
        raise ArtflowError("--reset-regularizer needs --init (a fresh model's regulariser is new anyway)")
    bank = StageBank.from_folder(args.data, mcfg.resolution, [s.channels for s in stages])
    trainer = Trainer(mcfg, tcfg, bank, args.out, device=args.device, init_bundle=args.init,
                      reset_encoders=args.reset_encoders, reset_regularizer=args.reset_regularizer,
                      adapt_threads=args.threads is None)
    if trainer.resumed:
        print(f"resumed from {args.out}: " + ", ".join(f"{k} {v}" for k, v in trainer.phase_done.items()),
              file=sys.stderr)
    result = trainer.run(phases, max_minutes=args.max_minutes)
    if result is None:
        print(f"stopped after --max-minutes; checkpoint saved in {args.out}; run the same command to resume",
              file=sys.stderr)
        return 0
    if args.export and trainer.is_main:
        trainer.export(args.export)
        result = Path(args.export)
    print(f"model bundle written to {result}", file=sys.stderr)
    return 0
