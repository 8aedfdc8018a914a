"""Fit each transition's latent prior (where random codes are drawn from) to the codes the bundle's encoders give the
training artworks. `train` does this on every export; this command updates a bundle trained before that, or after
training on other data. Use the TRAIN split, never the test split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from core.cli.common import add_common, add_stage_data, model_path
from core.errors import ArtflowError
from core.platform.device import resolve_device
from core.train.latent_prior_fit import fit_bundle_latent_priors


def add_parser(sub) -> None:
    p = sub.add_parser("fit-prior", help="fit a bundle's latent priors to its training data",
                       description=__doc__)
    add_stage_data(p)
    p.add_argument("-o", "--out", metavar="DIR", help="write the updated bundle here (default: replace --model's)")
    p.add_argument("--batch-size", type=int, default=64, help="images per encoder pass")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise ArtflowError("--batch-size must be at least 1")
    src = model_path(args)
    out = Path(args.out) if args.out else src
    model = fit_bundle_latent_priors(src, args.data, out, resolve_device(args.device), args.batch_size)
    for name, prior in zip(model.config.stage_names[1:], model.latent_priors):
        print(f"{name}: mean {[round(float(v), 3) for v in prior.mean]}, "
              f"spread {[round(float(v), 3) for v in torch.diagonal(prior.scale_tril)]}", file=sys.stderr)
    print(f"model bundle written to {out}", file=sys.stderr)
    return 0
