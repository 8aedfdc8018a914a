"""Exports of an artwork's stages for other tools (shared by the app and the CLI). No Qt here.

`images` everywhere is the list of stage composites, first to last, each (C, H, W) float in [-1, 1] with C = 1 or 3,
or uint8 (H, W) / (H, W, 3) as a stage is stored (the app passes those: no float copies of a 4096 px artwork), with
the same H, W for every stage. Every file is written atomically (temp file beside it, then os.replace); the
`stages` folder of `export()` as a whole (core.atomic.atomic_output_dir).
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from core.atomic import atomic_output_dir, atomic_write, ensure_folder
from core.errors import ImageError
from core.imageio import tensor_to_pil


class ExportFormat(str, Enum):
    """What an export writes (a str enum: the values are the CLI's --format words)."""

    PNG = "png"  # the last stage (the artwork), optionally enlarged
    STAGES = "stages"  # a folder with one PNG per stage
    STRIP = "strip"  # all stages side by side in one picture
    ORA = "ora"  # layered OpenRaster
    GIF = "gif"  # the workflow as an animation

    @property
    def writes_folder(self) -> bool:
        return self is ExportFormat.STAGES


FORMATS = tuple(f.value for f in ExportFormat)
# The suffix of each format's output file (STAGES writes a folder): the bytes match the name other tools go by.
SUFFIXES = {ExportFormat.PNG: ".png", ExportFormat.STRIP: ".png", ExportFormat.ORA: ".ora", ExportFormat.GIF: ".gif"}
MAX_SCALE = 16
MAX_OUTPUT_SIDE = 16_384  # px on the enlarged PNG's long side (at 8 x 4096 px an export took 4.2 GB)
ORA_MIMETYPE = b"image/openraster"
THUMBNAIL_SIZE = 256  # OpenRaster: the thumbnail's longest side is at most 256 px


StageImage = torch.Tensor | np.ndarray  # (C, H, W) float in [-1, 1], or uint8 (H, W) / (H, W, 3)


def _is_u8(t: StageImage) -> bool:
    return (isinstance(t, np.ndarray) and t.dtype == np.uint8
            and (t.ndim == 2 or (t.ndim == 3 and t.shape[2] in (1, 3))))


def _hw(t: StageImage) -> tuple[int, int]:
    return tuple(t.shape[:2]) if isinstance(t, np.ndarray) else tuple(t.shape[1:])


def _pil(t: StageImage) -> Image.Image:
    """A stage image as PIL: 'L' (one channel) or 'RGB'."""
    if isinstance(t, np.ndarray):
        a = np.ascontiguousarray(t[..., 0] if t.ndim == 3 and t.shape[2] == 1 else t)
        return Image.fromarray(a, mode="L" if a.ndim == 2 else "RGB")
    return tensor_to_pil(t)


def _check(images: Sequence[StageImage], stage_names: Sequence[str] | None = None) -> None:
    if not images:
        raise ImageError("nothing to export: no stage images")
    if stage_names is not None and len(stage_names) != len(images):
        raise ImageError(f"{len(images)} stage images but {len(stage_names)} stage names")
    sizes = set()
    for k, t in enumerate(images):
        if not _is_u8(t) and (not isinstance(t, torch.Tensor) or t.dim() != 3 or t.shape[0] not in (1, 3)):
            shape = tuple(t.shape) if isinstance(t, torch.Tensor | np.ndarray) else type(t).__name__
            raise ImageError(f"stage {k}: expected a (C, H, W) image with C = 1 or 3, got {shape}")
        sizes.add(_hw(t))
    if len(sizes) > 1:
        raise ImageError(f"the stage images differ in size ({', '.join('x'.join(map(str, s)) for s in sorted(sizes))})")


def _safe(name: str) -> str:
    # Stage names are slugs already; this only guards file names against a hand-made list ("../x", spaces).
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", name).strip("_") or "stage"


def _rgb(t: StageImage) -> Image.Image:
    return _pil(t).convert("RGB")


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_image(img: Image.Image, path: Path, fmt: str, **params) -> Path:
    with atomic_write(path, ImageError) as f:
        img.save(f, format=fmt, **params)
    return path


def check_scale(scale: int) -> None:
    """The PNG enlargement factor: an integer in 1..MAX_SCALE, else ImageError."""
    if not isinstance(scale, int) or isinstance(scale, bool) or not 1 <= scale <= MAX_SCALE:
        raise ImageError(f"scale must be an integer in 1..{MAX_SCALE}, got {scale!r}")


def largest_scale(width: int, height: int) -> int:
    """The largest enlargement of a width x height artwork whose long side stays within MAX_OUTPUT_SIDE (at
    least 1: the artwork as it is)."""
    return max(1, min(MAX_SCALE, MAX_OUTPUT_SIDE // max(width, height, 1)))


def check_output_size(width: int, height: int, scale: int) -> None:
    """ImageError naming the largest allowed scale when `scale` would make the PNG longer than MAX_OUTPUT_SIDE."""
    if scale > 1 and scale > largest_scale(width, height):
        raise ImageError(f"scale {scale} would make a {width * scale:,} x {height * scale:,} px image, more than "
                         f"{MAX_OUTPUT_SIDE:,} px on its long side; the largest scale for this {width} x {height} "
                         f"artwork is {largest_scale(width, height)}")


def export_final_png(images: Sequence[StageImage], path: str | os.PathLike[str], scale: int = 1) -> Path:
    """The last stage (the artwork) as a PNG, enlarged `scale` times with LANCZOS (1 = the model's resolution),
    at most MAX_OUTPUT_SIDE px on its long side (checked before anything is allocated)."""
    _check(images)
    check_scale(scale)
    h, w = _hw(images[-1])
    check_output_size(w, h, scale)
    img = _pil(images[-1])
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.LANCZOS)
    return write_image(img, Path(path), "PNG")


def export_stages(images: Sequence[StageImage], stage_names: Sequence[str],
                  folder: str | os.PathLike[str]) -> list[Path]:
    """One PNG per stage, `folder/NN-<stage>.png` (NN = zero-padded stage index). Returns the paths in order."""
    _check(images, stage_names)
    out = ensure_folder(folder, ImageError)
    return [write_image(_pil(t), out / f"{k:02d}-{_safe(n)}.png", "PNG")
            for k, (t, n) in enumerate(zip(images, stage_names, strict=True))]


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled font, scalable when FreeType is present
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def strip_image(images: Sequence[StageImage], stage_names: Sequence[str] | None = None,
                gap: int | None = None) -> Image.Image:
    """All stages side by side, first to last, on a light grey background, each labelled below with its name
    when `stage_names` is given. RGB."""
    _check(images, stage_names)
    h, w = _hw(images[0])
    gap = max(4, w // 16) if gap is None else gap
    font = _font(max(10, min(24, h // 10)))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = list(stage_names) if stage_names is not None else [""] * len(images)
    boxes = [probe.textbbox((0, 0), s, font=font) if s else (0, 0, 0, 0) for s in labels]
    text_h = max(b[3] - b[1] for b in boxes)
    # A cell is as wide as its image or its label, whichever is wider: small models' images are narrower than words.
    cells = [max(w, b[2] - b[0] + 4) for b in boxes]
    band = text_h + gap if text_h else 0
    canvas = Image.new("RGB", (sum(cells) + gap * (len(images) + 1), h + 2 * gap + band), (232, 232, 232))
    draw = ImageDraw.Draw(canvas)
    x = gap
    for t, label, box, cw in zip(images, labels, boxes, cells, strict=True):
        canvas.paste(_rgb(t), (x + (cw - w) // 2, gap))
        if label:
            draw.text((x + (cw - (box[2] - box[0])) // 2 - box[0], gap + h + gap // 2 - box[1]), label,
                      fill=(40, 40, 40), font=font)
        x += cw + gap
    return canvas


def export_strip(images: Sequence[StageImage], stage_names: Sequence[str] | None,
                 path: str | os.PathLike[str], labels: bool = True) -> Path:
    """All stages side by side in one PNG (or any format Pillow writes, from the suffix), labelled with the stage
    names unless labels=False."""
    img = strip_image(images, stage_names if labels else None)
    p = Path(path)
    fmt = Image.registered_extensions().get(p.suffix.lower(), "PNG")
    return write_image(img, p, fmt if fmt in Image.SAVE else "PNG")


def export_ora(images: Sequence[StageImage], stage_names: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """OpenRaster (.ora: Krita, GIMP, MyPaint): one layer per stage, the last stage on top and visible, earlier
    stages below it, hidden.

    Every stage is an opaque full-canvas picture, so showing several at once would only show the top one; hiding
    the earlier ones means that switching a single layer on shows exactly that stage, and painting continues on
    the artwork. The zip holds `mimetype` (first, uncompressed, as the spec requires), `stack.xml`,
    `data/NN-<stage>.png` (RGBA), `mergedimage.png` (the visible result: the last stage) and
    `Thumbnails/thumbnail.png` (<= 256 px).
    """
    _check(images, stage_names)
    h, w = _hw(images[0])
    root = ET.Element("image", {"version": "0.0.5", "w": str(w), "h": str(h), "xres": "72", "yres": "72"})
    stack = ET.SubElement(root, "stack")
    layers: list[tuple[str, bytes]] = []
    n = len(images)
    for k in reversed(range(n)):  # stack.xml lists the topmost layer first
        src = f"data/{k:02d}-{_safe(stage_names[k])}.png"
        ET.SubElement(stack, "layer", {
            "name": stage_names[k], "src": src, "x": "0", "y": "0", "opacity": "1.0",
            "visibility": "visible" if k == n - 1 else "hidden", "composite-op": "svg:src-over"})
        layers.append((src, _png(_rgb(images[k]).convert("RGBA"))))
    merged = _rgb(images[-1]).convert("RGBA")
    thumb = merged.copy()
    thumb.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    xml = b"<?xml version='1.0' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="utf-8")
    p = Path(path)
    with atomic_write(p, ImageError) as f:
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr(zipfile.ZipInfo("mimetype"), ORA_MIMETYPE, compress_type=zipfile.ZIP_STORED)
            zf.writestr("stack.xml", xml, compress_type=zipfile.ZIP_DEFLATED)
            for src, data in layers:
                zf.writestr(src, data, compress_type=zipfile.ZIP_STORED)  # PNG is compressed already
            zf.writestr("mergedimage.png", _png(merged), compress_type=zipfile.ZIP_STORED)
            zf.writestr("Thumbnails/thumbnail.png", _png(thumb), compress_type=zipfile.ZIP_STORED)
    return p


def export_gif(images: Sequence[StageImage], path: str | os.PathLike[str], ms_per_frame: int = 700) -> Path:
    """The workflow as a looping animation: one frame per stage, first to last, `ms_per_frame` each.
    (GIF writers merge two identical consecutive frames into one of double length; it plays the same.)"""
    _check(images)
    if not isinstance(ms_per_frame, int) or not 20 <= ms_per_frame <= 60_000:
        raise ImageError(f"ms_per_frame must be an integer in 20..60000, got {ms_per_frame!r}")
    # Each frame quantised as the GIF writer would (an adaptive palette) as soon as it is made: the frames wait
    # as 1 byte a pixel, not as RGB pictures (4 bytes a pixel in Pillow; 48 MiB each at 4096 x 3072).
    frames = [_rgb(t).convert("P", palette=Image.Palette.ADAPTIVE) for t in images]
    p = Path(path)
    with atomic_write(p, ImageError) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return p


def check_output(fmt: ExportFormat | str, path: str | os.PathLike[str],
                 inputs: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Refuse, before anything is read or written, an output whose name does not fit the format (PNG bytes under
    x.jpg; a stages folder named like a file) or that is one of `inputs` (the same file by inode, links included:
    exporting a project onto itself would replace it). ImageError."""
    fmt = ExportFormat(fmt)
    p = Path(path)
    suffix = p.suffix.lower()
    if fmt.writes_folder:
        if suffix in {*SUFFIXES.values(), ".artflow"}:
            raise ImageError(f"{p}: the {fmt.value} export writes a folder; give a folder name, not a {suffix} file")
    elif suffix != SUFFIXES[fmt]:
        raise ImageError(f"{p}: the {fmt.value} export writes a {SUFFIXES[fmt]} file; give a name ending in "
                         f"{SUFFIXES[fmt]}")
    for src in inputs:
        try:
            same = p.exists() and os.path.samefile(p, src)
        except OSError:
            continue  # an input that cannot be looked at is reported when it is read
        if same:
            raise ImageError(f"{p}: is the input {src} itself; give another output file")


def export(images: Sequence[StageImage], stage_names: Sequence[str], fmt: ExportFormat | str,
           path: str | os.PathLike[str], scale: int = 1) -> list[Path]:
    """Write `images` in format `fmt` (an ExportFormat or its word) to `path` (a folder for STAGES); returns the
    written files. `scale` enlarges the PNG export only. The one dispatch used by the app and the CLI."""
    try:
        fmt = ExportFormat(fmt)
    except ValueError:
        raise ImageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    if scale != 1 and fmt is not ExportFormat.PNG:
        raise ImageError("scale applies to the png export only")
    if fmt is ExportFormat.PNG:
        return [export_final_png(images, path, scale)]
    if fmt is ExportFormat.STAGES:
        # The folder appears complete or not at all (a full disk half-way leaves an existing one as it was).
        with atomic_output_dir(path, ImageError) as out:
            staged = export_stages(images, stage_names, out.staging)
        return [out.final(p) for p in staged]
    if fmt is ExportFormat.STRIP:
        return [export_strip(images, stage_names, path)]
    if fmt is ExportFormat.ORA:
        return [export_ora(images, stage_names, path)]
    return [export_gif(images, path)]
