"""The headless command line: `artflow <command>` (same as `python main.py <command>`). No Qt on this path, except
`artflow dataset fluent-emoji`, whose builder renders SVG with QtSvg."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from core.errors import ArtflowError

STAGE_DATA_HELP = "stage dataset folder (0-<stage>/, 1-<stage>/, ... with same-named images)"
COMMANDS = ("generate", "reconstruct", "edit", "export", "dataset", "train", "fit-prior", "eval", "info")


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


# ----- shared by generate / reconstruct / edit / export -----
def _model_path(args: argparse.Namespace) -> Path:
    from core import bundle
    from core.errors import BundleError

    path = Path(args.model) if args.model else bundle.default_bundle_path()
    if not path.exists():
        if args.model:
            raise BundleError(f"{path}: model folder not found")
        raise BundleError(f"the bundled model is not installed ({path} does not exist); "
                          "pass --model DIR (a folder with config.json and model.safetensors)")
    return path


def _open_session(args: argparse.Namespace) -> tuple:
    """Resolve the device first (a missing GPU is reported before any loading), then load the bundle."""
    import torch

    from core import bundle
    from core.device import resolve_device
    from core.session import Session

    device = resolve_device(args.device)
    path = _model_path(args)
    torch.manual_seed(args.seed)
    return Session(bundle.load(path), device), path


def _model_facts(session, path) -> dict:
    from core.bundle import config_hash

    return {"name": session.config.name, "path": str(path), "config_hash": config_hash(session.config)}


def _out_folder(out: str) -> Path:
    """Checked early (not an existing file); created only when _finish commits every output together."""
    from core.atomic import check_output_folder

    return check_output_folder(out)


def _finite(obj):
    """NaN/inf (a diverged loss) -> null: report.json stays strict JSON that any tool parses."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _write_json(data: dict, path) -> None:
    import json

    from core.atomic import atomic_write

    with atomic_write(path) as f:
        f.write((json.dumps(_finite(data), indent=2, allow_nan=False) + "\n").encode())


def _psnr(a, b) -> float:
    """PSNR in dB of two images in [-1, 1], measured on the [0, 1] scale (100 dB for identical images)."""
    import math

    mse = float((((a.float() + 1) / 2).clamp(0, 1) - ((b.float() + 1) / 2).clamp(0, 1)).pow(2).mean())
    return 100.0 if mse <= 1e-10 else round(10 * math.log10(1.0 / mse), 4)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _bar(total: int, desc: str):
    from tqdm import tqdm

    # Always on stderr (stdout carries the written paths, for scripts).
    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True, leave=True)


def _propagate_with_bar(session, k: int, keep_mask=None, desc: str = "generate") -> list[int]:
    # The chain runs in one call (milliseconds per transition); the bar reports it once done.
    if k >= session.num_stages - 1:
        return []  # the last stage changed: nothing comes after it
    with _bar(session.num_stages - 1 - k, desc) as bar:
        changed = session.propagate(k, keep_mask)
        bar.update(len(changed))
    return changed


def _write_outputs(session, out, extra: dict) -> dict:
    """OUT/stages/NN-<stage>.png and OUT/project.artflow into the staging folder of `out` (an OutputDir); returns
    their final paths for the report."""
    from core.export import export_stages
    from core.project import project_from_session, save_project

    stages = export_stages(session.stages, session.stage_names, out.staging / "stages")
    project = save_project(project_from_session(session, extra), out.staging / "project.artflow")
    return {"project": str(out.final(project)), "stages": [str(out.final(p)) for p in stages]}


def _stage_index(session, name: str) -> int:
    name = name.strip()
    if not name:
        raise ArtflowError(f"a stage name is missing; this model's stages are: {', '.join(session.stage_names)}")
    return session.config.stage_index(name)


