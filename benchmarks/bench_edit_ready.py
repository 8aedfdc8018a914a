"""Time from File > Open to an artwork that can be edited, in the real window (offscreen), issue 27's "edit-ready
within 2 s of opening a 1024 x 768 artwork on 2 cores".

Opens a drawn artwork (tools/draw_artwork.py) of the given size with "Fit for editing right after opening" on, as a
user does, and prints: the open (workflow inference, encoding, the full-res stages), the edit-ready fit (the app's
short fit, core.editing.refine.EDIT_READY_STEPS steps) and the two together, the time from the open's request to the
last answer applied; then, for the ratio, the paper's 150-step refinement (the Refine button) on the same artwork.
Times are one run each (the first open also loads numba's compiled passes: it is run once before, untimed).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_edit_ready.py [--size 1024x768] [--model NAME] [--paper]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import load_average, print_load_note  # noqa: E402
from benchmarks._window import open_window, spin_until, wait_idle  # noqa: E402
from core.editing.refine import EDIT_READY_STEPS, STEPS  # noqa: E402
from tools.draw_artwork import draw_artwork  # noqa: E402


def open_until_ready(app, win, path: Path) -> tuple[float, float]:
    """(seconds to the opened stages shown, seconds to the edit-ready fit applied), from the open's request."""
    doc = win.doc
    doc.settings.refine_after_open = True
    opened = []
    doc.artworkOpened.connect(lambda: opened.append(time.perf_counter()))
    t0 = time.perf_counter()
    doc.open_image(str(path))
    spin_until(app, lambda: opened)
    wait_idle(app, win)
    spin_until(app, lambda: not doc.refining)
    wait_idle(app, win)
    return opened[0] - t0, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1024x768", help="artwork size WxH (default 1024x768)")
    p.add_argument("--model", help="bundle folder or bundled model name (default: the default bundle)")
    p.add_argument("--paper", action="store_true", help="also time the paper's 150-step refinement")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    folder = Path(tempfile.mkdtemp(prefix="artflow-ready-"))
    path = folder / "art.png"
    draw_artwork(w, h).save(path)
    app, win = open_window(args.model)
    load = load_average()
    open_until_ready(app, win, path)  # warm: numba's passes loaded or compiled, torch's first calls made
    opened, ready = open_until_ready(app, win, path)
    print(f"{w} x {h}, {os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"open (inference, encoding, full-res stages): {opened:.2f} s")
    print(f"edit-ready ({EDIT_READY_STEPS}-step fit applied): {ready:.2f} s after the open's request")
    if args.paper:
        t0 = time.perf_counter()
        win.doc.refine(STEPS)
        spin_until(app, lambda: not win.doc.refining)
        wait_idle(app, win)
        paper = time.perf_counter() - t0
        print(f"the paper's {STEPS}-step refinement: {paper:.2f} s ({paper / max(ready - opened, 1e-9):.1f}x the "
              f"edit-ready fit)")
    print_load_note(max(load, load_average()))
    win.close()


if __name__ == "__main__":
    main()
