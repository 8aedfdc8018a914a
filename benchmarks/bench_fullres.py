"""Measurements of full-resolution editing (issue 12) with the bundled model, against the careful 128 px route a
user could take without it (pad to a square, run at 128 px, upscale, crop).

    python benchmarks/bench_fullres.py [--data /work/shared/data/fluent-emoji] [--drawings 4] [--steps 150]
                                       [--tone dark] [--out DIR] [--threads 2]

Fluent Emoji TEST drawings (base drawings that have skin-tone variants) are rendered with the dataset builder's
SVG renderer at 640 px, off-centre on a 1024 x 768 white canvas (and at 1280 px on 2048 x 1536 for the timings).
Each drawing's three artist stages (line art, flat, detail) make a project: the session is set to their proxies
and refined (`--steps`), the full-res stages are the artist's own. Then, from that project:

- local edit: the left half of the drawing's flat replaced by the tone variant's flat, "keep unedited areas" on;
  truth = the tone variant's detail on that half, the base detail elsewhere. PSNR of the full-res route and of
  the 128 px route; the largest change of the artwork's own pixels farther than 32 px from the edit.
- whole-stage edit: the whole flat replaced by the tone variant's; truth = the tone variant's detail. PSNR and
  sharpness ratio (mean gradient magnitude of the result over the truth's) of both routes.
- no edit: PSNR of the final stage against the artwork (both routes).
- clean flats: a new artwork generated from the line art (latents at the prior's mean); area-weighted mean
  per-region colour spread (std, [0, 1] scale) of the flat stage over the line art's regions, with clean flats
  and with the 128 px route (today's).
- times: reconstruct_fullres of a 1024 x 768 artwork (inference, encoding, refinement, full-res stages), and at
  2048 x 1536 the full-res composite of one stage after a proxy update (guided transfer + keep mask), the
  clean-flat medians with the line art's regions cached, the regions themselves, and kornia's guided_blur for
  comparison when kornia is installed.

A script, not a test: it prints a table and writes OUT/bench_fullres.json (and a few PNGs); it asserts nothing.
The machine may be shared: wall times are given with the process CPU time beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

from core.editing.refine import STEPS  # noqa: E402
from core.editing.session import Session, run_to_end  # noqa: E402
from core.files import bundle  # noqa: E402
from core.files.imageio import save_image, uint8_to_tensor  # noqa: E402
from core.fullres.flats import find_regions, region_medians, region_spread  # noqa: E402
from core.fullres.guided import transfer_change  # noqa: E402
from core.fullres.masks import keep_mask_fullres  # noqa: E402
from core.fullres.pipeline import apply_edit_fullres, fullres_stages, generate_fullres, reconstruct_fullres  # noqa: E402
from core.fullres.proxy import from_proxy, proxy_with, to_proxy  # noqa: E402
from core.session_state import SessionState

CANVAS = (1024, 768)
DRAWING = 640
OFFSET = (300, 64)  # the drawing's top-left corner: off-centre on the canvas
UNEDITED_BEYOND = 32  # px from the edit
GUIDES = ["stage"]  # --source-guide adds "source" (the edited stage as the guide)


# ----------------------------------------------------------------------------------------------- data
def test_families(data_dir: Path, tone: str) -> tuple[dict, list[str]]:
    from core.data.fluent_emoji import find_sources, split_of

    found = find_sources(data_dir)
    sets = {style: d for style, (_, d, _) in found.items()}
    line, flat, detail = (sets[s]["icons"] for s in ("lineart", "flat", "detail"))
    names = [n for n in sorted(line) if split_of(n) == "test" and n in flat and n in detail
             and f"{n}-{tone}" in flat and f"{n}-{tone}" in detail]
    return sets, names


def render(sets: dict, base: str, tone: str, canvas: tuple[int, int], drawing: int, offset: tuple[int, int]
           ) -> dict[str, torch.Tensor]:
    """{lineart, flat, detail, flat_tone, detail_tone}: (C, H, W) tensors in [-1, 1] on a white canvas."""
    from core.data.fluent_emoji import icon_box, icon_svg, render_svg, union_box

    variant = f"{base}-{tone}"
    box = union_box([icon_box(sets["lineart"], base), icon_box(sets["flat"], base), icon_box(sets["detail"], base),
                     icon_box(sets["flat"], variant), icon_box(sets["detail"], variant)])
    jobs = {"lineart": ("lineart", base), "flat": ("flat", base), "detail": ("detail", base),
            "flat_tone": ("flat", variant), "detail_tone": ("detail", variant)}
    out = {}
    for key, (style, name) in jobs.items():
        img = render_svg(icon_svg(sets[style], name, box), drawing)
        page = Image.new("RGB", canvas, "white")
        page.paste(img, offset)
        out[key] = uint8_to_tensor(np.asarray(page.convert("L") if key == "lineart" else page))
    return out


# ----------------------------------------------------------------------------------------------- metrics
def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((((a.clamp(-1, 1) - b.clamp(-1, 1)) / 2) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def sharpness(x: torch.Tensor) -> float:
    """Mean gradient magnitude (forward differences, [0, 1] scale, averaged over channels)."""
    x = (x.clamp(-1, 1) + 1) / 2
    gx = x[:, :, 1:] - x[:, :, :-1]
    gy = x[:, 1:, :] - x[:, :-1, :]
    return float(torch.sqrt(gx[:, :-1] ** 2 + gy[:, :, :-1] ** 2).mean())


def route_128(session: Session, pm, k: int) -> torch.Tensor:
    """Today's careful route: the stage at 128 px, upscaled (bicubic) and cropped."""
    return from_proxy(session.stages[k], pm)


