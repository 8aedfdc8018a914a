"""Image files <-> model tensors. No Qt here.

Convention used everywhere in the engine: an image is a float32 tensor of shape (C, H, W) with values in
[-1, 1] (-1 = black, +1 = white); C = 1 (grayscale, e.g. line art) or C = 3 (RGB). Images are always square
(size x size) once loaded: the drawing is fitted inside keeping its aspect ratio and padded with white, because
white is the paper colour of every stage.
"""

from __future__ import annotations

import os
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageError
from core.files.atomic import atomic_write
from core.safe_io import MAX_IMAGE_FILE_BYTES, open_regular_file

# Largest image (in pixels) we agree to decode: 8192 x 8192, far beyond the model's resolution (at most 2048); a
# file that claims more is almost certainly a decompression bomb. Module-level so that callers/tests may tune it.
MAX_PIXELS: int = 8192 * 8192
# Pillow warns (two lines on stderr) between its limit and twice it, and raises above. With its limit at ours and
# its warning turned into an exception, both become our one-line ImageError and nothing is printed. Installed once
# at import (warnings.catch_warnings per call would not be thread-safe, and images load in worker threads).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# Pillow's other warnings report damage it tolerated ("Corrupt EXIF data", "Tag data larger than file"): the image
# decodes or our one-line error follows; they would only add noise to the CLI's output.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\..*)?$")

# Modes that carry an alpha channel (or palette transparency once expanded): these are composited on white.
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
# Grayscale modes: used to infer a stage's channel count and to keep 1-channel data off an RGB round trip.
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})

_WHITE = 255


def _check_channels(channels: int, where: str) -> None:
    if channels not in (1, 3):
        raise ImageError(f"{where}: unsupported channel count {channels!r} (use 1 for grayscale or 3 for RGB)")


def _check_size(size: int, where: str) -> None:
    if not isinstance(size, int) or size < 1:
        raise ImageError(f"{where}: target size must be a positive integer, got {size!r}")


