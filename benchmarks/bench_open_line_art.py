"""File > Open line art with a scan, in the real window (offscreen): issue 28's "opening a 3000 x 2000 scan as line
art shows every stage within 5 s" on the 2-core machine.

Makes a scan (closed shapes in grey pencil on tinted paper under uneven light, with grain and noise, JPEG-saved),
opens it as line art with the default clean-up and prints the time from the request to every stage shown, and the
clean-up's share of it (core.fullres.lineart_import.prepare_line_art alone, timed apart). One run each, after an untimed
warm-up open of a small scan (numba's passes, torch's first calls).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_open_line_art.py [--size 3000x2000] [--model NAME]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_average, print_load_note  # noqa: E402
from benchmarks._window import open_window, spin_until, wait_idle  # noqa: E402


def make_scan(w: int, h: int, path: Path, seed: int = 0) -> None:
    """A pencil drawing scanned: grey strokes on tinted, unevenly lit, grainy paper, saved as JPEG."""
    rng = np.random.default_rng(seed)
    lines = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(lines)
    s, width = min(w, h) / 1000, max(2, round(min(w, h) / 400))
    for cx, cy, r in ((0.3, 0.5, 300), (0.7, 0.45, 250), (0.5, 0.8, 120)):
        d.ellipse((cx * w - r * s, cy * h - r * s, cx * w + r * s, cy * h + r * s), outline=0, width=width)
    d.rectangle((0.05 * w, 0.05 * h, 0.2 * w, 0.25 * h), outline=0, width=width)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.65 + 0.35 * (1 - ((xx / w - 0.2) ** 2 + (yy / h - 0.3) ** 2))
    ink = np.asarray(lines, np.float32) / 255
    grey = (ink + (1 - ink) * 110 / 255) * light * 255  # pencil at 110 on paper at 255, lit unevenly
    rgb = grey[..., None] * np.array([0.97, 0.94, 0.86], np.float32) + rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(path, quality=85)


def open_timed(app, win, path: Path) -> float:
    doc = win.doc
    done = []
    doc.lineArtOpened.connect(lambda _cleaned: done.append(time.perf_counter()))
    t0 = time.perf_counter()
    doc.open_line_art(str(path))
    spin_until(app, lambda: done)
    wait_idle(app, win)
    return done[-1] - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="3000x2000", help="scan size WxH (default 3000x2000)")
    p.add_argument("--model", default="emoji-lines-128", help="bundle (default emoji-lines-128, for line art)")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    folder = Path(tempfile.mkdtemp(prefix="artflow-scan-"))
    make_scan(400, 300, folder / "warm.jpg")
    make_scan(w, h, folder / "scan.jpg")
    app, win = open_window(args.model)
    load = load_average()
    open_timed(app, win, folder / "warm.jpg")
    shown = open_timed(app, win, folder / "scan.jpg")
    from core.fullres.lineart_import import prepare_line_art

    rgb = np.asarray(Image.open(folder / "scan.jpg").convert("RGB"))
    t0 = time.perf_counter()
    _, info = prepare_line_art(rgb)
    cleanup = time.perf_counter() - t0
    print(f"{w} x {h} scan, {os.cpu_count()} CPUs, load average {load:.1f}, model {args.model}")
    print(f"every stage shown {shown:.2f} s after File > Open line art (clean-up alone: {cleanup:.2f} s, "
          f"{info.kind}{', cleaned' if info.cleaned else ''})")
    print_load_note(max(load, load_average()))
    win.close()


if __name__ == "__main__":
    main()
