"""A tiny synthetic three-stage workflow for tests: line art (circle/square outlines) -> flat colours -> shaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def make_triplet(rng: np.random.Generator, size: int) -> tuple[Image.Image, Image.Image, Image.Image]:
    line = Image.new("L", (size, size), 255)
    flat = Image.new("RGB", (size, size), (255, 255, 255))
    dl, df = ImageDraw.Draw(line), ImageDraw.Draw(flat)
    for _ in range(rng.integers(1, 3)):
        x0, y0 = rng.integers(0, size // 2, 2)
        w, h = rng.integers(size // 4, size // 2, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        colour = tuple(int(c) for c in rng.integers(30, 230, 3))
        shape = df.ellipse if rng.random() < 0.5 else df.rectangle
        shape(box, fill=colour)
        (dl.ellipse if shape == df.ellipse else dl.rectangle)(box, outline=0, width=max(1, size // 32))
    a = np.asarray(flat).astype(np.float32)
    yy = np.linspace(1.0, 0.7, size, dtype=np.float32)[:, None, None]
    shaded = np.where(a.sum(-1, keepdims=True) < 765, a * yy, a)
    return line, flat, Image.fromarray(shaded.clip(0, 255).astype(np.uint8))


def make_stage_dataset(root: Path, n: int = 8, size: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    dirs = [root / "0-lineart", root / "1-flat", root / "2-detail"]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    for j in range(n):
        for d, img in zip(dirs, make_triplet(rng, size)):
            img.save(d / f"s{j:03d}.png")
    return root