def cpu_now() -> float:
    return time.process_time()


# ----------------------------------------------------------------------------------------------- scenarios
def project_from_stages(session: Session, stages: list[torch.Tensor], steps: int):
    """The artist's own three stages as a refined project: proxies set, encoded, refined. Returns the map."""
    proxies, pm = [], None
    for s in stages:
        p, pm = to_proxy(s, session.config.resolution)
        proxies.append(p)
    n = session.num_stages
    state = SessionState(tuple(proxies), (None,) * n, tuple(session.latents), tuple(session.deltas), tuple(proxies))
    session.restore(state)
    session.encode(propagate=False)
    if steps:
        report = run_to_end(session.refine(steps=steps, preview_every=0))
        assert report.completed
    return pm


def measure_drawing(session: Session, d: dict[str, torch.Tensor], steps: int, out: Path | None) -> dict:
    row: dict = {}
    artist = [d["lineart"], d["flat"], d["detail"]]
    pm = project_from_stages(session, artist, steps)
    saved = session.snapshot()
    h, w = d["detail"].shape[-2:]

    # No edit.
    row["noedit_psnr_fullres"] = psnr(artist[-1], artist[-1])  # the project's final stage is the artwork itself
    row["noedit_psnr_128"] = psnr(route_128(session, pm, 2), artist[-1])

    # Local edit: the left half of the drawing's flat -> the tone variant's.
    cut = OFFSET[0] + DRAWING // 2
    left = torch.zeros(1, h, w, dtype=torch.bool)
    left[..., :cut] = True
    edited_flat = torch.where(left, d["flat_tone"], d["flat"])
    truth = torch.where(left, d["detail_tone"], d["detail"])
    changed = ((edited_flat - d["flat"]).abs().amax(0) / 2 > 0.02).numpy()
    far = ndimage.distance_transform_edt(~changed) > UNEDITED_BEYOND
    for guide in GUIDES:
        session.restore(saved)
        full, _ = apply_edit_fullres(session, artist, pm, 1, edited_flat, keep_unedited=True, guide=guide)
        row[f"local_psnr_fullres_{guide}"] = psnr(full[2], truth)
        row[f"local_unedited_maxdiff_255_{guide}"] = float((full[2] - artist[2]).abs().amax(0).numpy()[far].max()
                                                          * 127.5) if far.any() else 0.0
        if guide == "stage":
            row["local_psnr_128"] = psnr(route_128(session, pm, 2), truth)
            row["local_unedited_maxdiff_255_128"] = float(
                (route_128(session, pm, 2) - artist[2]).abs().amax(0).numpy()[far].max() * 127.5)
            if out is not None:
                save_image(full[2], out / "local_fullres.png")
                save_image(route_128(session, pm, 2), out / "local_128.png")
                save_image(truth, out / "local_truth.png")

    # Whole-stage edit: the whole flat -> the tone variant's.
    truth = d["detail_tone"]
    row["sharpness_truth"] = sharpness(truth)
    for guide in GUIDES:
        session.restore(saved)
        full, _ = apply_edit_fullres(session, artist, pm, 1, d["flat_tone"], keep_unedited=False, guide=guide)
        row[f"whole_psnr_fullres_{guide}"] = psnr(full[2], truth)
        row[f"whole_sharpness_ratio_fullres_{guide}"] = sharpness(full[2]) / row["sharpness_truth"]
        if guide == "stage":
            r128 = route_128(session, pm, 2)
            row["whole_psnr_128"] = psnr(r128, truth)
            row["whole_sharpness_ratio_128"] = sharpness(r128) / row["sharpness_truth"]
            if out is not None:
                save_image(full[2], out / "whole_fullres.png")
                save_image(r128, out / "whole_128.png")

    # Clean flats: a new artwork from the line art.
    regions = find_regions(d["lineart"])
    pm_gen, full = generate_fullres(session, d["lineart"], clean_flats=True)
    row["flat_spread_clean"] = region_spread(regions, full[1])
    pm_gen, full_raw = generate_fullres(session, d["lineart"], clean_flats=False)
    row["flat_spread_128"] = region_spread(regions, route_128(session, pm_gen, 1))
    row["flat_spread_unclean_guided"] = region_spread(regions, full_raw[1])
    row["flat_regions"] = regions.count
    if out is not None:
        save_image(full[1], out / "clean_flat.png")
        save_image(full[2], out / "clean_detail.png")
        save_image(route_128(session, pm_gen, 1), out / "flat_128.png")
    return row


