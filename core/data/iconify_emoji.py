"""Build a 3-stage dataset (line art -> flat -> detail) from any colour emoji set in Iconify JSON form.

An npm package `@iconify-json/<set>` holds `package/icons.json` with one SVG body per drawing. Each drawing gives:

* detail (stage 2): the artwork itself, rendered with QtSvg (antialiased) at size x size on white;
* flat (stage 1): the paper's recipe, the median colour of the artwork over each region. The regions are the
  artist's own shapes: the SVG with every gradient replaced by the mean colour of its stops, rendered without
  antialiasing, labelled into 4-connected regions of one colour (core.data.line_art.color_labels);
* line art (stage 0): thin dark outlines along those regions' boundaries (core.data.line_art.outline), so that
  each closed region of the line art holds exactly one flat colour.

The TEST split is fixed per set by the Fluent rule: family = name without skin-tone parts, TEST iff
sha256(family) % 10 == 0. Aliases and icons marked hidden (legacy duplicates) are skipped. Rendering goes through
core.data.fluent_emoji.render_svg, so that module stays the only one under core/ that imports PySide6; everything
else here is Qt-free.

Output: out_dir/{train,test}/{0-lineart,1-flat,2-detail}/NAME.png and out_dir/build.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.data.build_output import first, remove_unwritten, stage_split_dirs, write_build_info
from core.data.fluent_emoji import STAGE_DIRS, icon_box, icon_svg, render_svg
from core.data.line_art import DEFAULT_MIN_AREA, DEFAULT_WIDTH, color_labels, outline
from core.data.recipes import region_median_colors
from core.data.svg_flatten import flatten_gradients
from core.errors import DatasetError
from core.files.imageio import save_image

SPLITS: tuple[str, ...] = ("train", "test")
# Skin-tone parts anywhere in a name ("couple-...-dark-skin-tone-light-skin-tone" has two).
_TONE_PART = re.compile(r"-(?:medium-light|medium-dark|light|medium|dark)-skin-tone")
_TRANSFORM_KEYS = ("rotate", "hFlip", "vFlip")


def family_of(name: str) -> str:
    """The drawing family: `name` without its skin-tone parts, so tone variants share their base's split."""
    return _TONE_PART.sub("", name)


def split_of(name: str) -> str:
    """'test' or 'train': TEST iff int(sha256(family), 16) % 10 == 0 (the Fluent builder's rule)."""
    digest = hashlib.sha256(family_of(name).encode("utf-8")).hexdigest()
    return "test" if int(digest, 16) % 10 == 0 else "train"


# ------------------------------------------------------------------------------------------ package reading


@dataclass(frozen=True)
class IconifyPackage:
    path: Path
    icons: dict[str, Any]  # the whole icons.json
    package: dict[str, Any]  # package.json ({} if absent)
    info: dict[str, Any]  # info.json ({} if absent)

    @property
    def prefix(self) -> str:
        return str(self.icons.get("prefix") or self.path.stem)

    @property
    def licence(self) -> str:
        lic = self.info.get("license") or {}
        return str(self.package.get("license") or lic.get("spdx") or lic.get("title") or "unknown")

    @property
    def author(self) -> str:
        a = self.info.get("author") or {}
        return str(a.get("name") or "unknown") + (f" ({a['url']})" if a.get("url") else "")


