"""Cost of the training augmentations per batch (CPU), as ratios to the plain flip/crop batch in one run.

    python benchmarks/bench_augment.py [STAGE_DATA_DIR] [--batch 4] [--repeats 20]

Without a data folder it uses 64 synthetic 128 px drawings. Prints ms per batch for: plain, + recolouring,
+ hand-drawn lines, both.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.train.data import StageBank  # noqa: E402


def synthetic_bank(n: int = 64, size: int = 128) -> StageBank:
    from core.data.line_art import line_art_from_flat

    g = torch.Generator().manual_seed(0)
    lines, flats = [], []
    for _ in range(n):
        flat = torch.full((size, size, 3), 255, dtype=torch.uint8)
        for _ in range(6):
            y, x, h, w = torch.randint(0, size - 24, (4,), generator=g).tolist()
            flat[y:y + 8 + h % 16, x:x + 8 + w % 16] = torch.randint(0, 256, (3,), generator=g, dtype=torch.uint8)
        flats.append(flat.permute(2, 0, 1))
        lines.append(torch.from_numpy(line_art_from_flat(flat.numpy()))[None])
    f = torch.stack(flats)
    return StageBank([torch.stack(lines), f, f.clone()], [f"s{i}" for i in range(n)])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bank = StageBank.from_folder(args.data, 128, [1, 3, 3], progress=False) if args.data else synthetic_bank()
    cpu = torch.device("cpu")
    variants = {"plain": (0.0, 0.0), "+recolour": (1.0, 0.0), "+hand-drawn": (0.0, 1.0), "both": (1.0, 1.0)}
    times: dict[str, float] = {}
    for rep in range(args.repeats + 1):
        for name, (rc, hd) in variants.items():  # interleaved, so load changes hit all variants alike
            idx = torch.randint(len(bank), (args.batch,), generator=torch.Generator().manual_seed(rep))
            t = time.perf_counter()
            bank.batch(idx, torch.Generator().manual_seed(rep), True, cpu, recolour=rc, hand_drawn=hd)
            if rep:  # the first round warms up
                times[name] = times.get(name, 0.0) + time.perf_counter() - t
    base = times["plain"]
    for name, t in times.items():
        print(f"{name:12s} {1000 * t / args.repeats:8.1f} ms per batch of {args.batch}   x{t / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
