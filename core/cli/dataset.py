"""`artflow dataset`: build a stage dataset (fluent-emoji, iconify, anime, face)."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("dataset", help="build a stage dataset (fluent-emoji, iconify, anime, face)")
    dsub = p.add_subparsers(dest="builder", required=True)
    f = dsub.add_parser("fluent-emoji", help="render the Fluent Emoji packages (line art, flat, detail)")
    f.add_argument("source", help="folder holding the three iconify-json-fluent-emoji*.tgz packages")
    f.add_argument("-o", "--out", required=True, help="output folder (train/ and test/ inside)")
    f.add_argument("--size", type=int, default=128)
    f.add_argument("--no-tone-variants", action="store_true", help="skip the skin-tone variants")
    f.add_argument("--limit", type=int, help="at most this many drawings (for a quick look)")
    f.add_argument("--line-art", choices=("outlines", "high-contrast"), default="outlines",
                   help="stage 0: thin outlines of the flat's regions (default) or Fluent's filled high-contrast style")
    f.add_argument("--line-width", type=int, default=2, help="outline width in px (default 2)")
    f.set_defaults(func=run_fluent)
    ic = dsub.add_parser("iconify", help="any Iconify JSON colour emoji set (npm @iconify-json/<set> tarball): "
                                         "outlines, region-median flat, artwork")
    ic.add_argument("source", help="the set's npm tarball (.tgz), e.g. from `npm pack @iconify-json/twemoji`")
    ic.add_argument("-o", "--out", required=True, help="output folder (train/ and test/ inside)")
    ic.add_argument("--size", type=int, default=128)
    ic.add_argument("--line-width", type=int, default=2, help="outline width in px (default 2)")
    ic.add_argument("--no-tone-variants", action="store_true", help="skip the skin-tone variants")
    ic.add_argument("--limit", type=int, help="at most this many drawings (for a quick look)")
    ic.set_defaults(func=run_iconify)
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


# The builders are imported when their command runs: the recipes load OpenCV and scikit-image (slow to import) and
# the Fluent builder renders with Qt, which no other command may require.
def run_fluent(args: argparse.Namespace) -> int:
    from core.data.fluent_emoji import build_fluent_emoji

    _print_summary(build_fluent_emoji(args.source, args.out, size=args.size,
                                      include_tone_variants=not args.no_tone_variants, limit=args.limit,
                                      line_art=args.line_art, line_width=args.line_width))
    return 0


def run_iconify(args: argparse.Namespace) -> int:
    from core.data.iconify_emoji import build_iconify_set

    _print_summary(build_iconify_set(args.source, args.out, size=args.size, line_width=args.line_width,
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
