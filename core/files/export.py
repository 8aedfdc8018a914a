"""Exports of an artwork's stages for other tools (shared by the app and the CLI). No Qt here.

`images` everywhere is the list of stage composites, first to last, each (C, H, W) float in [-1, 1] with C = 1 or 3,
or uint8 (H, W) / (H, W, 3) as a stage is stored (the app passes those: no float copies of a 4096 px artwork), with
the same H, W for every stage. Every file is written atomically (temp file beside it, then os.replace); the
`stages` folder of `export()` as a whole (core.files.atomic.atomic_output_dir).
"""

from __future__ import annotations

import io
import math
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import torch
from PIL import GifImagePlugin, Image, ImageDraw, ImageFont

from core.errors import ImageError
from core.files.atomic import atomic_output_dir, atomic_write, ensure_folder
from core.files.imageio import tensor_to_pil, tensor_to_uint8
from core.files.png_rows import PngRows


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
STRIP_BACKGROUND = (232, 232, 232)
STRIP_TEXT = (40, 40, 40)
ENLARGE_BAND = 256  # output rows of an enlarged PNG made at a time (at most 16,384 px wide: 16 MiB in Pillow)
RESIZE_MARGIN = 4  # source rows resized beyond a band on either side: LANCZOS reads 3 rows either way
STRIP_BAND = 64  # rows of a strip PNG made at a time (64 x 70,000 px x 3 for 16 stages of 4096 px: 13 MB)


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
    img = _pil(t)
    return img if img.mode == "RGB" else img.convert("RGB")  # (convert would copy an RGB image: 4 bytes a pixel)


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
    at most MAX_OUTPUT_SIDE px on its long side (checked before anything is allocated; an enlargement is written
    a band of rows at a time)."""
    _check(images)
    check_scale(scale)
    h, w = _hw(images[-1])
    check_output_size(w, h, scale)
    if scale == 1:
        return write_image(_pil(images[-1]), Path(path), "PNG")
    p = Path(path)
    with atomic_write(p, ImageError) as f:
        _write_enlarged_png(_pil(images[-1]), scale, f)
    return p


def _write_enlarged_png(img: Image.Image, scale: int, f) -> None:
    """img ('L' or 'RGB') enlarged `scale` times with LANCZOS, written as a PNG a band of rows at a time
    (core.files.png_rows): the same pixels as Pillow's resize of the whole picture, without holding it (16,384 px
    square is 1 GiB in Pillow). Each band of source rows is resized with RESIZE_MARGIN rows more on either side
    (LANCZOS reaches 3 source rows), and only its own rows are kept."""
    w, h = img.size
    out = PngRows(f, w * scale, h * scale, 1 if img.mode == "L" else 3)
    step = max(1, ENLARGE_BAND // scale)
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        c0, c1 = max(0, y0 - RESIZE_MARGIN), min(h, y1 + RESIZE_MARGIN)
        part = img.crop((0, c0, w, c1)).resize((w * scale, (c1 - c0) * scale), Image.Resampling.LANCZOS)
        out.write(np.asarray(part)[(y0 - c0) * scale:(y1 - c0) * scale])
    out.close()


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


@dataclass(frozen=True)
class _Strip:
    """Where strip_image puts things: the stages' size (h, w), the gap around and between cells, each cell's left
    edge and width (as wide as its image or its label, whichever is wider), the labels with their text boxes
    (textbbox) and the label band's text height; size = the whole picture (width, height)."""

    h: int
    w: int
    gap: int
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont
    labels: list[str]
    boxes: list[tuple[int, int, int, int]]
    lefts: list[int]
    cells: list[int]
    text_h: int
    size: tuple[int, int]

    @property
    def text_top(self) -> int:
        """The first row any label's ink can reach (each is drawn at this row minus its box's top)."""
        return self.gap + self.h + self.gap // 2

    def text_xy(self, k: int) -> tuple[int, int]:
        box = self.boxes[k]
        return self.lefts[k] + (self.cells[k] - (box[2] - box[0])) // 2 - box[0], self.text_top - box[1]


