"""Replace one stage of a project by an edited image and regenerate the later stages with the project's latent codes
and refined AdaIN deltas, at the artwork's own size. By default (--propagation regions) a later stage changes only
inside the regions the edit touched (the flat regions whose colour changed, the closed line-art regions a stroke
touched), by a colour transform of its own pixels that the model's change decides; everything else stays the
artist's. --propagation global is the paper's: the model's change carried over the whole picture along its edges
(it restyles everything). The image must have the artwork's size. Writes OUT/stages/NN-<stage>.png,
OUT/project.artflow and OUT/report.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from core.cli import common
from core.editing.edit_mask import edit_mask
from core.editing.latents import stage_by_name
from core.errors import ArtflowError
from core.evaluation.metrics import l1_01
from core.files.imageio import tensor_to_uint8
from core.files.project import apply_project, load_project
from core.fullres.pipeline import PROPAGATION, PROPAGATIONS, apply_edit_fullres
from core.platform.device import device_label


def add_parser(sub) -> None:
    p = sub.add_parser("edit", help="replace one stage of a project and propagate the change",
                       description=__doc__)
    common.add_project_file(p)
    p.add_argument("--stage", required=True, metavar="NAME=IMAGE", help="the stage to replace and its new image")
    p.add_argument("--keep-unedited", action="store_true",
                   help="with --propagation global: later stages keep their pixels away from the edited area")
    p.add_argument("--propagation", default=PROPAGATION, choices=list(PROPAGATIONS),
                   help="'regions' (default): later stages change only inside the regions the edit touched; "
                        "'global': the paper's propagation, which lets an edit restyle the whole picture")
    common.add_out_folder(p, "output folder (may hold PROJECT itself)")
    common.add_clean_flats(p)
    common.add_common(p)
    p.set_defaults(func=run)


def _same(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> bool:
    if isinstance(a, np.ndarray):
        return a is b or np.array_equal(a, b)
    return torch.equal(a, b)


CHANGE_BAND = 256  # rows of two uint8 stages compared at a time by _mean_change


def _mean_change(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Mean absolute difference of two stages on the [0, 1] scale (metrics.l1_01): of uint8 arrays in exact
    integers, a band of rows at a time (l1_01 on their float copies held 4 bytes a pixel per channel, twice)."""
    if not isinstance(a, np.ndarray):
        return float(l1_01(a[None], b[None])[0])
    if a is b:
        return 0.0
    total = sum(int(np.abs(a[y0:y0 + CHANGE_BAND].astype(np.int16) - b[y0:y0 + CHANGE_BAND]).sum())
                for y0 in range(0, a.shape[0], CHANGE_BAND))
    return total / (255 * a.size)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    name, sep, image_path = args.stage.partition("=")
    if not sep or not image_path.strip():
        raise ArtflowError(f"--stage must look like NAME=IMAGE, got {args.stage!r}")
    session, mpath = common.open_session(args)
    project = load_project(args.project, session.config)
    apply_project(session, project)  # ProjectError for a project of another model
    cfg = session.config
    k = stage_by_name(cfg, name)
    image = common.read_artwork(session, image_path, k)
    pm = project.proxy_map()
    if tuple(image.shape[-2:]) != (pm.height, pm.width):
        raise ArtflowError(f"{image_path}: the image is {image.shape[-1]} x {image.shape[-2]} pixels, the "
                           f"project's artwork is {pm.width} x {pm.height}; edit an exported stage of this project")
    out = common.out_folder(args.out)
    # Full-res stages in 8 bits as the project keeps them, and back (issue 29: float copies of every stage took 4
    # bytes a pixel per channel); at the model's own size, the proxies (floats) as before.
    u8 = not pm.is_identity
    before = project.export_images() if u8 else project.stage_images()
    if u8:
        image = tensor_to_uint8(image)  # read from a file: on 8-bit levels, the same pixels
    # The edited image is the whole stage as the artist sees it (an exported composite, painted over): it
    # replaces the base and the artist layer of that stage. Later stages keep their layers on top.
    with common.progress_bar(cfg.num_stages - 1 - k, "propagate") as bar:
        full, mask = apply_edit_fullres(session, before, pm, k, image, keep_unedited=args.keep_unedited,
                                        clean_flats=args.clean_flats, propagation=args.propagation, u8=u8)
        bar.update(cfg.num_stages - 1 - k)
    if pm.is_identity and project.fullres_u8 is None and args.propagation == "global":
        # A project written before the artist's pixels were kept at the model's size, edited the paper's way:
        # the artwork is its own proxy, the session's stages are the artwork.
        full = None
        mask = edit_mask(before[k], image) if args.keep_unedited else None  # the mask the session used
    after = full if full is not None else [s.clone() for s in session.stages]
    changed = [i for i in range(k + 1, cfg.num_stages) if not _same(after[i], before[i])]
    extra = dict(project.extra)
    history = list(extra.get("cli", [])) if isinstance(extra.get("cli"), list) else []
    extra["cli"] = history + [{"command": "edit", "stage": cfg.stages[k].name, "image": image_path,
                               "keep_unedited": bool(args.keep_unedited), "propagation": args.propagation,
                               "time": common.now()}]
    report = {
        "command": "edit", "source_project": str(args.project), "stage": cfg.stages[k].name, "image": image_path,
        "keep_unedited": bool(args.keep_unedited), "propagation": args.propagation,
        "model": common.model_facts(session, mpath),
        "device": device_label(session.device), "seed": args.seed,
        "regenerated": [session.stage_names[i] for i in changed],
        "edited_fraction": round(float((mask > 0).float().mean()), 6) if mask is not None else None,
        # Mean absolute change of each stage (as written) on the [0, 1] scale: what the edit did downstream.
        "stage_change": {n: round(_mean_change(after[i], before[i]), 6) for i, n in enumerate(session.stage_names)},
        "clean_flats": bool(args.clean_flats), **common.sizes(pm),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return common.finish(report, out, session, extra, full=full)
