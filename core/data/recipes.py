"""Builders that turn a folder of finished artworks into a 3-stage dataset (sketch -> flat -> detail). No Qt.

These follow the data recipes of Tseng et al. (ECCV 2020):

* anime recipe: the rough/flat colouring is SLIC super-pixels filled with each cluster's median colour, then a
  median filter; the sketch is pencil-sketch line extraction ("colour dodge" of the grayscale image by its
  blurred inverse) contrast-stretched into dark lines on white.
* face recipe: given segmentation masks, the flat colouring is the median colour of each mask region; the
  sketch is extracted from that flat colouring the same way.

Output layout (a stage dataset, see core.data.stage_dataset)::

    out_dir/0-sketch/NAME.png   8-bit grayscale
    out_dir/1-flat/NAME.png     RGB
    out_dir/2-detail/NAME.png   RGB (the input artwork, fitted to size x size on white)

All arrays here are uint8: RGB images (H, W, 3), grayscale (H, W), label maps (H, W) integer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from core.data.stage_dataset import IMAGE_SUFFIXES
from core.errors import DatasetError, ImageError
from core.files.imageio import fit_square, normalize_pil, open_image, save_image

STAGES = ("0-sketch", "1-flat", "2-detail")


@dataclass
class RecipeSummary:
    """What a builder did. `skipped` holds (source file name, reason) pairs."""

    out_dir: Path
    written: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    stages: tuple[str, ...] = STAGES

    def __str__(self) -> str:
        s = f"wrote {self.written} drawings to {self.out_dir}"
        if self.skipped:
            few = "; ".join(f"{n}: {r}" for n, r in self.skipped[:5])
            more = f"; and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            s += f"; skipped {len(self.skipped)} ({few}{more})"
        return s


# ----------------------------------------------------------------------------------------------- image ops


def _dodge(channel: np.ndarray, sigma: float, soft: float) -> np.ndarray:
    """Colour dodge of one uint8 channel by its blurred inverse -> float32 in [0, 1] (1 = paper white)."""
    g = channel.astype(np.float32)
    blur = cv2.GaussianBlur(255.0 - g, (0, 0), sigmaX=sigma, sigmaY=sigma)
    # `soft` regularises 0/0: uniform areas (even pure black or a 0 channel of pure red) become white
    # instead of solid black blobs; only edges stay dark.
    return np.clip((g + soft) / np.maximum(255.0 - blur + soft, 1e-3), 0.0, 1.0)


def pencil_sketch(rgb: np.ndarray, sigma: float | None = None, low: float = 0.7, high: float = 0.95,
                  soft: float = 8.0, per_channel: bool = True) -> np.ndarray:
    """Pencil-sketch line extraction: (H, W, 3) or (H, W) uint8 -> (H, W) uint8, dark lines on white.

    "Colour dodge" of the grayscale image by its Gaussian-blurred inverse: flat areas go to white and only
    intensity edges stay dark. With `per_channel` the dodge of each RGB channel is also taken and the darkest
    wins, so edges between colours of equal brightness (red next to blue) still give a line. The result is
    contrast-stretched: dodge >= `high` becomes paper white and <= `low` black, which removes faint shading
    and leaves clean lines. `sigma` (blur, px) defaults to ~1/200 of the image side (min 1): thin lines.
    """
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 image, got {rgb.dtype}")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    if sigma is None:
        sigma = max(1.0, min(gray.shape) / 200.0)
    dodge = _dodge(gray, sigma, soft)
    if per_channel and rgb.ndim == 3:
        for c in range(3):
            dodge = np.minimum(dodge, _dodge(rgb[..., c], sigma, soft))
    out = np.clip((dodge - low) / max(high - low, 1e-6), 0.0, 1.0)
    return np.rint(out * 255.0).astype(np.uint8)


def region_median_colors(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Fill each labelled region with its per-channel median colour.

    rgb: (H, W, 3) uint8; labels: (H, W) integer map (any values). Returns (H, W, 3) uint8.
    """
    if rgb.shape[:2] != labels.shape:
        raise ValueError(f"image {rgb.shape[:2]} and label map {labels.shape} differ in size")
    _, inv, counts = np.unique(labels.ravel(), return_inverse=True, return_counts=True)
    inv = inv.ravel()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lo, hi = starts + (counts - 1) // 2, starts + counts // 2
    med = np.empty((len(counts), 3), dtype=np.float64)
    for c in range(3):
        v = rgb[..., c].ravel()
        # Sort by (region, value): each region's values become one sorted run; its median sits mid-run.
        sv = v[np.lexsort((v, inv))].astype(np.float64)
        med[:, c] = (sv[lo] + sv[hi]) / 2.0
    return np.rint(med[inv]).astype(np.uint8).reshape(rgb.shape)


