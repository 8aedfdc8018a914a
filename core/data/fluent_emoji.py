"""Build the bundled model's 3-stage training set from Microsoft's Fluent Emoji (Iconify JSON npm tarballs).

This is the ONE module under core/ that imports PySide6: QtSvg renders the SVGs. Nothing else in the engine
imports it, so core stays usable without Qt.

Sources (see the data README): three npm tarballs, each with `package/icons.json` in Iconify JSON form,
identified by their icon-set `prefix`:

* `fluent-emoji-high-contrast` -> stage 0 "lineart" with `line_art="high-contrast"` (black silhouettes,
  `fill="currentColor"`, drawn black); the default `line_art="outlines"` draws thin lines along the regions of
  each drawing's flat instead (core.data.line_art)
* `fluent-emoji-flat`          -> stage 1 "flat"
* `fluent-emoji`               -> stage 2 "detail" (gradients, shading)

Names present in all three are (lineart, flat, detail) triplets of the same drawing. Skin-tone variants
NAME-light / -medium-light / -medium / -medium-dark / -dark exist only in flat and detail; they reuse the
line art of their base NAME. The TEST split is fixed: family = name without a tone suffix; TEST iff
sha256(family) % 10 == 0. Aliases (renamed or mirrored copies of other icons) are skipped.

Output::

    out_dir/train/0-lineart/NAME.png   8-bit grayscale ('L'), black lines on white
    out_dir/train/1-flat/NAME.png      RGB on white
    out_dir/train/2-detail/NAME.png    RGB on white
    out_dir/test/...                   same layout
    out_dir/build.json                 what was built from what, with counts
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.data.build_output import first, remove_unwritten, stage_split_dirs, write_build_info
from core.data.line_art import DEFAULT_WIDTH, line_art_from_flat
from core.data.svg_flatten import flatten_gradients
from core.errors import DatasetError
from core.files.imageio import save_image

STYLE_PREFIXES: dict[str, str] = {
    "lineart": "fluent-emoji-high-contrast",
    "flat": "fluent-emoji-flat",
    "detail": "fluent-emoji",
}
STAGE_DIRS: tuple[str, ...] = ("0-lineart", "1-flat", "2-detail")
LINE_ART_STYLES: tuple[str, ...] = ("outlines", "high-contrast")
SPLITS: tuple[str, ...] = ("train", "test")
# Longest first, so that "-medium-light" is not mistaken for "-light".
TONE_SUFFIXES: tuple[str, ...] = ("-medium-light", "-medium-dark", "-light", "-medium", "-dark")
# Icon keys that would need a transform we do not implement (none of the real icons use them).
_TRANSFORM_KEYS = ("rotate", "hFlip", "vFlip")

_app: Any = None  # keeps the QGuiApplication we create alive


def family_of(name: str) -> str:
    """The drawing family: `name` with one skin-tone suffix removed (if it has one)."""
    for s in TONE_SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def is_test_family(family: str) -> bool:
    """The fixed held-out rule: TEST iff int(sha256(family), 16) % 10 == 0."""
    return int(hashlib.sha256(family.encode("utf-8")).hexdigest(), 16) % 10 == 0


def usable_icon(icon_set: dict[str, Any], name: str) -> bool:
    """Whether `name` is an icon of the set with a body and no transform we would have to implement."""
    icon = icon_set["icons"].get(name)
    return (isinstance(icon, dict) and isinstance(icon.get("body"), str)
            and not any(icon.get(k) for k in _TRANSFORM_KEYS))


def candidate_tone_families(sets: dict[str, dict[str, Any]], tone: str) -> list[str]:
    """TRAIN base names with a `-tone` variant in both the flat and the detail set, in SHA-256 order of the name:
    the order the edit benchmark (tools/make_edit_set.py) and the learned recolour's held-out set take them in."""
    flat, detail = sets["flat"], sets["detail"]
    out = []
    for name in flat["icons"]:
        if family_of(name) != name or is_test_family(name):
            continue
        variant = f"{name}-{tone}"
        if all(usable_icon(s, n) for s in (flat, detail) for n in (name, variant)):
            out.append(name)
    return sorted(out, key=lambda n: hashlib.sha256(n.encode("utf-8")).hexdigest())


def split_of(name: str) -> str:
    """'test' or 'train' for an icon name (decided by its family, so tone variants follow their base)."""
    return "test" if is_test_family(family_of(name)) else "train"


