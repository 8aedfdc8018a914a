"""Benchmark of the live slider as the artist sees it: the real MainWindow (offscreen), a latent slider dragged
through --values positions at --rate moves per second (a mouse drag), and the later stage's canvas counted each
time it is repainted with a new picture:

    python benchmarks/bench_slider_app.py [--model resources/models/fluent-emoji-128] [--threads 2] [--rounds 3]
                                          [--values 60] [--rate 60] [--configs] [--size WxH] [--preview-threads N]

The canvas shows the last stage and the slider is transition 0's first one (the worst case: every later stage
regenerates). Three paths, drag by drag in turn so that a shared machine's load hits them alike:
  preview  the app's path: half-size previews while dragging (PreviewLatent), the full picture on release; a
           preview's later stages on the preview tail thread, overlapped with the next value's first stage
  serial   the same with the preview's halves one after the other on the engine thread
           (EngineThread.pipelined_previews off: the app before the preview tail, and a 1-core machine)
  full     Document.live_preview off: every value regenerates in full (the engine merges queued ones)
Per path: repaints of the canvas with a new picture per second of drag, the median and p90 interval between them,
the time from the release to the full picture on the canvas, and the engine's time per preview (wall time of its
first half, Session.preview_split, of its later stages, LaterPreview, each on its own thread, and of each picture's
enlargement to the artwork's size, preview_to_u8).
--configs compares thread counts (--config-threads, 1 and 2) and OpenMP's wait at barriers (--policies: unset,
passive, or GOMP_SPINCOUNT=10000), one process each (the wait policy
is read when OpenMP starts, and the engine thread takes torch's thread count when the window is made), --rounds
times in turn, one drag per path each time, so that the load's changes hit them alike. --size opens the face at
that size (a full-resolution artwork: the previews are enlarged to it on the engine thread and copied into the
canvas on the GUI thread); --preview-threads sets the engine's torch threads for a preview
(EngineThread.preview_threads). A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import load_average, print_load_note  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "resources" / "models" / "fluent-emoji-128"


def _emoji(width: int, height: int):
    """A smiling face in flat colours with dark outlines, (3, height, width) in [-1, 1]: the artwork opened."""
    import numpy as np
    import torch
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (255, 255, 255))
    d, w = ImageDraw.Draw(img), max(1, min(width, height) // 40)
    r = lambda a, b, c, e: [int(a * width), int(b * height), int(c * width), int(e * height)]  # noqa: E731
    d.ellipse(r(.1, .1, .9, .9), fill=(250, 190, 40), outline=(40, 30, 20), width=w)
    d.ellipse(r(.3, .3, .42, .45), fill=(60, 40, 30))
    d.ellipse(r(.58, .3, .7, .45), fill=(60, 40, 30))
    d.chord(r(.28, .45, .72, .78), 0, 180, fill=(150, 40, 40), outline=(40, 30, 20), width=w)
    return torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1


class FrameCounter:
    """Times of the canvas's paints that show a new picture (one that refresh() converted since the last paint)."""

    def __init__(self, canvas) -> None:
        from PySide6.QtCore import QEvent, QObject

        self.canvas = canvas
        self.frames: list[float] = []
        self._new_picture = False
        counter = self
        # The canvas converts a new picture into the image it shows (in place) in refresh(); the next paint
        # event puts it on screen.
        refresh = canvas.refresh

        def refresh_and_mark() -> None:
            counter._new_picture = True
            refresh()

        canvas.refresh = refresh_and_mark

        class Filter(QObject):
            def eventFilter(self, obj, event):  # noqa: N802
                if event.type() == QEvent.Type.Paint and counter._new_picture:
                    counter._new_picture = False
                    counter.frames.append(time.perf_counter())
                return False

        self._filter = Filter()
        canvas.installEventFilter(self._filter)


def _wait(app, until, timeout: float = 60.0) -> None:
    end = time.perf_counter() + timeout
    while not until():
        if time.perf_counter() > end:
            raise SystemExit("timed out waiting for the engine")
        app.processEvents()
        time.sleep(0.001)


