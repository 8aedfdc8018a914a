"""The app's full-resolution work off the GUI thread, and its memory, with the bundled model:

    python benchmarks/bench_app_fullres.py composite [--size 2048x1536] [--repeats 3]
    python benchmarks/bench_app_fullres.py make-project OUT.artflow [--size 4096x3072] [--picture OUT.png]
    python benchmarks/bench_app_fullres.py rss PROJECT.artflow [--image PICTURE] [--quick]

composite: what the engine thread does for one painted edit (app/engine_worker.py's ApplyEdits, through
EngineThread.handle on this thread): the layer's proxy (LayeredArtwork.set_layers), the model at the proxy's size
(Session.propagate) and the full-res composite (LayeredArtwork.follow: guided transfer, clean flats with the line
art's regions updated around the stroke (core/fullres/regions.py), keep mask), for an edit of the flat stage and of
the line art, with and without "keep unedited areas". Median of --repeats (the first line-art edit finds the
regions from scratch; the others update them).

make-project: a three-stage project of that size (a drawn artwork opened in the real window, a stroke on the line
art, saved). rss: a fresh process opens PROJECT in the real MainWindow (offscreen), paints a stroke, waits for the
engine's answer and prints the peak RSS (issue 12's figure: open (with the line art's regions, found while the
engine is idle), a stroke on the line art, its regeneration). Then, unless --quick, what an artist does next, each
with its own peak (Linux: the high-water mark is reset between steps through /proc/self/clear_refs): a second
stroke, saving, and every export format; with --image, opening that picture (workflow inference, the full-res
stages) in another fresh process. Scripts, not tests: they assert nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from benchmarks._window import open_window  # noqa: E402
from tools.draw_artwork import draw_artwork  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def composite(args) -> None:
    from app.engine_worker import EngineThread, LoadArtwork, LoadModel
    from core.files import bundle
    from core.files.imageio import uint8_to_tensor

    w, h = _size(args.size)
    eng = EngineThread()  # not started: handle() runs the requests on this thread
    torch.set_num_threads(eng.torch_threads)
    torch.set_grad_enabled(False)
    eng.handle(1, LoadModel(str(args.model or bundle.default_bundle_path()), "cpu"))
    art_img = uint8_to_tensor(np.asarray(draw_artwork(w, h)))
    t0 = time.perf_counter()
    eng.handle(2, LoadArtwork("art", art_img))
    print(f"opened {w} x {h}: {time.perf_counter() - t0:.2f} s (inference, encoding, full-res stages)")
    s, art = eng.session, eng.art
    # The model's time inside follow (a clean flat fed back to the session regenerates the next stage).
    model_in_follow: list[float] = []
    propagate = s.propagate

    def timed_propagate(*a, **kw):
        t = time.perf_counter()
        out = propagate(*a, **kw)
        model_in_follow.append(time.perf_counter() - t)
        return out

    s.propagate = timed_propagate
    rows = []
    for stage, label in ((1, "flat"), (0, "line art")):
        for keep in (False, True):
            times = {"proxy layer": [], "model (proxy)": [], "full-res composite": [], "of it model": [],
                     "total": [], "total cpu": []}
            for r in range(args.repeats):
                layer = np.zeros((h, w, 4), np.uint8)
                y = h // 3 + 40 * r
                layer[y:y + 12, w // 4:w // 2] = (30, 30, 30, 255) if stage == 0 else (200, 40, 40, 255)
                old = [b.clone() for b in s.bases]
                c0, t0 = time.process_time(), time.perf_counter()
                pm_mask, fm = art.set_layers(s, {stage: layer}, keep)
                t1 = time.perf_counter()
                propagate(stage, keep_mask=pm_mask)
                t2 = time.perf_counter()
                model_in_follow.clear()
                art.follow(s, old, stage, fm, pm_mask, True)
                t3, c3 = time.perf_counter(), time.process_time()
                values = (t1 - t0, t2 - t1, t3 - t2, sum(model_in_follow), t3 - t0, c3 - c0)
                for k, v in zip(times, values, strict=True):
                    times[k].append(v * 1000)
            rows.append((f"{label}{' + keep unedited' if keep else ''}",
                         {k: statistics.median(v) for k, v in times.items()}))
    load = load_average()
    print(f"\none painted edit on a {w} x {h} artwork, engine thread work, median of {args.repeats} "
          f"(ms; load average {load:.2f}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()})")
    keys = list(rows[0][1])
    print(f"{'edit':<26}" + "".join(f"{k:>19}" for k in keys))
    for name, t in rows:
        print(f"{name:<26}" + "".join(f"{t[k]:19.0f}" for k in keys))
    print("(full-res composite: LayeredArtwork.follow, wall time; 'of it model': the model inside it (a line-art "
          "edit's clean flat is fed back and the next stage regenerated); total cpu: the process's CPU time, less "
          "sensitive to the load. A line-art edit recomputes the line art's regions for the clean flat.)")
    print_load_note(load)


def _wait_idle(app, win) -> None:
    while not (win.engine.is_idle() and not win.doc.waiting_for_engine()):
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()


def _stroke(app, win) -> None:
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    canvas = win.canvas
    left = Qt.MouseButton.LeftButton
    w, h = win.doc.artwork_size
    pts = [canvas.to_widget(QPointF(w * (0.3 + 0.01 * i), h * 0.3)) for i in range(30)]
    for i, p in enumerate(pts):
        kind = (QEvent.Type.MouseButtonPress if i == 0 else QEvent.Type.MouseMove)
        QApplication.sendEvent(canvas, QMouseEvent(kind, p, canvas.mapToGlobal(p), left if i == 0 else
                                                   Qt.MouseButton.NoButton, left, Qt.KeyboardModifier.NoModifier))
        app.processEvents()
    QApplication.sendEvent(canvas, QMouseEvent(QEvent.Type.MouseButtonRelease, pts[-1], canvas.mapToGlobal(pts[-1]),
                                               left, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    app.processEvents()


def make_project(args) -> None:
    w, h = _size(args.size)
    app, win = open_window()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "art.png"
        draw_artwork(w, h).save(path)
        if args.picture:
            draw_artwork(w, h).save(args.picture)  # for rss --image
        win.doc.open_image(str(path))
        _wait_idle(app, win)
    win.tools.set_size(24)
    _stroke(app, win)
    _wait_idle(app, win)
    rid = win.doc.save_project(args.out)
    done = []
    win.doc.saveFinished.connect(lambda r, ok: done.append(ok))
    while not done:
        app.processEvents()
        time.sleep(0.01)
    print(f"{args.out}: {w} x {h}, saved={done[0]} (request {rid}), "
          f"{Path(args.out).stat().st_size / 2**20:.1f} MiB")
    win.shutdown()


class PeakMeter:
    """Peak RSS per step (MiB). On Linux the kernel's high-water mark (VmHWM) is reset after each step
    (/proc/self/clear_refs), so each step's peak is its own; elsewhere the peaks are cumulative (getrusage)."""

    def __init__(self) -> None:
        self.overall = 0.0
        self.resettable = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _status(key: str) -> float | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def step(self) -> tuple[float, float]:
        """(this step's peak, the peak since the process started) in MiB; starts the next step."""
        hwm = self._status("VmHWM") if self.resettable else None
        peak = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.overall = max(self.overall, peak)
        if self.resettable:
            self._reset()
        return peak, self.overall

    def now(self) -> float:
        return self._status("VmRSS") or float("nan")


