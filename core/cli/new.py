"""Start a new drawing of any size: a blank first stage (paper white) of WIDTHxHEIGHT pixels, 64-4096 px on the long
side, and every later stage generated from it at that size, as `artflow generate` does from a drawing (latents
sampled with --seed, or the prior's mean with --mean-z). The model defaults to the bundled one made for drawing
one's own line art, as the app's New drawing does. OUT is a folder (OUT/stages/NN-<stage>.png, OUT/project.artflow
and OUT/report.json, like generate), or a single project file when it ends in .artflow.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import torch

from core.cli import common
from core.editing.latents import choose_latents
from core.errors import ArtflowError
from core.files import bundle
from core.files.project import project_from_session, save_project
from core.fullres.pipeline import generate_fullres
from core.fullres.proxy import check_artwork_size
from core.platform.device import device_label

_SIZE = re.compile(r"\s*(\d{1,6})\s*[xX]\s*(\d{1,6})\s*")


def add_parser(sub) -> None:
    p = sub.add_parser("new", help="start a blank drawing of any size (its later stages generated)",
                       description=__doc__)
    p.add_argument("--size", required=True, metavar="WIDTHxHEIGHT", help="the drawing's size in pixels, e.g. 2048x1536")
    p.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output folder, or a project file when it ends in .artflow")
    p.add_argument("--mean-z", action="store_true", help="use the latent prior's mean instead of sampling")
    common.add_clean_flats(p)
    common.add_common(p)
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    """'2048x1536' -> (2048, 1536), within core.fullres.proxy's bounds, or one line saying what is wrong."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ArtflowError(f"--size must look like WIDTHxHEIGHT in pixels (e.g. 2048x1536), got {text!r}")
    width, height = int(m[1]), int(m[2])
    check_artwork_size(width, height, "--size")
    return width, height


def _drawing_model(args: argparse.Namespace) -> None:
    # A blank sheet is for drawing one's own line art: the bundle made for it, where installed (else the default).
    if args.model is None and any(m.name == bundle.DRAWING_BUNDLE for m in bundle.bundled_models()):
        args.model = bundle.DRAWING_BUNDLE


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    width, height = parse_size(args.size)
    single = Path(args.out).suffix.lower() == ".artflow"
    out = Path(args.out) if single else common.out_folder(args.out)
    if single and out.is_dir():
        raise ArtflowError(f"{out}: is a folder; give a project file name or a folder without .artflow")
    _drawing_model(args)
    session, mpath = common.open_session(args)
    cfg = session.config
    latents = choose_latents(session.model, args.seed, mean=args.mean_z)
    blank = torch.ones(cfg.stages[0].channels, height, width)
    with common.progress_bar(cfg.num_stages - 1, "new") as bar:
        pm, full = generate_fullres(session, blank, clean_flats=args.clean_flats, latents=latents, u8=True)
        bar.update(cfg.num_stages - 1)
    full = None if pm.is_identity else full  # the model's own size: the session's stages are the artwork
    extra = {"cli": [{"command": "new", "size": f"{width}x{height}", "seed": args.seed, "time": common.now()}]}
    if single:
        path = save_project(project_from_session(session, extra, full), out)
        print(path)
        return 0
    latents = {session.stage_names[i + 1]: [round(float(v), 6) for v in z] for i, z in enumerate(session.latents)}
    report = {"command": "new", "model": common.model_facts(session, mpath), "device": device_label(session.device),
              "seed": args.seed, "latents": latents, "mean_z": bool(args.mean_z),
              "clean_flats": bool(args.clean_flats), **common.sizes(pm), "seconds": round(time.perf_counter() - t0, 3)}
    return common.finish(report, out, session, extra, full=full)