class HalfTimes:
    """Wall times of the two halves of each preview the engine computes (Session.preview_split on the engine
    thread, LaterPreview on the thread that runs it) and of each picture's enlargement to the artwork's size in 8
    bits (core.fullres.proxy.preview_to_u8, one per later stage, on either thread), wrapped for this benchmark."""

    def __init__(self) -> None:
        from core.editing import session
        from core.fullres import proxy

        self.first: list[float] = []
        self.later: list[float] = []
        self.to_u8: list[float] = []
        split, call, to_u8 = session.Session.preview_split, session.LaterPreview.__call__, proxy.preview_to_u8
        times = self

        def timed_to_u8(*a, **k):
            t0 = time.perf_counter()
            out = to_u8(*a, **k)
            times.to_u8.append(time.perf_counter() - t0)
            return out

        proxy.preview_to_u8 = timed_to_u8  # (the engine imports it where it calls it)

        def timed_split(self, *a, **k):
            t0 = time.perf_counter()
            out = split(self, *a, **k)
            times.first.append(time.perf_counter() - t0)
            return out

        def timed_call(self, first):
            t0 = time.perf_counter()
            out = call(self, first)
            times.later.append(time.perf_counter() - t0)
            return out

        session.Session.preview_split = timed_split
        session.LaterPreview.__call__ = timed_call


def _drag(app, win, counter: FrameCounter, values: list[int], rate: float, mode: str,
          halves: HalfTimes | None = None) -> dict:
    doc, slider = win.doc, win.latent_panel.sliders[0]
    doc.live_preview = mode != "full"
    if hasattr(win.engine, "pipelined_previews"):
        win.engine.pipelined_previews = mode == "preview"
    idle = lambda: win.engine.is_idle() and not doc.waiting_for_engine()  # noqa: E731
    _wait(app, idle)
    app.processEvents()
    slider.setSliderDown(True)
    start = len(counter.frames)
    marks = (len(halves.first), len(halves.later), len(halves.to_u8)) if halves else (0, 0, 0)
    t0 = time.perf_counter()
    for j, v in enumerate(values):
        slider.setValue(v)
        while time.perf_counter() < t0 + (j + 1) / rate:  # the events between two mouse moves
            app.processEvents()
            time.sleep(0.0005)
    t_release = time.perf_counter()
    during = counter.frames[start:]
    first = halves.first[marks[0]:] if halves else []
    later = halves.later[marks[1]:] if halves else []
    to_u8 = halves.to_u8[marks[2]:] if halves else []
    slider.setSliderDown(False)
    _wait(app, lambda: idle() and not doc.previews)
    last = doc.num_stages - 1
    full_shown = time.perf_counter()
    for _ in range(3):  # the repaint of the full picture
        app.processEvents()
    if counter.frames and counter.frames[-1] > t_release:
        full_shown = counter.frames[-1]
    assert doc.bases[last].shape[-1] == doc.resolution
    intervals = [b - a for a, b in zip(during, during[1:])]
    return {"frames": len(during), "seconds": t_release - t0, "intervals": intervals,
            "release": full_shown - t_release, "first": list(first), "later": list(later), "to_u8": list(to_u8)}


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["ARTFLOW_DATA_DIR"] = tempfile.mkdtemp(prefix="artflow-bench-")  # no settings or autosave touched
    import torch
    from PySide6.QtWidgets import QApplication

    from app.application import create_window
    from app.settings import Settings

    torch.set_num_threads(args.threads)  # the engine thread takes them (EngineThread.__init__)
    app = QApplication.instance() or QApplication(["bench"])
    settings = Settings.load()
    settings.refine_after_open = False
    win = create_window(str(args.model), device="cpu", settings=settings)
    if args.preview_threads:  # app.engine_worker.PREVIEW_THREADS for this run
        win.engine.preview_threads = args.preview_threads
    win.resize(1280, 860)
    win.show()
    _wait(app, lambda: win.doc.has_model and win.engine.is_idle())
    doc = win.doc
    width, height = (int(v) for v in args.size.lower().split("x")) if args.size else (doc.resolution,) * 2
    doc.open_image_tensor(_emoji(width, height), "face")  # a blank page would generate blank stages
    _wait(app, lambda: doc.artwork_name == "face" and win.engine.is_idle() and not doc.waiting_for_engine())
    doc.set_current_stage(doc.num_stages - 1)  # the canvas shows the last stage ...
    win.latent_panel.combo.setCurrentIndex(0)  # ... and the sliders edit the first transition
    counter = FrameCounter(win.canvas)
    halves = HalfTimes() if hasattr(win.engine, "pipelined_previews") else None
    lo, hi = win.latent_panel.sliders[0].minimum(), win.latent_panel.sliders[0].maximum()
    n = args.values
    sweeps = [[round(lo + (hi - lo) * j / (n - 1)) for j in range(n)]]
    sweeps.append(sweeps[0][::-1])
    out: dict[str, list[dict]] = {name: [] for name in ("preview", "serial", "full")
                                  if name != "serial" or halves is not None}
    for name in out:  # warm-up
        _drag(app, win, counter, sweeps[0][:5], args.rate, name)
    for r in range(args.rounds):
        for name in out:
            out[name].append(_drag(app, win, counter, sweeps[r % 2], args.rate, name, halves))
    load = load_average()
    engine_threads = win.engine.torch_threads
    preview_threads = min(engine_threads, getattr(win.engine, "preview_threads", engine_threads))
    win.shutdown()
    win.close()
    alone = _preview_alone(args.model, preview_threads)
    if args.json:
        print("RESULT " + json.dumps({"drags": out, "load": load, "alone": alone}), flush=True)
        return 0
    print(f"app, offscreen, model {Path(args.model).name} ({doc.resolution} px), artwork {width}x{height}; "
          f"engine thread: {engine_threads} torch threads, {preview_threads} for a preview; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; cpu count {os.cpu_count()}; "
          f"load avg {load:.2f}")
    print(f"this machine now: Session.preview alone (no window) median {alone:.1f} ms with {preview_threads} torch "
          "thread(s): the bound on the preview path's repaints")
    print(f"{args.rounds} drags per path of {n} slider values at {args.rate:g} moves/s ({n / args.rate:.1f} s), "
          "the last stage's canvas:")
    _summary(out)
    print_load_note(load)
    return 0


