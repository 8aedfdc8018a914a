"""Benchmark of the live slider's preview, option by option, in one run: where the time of a preview goes and
what each way of cutting it buys, as ratios against the reference path (the preview as it was before
core.nn.inference), with the likeness of each preview to the full picture:

    python benchmarks/bench_preview_options.py [--model resources/models/fluent-emoji-128] [--threads 1,2]
                                               [--moves 30] [--likeness 8] [--jit] [--compile] [--profile]

A preview is Session.preview(0, res/2, z): transition 0 decodes its input's cached content code (and cached decode
start) without the last upsampling; every later transition re-encodes the previous preview (its input changes
on every move) and decodes it. Variants, interleaved move by move and thread count by thread count so that a
shared machine's load hits them alike:
  reference        the reference modules (core.nn) under inference_mode, channels_last weights (the old path)
  ref no_grad      the same under no_grad instead of inference_mode
  ref NCHW         the same with contiguous (NCHW) weights and activations
  fast -phases     fast eager without the phase convolutions (upsample, then pad and 3x3 conv)
  fast eager       core.nn.inference's operators one by one from Python (not traced)
  fast             core.nn.inference: channels_last throughout, fused norms, phase convolutions, each forward
                   one TorchScript trace (Session.preview)
  fast later3/4    fast, the later transitions on the preview at 3/4 of its size (3 res/8), enlarged back
  fast later/2     fast, the later transitions on the preview halved again (res/4), enlarged back to res/2
  jit freeze       (--jit) the reference traced, torch.jit.freeze'd and optimize_for_inference'd
  compiled         (--compile) the reference through torch.compile (its compile time printed apart)
and, for the picture on release: full ref / full fast, the whole chain at the model's size (transition 0
cached). Then the mapping of a preview to the artwork's size, as the engine thread does it for the app. bf16 is
measured only on a CPU with native bf16 (avx512_bf16 or amx_bf16). --profile prints torch.profiler's table of
one fast preview's operators. Likeness: PSNR of each preview enlarged to the model's size (as the app shows it)
against the full picture of the same code, beside what the full picture of another code scores. A script, not a
test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from benchmarks.bench_slider import _line_art  # noqa: E402
from core.editing.session import Session  # noqa: E402
from core.evaluation.metrics import psnr  # noqa: E402
from core.files import bundle  # noqa: E402
from core.nn import inference  # noqa: E402
from core.nn.generator import AdaINGenerator  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "resources" / "models" / "fluent-emoji-128"
Chain = Callable[[torch.Tensor], list[torch.Tensor]]


def enlarge(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, h, w) -> (C, size, size) bilinear, clamped: a preview as the app showed it before preview_to_u8."""
    if image.shape[-1] == size:
        return image
    return F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False)[0].clamp(-1, 1)


def _out(x: torch.Tensor) -> torch.Tensor:
    return x[0].float().clone(memory_format=torch.contiguous_format)


def _chain_of(session: Session, first, later: list, content: torch.Tensor, start: torch.Tensor, ctx) -> Chain:
    """The slider chain from prepared forwards: first(content, params, start) for the dragged transition,
    later[i](picture, params) for each later one, under the grad mode ctx."""
    gens = session.model.generators

    def run(z: torch.Tensor) -> list[torch.Tensor]:
        with ctx():
            src = _out(first(content, gens[0].adain_params(z[None]) + session.deltas[0][None], start))
            out = [src]
            for i, f in enumerate(later, start=1):
                src = _out(f(src[None], gens[i].adain_params(session.latents[i][None]) + session.deltas[i][None]))
                out.append(src)
        return out
    return run


def reference_chain(session: Session, gens: list[AdaINGenerator], ctx=torch.inference_mode,
                    halvings: int = 1) -> Chain:
    """The preview (halvings 1) or the full chain (0) of transition 0 with the reference modules `gens`."""
    g0 = gens[0]
    with ctx():
        content = g0.encode_content(session.stages[0][None])
        start = g0.decode_start(content)

    def run(z: torch.Tensor) -> list[torch.Tensor]:
        with ctx():
            src = _out(g0.decode(content, g0.adain_params(z[None]) + session.deltas[0][None], halvings, start))
            out = [src]
            for i in range(1, len(gens)):
                g = gens[i]
                params = g.adain_params(session.latents[i][None]) + session.deltas[i][None]
                src = _out(g.decode(g.encode_content(src[None]), params))
                out.append(src)
        return out
    return run


