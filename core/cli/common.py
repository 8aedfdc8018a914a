"""What the CLI's commands share: the common arguments, opening the model, and the way a command that writes a
project finishes (stage PNGs, project.artflow, report.json; the project's path on stdout)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.editing.session import Session
from core.errors import ArtflowError, BundleError, one_line
from core.files import bundle
from core.files.atomic import OutputDir, atomic_output_dir, atomic_write, check_output_folder
from core.files.export import export_stages
from core.files.imageio import load_artwork, uint8_to_tensor
from core.files.project import project_from_session, save_project
from core.fullres.kinds import stage_kinds
from core.fullres.proxy import MIN_SIDE, ProxyMap
from core.platform.device import resolve_device


def add_common(p: argparse.ArgumentParser, model: bool = True) -> None:
    if model:
        p.add_argument("--model", metavar="DIR|NAME", help=bundle.model_argument_help())
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="where to compute")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch, fixed for the whole command (default: one per core; generate, "
                        "reconstruct, edit and train then use fewer while other programs keep cores busy, which "
                        "changes results only at float rounding)")


# The arguments several commands declare alike, one wording each.
def add_stage_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="stage dataset folder (0-<stage>/, 1-<stage>/, ... with same-named images)")


def add_project_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("project", metavar="PROJECT", help="a .artflow project file")


def add_out_folder(p: argparse.ArgumentParser, help: str = "output folder") -> None:
    p.add_argument("-o", "--out", required=True, metavar="OUT", help=help)


def parse_kv_ints(items: list[str] | None, what: str) -> dict[str, int]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise ArtflowError(f"{what} must look like NAME=INTEGER, got {item!r}")
        out[key.strip()] = int(value)
    return out


def model_path(args: argparse.Namespace) -> Path:
    if args.model:
        return bundle.resolve_model(args.model)
    path = bundle.default_bundle_path()
    if not path.exists():
        raise BundleError(f"the bundled model is not installed ({path} does not exist); "
                          "pass --model DIR (a folder with config.json and model.safetensors)")
    return path


def open_session(args: argparse.Namespace) -> tuple[Session, Path]:
    """Resolve the device first (a missing GPU is reported before any loading), then load the bundle."""
    device = resolve_device(args.device)
    path = model_path(args)
    torch.manual_seed(args.seed)
    return Session(bundle.load(path), device, adapt_threads=getattr(args, "threads", None) is None), path


def apply_threads(args: argparse.Namespace) -> None:
    """--threads N: torch's thread count fixed for the whole command."""
    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 1:
            raise ArtflowError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)


def model_facts(session: Session, path: Path) -> dict:
    return {"name": session.config.name, "path": str(path), "config_hash": bundle.config_hash(session.config)}


def out_folder(out: str) -> Path:
    """Checked early (not an existing file); created only when finish() commits every output together."""
    return check_output_folder(out)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def progress_bar(total: int, desc: str) -> tqdm:
    # Always on stderr (stdout carries the written paths, for scripts).
    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True, leave=True)


def propagate_with_bar(session: Session, k: int, keep_mask: torch.Tensor | None = None,
                       desc: str = "generate") -> list[int]:
    # The chain runs in one call (milliseconds per transition); the bar reports it once done.
    if k >= session.num_stages - 1:
        return []  # the last stage changed: nothing comes after it
    with progress_bar(session.num_stages - 1 - k, desc) as bar:
        changed = session.propagate(k, keep_mask)
        bar.update(len(changed))
    return changed


def add_clean_flats(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-clean-flats", dest="clean_flats", action="store_false",
                   help="leave 'flat' stages as the model paints them (default: one colour per closed region of "
                        "the line art, at the artwork's own resolution)")