def _strip_layout(images: Sequence[StageImage], stage_names: Sequence[str] | None, gap: int | None) -> _Strip:
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
    lefts = (gap + np.cumsum([0, *cells[:-1]]) + gap * np.arange(len(cells))).tolist()
    band = text_h + gap if text_h else 0
    return _Strip(h, w, gap, font, labels, boxes, lefts, cells, text_h,
                  (sum(cells) + gap * (len(images) + 1), h + 2 * gap + band))


def strip_image(images: Sequence[StageImage], stage_names: Sequence[str] | None = None,
                gap: int | None = None) -> Image.Image:
    """All stages side by side, first to last, on a light grey background, each labelled below with its name
    when `stage_names` is given. RGB."""
    s = _strip_layout(images, stage_names, gap)
    canvas = Image.new("RGB", s.size, STRIP_BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, t in enumerate(images):
        canvas.paste(_rgb(t), (s.lefts[k] + (s.cells[k] - s.w) // 2, s.gap))
        if s.labels[k]:
            draw.text(s.text_xy(k), s.labels[k], fill=STRIP_TEXT, font=s.font)
    return canvas


def _rgb_rows(t: StageImage, y0: int, y1: int) -> np.ndarray:
    """Rows y0..y1 of a stage as RGB uint8 (n, W, 3), as _rgb gives them (a grey stage in all three channels)."""
    if isinstance(t, np.ndarray):
        a = t[y0:y1]
    else:
        a = tensor_to_uint8(t[:, y0:y1])
    if a.ndim == 3 and a.shape[2] == 3:
        return a
    return np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)


def _write_strip_png(images: Sequence[StageImage], s: _Strip, f) -> None:
    """strip_image's picture written to `f` as a PNG a band of rows at a time (core.files.png_rows): the stages' rows
    copied from the stages, the labels drawn on a strip as high as their text (the one part with ink beside the
    images), every other row the background. Memory: one band of the strip, whatever the number of stages."""
    width, height = s.size
    out = PngRows(f, width, height, 3)
    background = np.array(STRIP_BACKGROUND, np.uint8)

    def plain(n: int) -> None:
        for y in range(0, n, STRIP_BAND):
            out.write(np.broadcast_to(background, (min(STRIP_BAND, n - y), width, 3)))

    plain(s.gap)
    band = np.empty((STRIP_BAND, width, 3), np.uint8)
    for y0 in range(0, s.h, STRIP_BAND):
        y1 = min(s.h, y0 + STRIP_BAND)
        rows = band[:y1 - y0]
        rows[:] = background
        for k, t in enumerate(images):
            x = s.lefts[k] + (s.cells[k] - s.w) // 2
            rows[:, x:x + s.w] = _rgb_rows(t, y0, y1)
        out.write(rows)
    del band
    rest = height - s.gap - s.h
    if s.text_h:
        plain(s.text_top - s.gap - s.h)
        text = Image.new("RGB", (width, s.text_h), STRIP_BACKGROUND)
        draw = ImageDraw.Draw(text)
        for k, label in enumerate(s.labels):
            if label:
                x, y = s.text_xy(k)
                draw.text((x, y - s.text_top), label, fill=STRIP_TEXT, font=s.font)
        out.write(np.asarray(text))
        del text, draw
        rest -= s.text_top - s.gap - s.h + s.text_h
    plain(rest)
    out.close()


def export_strip(images: Sequence[StageImage], stage_names: Sequence[str] | None,
                 path: str | os.PathLike[str], labels: bool = True) -> Path:
    """All stages side by side in one PNG (or any format Pillow writes, from the suffix), labelled with the stage
    names unless labels=False. A PNG is written a band of rows at a time (_write_strip_png: 16 stages of 4096 px
    make a 1.2 GB picture); another format from strip_image's whole picture."""
    p = Path(path)
    fmt = Image.registered_extensions().get(p.suffix.lower(), "PNG")
    fmt = fmt if fmt in Image.SAVE else "PNG"
    names = stage_names if labels else None
    if fmt != "PNG":
        return write_image(strip_image(images, names), p, fmt)
    layout = _strip_layout(images, names, None)
    with atomic_write(p, ImageError) as f:
        _write_strip_png(images, layout, f)
    return p


def _u8(t: StageImage) -> np.ndarray:
    """A stage as uint8 (H, W) or (H, W, 3), without a copy where it is stored so."""
    a = t if _is_u8(t) else tensor_to_uint8(t)
    return a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a


LINES_OVER_BAND = 256  # rows at a time: a 4096 px picture's uint16 products took ~300 MiB at once


def lines_over_u8(final: StageImage, line: StageImage) -> np.ndarray:
    """The last stage with the first (the line art) multiplied over it, as an inker's line layer sits above the
    colours: uint8 in the last stage's layout, rounded (the line art's darkest channel is its ink). Made a band
    of rows at a time. The app shows and exports the same picture ("Line art over colours")."""
    f, ink = _u8(final), _u8(line)
    ink = ink if ink.ndim == 2 else ink.min(axis=2)
    out = np.empty(f.shape, np.uint8)
    for y0 in range(0, out.shape[0], LINES_OVER_BAND):
        rows = f[y0:y0 + LINES_OVER_BAND].astype(np.uint16)
        band = ink[y0:y0 + LINES_OVER_BAND]
        rows *= band[..., None] if rows.ndim == 3 else band
        rows += 127
        rows //= 255
        out[y0:y0 + LINES_OVER_BAND] = rows
    return out


def lines_over(final: StageImage, line: StageImage) -> Image.Image:
    """lines_over_u8 as an RGB picture."""
    return _rgb(lines_over_u8(final, line))


def export_ora(images: Sequence[StageImage], stage_names: Sequence[str], path: str | os.PathLike[str],
               line_over: bool = False) -> Path:
    """OpenRaster (.ora: Krita, GIMP, MyPaint): one layer per stage, the last stage on top and visible, earlier
    stages below it, hidden. line_over ("Line art over colours"): the first stage once more above them all,
    visible, multiplied (its own layer, as an inker keeps the line layer above the colours).

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
    layers: list[tuple[str, int]] = []  # (member, stage), topmost first
    n = len(images)
    if line_over:
        src = f"data/{n:02d}-{_safe(stage_names[0])}-over.png"
        ET.SubElement(stack, "layer", {
            "name": f"{stage_names[0]} (over colours)", "src": src, "x": "0", "y": "0", "opacity": "1.0",
            "visibility": "visible", "composite-op": "svg:multiply"})
        layers.append((src, 0))
    for k in reversed(range(n)):  # stack.xml lists the topmost layer first
        src = f"data/{k:02d}-{_safe(stage_names[k])}.png"
        ET.SubElement(stack, "layer", {
            "name": stage_names[k], "src": src, "x": "0", "y": "0", "opacity": "1.0",
            "visibility": "visible" if k == n - 1 else "hidden", "composite-op": "svg:src-over"})
        layers.append((src, k))
    xml = b"<?xml version='1.0' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="utf-8")
    p = Path(path)
    with atomic_write(p, ImageError) as f:
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr(zipfile.ZipInfo("mimetype"), ORA_MIMETYPE, compress_type=zipfile.ZIP_STORED)
            zf.writestr("stack.xml", xml, compress_type=zipfile.ZIP_DEFLATED)
            # Each layer's PNG (compressed already: stored) made and written in turn: one in memory at a time.
            for src, k in layers:
                zf.writestr(src, _png(_rgb(images[k]).convert("RGBA")), compress_type=zipfile.ZIP_STORED)
            merged = (lines_over(images[-1], images[0]) if line_over else _rgb(images[-1])).convert("RGBA")
            zf.writestr("mergedimage.png", _png(merged), compress_type=zipfile.ZIP_STORED)
            merged.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
            zf.writestr("Thumbnails/thumbnail.png", _png(merged), compress_type=zipfile.ZIP_STORED)
    return p


# A frame's palette is found on at most this many of its pixels: the median cut over a whole 4096 x 4096 frame
# took 208 MiB above the frame here. The sample is an even spread of the frame's own pixels (a stride across
# the rows), so the palette keeps the colours a box-reduced copy would average away (a 1 px ink line).
GIF_PALETTE_PIXELS = 2048 * 2048


def _palette_sample(a: np.ndarray) -> Image.Image:
    """An even spread of at most GIF_PALETTE_PIXELS of a uint8 stage's pixels, as an RGB picture (read from the
    stage's own array: no copy of the whole picture)."""
    h, w = a.shape[:2]
    pixels = a.reshape(h * w, -1)
    step = math.ceil(h * w / GIF_PALETTE_PIXELS)
    while math.gcd(step, w) != 1:  # a stride sharing a factor with the width would see some columns only
        step += 1
    sample = np.ascontiguousarray(pixels[::step])
    if sample.shape[1] == 1:
        sample = np.repeat(sample, 3, axis=1)
    return Image.fromarray(sample.reshape(1, -1, 3), "RGB")


def gif_frame(t: StageImage) -> Image.Image:
    """One stage as a GIF frame: 'P' with an adaptive palette of its own (256 colours at most)."""
    a = _u8(t)
    img = _rgb(a)
    if img.width * img.height <= GIF_PALETTE_PIXELS:
        return img.convert("P", palette=Image.Palette.ADAPTIVE)
    palette = _palette_sample(np.ascontiguousarray(a)).convert("P", palette=Image.Palette.ADAPTIVE)
    return img.quantize(palette=palette, dither=Image.Dither.NONE)


def export_gif(images: Sequence[StageImage], path: str | os.PathLike[str], ms_per_frame: int = 700) -> Path:
    """The workflow as a looping animation: one frame per stage, first to last, `ms_per_frame` each, every
    frame whole with its own colour table."""
    _check(images)
    if not isinstance(ms_per_frame, int) or not 20 <= ms_per_frame <= 60_000:
        raise ImageError(f"ms_per_frame must be an integer in 20..60000, got {ms_per_frame!r}")
    # Written a frame at a time: Pillow encodes each (GifImagePlugin's getheader/getdata) and the file is their
    # sequence. Pillow's own animated writer holds every frame until the end and compares each with the one
    # before as RGBA pictures (16 + 192 MiB at 4096 x 4096); here one frame is in memory at a time.
    p = Path(path)
    with atomic_write(p, ImageError) as f:
        for k, t in enumerate(images):
            frame = gif_frame(t)
            if k == 0:
                header, _ = GifImagePlugin.getheader(frame, info={"loop": 0, "duration": ms_per_frame})
                f.write(b"".join(header))
            for chunk in GifImagePlugin.getdata(frame, (0, 0), duration=ms_per_frame, include_color_table=True):
                f.write(chunk)
            del frame
        f.write(b";")  # the GIF trailer
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
           path: str | os.PathLike[str], scale: int = 1, line_over: bool = False) -> list[Path]:
    """Write `images` in format `fmt` (an ExportFormat or its word) to `path` (a folder for STAGES); returns the
    written files. `scale` enlarges the PNG export only. line_over ("Line art over colours"): the PNG is the final
    image with the line art multiplied over it (lines_over_u8, as the app shows it), the .ora gets the line art
    as a multiplied layer above the colours. The one dispatch used by the app and the CLI."""
    try:
        fmt = ExportFormat(fmt)
    except ValueError:
        raise ImageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    if scale != 1 and fmt is not ExportFormat.PNG:
        raise ImageError("scale applies to the png export only")
    if fmt is ExportFormat.PNG:
        if line_over:
            images = [*images[:-1], lines_over_u8(images[-1], images[0])]
        return [export_final_png(images, path, scale)]
    if fmt is ExportFormat.STAGES:
        # The folder appears complete or not at all (a full disk half-way leaves an existing one as it was).
        with atomic_output_dir(path, ImageError) as out:
            staged = export_stages(images, stage_names, out.staging)
        return [out.final(p) for p in staged]
    if fmt is ExportFormat.STRIP:
        return [export_strip(images, stage_names, path)]
    if fmt is ExportFormat.ORA:
        return [export_ora(images, stage_names, path, line_over)]
    return [export_gif(images, path)]