def fast_chain(session: Session, later_size: int | None = None, phases: bool = True, traced: bool = True) -> Chain:
    """Session.preview's path (core.nn.inference); later_size: the later transitions at that size, enlarged."""
    fast = [inference.FastGenerator(g, phases, traced) for g in session.model.generators]
    gens = session.model.generators
    with torch.inference_mode():
        content = fast[0].encode_content(session.stages[0][None])
        start = fast[0].decode_start(content)

    def run(z: torch.Tensor) -> list[torch.Tensor]:
        with torch.inference_mode():
            src = fast[0].decode(content, gens[0].adain_params(z[None]) + session.deltas[0][None], 1, start)
            out = [_out(src)]
            size = src.shape[-1]
            for i in range(1, len(gens)):
                x = src if later_size is None else F.interpolate(src, size=(later_size,) * 2, mode="area")
                params = gens[i].adain_params(session.latents[i][None]) + session.deltas[i][None]
                src = fast[i].decode(fast[i].encode_content(x), params)
                if later_size is not None:
                    src = F.interpolate(src, size=(size, size), mode="bilinear", align_corners=False).clamp_(-1, 1)
                out.append(_out(src))
        return out
    return run


class _Decode(nn.Module):
    def __init__(self, g: AdaINGenerator, halvings: int) -> None:
        super().__init__()
        self.g, self.halvings = g, halvings

    def forward(self, content, params, start):
        return self.g.decode(content, params, self.halvings, start)


class _Forward(nn.Module):
    def __init__(self, g: AdaINGenerator) -> None:
        super().__init__()
        self.g = g

    def forward(self, x, params):
        return self.g.decode(self.g.encode_content(x), params)


def jit_chain(session: Session) -> Chain:
    """The reference traced per transition, frozen and optimised for inference (mkldnn prepacked convolutions)."""
    gens = session.model.generators
    with torch.no_grad():
        content = gens[0].encode_content(session.stages[0][None])
        start = gens[0].decode_start(content)
        p0 = gens[0].adain_params(session.latents[0][None])
        first = torch.jit.optimize_for_inference(torch.jit.freeze(
            torch.jit.trace(_Decode(gens[0], 1).eval(), (content, p0, start))))
        x = gens[0].decode(content, p0, 1, start)
        later = []
        for g in gens[1:]:
            p = g.adain_params(torch.zeros(1, g.cfg.z_dim))
            later.append(torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(_Forward(g).eval(),
                                                                                             (x, p)))))
            x = g(x, torch.zeros(1, g.cfg.z_dim))
    return _chain_of(session, first, later, content, start, torch.no_grad)


def compiled_chain(session: Session, z: torch.Tensor) -> tuple[Chain, float]:
    """The reference through torch.compile (inductor, static shapes); returns it and its compile seconds."""
    gens = session.model.generators
    with torch.inference_mode():
        content = gens[0].encode_content(session.stages[0][None])
        start = gens[0].decode_start(content)
    first = torch.compile(lambda c, p, s: gens[0].decode(c, p, 1, s), dynamic=False)
    later = [torch.compile(lambda x, p, g=g: g.decode(g.encode_content(x), p), dynamic=False) for g in gens[1:]]
    run = _chain_of(session, first, later, content, start, torch.inference_mode)
    t0 = time.perf_counter()
    run(z)
    return run, time.perf_counter() - t0


def native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _mapping_times(session: Session, preview: torch.Tensor, repeats: int) -> list[str]:
    """The engine thread's mapping of one preview picture to the artwork's size for the app: before (enlarged to
    the model's size, from_proxy, 8 bits) and now (core.fullres.proxy.preview_to_u8), with their difference."""
    import numpy as np

    from core.fullres.artwork import to_u8
    from core.fullres.proxy import ProxyMap, from_proxy, preview_to_u8

    res = session.config.resolution
    out = []
    for w, h in ((res, res), (2048, 1536)):
        pm = ProxyMap(w, h, res)
        ways = {"before": lambda pm=pm: to_u8(enlarge(preview, res) if pm.is_identity
                                              else from_proxy(enlarge(preview, res), pm, "bilinear")),
                "now": lambda pm=pm: preview_to_u8(preview, pm)}
        ms = {}
        for name, f in ways.items():
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                f()
                ts.append((time.perf_counter() - t0) * 1e3)
            ms[name] = statistics.median(ts)
        a, b = (ways[k]().astype(np.int16) for k in ("before", "now"))
        out.append(f"{w}x{h} before {ms['before']:.2f} ms, now {ms['now']:.2f} ms ({ms['now'] / ms['before']:.2f}x; "
                   f"levels apart: max {int(np.abs(a - b).max())}, mean {float(np.abs(a - b).mean()):.2f})")
    return out


