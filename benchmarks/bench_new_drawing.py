"""Issue 28's stroke-to-stages time on a new drawing, in the real main window (offscreen):

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_new_drawing.py [--size 2048] [--repeats 5]
        [--model emoji-lines-128]

File > New drawing of --size (square), then the README drawing's strokes on its line art, one commit each with the
stroke's rectangle as the canvas gives it (tools/screenshot_drawing.py: the face outline on the blank sheet, the
hair line that splits it, the eye pair and the mouth inside it); for each, the time from the commit to its flats
and detail shown (the engine answered and the answer applied). A fresh drawing every repeat; the median and the
range per stroke. Issue 28's target: a closed stroke's flats and detail within 0.4 s on the 2-core machine. A
script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_average, print_load_note  # noqa: E402
from benchmarks._window import open_window, wait_idle  # noqa: E402
from tools.screenshot_drawing import strokes  # noqa: E402


def one_drawing(app, win, size: int) -> dict[str, float]:
    doc = win.doc
    doc.new_artwork(size, size)
    wait_idle(app, win)
    line = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(line)
    previous = np.zeros((size, size, 4), np.uint8)
    times = {}
    for name, fn in strokes(size):
        fn(draw, size / 2048)
        layer = np.zeros((size, size, 4), np.uint8)
        layer[..., 3] = 255 - np.asarray(line)
        ys, xs = np.nonzero((layer != previous).any(2))
        rect = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        previous = layer
        t0 = time.perf_counter()
        doc.commit_layer(0, layer, name, rect)
        wait_idle(app, win)
        times[name] = time.perf_counter() - t0
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="emoji-lines-128")
    args = ap.parse_args()
    app, win = open_window(args.model)
    one_drawing(app, win, args.size)  # warm-up: numba's kernels and the model's first calls
    runs = [one_drawing(app, win, args.size) for _ in range(args.repeats)]
    win.close()
    print(f"\na new {args.size} x {args.size} drawing ({args.model}): stroke committed -> flats and detail shown, "
          f"{args.repeats} drawings (load average {load_average():.2f})")
    for name in runs[0]:
        t = [r[name] for r in runs]
        print(f"  {name:<8} median {statistics.median(t):.2f} s   ({min(t):.2f}-{max(t):.2f} s)")
    print_load_note(load_average())


if __name__ == "__main__":
    main()
