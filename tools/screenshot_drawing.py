"""The README's drawing screenshots: a new drawing made in the app at the artist's size, its line art drawn as
strokes (a face with eyes, mouth and hair), then the window on each stage at 100 % zoom.

    QT_QPA_PLATFORM=offscreen python tools/screenshot_drawing.py docs/drawing [--size 2048] [--model emoji-lines-128]

writes docs/drawing-lineart.png, docs/drawing-flat.png and docs/drawing-detail.png (the window, 1280 x 800) and
prints how long the engine took for each stroke group to show its flats and detail.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._window import open_window, wait_idle  # noqa: E402


def strokes(size: int) -> list[tuple[str, callable]]:
    """What the artist draws, in order: (name, draw(ImageDraw, scale))."""
    w = max(2, round(size / 340))  # a 6 px pen at 2048

    def face(d, s):
        d.ellipse((424 * s, 480 * s, 1624 * s, 1680 * s), outline=0, width=w)

    def hair(d, s):
        d.chord((424 * s, 430 * s, 1624 * s, 1250 * s), 180, 360, outline=0, width=w)

    def eyes(d, s):
        for x in (760, 1160):
            d.ellipse((x * s, 1000 * s, (x + 130) * s, 1200 * s), outline=0, width=w)

    def mouth(d, s):
        d.chord((760 * s, 1260 * s, 1290 * s, 1520 * s), 0, 180, outline=0, width=w)

    return [("face", face), ("hair", hair), ("eyes", eyes), ("mouth", mouth)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prefix", help="output prefix, e.g. docs/drawing")
    p.add_argument("--size", type=int, default=2048, help="the square sheet's side (default 2048)")
    p.add_argument("--model", default="emoji-lines-128", help="bundle (default emoji-lines-128)")
    args = p.parse_args()
    app, win = open_window(args.model)
    doc = win.doc
    doc.new_artwork(args.size, args.size)
    wait_idle(app, win)
    line = Image.new("L", (args.size, args.size), 255)
    draw = ImageDraw.Draw(line)
    previous = np.zeros((args.size, args.size, 4), np.uint8)
    for name, fn in strokes(args.size):
        fn(draw, args.size / 2048)
        ink = np.asarray(line) < 255
        layer = np.zeros((args.size, args.size, 4), np.uint8)
        layer[..., 3] = np.where(ink, 255 - np.asarray(line), 0)
        ys, xs = np.nonzero((layer != previous).any(2))
        rect = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)  # as the canvas gives a stroke's
        previous = layer
        t0 = time.perf_counter()
        doc.commit_layer(0, layer, name, rect)
        wait_idle(app, win)
        print(f"{name}: flats and detail shown {time.perf_counter() - t0:.2f} s after the stroke")
    for k, stage in enumerate(("lineart", "flat", "detail")):
        doc.set_current_stage(k)
        app.processEvents()
        win.canvas.zoom_to(1.0)
        app.processEvents()
        out = Path(f"{args.prefix}-{stage}.png")
        if not win.grab().save(str(out)):  # Qt says only False: a missing folder, no permission, a full disk
            win.close()
            raise SystemExit(f"{out}: cannot write the screenshot (does its folder exist?)")
        print(out)
    win.close()


if __name__ == "__main__":
    main()