@dataclass
class FluentSummary:
    """What build_fluent_emoji did. Counts are drawings (each written as one PNG per stage)."""

    out_dir: Path
    size: int
    written: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    base_written: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    tone_written: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    skipped: list[tuple[str, str]] = field(default_factory=list)
    aliases_skipped: list[str] = field(default_factory=list)
    tone_variants_excluded: int = 0
    hidden_included: int = 0
    stale_removed: int = 0
    seconds: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def total_written(self) -> int:
        return sum(self.written.values())

    def __str__(self) -> str:
        parts = [f"wrote {self.total_written} drawings to {self.out_dir} in {self.seconds:.1f} s: "
                 + ", ".join(f"{s} {self.written[s]} ({self.base_written[s]} base + {self.tone_written[s]} "
                             f"tone variants)" for s in SPLITS)]
        if self.aliases_skipped:
            parts.append(f"skipped {len(self.aliases_skipped)} aliases (copies of other icons)")
        if self.tone_variants_excluded:
            parts.append(f"left out {self.tone_variants_excluded} tone variants")
        if self.skipped:
            few = "; ".join(f"{n}: {r}" for n, r in self.skipped[:5])
            parts.append(f"skipped {len(self.skipped)} ({few}{'; ...' if len(self.skipped) > 5 else ''})")
        return "; ".join(parts)


# ------------------------------------------------------------------------------------------------ sources


def read_iconify_tarball(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str | None]:
    """(icons.json, package version or None) straight out of an npm .tgz; nothing is extracted to disk."""
    p = Path(path)
    try:
        with tarfile.open(p, "r:*") as tar:
            try:
                member = tar.getmember("package/icons.json")
            except KeyError:
                raise DatasetError(f"{p}: no package/icons.json inside (not an Iconify JSON package)") from None
            f = tar.extractfile(member)
            if f is None:
                raise DatasetError(f"{p}: package/icons.json is not a regular file")
            data = json.loads(f.read().decode("utf-8"))
            version = None
            try:
                pf = tar.extractfile("package/package.json")
                if pf is not None:
                    version = json.loads(pf.read().decode("utf-8")).get("version")
            except (KeyError, ValueError):
                pass  # the version is only informative
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DatasetError(f"{p}: cannot read tarball ({e})") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{p}: package/icons.json is not valid JSON ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("icons"), dict):
        raise DatasetError(f"{p}: package/icons.json has no 'icons' object")
    return data, version


def find_sources(source_dir: str | os.PathLike[str]) -> dict[str, tuple[Path, dict[str, Any], str | None]]:
    """{style: (tarball, icons.json, version)} for the three styles, found by the icon-set prefix of every
    *.tgz in `source_dir`. Raises DatasetError if one is missing or present twice."""
    src = Path(source_dir)
    if not src.is_dir():
        raise DatasetError(f"{src}: Fluent Emoji source folder not found")
    by_prefix = {v: k for k, v in STYLE_PREFIXES.items()}
    found: dict[str, tuple[Path, dict[str, Any], str | None]] = {}
    for tgz in sorted(src.glob("*.tgz")):
        data, version = read_iconify_tarball(tgz)
        style = by_prefix.get(str(data.get("prefix")))
        if style is None:
            continue
        if style in found:
            raise DatasetError(f"{src}: two tarballs for {STYLE_PREFIXES[style]}: {found[style][0].name} and "
                               f"{tgz.name}; keep one")
        found[style] = (tgz, data, version)
    missing = [STYLE_PREFIXES[s] for s in STYLE_PREFIXES if s not in found]
    if missing:
        raise DatasetError(f"{src}: missing the npm tarball(s) of @iconify-json/{', @iconify-json/'.join(missing)}")
    return found


def icon_box(icon_set: dict[str, Any], name: str) -> tuple[float, float, float, float]:
    """(left, top, width, height) of an icon's viewBox (per-icon values override the set's defaults)."""
    icon = icon_set["icons"][name]
    left = float(icon.get("left", icon_set.get("left", 0)))
    top = float(icon.get("top", icon_set.get("top", 0)))
    width = float(icon.get("width", icon_set.get("width", 16)))
    height = float(icon.get("height", icon_set.get("height", 16)))
    return left, top, width, height


def union_box(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """Smallest box containing all boxes: the stages of one drawing share a coordinate system, so rendering
    them all with this common viewBox keeps them pixel-aligned even when one is 32x33 and another 32x32."""
    left = min(b[0] for b in boxes)
    top = min(b[1] for b in boxes)
    right = max(b[0] + b[2] for b in boxes)
    bottom = max(b[1] + b[3] for b in boxes)
    return left, top, right - left, bottom - top


def icon_svg(icon_set: dict[str, Any], name: str, box: tuple[float, float, float, float] | None = None) -> str:
    """A complete SVG document for one icon (`color="black"` makes `currentColor` line art black)."""
    body = icon_set["icons"][name]["body"]
    left, top, width, height = box if box is not None else icon_box(icon_set, name)
    g = "{:g}".format
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{g(width)}" height="{g(height)}" viewBox="{g(left)} {g(top)} {g(width)} {g(height)}" '
            f'color="black">{body}</svg>')