def read_iconify_package(path: str | os.PathLike[str]) -> IconifyPackage:
    """icons.json, package.json and info.json straight out of an npm .tgz (nothing is extracted to disk)."""
    p = Path(path)

    def member(tar: tarfile.TarFile, name: str, required: bool) -> dict[str, Any]:
        try:
            f = tar.extractfile(f"package/{name}")
        except KeyError:
            f = None
        if f is None:
            if required:
                raise DatasetError(f"{p}: no package/{name} inside (not an Iconify JSON package)")
            return {}
        try:
            data = json.loads(f.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DatasetError(f"{p}: package/{name} is not valid JSON ({e})") from e
        if not isinstance(data, dict):
            raise DatasetError(f"{p}: package/{name} is not a JSON object")
        return data

    try:
        with tarfile.open(p, "r:*") as tar:
            icons = member(tar, "icons.json", True)
            package, info = member(tar, "package.json", False), member(tar, "info.json", False)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{p}: cannot read tarball ({e})") from e
    if not isinstance(icons.get("icons"), dict):
        raise DatasetError(f"{p}: package/icons.json has no 'icons' object")
    return IconifyPackage(p, icons, package, info)


# ------------------------------------------------------------------------------------------ stages


def stages_from_renders(detail: np.ndarray, regions_render: np.ndarray, width: int = DEFAULT_WIDTH,
                        min_area: int = DEFAULT_MIN_AREA) -> tuple[np.ndarray, np.ndarray]:
    """(line art (H, W) uint8, flat (H, W, 3) uint8) from the artwork (H, W, 3) uint8 and a render of its
    shapes in one colour each (no antialiasing) that defines the regions. Qt-free."""
    labels = color_labels(regions_render, min_area)
    return outline(labels, width), region_median_colors(detail, labels)


def _problem(icon: Any) -> str | None:
    if not isinstance(icon, dict) or not isinstance(icon.get("body"), str):
        return "no SVG body"
    used = [k for k in _TRANSFORM_KEYS if icon.get(k)]
    return f"uses {', '.join(used)} (not supported)" if used else None


@dataclass
class IconifySummary:
    """What build_iconify_set did."""

    out_dir: Path
    size: int
    prefix: str = ""
    licence: str = ""
    author: str = ""
    version: str = ""
    written: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    skipped: list[tuple[str, str]] = field(default_factory=list)
    hidden_skipped: int = 0
    aliases_skipped: int = 0
    stale_removed: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        s = (f"{self.prefix} ({self.licence}): wrote {sum(self.written.values())} drawings to {self.out_dir} in "
             f"{self.seconds:.1f} s: train {self.written['train']}, test {self.written['test']}; left out "
             f"{self.hidden_skipped} hidden icons and {self.aliases_skipped} aliases")
        if self.skipped:
            few = "; ".join(f"{n}: {r}" for n, r in self.skipped[:5])
            s += f"; skipped {len(self.skipped)} ({few}{'; ...' if len(self.skipped) > 5 else ''})"
        return s


def build_iconify_set(tarball: str | os.PathLike[str], out_dir: str | os.PathLike[str], size: int = 128,
                      line_width: int = DEFAULT_WIDTH, limit: int | None = None,
                      include_tone_variants: bool = True, progress: bool = True) -> IconifySummary:
    """Render one Iconify JSON colour emoji set into line art / flat / detail (see the module docstring)."""
    t0 = time.perf_counter()
    if size < 8:
        raise DatasetError("size must be at least 8 px")
    if line_width < 1:
        raise DatasetError("line width must be at least 1 px")
    pkg = read_iconify_package(tarball)
    out = Path(out_dir)
    summary = IconifySummary(out_dir=out, size=size, prefix=pkg.prefix, licence=pkg.licence, author=pkg.author,
                             version=str(pkg.package.get("version") or "?"))
    summary.aliases_skipped = len(pkg.icons.get("aliases") or {})
    names = []
    for name in sorted(pkg.icons["icons"]):
        icon = pkg.icons["icons"][name]
        if isinstance(icon, dict) and icon.get("hidden"):
            summary.hidden_skipped += 1
            continue
        if not include_tone_variants and family_of(name) != name:
            continue
        bad = _problem(icon)
        if bad:
            summary.skipped.append((name, bad))
            continue
        names.append(name)
    names = first(names, limit)

    dirs = stage_split_dirs(out, SPLITS, STAGE_DIRS)
    written: set[Path] = set()
    for name in tqdm(names, desc=pkg.prefix, unit="drawing", disable=not progress):
        box = icon_box(pkg.icons, name)
        try:
            detail = np.asarray(render_svg(icon_svg(pkg.icons, name, box), size), dtype=np.uint8)
            flat_body = {**pkg.icons, "icons": {name: {"body": flatten_gradients(pkg.icons["icons"][name]["body"])}}}
            shapes = np.asarray(render_svg(icon_svg(flat_body, name, box), size, antialias=False), dtype=np.uint8)
        except DatasetError as e:
            summary.skipped.append((name, str(e)))
            continue
        if (detail >= 250).all():
            summary.skipped.append((name, "renders blank"))
            continue
        line, flat = stages_from_renders(detail, shapes, line_width)
        split = split_of(name)
        images = [Image.fromarray(line, "L"), Image.fromarray(flat, "RGB"), Image.fromarray(detail, "RGB")]
        for img, st in zip(images, STAGE_DIRS, strict=True):
            p = dirs[(split, st)] / f"{name}.png"
            save_image(img, p)
            written.add(p)
        summary.written[split] += 1
    summary.stale_removed += remove_unwritten(dirs, written)
    summary.seconds = time.perf_counter() - t0
    info = asdict(summary)
    info.update(out_dir=str(out), skipped=[list(x) for x in summary.skipped], stages=list(STAGE_DIRS),
                source=str(pkg.path.name), line_width=line_width, limit=limit,
                include_tone_variants=include_tone_variants,
                split_rule="family = name without -<tone>-skin-tone parts; "
                           "test iff int(sha256(family).hexdigest(), 16) % 10 == 0")
    write_build_info(out, info)
    return summary
