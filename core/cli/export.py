"""Export a project's stages. png: the artwork (--scale N enlarges it); stages: a folder of NN-<stage>.png; strip: all
stages side by side; ora: OpenRaster layers for Krita/GIMP/MyPaint; gif: the workflow as an animation. Works with a
project of any model (--model, or the bundled model if installed, is only used to warn when the project was made
with another one).
"""

from __future__ import annotations

import argparse
import sys

from core.cli.common import add_common, add_project_file, model_path
from core.errors import ArtflowError, BundleError, shown
from core.files import bundle
from core.files.export import FORMATS, check_output, check_scale, export
from core.files.project import load_project


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a project: final PNG, stage PNGs, strip, OpenRaster or GIF",
                       description=__doc__)
    add_project_file(p)
    p.add_argument("--format", required=True, choices=FORMATS, help="what to write")
    p.add_argument("-o", "--out", required=True, metavar="FILE",
                   help="output file, named as the format says: .png (png, strip), .ora, .gif; a folder for stages")
    p.add_argument("--scale", type=int, default=1,
                   help="enlargement for --format png (LANCZOS), 1..16, at most 16,384 px on the long side")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.scale != 1 and args.format != "png":
        raise ArtflowError("--scale applies to --format png only")
    check_scale(args.scale)  # before any file is read, so the error comes alone
    check_output(args.format, args.out, [args.project])
    # Exporting needs no model: one is read only to warn when the project was made with another. An explicit
    # --model must be valid; a missing or broken bundled model just skips the check.
    config = None
    if args.model:
        config = bundle.load_config(model_path(args))
    elif bundle.default_bundle_path().exists():
        try:
            config = bundle.load_config(bundle.default_bundle_path())
        except BundleError:
            config = None
    project = load_project(args.project, config, fullres_layers=False)  # the stages have their layers baked in
    if project.warning:
        print(f"artflow export: warning: {shown(project.warning, 300)}", file=sys.stderr)
    # The stages as decoded (uint8): no float copies of a full-res artwork
    for path in export(project.export_images(), project.stage_names, args.format, args.out, scale=args.scale):
        print(path)
    return 0
