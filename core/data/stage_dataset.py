"""Stage datasets: one folder per workflow stage, holding the same drawings at each stage. No Qt here.

Layout::

    root/
      0-sketch/  a.png b.png ...
      1-flat/    a.png b.png ...
      2-detail/  a.png b.png ...

Stage folders are named `<index>-<name>` with indices 0..N-1 (N >= 2). Files are matched across stages by
their name without suffix, so `0-sketch/a.png` pairs with `2-detail/a.jpg`. Hidden files and files whose
suffix is not an image format are ignored.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from core.errors import DatasetError, ImageError
from core.files.imageio import GRAYSCALE_MODES, load_image, open_image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jfif", ".webp", ".bmp", ".gif", ".tif", ".tiff",
                            ".tga", ".ppm", ".pgm", ".pbm", ".pnm"})

_STAGE_RE = re.compile(r"^(\d+)-(.+)$")

# Paired random-resized-crop: fraction of the image area kept (aspect ratio is always kept: square crops).
CROP_SCALE = (0.85, 1.0)


def _few(names: list[str], k: int = 5) -> str:
    shown = ", ".join(names[:k])
    return shown + (f" (and {len(names) - k} more)" if len(names) > k else "")


def scan_stage_folders(root: str | os.PathLike[str]) -> list[tuple[int, str, Path]]:
    """List the stage folders of a dataset: [(index, name, path), ...] sorted by index.

    Only sub-folders named `<digits>-<name>` count. Raises DatasetError if the root is missing, holds no stage
    folders, two folders share an index, or the indices are not exactly 0..N-1.
    """
    r = Path(root)
    if not r.exists():
        raise DatasetError(f"{r}: dataset folder not found")
    if not r.is_dir():
        raise DatasetError(f"{r}: is a file, not a dataset folder")
    stages: list[tuple[int, str, Path]] = []
    for child in sorted(r.iterdir()):
        m = _STAGE_RE.match(child.name)
        if m and child.is_dir():
            stages.append((int(m.group(1)), m.group(2), child))
    if not stages:
        raise DatasetError(f"{r}: no stage folders (expected sub-folders named 0-<name>, 1-<name>, ...)")
    stages.sort(key=lambda s: s[0])
    indices = [s[0] for s in stages]
    dupes = sorted({i for i in indices if indices.count(i) > 1})
    if dupes:
        names = [s[2].name for s in stages if s[0] in dupes]
        raise DatasetError(f"{r}: several stage folders share an index: {', '.join(names)}")
    if indices != list(range(len(stages))):
        raise DatasetError(f"{r}: stage folders must be numbered 0..{len(stages) - 1} without gaps, found "
                           f"{', '.join(s[2].name for s in stages)}")
    return stages


def _list_images(folder: Path) -> dict[str, Path]:
    """{stem: path} of the image files in a stage folder; duplicate stems are an error."""
    out: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file():
            continue
        if f.stem in out:
            raise DatasetError(f"{folder}: two files for the same drawing: {out[f.stem].name} and {f.name}")
        out[f.stem] = f
    return out


def _infer_channels(path: Path) -> int:
    """1 if the image is stored as grayscale ('L', '1', 'LA', 16-bit gray...), else 3."""
    try:
        img = open_image(path)
    except ImageError as e:
        raise DatasetError(f"unreadable image: {e}") from e
    return 1 if img.mode in GRAYSCALE_MODES else 3


class StageDataset(Dataset):
    """A folder of staged drawings as a torch Dataset.

    Item i is a tuple of N tensors, stage k having shape (channels[k], size, size), float32 in [-1, 1].
    With `augment`, the same random horizontal flip and the same random square crop (area scale 0.85..1,
    resized back to size) are applied to every stage of a sample, so stages stay pixel-aligned. Randomness
    comes from torch's global RNG (so DataLoader worker seeding applies).
    """

    def __init__(self, root: str | os.PathLike[str], size: int, channels: list[int] | None = None,
                 augment: bool = False) -> None:
        self.root = Path(root)
        if not isinstance(size, int) or size < 1:
            raise DatasetError(f"{self.root}: image size must be a positive integer, got {size!r}")
        self.size = size
        self.augment = augment
        stages = scan_stage_folders(self.root)
        if len(stages) < 2:
            raise DatasetError(f"{self.root}: a workflow needs at least 2 stages, found only {stages[0][2].name}")
        self._stage_names = [s[1] for s in stages]
        self._stage_dirs = [s[2] for s in stages]

        files = [_list_images(d) for d in self._stage_dirs]
        for d, f in zip(self._stage_dirs, files, strict=True):
            if not f:
                raise DatasetError(f"{d}: stage folder holds no images")
        all_names = sorted(set().union(*files))
        problems = []
        for d, f in zip(self._stage_dirs, files, strict=True):
            missing = [n for n in all_names if n not in f]
            if missing:
                problems.append(f"{d.name} lacks {len(missing)}: {_few(missing)}")
        if problems:
            raise DatasetError(f"{self.root}: stages hold different drawings; " + "; ".join(problems))
        self._names = all_names
        self._files = [[f[n] for f in files] for n in all_names]

        if channels is None:
            channels = [_infer_channels(f[all_names[0]]) for f in files]
        else:
            channels = list(channels)
            if len(channels) != len(stages):
                raise DatasetError(f"{self.root}: {len(channels)} channel counts given for {len(stages)} stages")
            bad = [c for c in channels if c not in (1, 3)]
            if bad:
                raise DatasetError(f"{self.root}: unsupported channel count {bad[0]!r} (use 1 or 3)")
        self.channels: list[int] = channels

    @property
    def stage_names(self) -> list[str]:
        """Stage names in order, e.g. ['sketch', 'flat', 'detail'] (folder names without the index)."""
        return list(self._stage_names)

    @property
    def stage_dirs(self) -> list[Path]:
        return list(self._stage_dirs)

    @property
    def sample_names(self) -> list[str]:
        """Drawing names (file names without suffix), sorted; index i of the dataset is sample_names[i]."""
        return list(self._names)

    @property
    def num_stages(self) -> int:
        return len(self._stage_names)

    def files(self, index: int) -> list[Path]:
        """The per-stage files of sample `index`."""
        return list(self._files[index])

    def __len__(self) -> int:
        return len(self._names)

    def load(self, index: int) -> tuple[torch.Tensor, ...]:
        """Sample `index` without augmentation: tuple of (C_k, size, size) float32 in [-1, 1]."""
        out = []
        for path, c in zip(self._files[index], self.channels, strict=True):
            try:
                out.append(load_image(path, c, self.size))
            except ImageError as e:
                raise DatasetError(f"unreadable image in dataset {self.root}: {e}") from e
        return tuple(out)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range (dataset has {len(self)})")
        images = self.load(index)
        return paired_augment(images) if self.augment else images

    def verify(self) -> None:
        """Decode every file once; raise DatasetError naming the first unreadable one. Slow on big sets."""
        for i in range(len(self)):
            for path in self._files[i]:
                try:
                    open_image(path)
                except ImageError as e:
                    raise DatasetError(f"unreadable image in dataset {self.root}: {e}") from e

    def __repr__(self) -> str:
        return (f"StageDataset({str(self.root)!r}, size={self.size}, stages={self._stage_names}, "
                f"channels={self.channels}, samples={len(self)}, augment={self.augment})")


def paired_augment(images: tuple[torch.Tensor, ...], scale: tuple[float, float] = CROP_SCALE,
                   flip_p: float = 0.5) -> tuple[torch.Tensor, ...]:
    """Apply one random horizontal flip and one random square crop (resized back) to every stage alike.

    images: tuple of (C_k, S, S) tensors sharing S. Returns tensors of the same shapes.
    """
    s = images[0].shape[-1]
    flip = bool(torch.rand(()) < flip_p)
    area = float(torch.empty(()).uniform_(scale[0], scale[1]))
    side = max(1, min(s, round(s * math.sqrt(area))))
    top = int(torch.randint(0, s - side + 1, ()))
    left = int(torch.randint(0, s - side + 1, ()))
    out = []
    for img in images:
        x = img
        if flip:
            x = x.flip(-1)
        if side != s:
            x = x[:, top:top + side, left:left + side]
            # antialias only matters when shrinking; crops are enlarged, bilinear keeps lines aligned.
            x = F.interpolate(x[None], size=(s, s), mode="bilinear", align_corners=False)[0].clamp(-1.0, 1.0)
        out.append(x.contiguous())
    return tuple(out)