def read_artwork(session: Session, path: str, k: int) -> torch.Tensor:
    """Stage k's image at its own size (C_k, H, W): any aspect ratio, MIN_SIDE..MAX_SIDE px on the long side (a
    tiny model's own resolution is enough), refused with one line before decoding when larger. A line-art stage's
    image is read as the app reads one (read_line_art, without the scan clean-up): a dithered 1-bit line art has
    its dither smoothed, with a note on stderr (every dot would otherwise be a line, and its regions none)."""
    cfg = session.config
    if stage_kinds(cfg.stages)[k] == "line":
        return read_line_art_stage(session, path, k, cleanup=False)[0]
    return load_artwork(path, cfg.stages[k].channels, min(MIN_SIDE, cfg.resolution))


def read_line_art_stage(session: Session, path: str, k: int, cleanup: bool) -> tuple[torch.Tensor, dict | None]:
    """A line-art stage's image (C_k, H, W) through core.fullres.lineart_import.read_line_art (the app's File >
    Open line art reads the same way): grey on every channel, a dithered drawing's dots smoothed, a scan cleaned
    up when `cleanup`; notes on stderr for both. Returns it and the clean-up's report (None: not asked)."""
    from core.fullres.lineart_import import read_line_art  # here: scikit-image and OpenCV take a while to import

    cfg = session.config
    read = read_line_art(path, min(MIN_SIDE, cfg.resolution), cleanup=cleanup)
    if read.smoothed:
        print(one_line(f"artflow: note: {path} is a dithered 1-bit line art; its dots were smoothed into greys "
                       "before its closed regions were found"), file=sys.stderr)
    if read.cleanup is not None and read.cleanup.cleaned:
        print(one_line(f"artflow: note: {path} looks like a scan or photo of a drawing on paper; it was cleaned up "
                       "(--no-cleanup uses it as it is)"), file=sys.stderr)
    image = uint8_to_tensor(read.image).expand(cfg.stages[k].channels, -1, -1).contiguous()
    return image, None if read.cleanup is None else read.cleanup.as_dict()


def sizes(pm: ProxyMap) -> dict:
    return {"artwork_size": {"width": pm.width, "height": pm.height},
            "proxy_size": {"width": pm.resolution, "height": pm.resolution}}


def write_outputs(session: Session, out: OutputDir, extra: dict,
                  full: list[torch.Tensor | np.ndarray] | None = None) -> dict:
    """OUT/stages/NN-<stage>.png (the full-res stages `full`, else the session's) and OUT/project.artflow into
    the staging folder of `out`; returns their final paths for the report."""
    project = project_from_session(session, extra, full)
    # The project's 8-bit stages as they are written (stage_images would add a float32 copy of each: 4 bytes a
    # pixel per channel, 448 MiB at 4096 x 4096).
    stages = export_stages(project.export_images(), session.stage_names, out.staging / "stages")
    project = save_project(project, out.staging / "project.artflow")
    return {"project": str(out.final(project)), "stages": [str(out.final(p)) for p in stages]}


def _finite(obj):
    """NaN/inf (a diverged loss) -> null: report.json stays strict JSON that any tool parses."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(data: dict, path: Path) -> None:
    with atomic_write(path) as f:
        f.write((json.dumps(_finite(data), indent=2, allow_nan=False) + "\n").encode())


def finish(report: dict, out: Path, session: Session, extra: dict, inferred: list | None = None,
           full: list[torch.Tensor | np.ndarray] | None = None) -> int:
    """Every command that writes a project ends the same way: OUT/stages/, OUT/project.artflow, (OUT/inferred/)
    and report.json written into a staging folder and committed together (OUT is complete or untouched), then the
    project's path on stdout. `full`: the full-res stages, (C, H, W) float tensors or uint8 arrays as a project
    keeps them (None: the artwork is the session's proxies)."""
    with atomic_output_dir(out) as staged:
        if inferred is not None:
            files = export_stages(inferred, session.stage_names, staged.staging / "inferred")
            report["inferred"] = [str(staged.final(p)) for p in files]
        report.update(write_outputs(session, staged, extra, full))
        write_json(report, staged.staging / "report.json")
    print(out / "project.artflow")
    return 0