def _settle(app) -> None:
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


def rss(args) -> None:
    meter = PeakMeter()
    app, win = open_window()
    meter.step()  # the window and the model: a step of their own, not reported as one
    t0 = time.perf_counter()
    win.doc.open_project(args.project)
    while win.doc.project_path is None or str(win.doc.project_path) != str(args.project):
        app.processEvents()
        time.sleep(0.01)
        if time.perf_counter() - t0 > 600:
            raise SystemExit("the project did not open")
    _wait_idle(app, win)
    opened = time.perf_counter() - t0
    _, after_open = meter.step()
    win.tools.set_size(24)
    t0 = time.perf_counter()
    _stroke(app, win)
    _wait_idle(app, win)
    painted = time.perf_counter() - t0
    stroke_peak, peak = meter.step()
    w, h = win.doc.artwork_size
    print(f"{args.project}: {w} x {h}, {win.doc.num_stages} stages; opened in {opened:.1f} s, stroke regenerated "
          f"in {painted:.1f} s (load average {load_average():.2f})")
    print(f"peak RSS after opening: {after_open:.0f} MiB; after a stroke and its regeneration: {peak:.0f} MiB "
          f"({peak * 2**20 / 1e9:.2f} GB)")
    if not args.quick:
        _next_steps(app, win, meter, stroke_peak)
    win.shutdown()
    if args.image:
        subprocess.run([sys.executable, __file__, "rss-image", str(args.image)], check=False)