def timed(fn, repeat: int = 3) -> tuple[float, float, object]:
    """(median wall s, median CPU s, last result)."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), cpu_now()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(cpu_now() - c0)
    return float(np.median(walls)), float(np.median(cpus)), result


def measure_times(session: Session, sets: dict, base: str, tone: str, steps: int) -> dict:
    t: dict = {}
    d = render(sets, base, tone, CANVAS, DRAWING, OFFSET)
    w0, c0 = time.perf_counter(), cpu_now()
    pm, full, _, _ = reconstruct_fullres(session, d["detail"], steps=steps)
    t["reconstruct_1024x768_s"] = time.perf_counter() - w0
    t["reconstruct_1024x768_cpu_s"] = cpu_now() - c0

    big = render(sets, base, tone, (2048, 1536), 2 * DRAWING, (2 * OFFSET[0], 2 * OFFSET[1]))
    artist = [big["lineart"], big["flat"], big["detail"]]
    res = session.config.resolution
    proxies = [to_proxy(s, res)[0] for s in artist]
    pm2 = to_proxy(artist[0], res)[1]
    # A real proxy change: the detail regenerated from the tone variant's flat minus the one from the base flat.
    change = session.generate(1, proxy_with(big["flat_tone"], pm2)) - session.generate(1, proxies[1])
    mask = keep_mask_fullres(big["flat"], big["flat_tone"])

    def composite() -> torch.Tensor:
        return (artist[2] + mask * transfer_change(change, artist[2], pm2)).clamp_(-1, 1)

    t["composite_2048x1536_s"], t["composite_2048x1536_cpu_s"], _ = timed(composite)
    t["transfer_only_2048x1536_s"], _, _ = timed(lambda: transfer_change(change, artist[2], pm2))
    t["keep_mask_2048x1536_s"], _, _ = timed(lambda: keep_mask_fullres(big["flat"], big["flat_tone"]))
    t["regions_2048x1536_s"], _, regions = timed(lambda: find_regions(artist[0]), repeat=1)
    up = from_proxy(proxies[1], pm2)
    t["clean_flat_medians_2048x1536_s"], _, _ = timed(lambda: region_medians(regions.labels, regions.count, up,
                                                                              regions.own))
    t["fullres_stages_generate_2048x1536_s"], _, _ = timed(
        lambda: fullres_stages(session, pm2, {0: artist[0]}), repeat=1)
    try:
        import kornia

        upc = from_proxy(proxies[2] + change, pm2, clamp=False)[None]
        t["kornia_guided_blur_2048x1536_s"], _, _ = timed(
            lambda: kornia.filters.guided_blur(artist[2][None], upc, 17, 1e-3), repeat=1)
        t["kornia_guided_blur_subsample8_2048x1536_s"], _, _ = timed(
            lambda: kornia.filters.guided_blur(artist[2][None], upc, 17, 1e-3, subsample=8), repeat=1)
    except ImportError:
        t["kornia"] = "not installed"
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/work/shared/data/fluent-emoji", help="folder with the three npm tarballs")
    ap.add_argument("--model", default=str(bundle.default_bundle_path()))
    ap.add_argument("--drawings", type=int, default=4, help="0: only the times")
    ap.add_argument("--steps", type=int, default=STEPS, help="refinement steps per transition")
    ap.add_argument("--tone", default="dark", choices=("light", "medium-light", "medium", "medium-dark", "dark"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="folder for bench_fullres.json and example PNGs")
    ap.add_argument("--no-times", action="store_true")
    ap.add_argument("--source-guide", action="store_true", help="also measure guide='source' for the edits")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.source_guide:
        GUIDES.append("source")
    torch.manual_seed(0)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    session = Session(bundle.load(args.model), "cpu")
    sets, names = test_families(Path(args.data), args.tone)
    picked = names[: args.drawings]
    rows = {}
    for i, name in enumerate(picked):
        t0 = time.perf_counter()
        d = render(sets, name, args.tone, CANVAS, DRAWING, OFFSET)
        sub = out / name if out is not None else None
        if sub is not None:
            sub.mkdir(exist_ok=True)
        rows[name] = measure_drawing(session, d, args.steps, sub)
        print(f"[{i + 1}/{len(picked)}] {name}: " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[name].items())
            + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    keys = next(iter(rows.values())).keys() if rows else ()
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    if rows:
        mean["local_unedited_maxdiff_255_stage"] = max(r["local_unedited_maxdiff_255_stage"] for r in rows.values())
    times = {} if args.no_times else measure_times(session, sets, names[0], args.tone, args.steps)
    report = {"drawings": picked, "tone": args.tone, "steps": args.steps, "threads": args.threads,
              "canvas": CANVAS, "mean": mean, "per_drawing": rows, "times": times}
    print(json.dumps({"mean": mean, "times": times}, indent=2))
    if rows:
        m = mean
        print(f"\nlocal edit PSNR: full-res {m['local_psnr_fullres_stage']:.2f} dB vs 128 px route "
              f"{m['local_psnr_128']:.2f} dB "
              f"(+{m['local_psnr_fullres_stage'] - m['local_psnr_128']:.2f} dB); unedited max diff beyond "
              f"{UNEDITED_BEYOND} px: {m['local_unedited_maxdiff_255_stage']:.2f}/255 (max over drawings)")
        print(f"whole-stage edit PSNR: full-res {m['whole_psnr_fullres_stage']:.2f} dB vs 128 px "
              f"{m['whole_psnr_128']:.2f} dB; sharpness ratio {m['whole_sharpness_ratio_fullres_stage']:.3f} vs "
              f"{m['whole_sharpness_ratio_128']:.3f}")
        print(f"clean-flat spread: {m['flat_spread_clean']:.4f} (128 px route {m['flat_spread_128']:.4f})")
    if out is not None:
        (out / "bench_fullres.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