def _wide_gray_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale -> 8-bit 'L' by range, not by clipping (Pillow clips, turning
    most 16-bit pixels white)."""
    a = np.asarray(img)
    if img.mode.startswith("I;16"):
        a = a.astype(np.float64) / 257.0
    elif img.mode == "I":
        a = a.astype(np.float64)
        # 16-bit PNGs decoded as 'I' hold 0..65535; 8-bit data converted to 'I' stays 0..255.
        if a.max(initial=0) > 255:
            a = a / 257.0
    else:  # 'F': either 0..1 (linear data) or 0..255
        a = np.nan_to_num(a.astype(np.float64))
        if a.max(initial=0) <= 1.0:
            a = a * 255.0
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), mode="L")


def normalize_pil(img: Image.Image, channels: int) -> Image.Image:
    """Any Pillow image -> 'L' (channels=1) or 'RGB' (channels=3), transparency composited on white.

    Handles palette (with or without transparency), 1-bit, LA/RGBA, 16-bit and float grayscale, CMYK, YCbCr,
    LAB, HSV. EXIF orientation is applied so photos come out upright.
    """
    _check_channels(channels, "image")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a malformed EXIF block must not make an otherwise fine image unreadable
        pass
    mode = img.mode
    if mode == "La":  # premultiplied grey + alpha: Pillow converts it to LA only
        img, mode = img.convert("LA"), "LA"
    if mode not in _DIRECT_MODES and not (mode in ("I", "F") or mode.startswith("I;16")):
        # LAB, HSV, YCbCr, CMYK, RGBX...: Pillow converts every one of them to RGB, not all of them to L; going
        # through RGB gives the same grey for a mode whichever stage (1 or 3 channels) reads it.
        img = _convert(img, "RGB")
        mode = "RGB"
    if mode in ("I", "F") or mode.startswith("I;16"):
        img = _wide_gray_to_l(img)
        mode = "L"
    if mode == "P":
        # Palette images may mark an index (or several, via an alpha palette) transparent.
        has_alpha = "transparency" in img.info or getattr(img.palette, "mode", "") == "RGBA"
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    elif mode in ("L", "RGB") and "transparency" in img.info:
        img = img.convert("RGBA" if mode == "RGB" else "LA")
        mode = img.mode
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (_WHITE, _WHITE, _WHITE, 255))
        img = Image.alpha_composite(white, rgba).convert("RGB")
        mode = "RGB"
    target = "L" if channels == 1 else "RGB"
    if mode != target:
        img = _convert(img, target)
    return img


# Modes handled without a detour through RGB (grey, palette, alpha, and RGB itself).
_DIRECT_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa"})


def _convert(img: Image.Image, mode: str) -> Image.Image:
    try:
        return img.convert(mode)
    except (ValueError, OSError) as exc:
        raise ImageError(f"image: colour mode {img.mode} cannot be converted ({exc})") from None


def fit_square(img: Image.Image, size: int, fill: int | tuple[int, ...] | None = None,
               resample: Image.Resampling = Image.Resampling.LANCZOS) -> Image.Image:
    """Resize `img` to fit inside size x size keeping its aspect ratio, then pad (centred) to size x size.

    `fill` defaults to white for 'L'/'RGB'. Use resample=NEAREST for label maps. Returns a new image of the
    same mode.
    """
    w, h = img.size
    if w == 0 or h == 0:
        raise ImageError(f"image: zero-size image ({w} x {h} pixels)")
    _check_size(size, "image")
    scale = size / max(w, h)
    nw, nh = max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale)))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), resample=resample)
    if (nw, nh) == (size, size):
        return img
    if fill is None:
        fill = _WHITE if len(img.getbands()) == 1 else (_WHITE,) * len(img.getbands())
    canvas = Image.new(img.mode, (size, size), fill)
    canvas.paste(img, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def pil_to_tensor(img: Image.Image, channels: int, size: int) -> torch.Tensor:
    """PIL image (any mode) -> float32 tensor (channels, size, size) in [-1, 1], fitted and white-padded."""
    _check_channels(channels, "image")
    _check_size(size, "image")
    if img.size[0] == 0 or img.size[1] == 0:
        raise ImageError(f"image: zero-size image ({img.size[0]} x {img.size[1]} pixels)")
    img = fit_square(normalize_pil(img, channels), size)
    return uint8_to_tensor(np.asarray(img, dtype=np.uint8))


def open_image(path: str | os.PathLike[str],
               check_size: Callable[[int, int], None] | None = None) -> Image.Image:
    """Open and fully decode an image file with Pillow, turning every failure into a one-line ImageError.

    The returned image is loaded (the file is closed) and its mode is untouched. `check_size(width, height)`, if
    given, runs on the header's size before any pixel is decoded (it raises ImageError to refuse the file).
    """
    p = Path(path)
    name = str(p)
    limit = MAX_PIXELS
    # A regular file of bounded size, opened without blocking: a FIFO or a link to /dev/zero is refused unread.
    handle = open_regular_file(p, MAX_IMAGE_FILE_BYTES, ImageError, "an image file")
    try:
        # Our own handle: closed on exit whatever the Pillow version does; load() has read the pixels.
        with handle as f:
            # Pillow raises DecompressionBombError above 2x its limit (and only warns between 1x and 2x);
            # our own check below refuses anything over MAX_PIXELS before a single pixel is decoded.
            # (No warnings.catch_warnings here: it is not thread-safe and images load in worker threads.)
            im = Image.open(f)
            w, h = im.size
            if w * h > limit:
                raise ImageError(f"{name}: image is too large ({w} x {h} = {w * h:,} pixels, limit "
                                 f"{limit:,}); refusing to decode it (possible decompression bomb)")
            if w == 0 or h == 0:
                raise ImageError(f"{name}: zero-size image ({w} x {h} pixels)")
            if check_size is not None:
                check_size(w, h)
            # Truncated data raises OSError here (unless someone set ImageFile.LOAD_TRUNCATED_IMAGES).
            im.load()
            return im
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: image is too large (more than {Image.MAX_IMAGE_PIXELS:,} pixels); refusing "
                         "to decode it (possible decompression bomb)") from None
    except MemoryError:
        raise ImageError(f"{name}: image is too large to decode in the memory available") from None
    except UnidentifiedImageError as e:
        raise ImageError(f"{name}: not an image format Pillow can read (or the file is corrupt)") from e
    except PermissionError as e:
        raise ImageError(f"{name}: permission denied") from e
    except (OSError, SyntaxError, ValueError, EOFError, TypeError, IndexError, KeyError, struct.error,
            ZeroDivisionError, OverflowError) as e:
        # Pillow reports truncated/corrupt data as OSError ("image file is truncated") or SyntaxError.
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ImageError(f"{name}: corrupt or truncated image ({msg})") from e


def load_image(path: str | os.PathLike[str], channels: int, size: int) -> torch.Tensor:
    """Read an image file into a float32 tensor (channels, size, size) in [-1, 1].

    Any Pillow-readable format and mode; transparency is composited on white; the picture is fitted inside
    size x size (LANCZOS, aspect kept) and centred on white. Raises ImageError naming the file on any failure.
    """
    _check_channels(channels, str(path))
    _check_size(size, str(path))
    img = open_image(path)
    try:
        return pil_to_tensor(img, channels, size)
    except ImageError as e:
        # Re-word with the file name (pil_to_tensor only knows "image").
        raise ImageError(f"{path}: {str(e).removeprefix('image: ')}") from e
    except (OSError, ValueError) as e:
        raise ImageError(f"{path}: cannot convert image ({e})") from e


def load_artwork(path: str | os.PathLike[str], channels: int, minimum: int | None = None) -> torch.Tensor:
    """Read an artwork at its own size: (channels, H, W) float32 in [-1, 1], any aspect ratio (issue 12).

    Like load_image (any mode, EXIF orientation, alpha on white) but never resized. The long side must be within
    core.artwork_size's MIN_SIDE (or `minimum`) ..MAX_SIDE, checked on the file's header before anything is
    decoded."""
    from core.artwork_size import MIN_SIDE, check_artwork_size

    _check_channels(channels, str(path))
    low = MIN_SIDE if minimum is None else minimum
    img = open_image(path, lambda w, h: check_artwork_size(w, h, str(path), low))
    try:
        return uint8_to_tensor(np.asarray(normalize_pil(img, channels), dtype=np.uint8))
    except ImageError as e:
        raise ImageError(f"{path}: {str(e).removeprefix('image: ')}") from e
    except (OSError, ValueError) as e:
        raise ImageError(f"{path}: cannot convert image ({e})") from e


CONVERT_BAND = 256  # rows per band of tensor_to_uint8


def _as_chw(t: torch.Tensor) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected a single image, got a batch of {t.shape[0]} (shape {tuple(t.shape)})")
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor (C, H, W) with C in (1, 3), got shape {tuple(t.shape)}")
    return t


def tensor_to_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) tensor in [-1, 1] -> uint8 array (H, W) for C=1 or (H, W, 3) for C=3.

    Values are clamped; NaN becomes mid grey rather than crashing the display.
    """
    t = _as_chw(t).detach().to("cpu", torch.float32)
    c, h, w = t.shape
    out = np.empty((h, w) if c == 1 else (h, w, c), np.uint8)
    o = torch.from_numpy(out)
    o = o[None] if c == 1 else o.permute(2, 0, 1)
    # Row bands: the float temporaries stay a band's size (a 4096 x 3072 colour stage is 144 MiB as float32).
    for y0 in range(0, h, CONVERT_BAND):
        band = torch.nan_to_num(t[:, y0:y0 + CONVERT_BAND], nan=0.0)
        o[:, y0:y0 + CONVERT_BAND] = band.clamp_(-1.0, 1.0).add_(1.0).mul_(127.5).round_()
    return out