# ------------------------------------------------------------------------------------------------ rendering


def ensure_gui_app() -> Any:
    """Return the running QGuiApplication, creating one (offscreen when there is no display) if needed."""
    global _app
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtGui import QGuiApplication

    app = QCoreApplication.instance()
    if app is None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QGuiApplication([sys.argv[0] if sys.argv and sys.argv[0] else "artflow"])
        _app = app
    return app


def render_svg(svg: str, size: int, antialias: bool = True) -> Image.Image:
    """Render an SVG document with QSvgRenderer into a size x size RGB image on white.

    `antialias=False` gives hard edges: every pixel takes the colour of one shape, which is what region labelling
    needs (antialiased edges would make thin regions of blended colours).

    The picture keeps its aspect ratio and is centred. Raises DatasetError if Qt cannot parse the SVG.
    """
    from PySide6.QtCore import QByteArray, QRectF, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    ensure_gui_app()
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    if not renderer.isValid():
        raise DatasetError("Qt could not parse the SVG")
    renderer.setAspectRatioMode(Qt.AspectRatioMode.KeepAspectRatio)
    img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.white)  # painting over opaque white == compositing on white
    painter = QPainter(img)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, antialias)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, antialias)
        renderer.render(painter, QRectF(0, 0, size, size))
    finally:
        painter.end()
    rgb = img.convertToFormat(QImage.Format.Format_RGB888)
    # Rows are padded to 4 bytes: view the buffer with its stride, then drop the padding.
    buf = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=rgb.sizeInBytes())
    arr = buf.reshape(size, rgb.bytesPerLine())[:, : size * 3].reshape(size, size, 3).copy()
    return Image.fromarray(arr, "RGB")


# ------------------------------------------------------------------------------------------------ builder


@dataclass(frozen=True)
class _Job:
    name: str  # output name (flat/detail icon name)
    base: str  # line-art icon name (== name for base drawings)
    split: str
    tone: bool


def _plan(sets: dict[str, dict[str, Any]], include_tone_variants: bool, limit: int | None,
          summary: FluentSummary) -> list[_Job]:
    line, flat, detail = (sets[s]["icons"] for s in ("lineart", "flat", "detail"))
    for s in ("lineart", "flat", "detail"):
        aliases = sets[s].get("aliases") or {}
        summary.aliases_skipped.extend(f"{STYLE_PREFIXES[s]}:{a}" for a in sorted(aliases))

    def problem(style: str, name: str) -> str | None:
        icon = sets[style]["icons"][name]
        if not isinstance(icon, dict) or not isinstance(icon.get("body"), str):
            return f"{STYLE_PREFIXES[style]} icon has no SVG body"
        used = [k for k in _TRANSFORM_KEYS if icon.get(k)]
        if used:
            return f"{STYLE_PREFIXES[style]} icon uses {', '.join(used)} (not supported)"
        return None

    bases: list[str] = []
    for name in sorted(line):
        missing = [STYLE_PREFIXES[s] for s, icons in (("flat", flat), ("detail", detail)) if name not in icons]
        if missing:
            summary.skipped.append((name, f"line art without a {' / '.join(missing)} version"))
            continue
        bad = next((p for p in (problem(s, name) for s in ("lineart", "flat", "detail")) if p), None)
        if bad:
            summary.skipped.append((name, bad))
            continue
        bases.append(name)
    bases = first(bases, limit)
    base_set = set(bases)

    tones: dict[str, list[str]] = {}
    for name in sorted(set(flat) | set(detail)):
        if name in line:
            continue
        fam = family_of(name)
        if fam == name or fam not in line:
            summary.skipped.append((name, "no line art (not in the high-contrast set, nor a tone variant of "
                                          "an icon that is)"))
            continue
        if not include_tone_variants:
            summary.tone_variants_excluded += 1
            continue
        if name not in flat or name not in detail:
            summary.skipped.append((name, "tone variant missing from the flat or the detail set"))
            continue
        if fam not in base_set:
            if limit is None:
                summary.skipped.append((name, f"its base drawing {fam} was skipped"))
            continue
        bad = next((p for p in (problem(s, name) for s in ("flat", "detail")) if p), None)
        if bad:
            summary.skipped.append((name, bad))
            continue
        tones.setdefault(fam, []).append(name)

    jobs: list[_Job] = []
    for b in bases:
        jobs.append(_Job(b, b, split_of(b), False))
        jobs.extend(_Job(t, b, split_of(t), True) for t in tones.get(b, []))
    for j in jobs:
        # The split must be a function of the family alone; a tone variant can never leave its base's split.
        assert j.split == split_of(j.base) == ("test" if is_test_family(family_of(j.name)) else "train")
    return jobs


