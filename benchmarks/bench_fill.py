"""The fill tool at the artwork's own size: the real main window (offscreen), a 4096 x 3072 artwork opened with the
bundled model, fills clicked through the real canvas widget's mouse events.

    python benchmarks/bench_fill.py [--size 4096x3072] [--repeats 3] [--stage 1] [--model DIR]

For each fill (a large region: the background; a middle one: inside the face): the longest time the GUI thread
was blocked in one go from the click until the fill is on screen (the press event's handling, then each pass of
the event loop), and the time from the click until the fill is on screen (the document's layer replaced and the
canvas repainted). Also the region's size and the time of the pixel work alone (app.canvas.brush.fill_mask,
on this thread). The engine is idle when each fill starts (the regeneration a fill starts is waited for before
the next one). A script, not a test: it asserts nothing; the load average is printed beside the figures.
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
from benchmarks._window import PaintCounter, open_drawn_artwork, wait_idle  # noqa: E402


def click_fill(app, win, paints: PaintCounter, pos: QPointF, timeout: float = 120) -> tuple[float, float]:
    """One fill click: (longest GUI-thread block ms, click-to-screen ms)."""
    canvas, doc = win.canvas, win.doc
    k = doc.current_stage
    before = doc.layers[k]
    left = Qt.MouseButton.LeftButton
    t0 = time.perf_counter()
    QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseButtonPress, pos, canvas.mapToGlobal(pos), left, left,
                                               Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseButtonRelease, pos, canvas.mapToGlobal(pos), left,
                                               Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    longest = time.perf_counter() - t0
    painted_at = paints.count
    while True:
        t = time.perf_counter()
        app.processEvents()
        longest = max(longest, time.perf_counter() - t)
        if doc.layers[k] is not before and paints.count > painted_at:
            break
        if time.perf_counter() - t0 > timeout:
            raise SystemExit("the fill did not show in time")
        time.sleep(0.001)
    return longest * 1000, (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="4096x3072")
    ap.add_argument("--repeats", type=int, default=3, help="fills per region")
    ap.add_argument("--stage", type=int, default=1, help="the stage filled (default: the flat colours)")
    ap.add_argument("--model", help="model bundle (default: the bundled one)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))

    import numpy as np

    from app.canvas.brush import fill_mask
    from app.canvas.tools import Tool

    app, win = open_drawn_artwork(args.model, w, h)
    doc, canvas = win.doc, win.canvas
    doc.set_current_stage(args.stage)
    win.tools.set_tool(Tool.FILL)
    canvas.fit()
    app.processEvents()
    paints = PaintCounter()
    canvas.installEventFilter(paints)
    colours = [(200, 40, 40), (40, 160, 60), (30, 60, 200), (220, 180, 40)]
    rows = []
    for name, (fx, fy) in (("background", (0.02, 0.02)), ("inside the face", (0.33, 0.5))):
        x, y = int(fx * w), int(fy * h)
        t0 = time.perf_counter()
        region = fill_mask(doc.stage_rgb(args.stage), x, y, win.tools.fill_tolerance)
        alone = (time.perf_counter() - t0) * 1000
        blocks, shows = [], []
        for r in range(args.repeats):
            from PySide6.QtGui import QColor
            win.tools.set_fg(doc.stage_channels(args.stage), QColor(*colours[r % len(colours)]))
            b, s = click_fill(app, win, paints, canvas.to_widget(QPointF(x + 0.5, y + 0.5)))
            blocks.append(b)
            shows.append(s)
            wait_idle(app, win)
        rows.append((name, int(np.count_nonzero(region)), alone, statistics.median(blocks), max(blocks),
                     statistics.median(shows)))
    load = load_average()
    print(f"\nfill on a {w} x {h} stage ({doc.stage_title(args.stage)}), median of {args.repeats} "
          f"(ms; load average {load:.2f}, {os.cpu_count()} CPUs)")
    print(f"{'region':<18}{'pixels':>11}{'fill_mask alone':>17}{'GUI blocked':>13}{'(max)':>8}{'click to screen':>17}")
    for name, n, alone, block, bmax, show in rows:
        print(f"{name:<18}{n:>11}{alone:>17.0f}{block:>13.0f}{bmax:>8.0f}{show:>17.0f}")
    print("(GUI blocked: the longest single stretch the GUI thread spent without returning to the event loop, from "
          "the click until the fill is on screen)")
    print_load_note(load)
    win.shutdown()


if __name__ == "__main__":
    main()
