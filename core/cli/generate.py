"""Generate every stage from a first-stage drawing (e.g. line art). Each later stage uses a latent code: sampled from
the prior with --seed, the prior's mean with --mean-z, or given with --z. The drawing may have any size and aspect
(the model works on a padded square proxy of it); the stages are written at its own size. A first stage of line art
that looks like a scan or photo of pencil or ink on paper is cleaned up first (paper levelled to white, lines
darkened, specks removed, small gaps closed; --no-cleanup keeps it as it is); a drawing on pure white paper is used
pixel for pixel. Writes OUT/stages/NN-<stage>.png, OUT/project.artflow and OUT/report.json.
"""

from __future__ import annotations

import argparse
import time

from core.cli import common
from core.editing.latents import choose_latents, parse_latent_coords
from core.files.imageio import tensor_to_uint8
from core.fullres.kinds import stage_kinds
from core.fullres.pipeline import generate_fullres
from core.platform.device import device_label


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="run the chain forward from a first-stage drawing",
                       description=__doc__)
    p.add_argument("image", metavar="FIRST_STAGE_IMAGE", help="the first stage's drawing (any image Pillow reads)")
    common.add_out_folder(p)
    p.add_argument("--z", action="append", metavar="STAGE=v1,...,vD",
                   help="latent code of the transition that produces STAGE, in standard deviations of its latent "
                        "prior like the app's sliders, each within +-3 (repeatable); the others are sampled")
    p.add_argument("--mean-z", action="store_true", help="use the latent prior's mean instead of sampling")
    common.add_clean_flats(p)
    p.add_argument("--no-cleanup", dest="cleanup", action="store_false",
                   help="use a scanned or photographed line art as it is (default: paper levelled to white, lines "
                        "darkened, specks removed and small gaps closed; a drawing on pure white paper is never "
                        "changed)")
    common.add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    session, mpath = common.open_session(args)
    cfg = session.config
    given = parse_latent_coords(args.z or [], cfg)
    cleanup = {"cleaned": False, "kind": "skipped" if not args.cleanup else "not-a-line-art-stage"}
    if stage_kinds(cfg.stages)[0] == "line":  # read as the app's File > Open line art reads it
        first, done = common.read_line_art_stage(session, args.image, 0, args.cleanup)
        cleanup = cleanup if done is None else done
    else:
        first = common.read_artwork(session, args.image, 0)
    out = common.out_folder(args.out)
    latents = choose_latents(session.model, args.seed, given, mean=args.mean_z)
    first = tensor_to_uint8(first)  # on 8-bit levels (read from a file): the same pixels in a quarter of the memory
    with common.progress_bar(cfg.num_stages - 1, "generate") as bar:
        # The first stage is the artist's own pixels; a clean flat is fed back to the session (later stages follow).
        # The stages in 8 bits, as they are written (issue 29: float copies took 4 bytes a pixel per channel).
        pm, full = generate_fullres(session, first, clean_flats=args.clean_flats, latents=latents, u8=True)
        bar.update(cfg.num_stages - 1)
    latents = {session.stage_names[i + 1]: [round(float(v), 6) for v in z] for i, z in enumerate(session.latents)}
    coords = {session.stage_names[i + 1]: [round(float(v), 6) for v in p.to_standard(z)]
              for i, (z, p) in enumerate(zip(session.latents, session.model.latent_priors))}
    extra = {"cli": [{"command": "generate", "source": str(args.image), "seed": args.seed, "time": common.now()}]}
    report = {"command": "generate", "source": str(args.image), "model": common.model_facts(session, mpath),
              "device": device_label(session.device), "seed": args.seed,
              "latents": latents, "latent_coords": coords,
              "latents_given": [session.stage_names[i + 1] for i in sorted(given)],
              "mean_z": bool(args.mean_z), "clean_flats": bool(args.clean_flats), "line_art_cleanup": cleanup,
              **common.sizes(pm),
              "seconds": round(time.perf_counter() - t0, 3)}
    return common.finish(report, out, session, extra, full=None if pm.is_identity else full)
