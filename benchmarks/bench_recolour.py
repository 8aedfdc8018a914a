"""What the learned recolour costs a fill: core.fullres.region_change.follow_colour_change on a shaded disc whose
flat goes from Fluent's yellow to its dark skin tone, with the bundle's learned recolour and without it (the
transform fitted on the proxies), at several sizes. Medians of --repeats runs, alternated, in ms; the ratio is
the figure to compare between machines.

    python benchmarks/bench_recolour.py [--sizes 1024,2048,4096] [--repeats 5] [--model DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import load_average, print_load_note  # noqa: E402
from core.files import bundle  # noqa: E402
from core.fullres.proxy import ProxyMap, proxy_of_u8  # noqa: E402
from core.fullres.region_change import follow_colour_change  # noqa: E402
from core.nn.recolour import RECOLOUR_FILE, LearnedRecolour  # noqa: E402


def scene(side: int):
    yy, xx = np.mgrid[:side, :side]
    disc = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < (0.4 * side) ** 2
    flat = np.full((side, side, 3), 255, np.uint8)
    flat[disc] = (255, 200, 61)
    new = flat.copy()
    new[disc] = (87, 55, 57)
    detail = np.where(disc[..., None], np.rint(flat * (0.55 + 0.45 * xx / side)[..., None]), 255).astype(np.uint8)
    return flat, new, detail, int(disc.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1024,2048,4096")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default=str(bundle.default_bundle_path()))
    args = ap.parse_args()
    learned = LearnedRecolour.from_file(Path(args.model) / RECOLOUR_FILE)
    print(f"{'size':>6}{'changed px':>12}{'proxies ms':>12}{'learned ms':>12}{'ratio':>8}")
    for side in (int(s) for s in args.sizes.split(",")):
        flat, new, detail, changed = scene(side)
        pm = ProxyMap(side, side, 128)
        p = proxy_of_u8(detail, pm)
        times: dict[str, list[float]] = {"proxies": [], "learned": []}
        for _ in range(args.repeats):
            for name, recolour in (("proxies", None), ("learned", learned)):
                t0 = time.perf_counter()
                follow_colour_change(detail, flat, new, p, p, pm, recolour=recolour)
                times[name].append((time.perf_counter() - t0) * 1000)
        a, b = statistics.median(times["proxies"]), statistics.median(times["learned"])
        print(f"{side:>6}{changed:>12,}{a:>12.0f}{b:>12.0f}{b / a:>8.2f}")
    print_load_note(load_average(), before="\n")


if __name__ == "__main__":
    main()