def _parse_z(items: list[str] | None, session) -> dict[int, list[float]]:
    """--z STAGE=v1,...,vD -> {transition index: values}; the latent of transition i shapes stage i+1. The values
    are the app's slider coordinates: standard deviations of the transition's latent prior."""
    import math

    from core.session import Z_RANGE

    z_dim = session.config.generator.z_dim
    out: dict[int, list[float]] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep:
            raise ArtflowError(f"--z must look like STAGE=v1,...,v{z_dim}, got {item!r}")
        k = _stage_index(session, name)
        if k == 0:
            raise ArtflowError(f"--z {name.strip()}: the first stage is the chain's input and has no latent code; "
                               f"--z applies to: {', '.join(session.stage_names[1:])}")
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise ArtflowError(f"--z {name.strip()}: values must be numbers separated by commas, got {text!r}") \
                from None
        if len(values) != z_dim:
            raise ArtflowError(f"--z {name.strip()}: this model's latent codes have {z_dim} values, got {len(values)}")
        if not all(math.isfinite(v) and abs(v) <= Z_RANGE for v in values):
            raise ArtflowError(f"--z {name.strip()}: values must be numbers within +-{Z_RANGE:g} (standard "
                               "deviations of the model's latent prior, as on the app's sliders)")
        if k - 1 in out:
            raise ArtflowError(f"--z {name.strip()} is given twice")
        out[k - 1] = values
    return out


# ----- generate -----
def _generate_parser(sub) -> None:
    p = sub.add_parser("generate", help="run the chain forward from a first-stage drawing",
                       description="Generate every stage from a first-stage drawing (e.g. line art). Each later "
                                   "stage uses a latent code: sampled from the prior with --seed, the prior's mean "
                                   "with --mean-z, or given with --z. Writes OUT/stages/NN-<stage>.png, "
                                   "OUT/project.artflow and OUT/report.json.")
    p.add_argument("image", metavar="FIRST_STAGE_IMAGE", help="the first stage's drawing (any image Pillow reads)")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder")
    p.add_argument("--z", action="append", metavar="STAGE=v1,...,vD",
                   help="latent code of the transition that produces STAGE, in standard deviations of its latent "
                        "prior like the app's sliders, each within +-3 (repeatable); the others are sampled")
    p.add_argument("--mean-z", action="store_true", help="use the latent prior's mean instead of sampling")
    _add_common(p)
    p.set_defaults(func=_cmd_generate)


def _cmd_generate(args: argparse.Namespace) -> int:
    import time

    import torch

    from core.device import device_label
    from core.imageio import load_image
    from core.session import Z_RANGE

    t0 = time.perf_counter()
    session, mpath = _open_session(args)
    given = _parse_z(args.z, session)
    cfg = session.config
    first = load_image(args.image, cfg.stages[0].channels, cfg.resolution)
    out = _out_folder(args.out)
    session.set_stage(0, first, propagate=False)  # a fresh session: no targets, zero deltas
    # Draw every transition's sample in order even where --z is given, so that fixing one code leaves the others
    # as they were for this seed.
    gen = torch.Generator().manual_seed(args.seed)
    for i in range(session.num_stages - 1):
        z = session.model.sample_latents(i, 1, gen, clip=Z_RANGE)[0].float().cpu()
        if args.mean_z:
            z = session.model.latent_priors[i].mean.float().cpu().clone()
        if i in given:
            z = session.model.latent_priors[i].from_standard(torch.tensor(given[i])).float().cpu()
        session.set_latent(i, z, propagate=False)
    _propagate_with_bar(session, 0)
    latents = {session.stage_names[i + 1]: [round(float(v), 6) for v in z] for i, z in enumerate(session.latents)}
    coords = {session.stage_names[i + 1]: [round(float(v), 6) for v in p.to_standard(z)]
              for i, (z, p) in enumerate(zip(session.latents, session.model.latent_priors))}
    extra = {"cli": [{"command": "generate", "source": str(args.image), "seed": args.seed, "time": _now()}]}
    report = {"command": "generate", "source": str(args.image), "model": _model_facts(session, mpath),
              "device": device_label(session.device), "seed": args.seed,
              "latents": latents, "latent_coords": coords,
              "latents_given": [session.stage_names[i + 1] for i in sorted(given)],
              "mean_z": bool(args.mean_z), "seconds": round(time.perf_counter() - t0, 3)}
    return _finish(report, out, session, extra)