def _preview_alone(model: str, threads: int, moves: int = 20) -> float:
    """The median time of Session.preview on this thread with no window beside it: how fast the machine is now
    (shared machines vary by 1.5x within an hour), to read the repaint rates against."""
    import torch

    from core.editing.session import Session
    from core.files import bundle

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    session = Session(bundle.load(model), "cpu")
    session.load_artwork(_emoji(session.config.resolution, session.config.resolution))
    gen = torch.Generator().manual_seed(0)
    times = []
    for j in range(moves + 3):
        z = session.model.sample_latents(0, 1, gen, clip=3.0)[0]
        t0 = time.perf_counter()
        session.preview(0, latent=z)
        if j >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    torch.set_num_threads(before)
    return statistics.median(times)


def _summary(out: dict[str, list[dict]], indent: str = "  ") -> None:
    for name, drags in out.items():
        intervals = [x * 1e3 for d in drags for x in d["intervals"]]
        fps = _fps(drags)
        rel = statistics.median(d["release"] for d in drags) * 1e3
        q = sorted(intervals) or [float("nan")]
        first = [x * 1e3 for d in drags for x in d.get("first", [])]
        later = [x * 1e3 for d in drags for x in d.get("later", [])]
        to_u8 = [x * 1e3 for d in drags for x in d.get("to_u8", [])]
        engine = (f"  engine per preview: first half {statistics.median(first):5.1f} ms, later stages "
                  f"{statistics.median(later):5.1f} ms, each picture to 8 bits {statistics.median(to_u8):5.1f} ms "
                  "(medians)" if first and later and to_u8 else "")
        print(f"{indent}{name:8s} {fps:5.1f} repaints/s  frame interval median {statistics.median(q):6.1f} ms  "
              f"p90 {q[min(len(q) - 1, int(.9 * len(q)))]:6.1f} ms  release -> full picture {rel:6.1f} ms{engine}")
    a, b = _fps(out["preview"]), _fps(out["full"])
    print(f"{indent}preview / full repaints per second: {a / b:.2f}x" if b else f"{indent}full: no repaint")
    if out.get("serial"):
        print(f"{indent}preview / serial repaints per second: {a / _fps(out['serial']):.2f}x")


