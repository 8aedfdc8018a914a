"""Memory bounded by the artwork, not by what it holds (issue 29): the peak resident memory of clean flats of a line
art with a region per 36 pixels, and of exporting a project of another model that declares many full-res stages,
measured in a fresh process (tests/memory.py) against bounds in bytes per pixel. Not timed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.files.project import Project, save_project
from core.session_state import SessionState
from tests.memory import peak_growth

MiB = 2**20

CLEAN_FLAT_SETUP = """
import numpy as np
import torch
from core.fullres.flats import clean_flat
from core.files.imageio import uint8_to_tensor


def grid(n, step=6):
    a = np.full((n, n), 255, np.uint8)
    a[::step] = 0
    a[:, ::step] = 0
    return uint8_to_tensor(a)


def colours(n):
    y, x = np.mgrid[:n, :n] / n
    return torch.from_numpy(np.stack([np.sin(7 * x), np.cos(5 * y), x * y * 2 - 1]).astype(np.float32))


clean_flat(grid(64), colours(64))  # the kernels loaded (or compiled) before the measure
line, flat_colours = grid({n}), colours({n})
"""


def test_clean_flats_of_a_6px_grid_stay_within_the_pixels():
    # A 1024 x 1024 grid of 1 px lines every 6 px: 29,241 regions. The per-core histogram tables (regions x 256
    # levels x 3 channels, int64) took ~875 bytes a pixel here (2.7 GB a core at 4096 x 4096); the regions and
    # the medians from the pixels sorted by region take ~25-35.
    n = 1024
    grown = peak_growth("clean_flat(line, flat_colours)", CLEAN_FLAT_SETUP.format(n=n))
    assert grown < 64 * n * n, f"{grown / MiB:.0f} MiB for {n} x {n} px"


def other_model_project(path, width: int, height: int, channels: list[int]) -> None:
    """A project of a model not installed here, declaring full-res stages of solid colours (a few kB each)."""
    n = len(channels)
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    stages = [np.broadcast_to(colours[k] if c == 3 else colours[k, 0], (height, width, 3)[:2 if c == 1 else 3])
              for k, c in enumerate(channels)]
    state = SessionState(bases=tuple(torch.zeros(c, 16, 16) for c in channels), layers=(None,) * n,
                         latents=tuple(torch.zeros(1) for _ in range(n - 1)),
                         deltas=tuple(torch.zeros(1) for _ in range(n - 1)), targets=None)
    save_project(Project("another-model", "0123456789abcdef", [f"s{k}" for k in range(n)], list(channels), 16,
                         state, fullres_u8=stages), path)


EXPORT_SETUP = """
from core.cli import main

main(["export", {small!r}, "--format", {fmt!r}, "-o", {warm!r}])  # the kernels loaded before the measure
"""


@pytest.mark.parametrize("fmt, suffix", [("strip", ".png"), ("gif", ".gif"), ("png", ".png")])
@pytest.mark.parametrize("channels", [[3] * 9, [1] * 16], ids=["9 colour stages", "16 grey stages"])
def test_exporting_another_models_project_holds_its_stages_once(tmp_path, fmt, suffix, channels):
    # Issue 29 F3: a project opened without its model, its stages decoded as float32 copies and the strip drawn
    # whole, took 3.3 GB at 4096 x 4096 (nine colour stages). Now: the stages as decoded (uint8, one byte a pixel
    # per channel) and what the format itself needs: a band of the strip, one GIF frame's pictures (written a
    # frame at a time; Pillow's animated writer held every frame), one copy of the last stage for the PNG.
    w, h = 2048, 1024
    project, small = tmp_path / "big.artflow", tmp_path / "small.artflow"
    other_model_project(project, w, h, channels)
    other_model_project(small, 64, 32, channels)
    out = tmp_path / f"out{suffix}"
    work = f"assert main(['export', {str(project)!r}, '--format', {fmt!r}, '-o', {str(out)!r}]) == 0"
    grown = peak_growth(work, EXPORT_SETUP.format(small=str(small), fmt=fmt, warm=str(tmp_path / f"warm{suffix}")))
    stages = sum(channels) * w * h
    extra = {"strip": 8 * MiB, "gif": 16 * w * h, "png": 8 * w * h}[fmt]
    assert grown < stages + extra + 32 * MiB, f"{grown / MiB:.0f} MiB; the stages take {stages / MiB:.0f} MiB"
