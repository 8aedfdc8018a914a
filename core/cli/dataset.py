"""`artflow dataset`: build a stage dataset (fluent-emoji, anime, face)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("dataset", help="build a stage dataset (fluent-emoji, anime, face)")
    dsub = p.add_subparsers(dest="builder", required=True)
    f = dsub.add_parser("fluent-emoji", help="render the Fluent Emoji packages (line art, flat, detail)")
    f.add_argument("source", help="folder holding the three iconify-json-fluent-emoji*.tgz packages")
    f.add_argument("-o", "--out", required=True, help="output folder (train/ and test/ inside)")
    f.add_argument("--size", type=int, default=128)
    f.add_argument("--no-tone-variants", action="store_true", help="skip the skin-tone variants")
    f.add_argument("--limit", type=int, help="at most this many drawings (for a quick look)")
    f.set_defaults(func=run_fluent)
    a = dsub.add_parser("anime", help="the paper's anime recipe: SLIC flat colours + pencil sketch")
    a.add_argument("source", help="folder of finished artworks")
    a.add_argument("-o", "--out", required=True)
    a.add_argument("--size", type=int, default=256)
    a.set_defaults(func=run_anime)
    fc = dsub.add_parser("face", help="the paper's face recipe: median colour per mask region + sketch")
    fc.add_argument("source", help="folder of finished artworks")
    fc.add_argument("masks", help="folder of same-named segmentation label PNGs")
    fc.add_argument("-o", "--out", required=True)
    fc.add_argument("--size", type=int, default=256)
    fc.set_defaults(func=run_face)


def _print_summary(summary) -> None:
    print(summary, file=sys.stderr)


# The builders are imported when their command runs: the recipes need the optional [data] dependencies (OpenCV,
# scikit-image) and the Fluent builder renders with Qt, neither of which any other command may require.
def run_fluent(args: argparse.Namespace) -> int:
    from core.data.fluent_emoji import build_fluent_emoji

    _print_summary(build_fluent_emoji(args.source, args.out, size=args.size,
                                      include_tone_variants=not args.no_tone_variants, limit=args.limit))
    return 0


def run_anime(args: argparse.Namespace) -> int:
    from core.data import recipes

    _print_summary(recipes.build_anime_dataset(args.source, args.out, size=args.size))
    return 0


def run_face(args: argparse.Namespace) -> int:
    from core.data import recipes

    _print_summary(recipes.build_face_dataset(args.source, args.masks, args.out, size=args.size))
    return 0
