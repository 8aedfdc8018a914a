"""Build an edit benchmark set from the Fluent Emoji npm tarballs: exact recolour edits with artist-drawn truth.

Fluent Emoji draw every skin-tone variant (NAME-light ... NAME-dark) of a family as the same drawing recoloured, in
both the flat and the detail style. So the base drawing's flat with the tone variant's colours is an exact flat
recolour edit, and the tone variant's detail is what the artist drew for it::

    python tools/make_edit_set.py /work/shared/data/fluent-emoji -o data/edits --size 128 --size 1024x768 --limit 8

writes, for each chosen TRAIN family (never a TEST one: core.data.fluent_emoji.is_test_family),

    OUT/<W>x<H>/<family>/flat.png           the base drawing's flat
    OUT/<W>x<H>/<family>/detail.png         the base drawing's detail (the artwork that is opened)
    OUT/<W>x<H>/<family>/flat-edited.png    the tone variant's flat (the edit)
    OUT/<W>x<H>/<family>/detail-truth.png   the tone variant's detail (the truth)
    OUT/set.json                            sources, tone, sizes, families, the rule

All four images of a family are rendered with one viewBox (the union of the icons' boxes), so they are pixel-aligned.
A non-square W x H gets the square icon rendered at min(W, H), centred on a white W x H canvas. Families are taken
in a fixed pseudo-random order (sorted by the SHA-256 of the family name), so --limit N always gives the same
subset. With --structure N (default 4) it also writes N structure edits, OUT/<W>x<H>/structure-<variant>/ with
lineart.png, detail.png (the base drawing), lineart-edited.png (the variant's line art: a beard, other hair) and
detail-truth.png (the variant's detail). `artflow eval --edits OUT` runs the benchmark (core/evaluation/edits.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.fluent_emoji import (  # noqa: E402
    STYLE_PREFIXES,
    TONE_SUFFIXES,
    candidate_tone_families,
    ensure_gui_app,
    family_of,
    find_sources,
    icon_box,
    icon_svg,
    is_test_family,
    render_svg,
    union_box,
    usable_icon,
)
from core.errors import ArtflowError  # noqa: E402
from core.files.imageio import save_image  # noqa: E402

FILES = ("flat.png", "detail.png", "flat-edited.png", "detail-truth.png")
FLAT_TOLERANCE = 8  # of 255: a family whose tone flat differs from its base flat nowhere by more is left out
TONES = tuple(s[1:] for s in TONE_SUFFIXES)
RULE = ("families: base NAME in the flat and detail sets with NAME-<tone> in both, not aliases, no transforms; "
        "TRAIN only (family TEST iff int(sha256(family).hexdigest(), 16) % 10 == 0); ordered by "
        "sha256(family).hexdigest(); the first --limit after --skip whose tone flat differs from the base flat "
        f"(any channel > {FLAT_TOLERANCE}/255) at every size. flat.png, detail.png: the base; flat-edited.png, "
        "detail-truth.png: the tone variant; one viewBox per family (union of its icons' boxes); W x H: the icon at "
        "min(W, H) centred on white")


def parse_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h) if sep else int(w))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is N or WxH, got {text!r}") from None
    if min(size) < 8 or max(size) > 4096:
        raise argparse.ArgumentTypeError(f"sizes are 8..4096 px, got {text!r}")
    return size


def render_on_canvas(sets: dict[str, dict], style: str, name: str, box, size: tuple[int, int]) -> Image.Image:
    """One icon of `style` with the viewBox `box` at `size` (W, H): rendered at min(W, H), centred on white."""
    w, h = size
    side = min(w, h)
    icon = render_svg(icon_svg(sets[style], name, box), side)
    if (w, h) == (side, side):
        return icon
    canvas = Image.new("RGB", (w, h), (255, 255, 255))
    canvas.paste(icon, ((w - side) // 2, (h - side) // 2))
    return canvas


def render_family(sets: dict[str, dict], family: str, tone: str, size: tuple[int, int]) -> list[Image.Image]:
    """[base flat, base detail, tone flat, tone detail] at `size` (W, H), all with the family's one viewBox."""
    variant = f"{family}-{tone}"
    boxes = [icon_box(sets[s], n) for s in ("flat", "detail") for n in (family, variant)]
    if family in sets["lineart"]["icons"]:
        boxes.append(icon_box(sets["lineart"], family))  # as the stage dataset aligns them
    box = union_box(boxes)
    return [render_on_canvas(sets, style, name, box, size)
            for style, name in (("flat", family), ("detail", family), ("flat", variant), ("detail", variant))]


# Structure edits: a drawing and its variant that adds or changes one shape (hair, a beard), both drawn by the artist
# in all three styles, so the variant's line art is the edit and its detail the truth.
STRUCTURE_SUFFIXES = ("-beard", "-bald", "-curly-hair", "-red-hair", "-white-hair", "-blond-hair")
STRUCTURE_FILES = ("lineart.png", "detail.png", "lineart-edited.png", "detail-truth.png")


def candidate_pairs(sets: dict[str, dict]) -> list[tuple[str, str]]:
    """(base, variant) TRAIN pairs with both in every style, in SHA-256 order of the variant's name."""
    out = []
    for name in sets["lineart"]["icons"]:
        for suffix in STRUCTURE_SUFFIXES:
            base = name[: -len(suffix)] if name.endswith(suffix) else None
            if not base or is_test_family(family_of(base)) or is_test_family(family_of(name)):
                continue
            if all(usable_icon(sets[s], n) for s in ("lineart", "flat", "detail") for n in (base, name)):
                out.append((base, name))
    return sorted(out, key=lambda bn: hashlib.sha256(bn[1].encode("utf-8")).hexdigest())


