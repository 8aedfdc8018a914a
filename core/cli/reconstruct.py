"""Workflow inference, latent encoding and AdaIN refinement of a finished artwork (the paper's editing pipeline), on a
proxy of the artwork (padded to a square, at the model's resolution); any size and aspect. Writes
OUT/project.artflow, OUT/inferred/NN-<stage>.png (what workflow inference produced), OUT/stages/NN-<stage>.png (the
stages after refinement at the artwork's own size; the last is the artwork itself, pixel for pixel, at every size)
and OUT/report.json (losses, wall time, the fit's PSNR on the proxy beside the output's, device, sizes).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from core.cli.common import (
    add_clean_flats,
    add_common,
    add_out_folder,
    finish,
    model_facts,
    now,
    open_session,
    out_folder,
    progress_bar,
    read_artwork,
    sizes,
)
from core.editing.refine import DEFAULT_SCHEDULE, EDIT_READY_STEPS, SCHEDULES, STEPS, RefineStep
from core.editing.regularizer import Regularizer
from core.errors import ArtflowError
from core.evaluation.metrics import PSNR_CAP, psnr
from core.files.imageio import tensor_to_uint8, uint8_to_tensor
from core.fullres.pipeline import reconstruct_fullres
from core.fullres.proxy import from_proxy
from core.platform.device import device_label


def add_parser(sub) -> None:
    p = sub.add_parser("reconstruct", help="infer an artwork's earlier stages and fit the model to it",
                       description=__doc__)
    p.add_argument("image", metavar="ARTWORK", help="the finished artwork (any image Pillow reads)")
    add_out_folder(p)
    p.add_argument("--schedule", default=DEFAULT_SCHEDULE, choices=list(SCHEDULES),
                   help="refinement schedule: 'exact' (the paper's constant step size, the default) or 'fast' (at most "
                        "150 steps, a decaying step size, stopped once the loss has flattened: 0.74-0.80x the "
                        "time and the same mean PSNR on the default model's Fluent TEST drawings, but 0.25-0.34 dB "
                        "lower on other artists' drawings or with emoji-lines-128)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"refinement steps per transition (default: {EDIT_READY_STEPS}, the edit-ready fit the edit "
                        f"benchmark chose, or the 'fast' schedule's; {STEPS}: the paper's; 0: encoder only)")
    p.add_argument("--regularizer", default=Regularizer.LEARNED.value, choices=[r.value for r in Regularizer],
                   help="the learned AdaIN regulariser (Algorithm 1) or plain optimisation")
    add_clean_flats(p)
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.steps is None:
        args.steps = EDIT_READY_STEPS if args.schedule == DEFAULT_SCHEDULE else SCHEDULES[args.schedule].steps
    if args.steps < 0:
        raise ArtflowError(f"--steps must be 0 or more, got {args.steps}")
    regularizer = Regularizer(args.regularizer)
    t0 = time.perf_counter()
    session, mpath = open_session(args)
    n = session.num_stages
    # In 8 bits as read (a quarter of a float copy); the stages come back in 8 bits too, as they are written.
    artwork = tensor_to_uint8(read_artwork(session, args.image, n - 1))
    out = out_folder(args.out)
    untrained = [session.stage_names[i + 1] for i in range(n - 1) if not session.model.regularizer_trained(i)]
    if regularizer is Regularizer.LEARNED and untrained and args.steps:
        print(f"artflow reconstruct: note: this model's learned regulariser was not trained for stage(s) "
              f"{', '.join(untrained)}; its initial weight is used", file=sys.stderr)
    # With --steps 0 the refinement runs no step: it only measures the encoder-only losses for the report (the
    # stages it returns are the encoder-only chain).
    with progress_bar(args.steps * (n - 1), "refine") as bar:
        def on_step(step: RefineStep) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{session.stage_names[step.transition + 1]} loss {step.loss:.4f}", refresh=False)

        pm, full, result, inferred = reconstruct_fullres(
            session, artwork, steps=args.steps, regularizer=regularizer, clean_flats=args.clean_flats,
            schedule=args.schedule, on_step=on_step, u8=True)
    art = inferred[-1]  # the artwork's proxy
    # PSNRs at the proxy size: how well the model reconstructs (the full-res last stage is the artwork itself).
    stages_psnr = {session.stage_names[k]: round(psnr(session.stages[k], inferred[k]), 4) for k in range(1, n)}
    extra = {"cli": [{"command": "reconstruct", "source": str(args.image), "steps": args.steps,
                      "regularizer": regularizer.value, "seed": args.seed, "time": now()}]}
    report = {
        "command": "reconstruct", "source": str(args.image), "model": model_facts(session, mpath),
        "device": device_label(session.device), "seed": args.seed, "steps": args.steps, "schedule": args.schedule,
        "regularizer": result.regularizer.value, "regularizer_trained": list(result.regularizer_trained),
        "perceptual": result.perceptual.value,
        "transitions": [{"transition": t.transition, "stage": session.stage_names[t.transition + 1],
                         "loss_start": round(t.loss_start, 6), "loss_end": round(t.loss_end, 6),
                         "seconds": round(t.seconds, 3)} for t in result.transitions],
        # The fit's own PSNR, on the proxy (the model's reconstruction against the artwork's proxy); the output's
        # last stage is the artwork itself, pixel for pixel, so its PSNR is infinite (written as null).
        "psnr": round(psnr(session.stages[-1], art), 4),
        # The artwork itself, as a rule: no float copies of it (4 bytes a pixel per channel each) to say so.
        "output_psnr": PSNR_CAP if full[-1] is artwork or np.array_equal(full[-1], artwork)
        else round(psnr(uint8_to_tensor(full[-1]), uint8_to_tensor(artwork)), 4),
        "psnr_stages": stages_psnr,
        "refine_seconds": round(result.seconds, 3),
        "fullres_seconds": round(result.extra["fullres_seconds"], 3),
        "clean_flats": bool(args.clean_flats),
        **sizes(pm),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    print(f"artflow reconstruct: PSNR {report['psnr']:.2f} dB in {report['seconds']:.1f} s", file=sys.stderr)
    # The stages written are `full` at every size: the last is the artwork itself (issue 27). The inferred ones
    # brought up one at a time, each rounded to 8 bits before the next.
    inferred_out = (inferred if pm.is_identity
                    else [tensor_to_uint8(from_proxy(t, pm)) for t in inferred[:-1]] + [artwork])
    return finish(report, out, session, extra, inferred_out, full)