def build_fluent_emoji(source_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], size: int = 128,
                       include_tone_variants: bool = True, limit: int | None = None,
                       progress: bool = True, line_art: str = "outlines",
                       line_width: int = DEFAULT_WIDTH) -> FluentSummary:
    """Render the Fluent Emoji (lineart, flat, detail) triplets into out_dir/{train,test}/{0-lineart,...}/.

    `line_art`: "outlines" (default) draws thin dark lines `line_width` px wide along the colour regions of each
    drawing's own flat (core.data.line_art), as an artist inks; "high-contrast" renders Fluent's high-contrast
    style (filled black silhouettes), the first stage of bundles before issue 15.

    `limit` caps the number of base drawings (taken in name order; their tone variants come along). PNGs
    left in the output stage folders by an earlier build and not written now are removed, so each split is
    always a consistent stage dataset. Returns a FluentSummary (also written to out_dir/build.json).
    """
    if not isinstance(size, int) or size < 8:
        raise DatasetError(f"render size must be an integer >= 8, got {size!r}")
    if line_art not in LINE_ART_STYLES:
        raise DatasetError(f"unknown line art style {line_art!r}; styles: {', '.join(LINE_ART_STYLES)}")
    if line_width < 1:
        raise DatasetError("line width must be at least 1 px")
    t0 = time.perf_counter()
    out = Path(out_dir)
    found = find_sources(source_dir)
    sets = {style: data for style, (_, data, _) in found.items()}
    summary = FluentSummary(out_dir=out, size=size)
    summary.sources = {s: f"{found[s][0].name} ({STYLE_PREFIXES[s]} {found[s][2] or '?'})" for s in found}

    jobs = _plan(sets, include_tone_variants, limit, summary)
    dirs = stage_split_dirs(out, SPLITS, STAGE_DIRS)

    ensure_gui_app()
    written: set[Path] = set()
    line_cache: dict[tuple[str, tuple[float, ...]], Image.Image] = {}
    for job in tqdm(jobs, desc="fluent emoji", unit="drawing", disable=not progress):
        if not job.tone:
            line_cache.clear()  # a base's tone variants follow it directly; older entries are dead
        box = union_box([icon_box(sets["lineart"], job.base), icon_box(sets["flat"], job.name),
                         icon_box(sets["detail"], job.name)])
        try:
            if line_art == "outlines":
                # The regions of the drawing's own flat, rendered with hard edges (no blended edge pixels).
                flat_body = dict(sets["flat"]["icons"][job.name])
                flat_body["body"] = flatten_gradients(flat_body["body"])
                shapes = render_svg(icon_svg({**sets["flat"], "icons": {job.name: flat_body}}, job.name, box),
                                    size, antialias=False)
                line = Image.fromarray(line_art_from_flat(np.asarray(shapes, dtype=np.uint8), line_width), "L")
            else:
                key = (job.base, box)
                if key not in line_cache:
                    line_cache[key] = render_svg(icon_svg(sets["lineart"], job.base, box), size).convert("L")
                line = line_cache[key]
            images = [line,
                      render_svg(icon_svg(sets["flat"], job.name, box), size),
                      render_svg(icon_svg(sets["detail"], job.name, box), size)]
        except DatasetError as e:
            summary.skipped.append((job.name, str(e)))
            continue
        paths = [dirs[(job.split, st)] / f"{job.name}.png" for st in STAGE_DIRS]
        for img, p in zip(images, paths, strict=True):
            save_image(img, p)
            written.add(p)
        summary.written[job.split] += 1
        (summary.tone_written if job.tone else summary.base_written)[job.split] += 1
        summary.hidden_included += any(sets[s]["icons"][n].get("hidden") for s, n in
                                       (("lineart", job.base), ("flat", job.name), ("detail", job.name)))

    summary.stale_removed += remove_unwritten(dirs, written)
    summary.seconds = time.perf_counter() - t0
    _write_build_info(out, summary, include_tone_variants, limit,
                      line_art=line_art, line_width=line_width if line_art == "outlines" else None)
    return summary


def _write_build_info(out: Path, summary: FluentSummary, include_tone_variants: bool, limit: int | None,
                      **more) -> None:
    info = asdict(summary)
    info["out_dir"] = str(summary.out_dir)
    info["skipped"] = [list(x) for x in summary.skipped]
    info["include_tone_variants"] = include_tone_variants
    info["limit"] = limit
    info["stages"] = list(STAGE_DIRS)
    info["split_rule"] = ("family = name without -light/-medium-light/-medium/-medium-dark/-dark; "
                          "test iff int(sha256(family).hexdigest(), 16) % 10 == 0")
    info.update(more)
    write_build_info(out, info)
