"""Stroke-to-screen at the artwork's own size: the real main window (offscreen), a 4096 x 3072 artwork opened with
the bundled model, brush strokes through the real canvas widget's mouse events.

    python benchmarks/bench_paint.py [--size 4096x3072] [--strokes 4] [--segments 60] [--model DIR]

For each stroke segment: from the mouse-move event sent to the canvas until the repaint it asked for has been
painted (QApplication.processEvents runs the paint event), at 100 % zoom (one image pixel per screen pixel) and
at the zoom that fits the window. Also the stroke's start (press: the layer's working copy) and end (release:
the undo step and the document's picture, mended in the stroke's rectangle). The engine is idle while strokes
are measured (each stroke's regeneration is waited for before the next). A script, not a test: it asserts
nothing; the load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from benchmarks._window import PaintCounter, open_drawn_artwork, open_window, wait_idle  # noqa: E402


def send(canvas, kind, pos: QPointF, button, buttons) -> None:
    QApplication.sendEvent(canvas, QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))


def stroke(app, canvas, points) -> tuple[float, list[float], float]:
    """One stroke through widget points: (press ms, per-segment ms, release ms)."""
    left = Qt.MouseButton.LeftButton
    t0 = time.perf_counter()
    send(canvas, QEvent.Type.MouseButtonPress, points[0], left, left)
    app.processEvents()
    press = (time.perf_counter() - t0) * 1000
    segs = []
    for p in points[1:]:
        t0 = time.perf_counter()
        send(canvas, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, left)
        app.processEvents()
        segs.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    send(canvas, QEvent.Type.MouseButtonRelease, points[-1], left, Qt.MouseButton.NoButton)
    app.processEvents()
    return press, segs, (time.perf_counter() - t0) * 1000




def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="4096x3072")
    ap.add_argument("--strokes", type=int, default=4, help="strokes per zoom")
    ap.add_argument("--segments", type=int, default=60, help="mouse moves per stroke")
    ap.add_argument("--brush", type=float, default=12, help="brush diameter in artwork pixels")
    ap.add_argument("--model", help="model bundle (default: the bundled one)")
    ap.add_argument("--new", action="store_true",
                    help="paint the line art of a new drawing of --size (File > New drawing) instead of an opened "
                         "artwork's current stage")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))

    if args.new:
        app, win = open_window(args.model)
        t0 = time.perf_counter()
        win.doc.new_artwork(w, h)
        wait_idle(app, win)
        print(f"new {w} x {h} drawing in {time.perf_counter() - t0:.1f} s")
    else:
        app, win = open_drawn_artwork(args.model, w, h)
    doc, canvas = win.doc, win.canvas
    assert doc.artwork_size == (w, h), doc.artwork_size
    win.tools.set_size(args.brush)
    paints = PaintCounter()
    canvas.installEventFilter(paints)
    results = {}
    for zoom in ("100%", "fit"):
        if zoom == "100%":
            canvas.reset_zoom()
        else:
            canvas.fit()
        app.processEvents()
        presses, segs, releases = [], [], []
        paints.count = 0
        for s in range(args.strokes):
            # A wavy stroke across the middle of the visible area, ~6 screen px per mouse move.
            cx, cy = canvas.width() / 2, canvas.height() / 2
            pts = [QPointF(cx - 180 + 6 * i, cy - 60 + 30 * s + 12 * ((i // 5) % 2)) for i in range(args.segments)]
            p, seg, r = stroke(app, canvas, pts)
            presses.append(p)
            segs += seg
            releases.append(r)
            wait_idle(app, win)  # the regeneration of the later stages, before the next stroke
        results[zoom] = (segs, presses, releases, paints.count)
    load = load_average()
    print(f"\nstroke-to-screen on a {w} x {h} stage, brush {args.brush:g} px, {args.strokes} strokes x "
          f"{args.segments - 1} segments per zoom (load average {load:.2f}, {os.cpu_count()} CPUs)")
    print(f"{'zoom':>6} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'press ms':>9} {'release ms':>11} "
          f"{'repaints':>9}")
    for zoom, (segs, presses, releases, count) in results.items():
        print(f"{zoom:>6} {statistics.median(segs):10.2f} {pct(segs, 0.9):8.2f} {max(segs):8.2f} "
              f"{statistics.median(presses):9.1f} {statistics.median(releases):11.1f} {count:9d}")
    print_load_note(load)
    win.shutdown()


if __name__ == "__main__":
    main()