def uint8_to_tensor(a: np.ndarray) -> torch.Tensor:
    """uint8 array (H, W), (H, W, 1) or (H, W, 3) -> float32 tensor (C, H, W) in [-1, 1]."""
    a = np.asarray(a)
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise ValueError(f"expected an array (H, W), (H, W, 1) or (H, W, 3), got shape {a.shape}")
    # One float32 array, converted in place: no full-size temporaries; it never aliases (possibly read-only)
    # caller memory.
    out = np.empty((a.shape[2], *a.shape[:2]), np.float32)
    np.copyto(out, np.moveaxis(a, 2, 0))
    return torch.from_numpy(out).div_(127.5).sub_(1.0)


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """(C, H, W) or (1, C, H, W) tensor in [-1, 1] -> PIL image ('L' for C=1, 'RGB' for C=3)."""
    a = tensor_to_uint8(t)
    return Image.fromarray(a, mode="L" if a.ndim == 2 else "RGB")


def _format_for(path: Path) -> str:
    ext = path.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageError(f"{path}: cannot save an image with suffix {path.suffix or '(none)'!r} "
                         f"(use .png, .jpg, .webp, ...)")
    return fmt


def save_image(t: torch.Tensor | Image.Image, path: str | os.PathLike[str]) -> None:
    """Write an image atomically (temp file in the same folder, then os.replace); format from the suffix.

    `t` is a (C, H, W)/(1, C, H, W) tensor in [-1, 1] or a PIL image. A crash mid-write never leaves a
    half-written file under `path`. The folder must exist.
    """
    p = Path(path)
    fmt = _format_for(p)
    img = t if isinstance(t, Image.Image) else tensor_to_pil(t)
    if fmt == "JPEG" and img.mode not in ("L", "RGB", "CMYK"):
        img = normalize_pil(img, 1 if img.mode in GRAYSCALE_MODES else 3)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise ImageError(f"{p}: folder {folder} does not exist")
    params = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_write(p, ImageError) as f:
        img.save(f, format=fmt, **params)