def render_pair(sets: dict[str, dict], base: str, variant: str, size: tuple[int, int]) -> list[Image.Image]:
    """[base line art (L), base detail, variant line art (L), variant detail] at `size`, one viewBox."""
    box = union_box([icon_box(sets[s], n) for s in ("lineart", "detail") for n in (base, variant)])
    images = []
    for style, name in (("lineart", base), ("detail", base), ("lineart", variant), ("detail", variant)):
        icon = render_on_canvas(sets, style, name, box, size)
        images.append(icon.convert("L") if style == "lineart" else icon)
    return images


def flat_changed(base: Image.Image, edited: Image.Image) -> int:
    a = np.asarray(base, dtype=np.int16)
    b = np.asarray(edited, dtype=np.int16)
    return int((np.abs(a - b).max(axis=2) > FLAT_TOLERANCE).sum())


def size_label(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def make_edit_set(source: Path, out: Path, sizes: list[tuple[int, int]], limit: int, tone: str,
                  structure: int = 0, skip: int = 0) -> dict:
    found = find_sources(source)
    sets = {style: data for style, (_, data, _) in found.items()}
    ensure_gui_app()
    families, skipped = [], []
    for family in candidate_tone_families(sets, tone)[skip:]:
        if len(families) >= limit:
            break
        rendered = {size: render_family(sets, family, tone, size) for size in sizes}
        empty = [size_label(s) for s, imgs in rendered.items() if flat_changed(imgs[0], imgs[2]) == 0]
        if empty:
            skipped.append([family, f"the tone flat does not differ from the base flat at {', '.join(empty)}"])
            continue
        assert not is_test_family(family_of(family))  # the hard rule: no TEST family, ever
        for size, images in rendered.items():
            folder = out / size_label(size) / family
            folder.mkdir(parents=True, exist_ok=True)
            for img, fname in zip(images, FILES, strict=True):
                save_image(img, folder / fname)
        families.append(family)
        print(f"{family}", file=sys.stderr)
    pairs = []
    for base, variant in candidate_pairs(sets)[:structure]:
        assert not is_test_family(family_of(base)) and not is_test_family(family_of(variant))
        for size in sizes:
            folder = out / size_label(size) / f"structure-{variant}"
            folder.mkdir(parents=True, exist_ok=True)
            for img, fname in zip(render_pair(sets, base, variant, size), STRUCTURE_FILES, strict=True):
                save_image(img, folder / fname)
        pairs.append(f"structure-{variant}")
        print(f"structure: {base} -> {variant}", file=sys.stderr)
    stale = 0
    for size in sizes:
        root = out / size_label(size)
        for folder in sorted(p for p in (root.iterdir() if root.is_dir() else ()) if p.is_dir()
                             and p.name not in families + pairs):
            if {f.name for f in folder.iterdir()} <= set(FILES) | set(STRUCTURE_FILES):  # only what this tool writes
                shutil.rmtree(folder)
                stale += 1
    info = {
        "format": "artflow-edit-set", "version": 1,
        "sources": {s: {"file": found[s][0].name, "package": f"@iconify-json/{STYLE_PREFIXES[s]}",
                        "version": found[s][2]} for s in ("flat", "detail", "lineart")},
        "tone": tone, "sizes": [size_label(s) for s in sizes], "limit": limit, "skip": skip,
        "families": families + pairs, "skipped": skipped, "files": list(FILES), "rule": RULE,
        "edit": "flat.png -> flat-edited.png (recolour); truth: detail-truth.png",
        "structure": {"files": list(STRUCTURE_FILES), "suffixes": list(STRUCTURE_SUFFIXES),
                      "edit": "lineart.png -> lineart-edited.png (the variant's shape); truth: detail-truth.png"},
    }
    (out / "set.json").write_text(json.dumps(info, indent=2) + "\n")
    if stale:
        print(f"removed {stale} stale family folders", file=sys.stderr)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="FLUENT_DIR", help="folder with the three Fluent Emoji npm tarballs")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    p.add_argument("--size", action="append", type=parse_size, metavar="N|WxH",
                   help="render size, repeatable (default 128)")
    p.add_argument("--limit", type=int, default=8, help="number of families (default 8)")
    p.add_argument("--skip", type=int, default=0, metavar="N",
                   help="pass over the first N candidate families (e.g. --skip 8: a tuning set disjoint from the "
                        "benchmark's first 8); default 0")
    p.add_argument("--tone", default="dark", choices=TONES, help="the skin tone of the edit (default dark)")
    p.add_argument("--structure", type=int, default=4, metavar="N",
                   help="also N structure edits: a drawing and its variant with one shape more or changed (a beard, "
                        "hair); default 4")
    args = p.parse_args(argv)
    if args.limit < 1:
        p.error("--limit must be 1 or more")
    if args.skip < 0:
        p.error("--skip must be 0 or more")
    sizes = list(dict.fromkeys(args.size or [(128, 128)]))
    try:
        info = make_edit_set(Path(args.source), args.out, sizes, args.limit, args.tone, args.structure,
                             args.skip)
    except ArtflowError as e:
        print(f"make_edit_set: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(info['families'])} families x {len(sizes)} sizes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
