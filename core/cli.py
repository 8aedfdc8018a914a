"""The headless command line: `artflow <command>` (same as `python main.py <command>`). No Qt on this path, except
`artflow dataset fluent-emoji`, whose builder renders SVG with QtSvg."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from core.errors import ArtflowError

COMMANDS = ("generate", "reconstruct", "edit", "export", "dataset", "train", "eval", "info")


def _add_common(p: argparse.ArgumentParser, model: bool = True) -> None:
    if model:
        p.add_argument("--model", metavar="DIR", help="model bundle folder (default: the bundled model)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where to compute")
    p.add_argument("--seed", type=int, default=0, help="random seed")


def _parse_kv_ints(items: list[str] | None, what: str) -> dict[str, int]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ArtflowError(f"{what} must look like NAME=INTEGER, got {item!r}")
        out[key.strip()] = int(value)
    return out


# ----- train -----
def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a workflow model (the paper's three phases); resumes from --out",
                       description="Train a workflow model on a stage dataset. Phases: inference, inference-joint, "
                                   "generation, generation-joint, regularizer. Re-running the same command resumes "
                                   "from the checkpoint in --out. Multi-GPU/CPU: torchrun --nproc_per_node=K main.py "
                                   "train ...")
    p.add_argument("data", help="stage dataset folder (0-<stage>/, 1-<stage>/, ... with same-named images)")
    p.add_argument("--out", required=True, help="run folder: checkpoint, logs, samples, bundle/")
    p.add_argument("--preset", default="small", choices=("paper", "small", "tiny"), help="network sizes")
    p.add_argument("--resolution", type=int, help="image size (default: the preset's)")
    p.add_argument("--name", help="model name (default: the data folder's name)")
    p.add_argument("--iters", action="append", metavar="PHASE=N",
                   help="iterations of a phase (repeatable); defaults are the paper's")
    p.add_argument("--phases", help="comma-separated phases to run (default: all, in order)")
    p.add_argument("--batch-size", type=int, help="batch size (paper: 8)")
    p.add_argument("--lr", type=float, help="Adam learning rate (paper: 2e-4)")
    p.add_argument("--reg-unroll", type=int, help="differentiable AdaIN steps per regulariser iteration")
    p.add_argument("--no-augment", action="store_true", help="no paired flip/crop augmentation")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--checkpoint-minutes", type=float, help="checkpoint interval (default 3)")
    p.add_argument("--sample-every", type=int, help="iterations between sample grids")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this long; re-run to resume")
    p.add_argument("--init", metavar="DIR", help="start from this bundle's weights")
    p.add_argument("--export", metavar="DIR", help="also copy the final bundle here")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    _add_common(p, model=False)
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    import torch

    from core import config as mconfig
    from core.train.config import PHASES, TrainConfig
    from core.train.data import StageBank
    from core.train.trainer import Trainer
    from core.data.stage_dataset import scan_stage_folders

    if args.threads:
        torch.set_num_threads(args.threads)
    folders = scan_stage_folders(args.data)
    from core.data.stage_dataset import StageDataset

    probe = StageDataset(args.data, size=16)
    from core.config import StageSpec

    stages = tuple(StageSpec(name, ch) for (_, name, _), ch in zip(folders, probe.channels))
    preset = mconfig.PRESETS[args.preset]
    kw = {"stages": stages, "name": args.name or Path(args.data).resolve().name}
    if args.resolution:
        kw["resolution"] = args.resolution
    mcfg = preset(**kw)
    tcfg = TrainConfig()
    changes = {"seed": args.seed}
    for field, value in (("batch_size", args.batch_size), ("lr", args.lr), ("reg_unroll", args.reg_unroll),
                         ("checkpoint_minutes", args.checkpoint_minutes), ("sample_every", args.sample_every)):
        if value is not None:
            changes[field] = value
    if args.no_augment:
        changes["augment"] = False
    if args.no_amp:
        changes["amp"] = False
    tcfg = dataclasses.replace(tcfg, **changes).with_iters(**_parse_kv_ints(args.iters, "--iters"))
    phases = tuple(p.strip() for p in args.phases.split(",")) if args.phases else PHASES
    for ph in phases:
        if ph not in PHASES:
            raise ArtflowError(f"unknown phase {ph!r}; phases: {', '.join(PHASES)}")
    bank = StageBank.from_folder(args.data, mcfg.resolution, [s.channels for s in stages])
    trainer = Trainer(mcfg, tcfg, bank, args.out, device=args.device, init_bundle=args.init)
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


# ----- dataset -----
def _dataset_parser(sub) -> None:
    p = sub.add_parser("dataset", help="build a stage dataset (fluent-emoji, anime, face)")
    dsub = p.add_subparsers(dest="builder", required=True)
    f = dsub.add_parser("fluent-emoji", help="render the Fluent Emoji packages (line art, flat, detail)")
    f.add_argument("source", help="folder holding the three iconify-json-fluent-emoji*.tgz packages")
    f.add_argument("-o", "--out", required=True, help="output folder (train/ and test/ inside)")
    f.add_argument("--size", type=int, default=128)
    f.add_argument("--no-tone-variants", action="store_true", help="skip the skin-tone variants")
    f.add_argument("--limit", type=int, help="at most this many drawings (for a quick look)")
    f.set_defaults(func=_cmd_dataset_fluent)
    a = dsub.add_parser("anime", help="the paper's anime recipe: SLIC flat colours + pencil sketch")
    a.add_argument("source", help="folder of finished artworks")
    a.add_argument("-o", "--out", required=True)
    a.add_argument("--size", type=int, default=256)
    a.set_defaults(func=_cmd_dataset_anime)
    fc = dsub.add_parser("face", help="the paper's face recipe: median colour per mask region + sketch")
    fc.add_argument("source", help="folder of finished artworks")
    fc.add_argument("masks", help="folder of same-named segmentation label PNGs")
    fc.add_argument("-o", "--out", required=True)
    fc.add_argument("--size", type=int, default=256)
    fc.set_defaults(func=_cmd_dataset_face)


def _print_summary(summary) -> None:
    print(summary, file=sys.stderr)


def _cmd_dataset_fluent(args: argparse.Namespace) -> int:
    from core.data.fluent_emoji import build_fluent_emoji

    _print_summary(build_fluent_emoji(args.source, args.out, size=args.size,
                                      include_tone_variants=not args.no_tone_variants, limit=args.limit))
    return 0


def _cmd_dataset_anime(args: argparse.Namespace) -> int:
    from core.data import recipes

    _print_summary(recipes.build_anime_dataset(args.source, args.out, size=args.size))
    return 0


def _cmd_dataset_face(args: argparse.Namespace) -> int:
    from core.data import recipes

    _print_summary(recipes.build_face_dataset(args.source, args.masks, args.out, size=args.size))
    return 0


# ----- info -----
def _info_parser(sub) -> None:
    p = sub.add_parser("info", help="describe a model bundle and the compute device")
    _add_common(p)
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    import json

    from core import bundle
    from core.device import device_label, resolve_device

    path = args.model or bundle.default_bundle_path()
    facts = bundle.describe(path)
    facts["path"] = str(path)
    facts["device"] = device_label(resolve_device(args.device))
    print(json.dumps(facts, indent=2))
    return 0


PARSERS: list[Callable] = [_train_parser, _dataset_parser, _info_parser]


def build_parser() -> argparse.ArgumentParser:
    from core import __version__

    parser = argparse.ArgumentParser(prog="artflow", description="Artflow: paint with a learned model of your "
                                     "artistic workflow. With no command, `artflow` opens the desktop app.")
    parser.add_argument("--version", action="version", version=f"artflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in PARSERS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ArtflowError as exc:
        print(f"artflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"artflow {args.command}: interrupted", file=sys.stderr)
        return 130