def _finish(report: dict, out: Path, session, extra: dict, inferred: list | None = None) -> int:
    """Every command that writes a project ends the same way: OUT/stages/, OUT/project.artflow, (OUT/inferred/)
    and report.json written into a staging folder and committed together (OUT is complete or untouched), then the
    project's path on stdout."""
    from core.atomic import atomic_output_dir
    from core.export import export_stages

    with atomic_output_dir(out) as staged:
        if inferred is not None:
            files = export_stages(inferred, session.stage_names, staged.staging / "inferred")
            report["inferred"] = [str(staged.final(p)) for p in files]
        report.update(_write_outputs(session, staged, extra))
        _write_json(report, staged.staging / "report.json")
    print(out / "project.artflow")
    return 0


# ----- reconstruct -----
def _reconstruct_parser(sub) -> None:
    from core.refine import STEPS

    p = sub.add_parser("reconstruct", help="infer an artwork's earlier stages and fit the model to it",
                       description="Workflow inference, latent encoding and AdaIN refinement of a finished artwork "
                                   "(the paper's editing pipeline). Writes OUT/project.artflow, OUT/inferred/"
                                   "NN-<stage>.png (what workflow inference produced), OUT/stages/NN-<stage>.png "
                                   "(the stages after refinement; the last is the reconstruction) and "
                                   "OUT/report.json (losses, wall time, PSNR, device).")
    p.add_argument("image", metavar="ARTWORK", help="the finished artwork (any image Pillow reads)")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder")
    p.add_argument("--steps", type=int, default=STEPS,
                   help=f"refinement steps per transition (default {STEPS}; 0: encoder only)")
    p.add_argument("--regularizer", default="learned", choices=("learned", "none"),
                   help="the learned AdaIN regulariser (Algorithm 1) or plain optimisation")
    _add_common(p)
    p.set_defaults(func=_cmd_reconstruct)


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    import time

    from core.device import device_label
    from core.imageio import load_image
    from core.session import run_to_end

    if args.steps < 0:
        raise ArtflowError(f"--steps must be 0 or more, got {args.steps}")
    t0 = time.perf_counter()
    session, mpath = _open_session(args)
    cfg = session.config
    art = load_image(args.image, cfg.stages[-1].channels, cfg.resolution)
    out = _out_folder(args.out)
    inferred = session.infer_stages(art)
    session.encode(propagate=True)
    n = session.num_stages
    untrained = [session.stage_names[i + 1] for i in range(n - 1) if not session.model.regularizer_trained(i)]
    if args.regularizer == "learned" and untrained and args.steps:
        print(f"artflow reconstruct: note: this model's learned regulariser was not trained for stage(s) "
              f"{', '.join(untrained)}; its initial weight is used", file=sys.stderr)
    # With --steps 0 the refinement runs no step: it only measures the encoder-only losses for the report (the
    # stages it returns are the encoder-only chain).
    with _bar(args.steps * (n - 1), "refine") as bar:
        def on_step(step) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{session.stage_names[step.transition + 1]} loss {step.loss:.4f}", refresh=False)

        result = run_to_end(session.refine(steps=args.steps, regularizer=args.regularizer, preview_every=0),
                            on_step)
    stages_psnr = {session.stage_names[k]: _psnr(session.stages[k], inferred[k]) for k in range(1, n)}
    extra = {"cli": [{"command": "reconstruct", "source": str(args.image), "steps": args.steps,
                      "regularizer": args.regularizer, "seed": args.seed, "time": _now()}]}
    report = {
        "command": "reconstruct", "source": str(args.image), "model": _model_facts(session, mpath),
        "device": device_label(session.device), "seed": args.seed, "steps": args.steps,
        "regularizer": result.regularizer, "regularizer_trained": list(result.regularizer_trained),
        "perceptual": result.perceptual,
        "transitions": [{"transition": t.transition, "stage": session.stage_names[t.transition + 1],
                         "loss_start": round(t.loss_start, 6), "loss_end": round(t.loss_end, 6),
                         "seconds": round(t.seconds, 3)} for t in result.transitions],
        "psnr": _psnr(session.stages[-1], art),
        "psnr_stages": stages_psnr,
        "refine_seconds": round(result.seconds, 3),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    print(f"artflow reconstruct: PSNR {report['psnr']:.2f} dB in {report['seconds']:.1f} s", file=sys.stderr)
    return _finish(report, out, session, extra, inferred)


# ----- edit -----
def _edit_parser(sub) -> None:
    p = sub.add_parser("edit", help="replace one stage of a project and propagate the change",
                       description="Replace one stage of a project by an edited image and regenerate the later "
                                   "stages with the project's latent codes and refined AdaIN deltas. Writes "
                                   "OUT/stages/NN-<stage>.png, OUT/project.artflow and OUT/report.json.")
    p.add_argument("project", metavar="PROJECT", help="a .artflow project file")
    p.add_argument("--stage", required=True, metavar="NAME=IMAGE", help="the stage to replace and its new image")
    p.add_argument("--keep-unedited", action="store_true",
                   help="later stages keep their pixels away from the edited area")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder (may hold PROJECT itself)")
    _add_common(p)
    p.set_defaults(func=_cmd_edit)


def _cmd_edit(args: argparse.Namespace) -> int:
    import time

    from core.device import device_label
    from core.editing import edit_mask
    from core.imageio import load_image
    from core.project import apply_project, load_project

    t0 = time.perf_counter()
    name, sep, image_path = args.stage.partition("=")
    if not sep or not image_path.strip():
        raise ArtflowError(f"--stage must look like NAME=IMAGE, got {args.stage!r}")
    session, mpath = _open_session(args)
    project = load_project(args.project, session.config)
    apply_project(session, project)  # ProjectError for a project of another model
    k = _stage_index(session, name)
    cfg = session.config
    image = load_image(image_path, cfg.stages[k].channels, cfg.resolution)
    out = _out_folder(args.out)
    before = [s.clone() for s in session.stages]
    mask = edit_mask(before[k], image) if args.keep_unedited else None
    # The edited image is the whole stage as the artist sees it (an exported composite, painted over): it
    # replaces the base and the artist layer of that stage. Later stages keep their layers on top.
    session.set_layer(k, None, propagate=False)
    session.set_stage(k, image, propagate=False)
    changed = _propagate_with_bar(session, k, mask, desc="propagate")
    extra = dict(project.extra)
    history = list(extra.get("cli", [])) if isinstance(extra.get("cli"), list) else []
    extra["cli"] = history + [{"command": "edit", "stage": cfg.stages[k].name, "image": image_path,
                               "keep_unedited": bool(args.keep_unedited), "time": _now()}]
    report = {
        "command": "edit", "source_project": str(args.project), "stage": cfg.stages[k].name, "image": image_path,
        "keep_unedited": bool(args.keep_unedited), "model": _model_facts(session, mpath),
        "device": device_label(session.device), "seed": args.seed,
        "regenerated": [session.stage_names[i] for i in changed],
        "edited_fraction": round(float((mask > 0).float().mean()), 6) if mask is not None else None,
        # Mean absolute change of each stage on the [0, 1] scale: what the edit did downstream.
        "stage_change": {n: round(float((session.stages[i] - before[i]).abs().mean() / 2), 6)
                         for i, n in enumerate(session.stage_names)},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return _finish(report, out, session, extra)


# ----- export -----
def _export_parser(sub) -> None:
    from core.export import FORMATS

    p = sub.add_parser("export", help="export a project: final PNG, stage PNGs, strip, OpenRaster or GIF",
                       description="Export a project's stages. png: the artwork (--scale N enlarges it); stages: "
                                   "a folder of NN-<stage>.png; strip: all stages side by side; ora: OpenRaster "
                                   "layers for Krita/GIMP/MyPaint; gif: the workflow as an animation. Works with "
                                   "a project of any model (--model, or the bundled model if installed, is only "
                                   "used to warn when the project was made with another one).")
    p.add_argument("project", metavar="PROJECT", help="a .artflow project file")
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="output file (a folder for --format stages)")
    p.add_argument("--scale", type=int, default=1, help="enlargement for --format png (LANCZOS), 1..16")
    _add_common(p)
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from core import bundle
    from core.export import check_scale, export
    from core.project import load_project

    if args.scale != 1 and args.format != "png":
        raise ArtflowError("--scale applies to --format png only")
    check_scale(args.scale)  # before any file is read, so the error comes alone
    from core.errors import BundleError

    # Exporting needs no model: one is read only to warn when the project was made with another. An explicit
    # --model must be valid; a missing or broken bundled model just skips the check.
    config = None
    if args.model:
        config = bundle.load_config(_model_path(args))
    elif bundle.default_bundle_path().exists():
        try:
            config = bundle.load_config(bundle.default_bundle_path())
        except BundleError:
            config = None
    project = load_project(args.project, config)
    if project.warning:
        print(f"artflow export: warning: {project.warning}", file=sys.stderr)
    for path in export(project.stage_images(), project.stage_names, args.format, args.out, scale=args.scale):
        print(path)
    return 0


# ----- train -----
def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a workflow model (the paper's three phases); resumes from --out",
                       description="Train a workflow model on a stage dataset. Phases: inference, inference-joint, "
                                   "generation, generation-joint, regularizer. Re-running the same command resumes "
                                   "from the checkpoint in --out. Multi-GPU/CPU: torchrun --nproc_per_node=K main.py "
                                   "train ...")
    p.add_argument("data", help=STAGE_DATA_HELP)
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
    p.add_argument("--no-augment", action="store_true", help="no paired flip/crop augmentation")
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--checkpoint-minutes", type=float, help="checkpoint interval (default 3)")
    p.add_argument("--sample-every", type=int, help="iterations between sample grids")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this long; re-run to resume")
    p.add_argument("--init", metavar="DIR", help="start from this bundle's weights")
    p.add_argument("--reset-encoders", action="store_true",
                   help="with --init: start the latent encoders afresh (after a posterior collapse)")
    p.add_argument("--export", metavar="DIR", help="also copy the final bundle here")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    _add_common(p, model=False)
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    import torch

    from core import config as mconfig
    from core.data.stage_dataset import scan_stage_folders
    from core.train.config import PHASES, TrainConfig
    from core.train.data import StageBank
    from core.train.trainer import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    folders = scan_stage_folders(args.data)
    from core.data.stage_dataset import StageDataset

    probe = StageDataset(args.data, size=16)
    from core.config import StageSpec

    known = {s.name: s.label for s in mconfig.default_stages()}
    stages = tuple(StageSpec(name, ch, known.get(name, "")) for (_, name, _), ch in zip(folders, probe.channels))
    preset = mconfig.PRESETS[args.preset]
    kw = {"stages": stages, "name": args.name or Path(args.data).resolve().name}
    if args.resolution:
        kw["resolution"] = args.resolution
    mcfg = preset(**kw)
    tcfg = TrainConfig()
    changes = {"seed": args.seed}
    for field, value in (("batch_size", args.batch_size), ("lr", args.lr), ("lr_d", args.lr_d),
                         ("reg_unroll", args.reg_unroll), ("reg_warm_max", args.reg_warm_max),
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
    if args.reset_encoders and not args.init:
        raise ArtflowError("--reset-encoders needs --init (a fresh model's encoders are new anyway)")
    bank = StageBank.from_folder(args.data, mcfg.resolution, [s.channels for s in stages])
    trainer = Trainer(mcfg, tcfg, bank, args.out, device=args.device, init_bundle=args.init,
                      reset_encoders=args.reset_encoders)
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


# ----- fit-prior -----
def _fit_prior_parser(sub) -> None:
    p = sub.add_parser("fit-prior", help="fit a bundle's latent priors to its training data",
                       description="Fit each transition's latent prior (where random codes are drawn from) to the "
                                   "codes the bundle's encoders give the training artworks. `train` does this on "
                                   "every export; this command updates a bundle trained before that, or after "
                                   "training on other data. Use the TRAIN split, never the test split.")
    p.add_argument("data", help=STAGE_DATA_HELP)
    p.add_argument("-o", "--out", metavar="DIR", help="write the updated bundle here (default: replace --model's)")
    p.add_argument("--batch-size", type=int, default=64, help="images per encoder pass")
    _add_common(p)
    p.set_defaults(func=_cmd_fit_prior)


def _cmd_fit_prior(args: argparse.Namespace) -> int:
    import torch

    from core import bundle
    from core.device import resolve_device
    from core.latent_prior import fit_model_latent_priors
    from core.train.data import StageBank

    if args.batch_size < 1:
        raise ArtflowError("--batch-size must be at least 1")
    src = _model_path(args)
    out = Path(args.out) if args.out else src
    model = bundle.load(src)
    half = bundle.stored_half(src)  # written back in the precision it came in
    cfg = model.config
    bank = StageBank.from_folder(args.data, cfg.resolution, [s.channels for s in cfg.stages])
    if len(bank) < 2:
        raise ArtflowError(f"{args.data}: fitting a latent prior needs at least 2 drawings")
    model.to(resolve_device(args.device))
    fit_model_latent_priors(model, bank, model.device, args.batch_size)
    for name, prior in zip(cfg.stage_names[1:], model.latent_priors):
        print(f"{name}: mean {[round(float(v), 3) for v in prior.mean]}, "
              f"spread {[round(float(v), 3) for v in torch.diagonal(prior.scale_tril)]}", file=sys.stderr)
    bundle.save(model.cpu(), out, half=half)
    print(f"model bundle written to {out}", file=sys.stderr)
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


# ----- eval -----
def _eval_parser(sub) -> None:
    from core.eval import DIVERSITY_SAMPLES, REFINE_LIMIT, SHEET_ROWS
    from core.refine import STEPS

    p = sub.add_parser("eval", help="evaluate a model on a test split: inference, generation, reconstruction, "
                                    "diversity, editing",
                       description="Evaluate a model bundle on a stage dataset's test split (e.g. "
                                   "data/fluent128/test): workflow-inference L1, generation L1/PSNR, reconstruction "
                                   "PSNR (encoder only, AdaIN optimisation without and with the learned regulariser, "
                                   "wall time), diversity of random-z samples and editing tests. Writes "
                                   "OUT/metrics.json, OUT/samples.png and OUT/diversity.png and prints a table.")
    p.add_argument("data", metavar="TEST_DATA_DIR", help="stage dataset folder (0-<stage>/, 1-<stage>/, ...) whose "
                                                         "stages match the model's")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default: eval/<model>-<data folder>)")
    p.add_argument("--limit", type=int, metavar="N", help="at most N test drawings (a fixed pseudo-random order)")
    p.add_argument("--refine-limit", type=int, default=REFINE_LIMIT, metavar="N",
                   help=f"reconstruction and editing on the first N of them (default {REFINE_LIMIT}; 0: skip)")
    p.add_argument("--steps", type=int, default=STEPS, help=f"refinement steps per transition (default {STEPS})")
    p.add_argument("--diversity-samples", type=int, default=DIVERSITY_SAMPLES, metavar="K",
                   help=f"random z per drawing for the diversity measure (default {DIVERSITY_SAMPLES})")
    p.add_argument("--rows", type=int, default=SHEET_ROWS, help=f"rows of samples.png (default {SHEET_ROWS})")
    p.add_argument("--batch-size", type=int, default=16, help="batch size of the batched passes")
    _add_common(p)
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    import re
    from pathlib import Path

    from core import bundle
    from core.device import resolve_device
    from core.eval import EvalOptions, evaluate_bundle, format_table

    options = EvalOptions(limit=args.limit, refine_limit=args.refine_limit, steps=args.steps,
                          diversity_samples=args.diversity_samples, rows=args.rows, seed=args.seed,
                          batch_size=args.batch_size)
    options.check()
    device = resolve_device(args.device)
    path = _model_path(args)
    out = args.out
    if not out:
        parts = Path(args.data).resolve().parts[-2:]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-") or "data"
        out = Path("eval") / f"{bundle.load_config(path).name}-{slug}"
    metrics = evaluate_bundle(path, args.data, out, options, device=device)
    print(format_table(metrics))
    print(metrics["files"]["metrics"])
    return 0


PARSERS: list[Callable] = [_generate_parser, _reconstruct_parser, _edit_parser, _export_parser, _train_parser,
                           _fit_prior_parser, _dataset_parser, _info_parser, _eval_parser]


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
    except OSError as exc:
        # A safety net for file-system failures not already worded by the engine (disk full, permissions).
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"artflow {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