def _beside_a_busy_gui(variants: dict[str, Chain], draw: Callable[[], torch.Tensor], threads: list[int],
                       moves: int) -> dict[tuple[str, int], float]:
    """Medians of each variant while another Python thread of the process keeps taking the GIL, as the app's GUI
    thread does during a drag (the engine thread gets it back after each operator it runs from Python)."""
    import threading

    stop = threading.Event()

    def gui() -> None:
        while not stop.is_set():
            end = time.perf_counter() + 1e-3
            while time.perf_counter() < end:
                pass
            time.sleep(1e-3)
    out: dict[tuple[str, int], list[float]] = {(k, n): [] for n in threads for k in variants}
    t = threading.Thread(target=gui, daemon=True)
    t.start()
    try:
        for _ in range(max(5, moves // 2)):
            for n in threads:
                torch.set_num_threads(n)
                for name, f in variants.items():
                    z = draw()
                    t0 = time.perf_counter()
                    f(z)
                    out[name, n].append((time.perf_counter() - t0) * 1e3)
    finally:
        stop.set()
        t.join()
    return {k: statistics.median(v) for k, v in out.items()}


def _first_previews(model: str, threads: int, count: int = 4) -> list[float]:
    """Session.preview times of a fresh session, first call first."""
    torch.set_num_threads(threads)
    session = Session(bundle.load(model), "cpu")
    res = session.config.resolution
    session.start_from(_line_art(res).expand(session.config.stages[0].channels, res, res))
    out = []
    for j in range(count):
        t0 = time.perf_counter()
        session.preview(0, latent=session.latents[0] + 0.3 * (j + 1))
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def run(args: argparse.Namespace) -> int:
    threads = [int(t) for t in args.threads.split(",")]
    torch.set_num_threads(threads[-1])
    session = Session(bundle.load(args.model), "cpu")
    cfg = session.config
    res = cfg.resolution
    session.start_from(_line_art(res).expand(cfg.stages[0].channels, res, res))
    gen = torch.Generator().manual_seed(1)
    draw = lambda: session.model.sample_latents(0, 1, gen, clip=3.0)[0]  # noqa: E731
    gens = list(session.model.generators)
    nchw = [copy.deepcopy(g).to(memory_format=torch.contiguous_format) for g in gens]
    variants: dict[str, Chain] = {
        "reference": reference_chain(session, gens),
        "ref no_grad": reference_chain(session, gens, torch.no_grad),
        "ref NCHW": reference_chain(session, nchw),
        "fast -phases": fast_chain(session, phases=False, traced=False),
        "fast eager": fast_chain(session, traced=False),
        "fast": lambda z: session.preview(0, res // 2, z),
        "fast later3/4": fast_chain(session, later_size=res * 3 // 8),
        "fast later/2": fast_chain(session, later_size=res // 4),
    }
    notes = []
    if args.jit:
        try:
            variants["jit freeze"] = jit_chain(session)
        except Exception as e:  # noqa: BLE001 - a benchmark reports what does not work here
            notes.append(f"jit freeze: failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    if args.compile:
        try:
            variants["compiled"], secs = compiled_chain(session, draw())
            notes.append(f"compiled: torch.compile took {secs:.1f} s before the first preview ({threads[-1]} "
                         "threads; inductor's cache makes later starts shorter)")
        except Exception as e:  # noqa: BLE001
            notes.append(f"compiled: failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    notes.append("bf16: " + ("native on this CPU, not measured yet" if native_bf16() else
                             "not measured: this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)"))

    def full_fast(z: torch.Tensor) -> list[torch.Tensor]:
        session.set_latent(0, z)
        return [s.clone() for s in session.stages[1:]]
    release = {"full ref": reference_chain(session, gens, halvings=0), "full fast": full_fast}
    timed = {**variants, **release}
    times: dict[tuple[str, int], list[float]] = {(k, n): [] for k in timed for n in threads}
    for r in range(args.warmup + args.moves):
        for n in threads:
            torch.set_num_threads(n)
            for name, f in timed.items():
                z = draw()
                t0 = time.perf_counter()
                f(z)
                if r >= args.warmup:
                    times[name, n].append((time.perf_counter() - t0) * 1e3)

    # Likeness to the full picture, and the agreement of each variant with the reference preview.
    torch.set_num_threads(threads[-1])
    full_ref = release["full ref"]
    psnrs: dict[str, list[list[float]]] = {k: [] for k in variants}
    psnrs["other code"] = []
    diff = {k: 0.0 for k in variants}
    for _ in range(args.likeness):
        z = draw()
        full = full_ref(z)
        ref = variants["reference"](z)
        for name, f in variants.items():
            got = f(z)
            psnrs[name].append([psnr(enlarge(p, res), t) for p, t in zip(got, full)])
            diff[name] = max(diff[name], max(float((a - b).abs().max()) for a, b in zip(got, ref)))
        psnrs["other code"].append([psnr(a, t) for a, t in zip(full_ref(draw()), full)])
    mapping = _mapping_times(session, variants["fast"](draw())[-1], args.moves)
    beside = _beside_a_busy_gui({k: variants[k] for k in ("reference", "fast eager", "fast")}, draw, threads,
                                args.moves)
    first = _first_previews(args.model, threads[-1])

    load = load_average()
    print(f"model {Path(args.model).name}: {res} px, {cfg.num_stages} stages; torch {torch.__version__}, cpu count "
          f"{os.cpu_count()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}, load avg {load:.2f}")
    print(f"a latent change of transition 0 -> every later stage's preview ({res // 2} px) ready; {args.moves} "
          "moves per variant, interleaved; ratios against the reference at the same thread count:")
    for n in threads:
        base = statistics.median(times["reference", n])
        for name in timed:
            if name == "full ref":
                base = statistics.median(times["full ref", n])
            v = sorted(times[name, n])
            med = statistics.median(v)
            print(f"  {n} thread{'s' if n > 1 else ' '} {name:13s} median {med:7.1f} ms  p90 "
                  f"{v[min(len(v) - 1, int(.9 * len(v)))]:7.1f} ms  {med / base:5.2f}x "
                  f"{'full ref' if name.startswith('full') else 'reference'}")
    if len(threads) > 1:
        a, b = threads[0], threads[-1]
        print("  " + ", ".join(f"{name} {b}/{a} threads "
                               f"{statistics.median(times[name, b]) / statistics.median(times[name, a]):.2f}x"
                               for name in ("reference", "fast", "full fast")))
    print(f"likeness over {args.likeness} codes: PSNR per later stage of the preview enlarged to {res} px against "
          "the full picture (median), and the largest difference from the reference preview:")
    for name, rows in psnrs.items():
        per_stage = ", ".join(f"{statistics.median(col):.1f}" for col in zip(*rows))
        extra = f"  max |x - reference| {diff[name]:.1e}" if name in diff else "  (the full picture of another code)"
        print(f"  {name:13s} {per_stage} dB{extra}")
    print(f"mapping one preview to the artwork's size on the engine thread ({threads[-1]} threads):")
    for line in mapping:
        print("  " + line)
    print("beside a GUI-like Python thread (1 ms of Python, then 1 ms asleep, over and over; the GIL is shared), "
          "median:")
    for (name, n), ms in beside.items():
        print(f"  {n} thread{'s' if n > 1 else ' '} {name:13s} {ms:7.1f} ms")
    print(f"a fresh session's first previews ({threads[-1]} threads; the first one traces its forwards): "
          + ", ".join(f"{ms:.0f}" for ms in first) + " ms")
    for note in notes:
        print(note)
    if args.profile:
        from torch.profiler import profile

        f, z = variants["fast"], draw()
        with profile(record_shapes=True) as prof:
            for _ in range(10):
                f(z)
        print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=25))
    print_load_note(load)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--threads", default="1,2", help="torch thread counts, comma-separated (interleaved)")
    ap.add_argument("--moves", type=int, default=30, help="timed slider moves per variant and thread count")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--likeness", type=int, default=8, help="codes for the likeness check")
    ap.add_argument("--jit", action="store_true", help="also torch.jit.freeze + optimize_for_inference")
    ap.add_argument("--compile", action="store_true", help="also torch.compile (needs a C++ compiler; slow start)")
    ap.add_argument("--profile", action="store_true", help="print the operators of one fast preview")
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