def _fps(drags: list[dict]) -> float:
    """New pictures on the canvas per second of dragging, over all the drags."""
    return sum(d["frames"] for d in drags) / sum(d["seconds"] for d in drags)


# OpenMP's wait at a barrier, as the environment sets it: spin (libgomp's default), sleep at once (the desktop
# app's setting), or spin a short while and then sleep.
POLICIES = {"default": {}, "passive": {"OMP_WAIT_POLICY": "passive"}, "spin10k": {"GOMP_SPINCOUNT": "10000"}}


def _without(argv: list[str], flags: tuple[str, ...], options: tuple[str, ...]) -> list[str]:
    """argv less the given flags and the given options with their values (--opt V or --opt=V)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in flags or a.split("=")[0] in options:
            skip = a in options
        else:
            out.append(a)
    return out


def _configs(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Each configuration in its own process, one drag per path at a time, the configurations in turn."""
    given = _without(sys.argv[1:] if argv is None else argv, ("--configs",), ("--policies", "--config-threads"))
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise SystemExit(f"unknown policy {', '.join(unknown)}; choose from {', '.join(POLICIES)}")
    configs = [(int(threads), policy) for policy in policies for threads in args.config_threads.split(",")]
    results: dict[tuple[int, str], dict[str, list[dict]]] = {c: {} for c in configs}
    loads = []
    for _ in range(args.rounds):
        for threads, policy in configs:
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            env.update(POLICIES[policy])
            child = subprocess.run([sys.executable, __file__, *given, "--threads", str(threads), "--rounds", "1",
                                    "--json"], env=env, capture_output=True, text=True)
            line = [x for x in child.stdout.splitlines() if x.startswith("RESULT ")]
            if child.returncode or not line:
                print(child.stdout + child.stderr, file=sys.stderr)
                return 1
            got = json.loads(line[0][len("RESULT "):])
            loads.append(got["load"])
            for name, drags in got["drags"].items():
                results[threads, policy].setdefault(name, []).extend(drags)
    print(f"app, offscreen, model {Path(args.model).name}; {args.rounds} drags per path and configuration of "
          f"{args.values} slider values at {args.rate:g} moves/s, configurations in turn (one process each); cpu "
          f"count {os.cpu_count()}; load avg {min(loads):.2f} .. {max(loads):.2f} "
          f"(median {statistics.median(loads):.2f})")
    for (threads, policy), out in results.items():
        print(f"engine {threads} torch thread{'s' if threads > 1 else ''}, OpenMP waits {policy} "
              f"({' '.join(f'{k}={v}' for k, v in POLICIES[policy].items()) or 'nothing set'}):")
        _summary(out, "    ")
    print_load_note(statistics.median(loads))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of the engine")
    ap.add_argument("--preview-threads", type=int, default=0,
                    help="torch threads of a preview (default: the app's, app.engine_worker.PREVIEW_THREADS)")
    ap.add_argument("--size", default="", help="the artwork's size, WxH (default: the model's resolution)")
    ap.add_argument("--rounds", type=int, default=3, help="drags per path")
    ap.add_argument("--values", type=int, default=60, help="slider positions per drag")
    ap.add_argument("--rate", type=float, default=60.0, help="slider moves per second")
    ap.add_argument("--policies", default="default,passive",
                    help=f"with --configs: OpenMP wait policies to compare ({', '.join(POLICIES)})")
    ap.add_argument("--config-threads", default="1,2", help="with --configs: engine thread counts to compare")
    ap.add_argument("--configs", action="store_true",
                    help="thread counts 1, 2 x OMP_WAIT_POLICY unset, passive: one process each, in turn")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a child of --configs
    args = ap.parse_args(argv)
    return _configs(args, argv) if args.configs else run(args)


if __name__ == "__main__":
    raise SystemExit(main())