def _next_steps(app, win, meter: PeakMeter, stroke_peak: float) -> None:
    """The steps after the first stroke, each with its peak."""
    rows = [("first stroke", stroke_peak, meter.now())]

    def step(name: str) -> None:
        _settle(app)
        rows.append((name, meter.step()[0], meter.now()))

    _stroke(app, win)
    _wait_idle(app, win)
    step("second stroke")
    with tempfile.TemporaryDirectory() as tmp:
        done: list[bool] = []
        win.doc.saveFinished.connect(lambda _r, ok: done.append(ok))
        win.doc.save_project(str(Path(tmp) / "saved.artflow"))
        while not done:
            app.processEvents()
            time.sleep(0.01)
        step("save")
        for fmt, name in (("png", "final.png"), ("stages", "stages"), ("strip", "strip.png"), ("ora", "art.ora"),
                          ("gif", "flow.gif")):
            win.export(fmt, str(Path(tmp) / name))
            step(f"export {fmt}")
    print(f"\neach step's own peak{'' if meter.resettable else ' (cumulative: no /proc/self/clear_refs here)'}:")
    for name, peak, now in rows:
        print(f"  {name:<34}{peak:7.0f} MiB   (after it: {now:.0f} MiB)")
    print(f"peak RSS of the whole run: {meter.overall:.0f} MiB ({meter.overall * 2**20 / 1e9:.2f} GB)")


def rss_image(args) -> None:
    """Opening a picture in a fresh window: the model infers its workflow and the full-res stages are made."""
    meter = PeakMeter()
    app, win = open_window()
    meter.step()
    t0 = time.perf_counter()
    win.doc.open_image(str(args.image))
    _wait_idle(app, win)
    opened = time.perf_counter() - t0
    peak, overall = meter.step()
    w, h = win.doc.artwork_size
    print(f"\nopening {args.image} ({w} x {h}) in a fresh window: {opened:.1f} s, peak RSS {overall:.0f} MiB "
          f"({overall * 2**20 / 1e9:.2f} GB; load average {load_average():.2f})")
    win.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("composite")
    c.add_argument("--size", default="2048x1536")
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--model")
    m = sub.add_parser("make-project")
    m.add_argument("out")
    m.add_argument("--size", default="4096x3072")
    m.add_argument("--picture", help="also save the drawn picture it opens here (for rss --image)")
    r = sub.add_parser("rss")
    r.add_argument("project")
    r.add_argument("--image", help="also open this picture in a fresh process (e.g. a 4096 x 3072 drawing)")
    r.add_argument("--quick", action="store_true", help="only the issue's figure: open, one stroke")
    i = sub.add_parser("rss-image")
    i.add_argument("image")
    args = ap.parse_args()
    {"composite": composite, "make-project": make_project, "rss": rss, "rss-image": rss_image}[args.cmd](args)


if __name__ == "__main__":
    main()