def slic_flat(rgb: np.ndarray, n_segments: int = 300, compactness: float = 10.0,
              median_size: int | None = None) -> np.ndarray:
    """The anime recipe's rough colouring: SLIC super-pixels with median colours, then a median filter.

    rgb: (H, W, 3) uint8 -> (H, W, 3) uint8. `median_size` (odd, px) defaults to ~1/64 of the image side.
    """
    from skimage.segmentation import slic  # imported here: skimage is slow to import and only needed here

    labels = slic(rgb, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
    flat = region_median_colors(rgb, labels)
    if median_size is None:
        median_size = max(3, min(rgb.shape[:2]) // 64)
    median_size = int(median_size) | 1  # OpenCV needs an odd aperture
    return cv2.medianBlur(flat, median_size) if median_size > 1 else flat


def mask_to_labels(mask: Image.Image) -> np.ndarray:
    """A segmentation mask image -> (H, W) int64 label map.

    Index-like modes ('L', 'P', 'I', '1', 16-bit) use their pixel values; colour masks ('RGB', 'RGBA') get one
    label per distinct colour.
    """
    if mask.mode in ("L", "P", "1", "I", "F") or mask.mode.startswith("I;16"):
        return np.asarray(mask).astype(np.int64)
    a = np.asarray(mask.convert("RGB")).astype(np.int64)
    packed = (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]
    return np.unique(packed, return_inverse=True)[1].reshape(packed.shape)


# --------------------------------------------------------------------------------------------- builders


def _list_sources(src: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    if not src.is_dir():
        raise DatasetError(f"{src}: source folder not found")
    files, skipped, seen = [], [], {}
    for f in sorted(src.iterdir()):
        if f.name.startswith(".") or not f.is_file():
            continue
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append((f.name, "not an image file"))
            continue
        if f.stem in seen:
            skipped.append((f.name, f"same name as {seen[f.stem]}"))
            continue
        seen[f.stem] = f.name
        files.append(f)
    return files, skipped


def _prepare_dirs(out: Path) -> list[Path]:
    dirs = [out / s for s in STAGES]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def _write_triplet(dirs: list[Path], name: str, images: list[Image.Image]) -> None:
    """Write all stages of one drawing, or none (a half-written sample would break the dataset)."""
    done: list[Path] = []
    try:
        for d, img in zip(dirs, images, strict=True):
            p = d / f"{name}.png"
            save_image(img, p)
            done.append(p)
    except BaseException:
        for p in done:
            p.unlink(missing_ok=True)
        raise


def _run(files: list[Path], summary: RecipeSummary, desc: str, progress: bool,
         make: Callable[[Path], list[Image.Image]]) -> RecipeSummary:
    dirs = _prepare_dirs(summary.out_dir)
    for f in tqdm(files, desc=desc, unit="img", disable=not progress):
        try:
            images = make(f)
        except (ImageError, DatasetError) as e:
            summary.skipped.append((f.name, str(e)))
            continue
        try:
            _write_triplet(dirs, f.stem, images)
        except ImageError as e:
            summary.skipped.append((f.name, str(e)))
            continue
        summary.written += 1
    return summary


def _load_rgb(path: Path, size: int | None) -> Image.Image:
    img = normalize_pil(open_image(path), 3)
    return fit_square(img, size) if size is not None else img


def build_anime_dataset(src_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                        size: int | None = 256, n_segments: int = 300, compactness: float = 10.0,
                        median_size: int | None = None, sketch_sigma: float | None = None,
                        progress: bool = True) -> RecipeSummary:
    """Anime recipe: every image in `src_dir` (finished artwork) -> sketch / flat / detail in `out_dir`.

    Images are first fitted to size x size on white (None keeps their own size). Unreadable files are skipped
    and listed in the summary; existing outputs of the same name are overwritten.
    """
    src, out = Path(src_dir), Path(out_dir)
    files, skipped = _list_sources(src)
    summary = RecipeSummary(out_dir=out, skipped=skipped)

    def make(f: Path) -> list[Image.Image]:
        detail = _load_rgb(f, size)
        rgb = np.asarray(detail, dtype=np.uint8)
        flat = slic_flat(rgb, n_segments=n_segments, compactness=compactness, median_size=median_size)
        sketch = pencil_sketch(rgb, sigma=sketch_sigma)
        return [Image.fromarray(sketch, "L"), Image.fromarray(flat, "RGB"), detail]

    return _run(files, summary, "anime recipe", progress, make)


def _find_mask(mask_dir: Path, stem: str) -> Path | None:
    for suffix in (".png", ".PNG", ".bmp", ".tif", ".tiff", ".webp", ".gif"):
        p = mask_dir / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def build_face_dataset(src_dir: str | os.PathLike[str], mask_dir: str | os.PathLike[str],
                       out_dir: str | os.PathLike[str], size: int | None = 256,
                       sketch_sigma: float | None = None, progress: bool = True) -> RecipeSummary:
    """Face recipe: images in `src_dir` + same-named label masks in `mask_dir` -> sketch / flat / detail.

    The mask (index or colour-coded, any size: it is resized with nearest-neighbour to the image) defines the
    regions whose median colour makes the flat colouring; the sketch is extracted from the flat colouring.
    Images without a mask are skipped and listed in the summary.
    """
    src, masks, out = Path(src_dir), Path(mask_dir), Path(out_dir)
    if not masks.is_dir():
        raise DatasetError(f"{masks}: mask folder not found")
    files, skipped = _list_sources(src)
    summary = RecipeSummary(out_dir=out, skipped=skipped)

    def make(f: Path) -> list[Image.Image]:
        mpath = _find_mask(masks, f.stem)
        if mpath is None:
            raise DatasetError(f"no mask named {f.stem}.png in {masks}")
        img = normalize_pil(open_image(f), 3)
        labels = mask_to_labels(open_image(mpath))
        lab_img = Image.fromarray(labels.astype(np.int32), mode="I")
        if lab_img.size != img.size:
            lab_img = lab_img.resize(img.size, resample=Image.Resampling.NEAREST)
        if size is not None:
            img = fit_square(img, size)
            # The white padding becomes its own region (its median is white).
            lab_img = fit_square(lab_img, size, fill=int(labels.max(initial=0)) + 1,
                                 resample=Image.Resampling.NEAREST)
        rgb = np.asarray(img, dtype=np.uint8)
        flat = region_median_colors(rgb, np.asarray(lab_img))
        sketch = pencil_sketch(flat, sigma=sketch_sigma)
        return [Image.fromarray(sketch, "L"), Image.fromarray(flat, "RGB"), img]

    return _run(files, summary, "face recipe", progress, make)
