"""Pack a stage dataset into one small file of numpy arrays for a lent GPU machine, and unpack it there.

The GPU machine gets only a copy of the repository (64 MiB in all, the bundled model included) and has no QtSvg,
so the rendered training data travels packed: every stage as uint8 arrays in chunks of 128 drawings, each chunk
compressed with LZMA (binary line art as bits, colour stages channel-last, which LZMA compresses best), all in
one .npz (no pickle). Drawings go in the order of sha256(name); when the budget (--max-mb) is reached, the
remaining chunks are left out, so a pack is always a deterministic subset.

    python tools/gpu_pack.py pack /work/data/mix128/train data/gpu/mix128-train.npz --max-mb 34
    python tools/gpu_pack.py unpack data/gpu/mix128-train.npz /tmp/artflow-train     # on the GPU machine
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.stage_dataset import StageDataset, scan_stage_folders  # noqa: E402
from core.errors import ArtflowError, DatasetError  # noqa: E402

CHUNK = 128
FORMAT = "artflow-stage-pack-1"


def _order(names: list[str]) -> list[int]:
    return sorted(range(len(names)), key=lambda i: hashlib.sha256(names[i].encode("utf-8")).hexdigest())


def _encode(a: np.ndarray) -> tuple[bytes, str]:
    """(N, C, H, W) uint8 -> (compressed bytes, mode). Binary one-channel stages are stored as bits."""
    if a.shape[1] == 1 and np.isin(a, (0, 255)).all():
        return lzma.compress(np.packbits(a == 0, axis=-1).tobytes(), preset=9), "bits"
    return lzma.compress(np.ascontiguousarray(a.transpose(0, 2, 3, 1)).tobytes(), preset=9), "hwc"


def _decode(buf: bytes, mode: str, n: int, c: int, size: int) -> np.ndarray:
    raw = np.frombuffer(lzma.decompress(buf), dtype=np.uint8)
    if mode == "bits":
        ink = np.unpackbits(raw.reshape(n, 1, size, -1), axis=-1)[..., :size].astype(bool)
        return np.where(ink, 0, 255).astype(np.uint8)
    return raw.reshape(n, size, size, c).transpose(0, 3, 1, 2)


def _encode_chunk(job: tuple[str, int, list[int]]) -> list[tuple[bytes, str]]:
    """One chunk of drawings (by dataset index) -> its stages, compressed (runs in a worker process)."""
    data_dir, size, idx = job
    ds = StageDataset(data_dir, size=size, augment=False)
    stages = [np.empty((len(idx), c, size, size), np.uint8) for c in ds.channels]
    for j, i in enumerate(idx):
        for k, img in enumerate(ds.load(i)):
            stages[k][j] = ((img.numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    return [_encode(s) for s in stages]


def pack(data_dir: str | os.PathLike[str], out: str | os.PathLike[str], size: int = 128,
         max_bytes: int = 34 * 2**20, progress: bool = True, workers: int | None = None) -> dict:
    """Pack `data_dir` (a stage dataset) into `out` (.npz) within `max_bytes`; returns what was packed."""
    t0 = time.perf_counter()
    folders = scan_stage_folders(data_dir)
    ds = StageDataset(data_dir, size=size, augment=False)
    if len(ds) == 0:
        raise DatasetError(f"{data_dir}: the dataset holds no samples")
    names = ds.sample_names
    order = _order(names)
    arrays: dict[str, np.ndarray] = {}
    total, packed_names, chunk_sizes, modes = 0, [], [], []
    chunks = [order[start:start + CHUNK] for start in range(0, len(order), CHUNK)]
    # Loading and LZMA compression of chunks run in worker processes (the slow part: ~30 min on one core);
    # results come back in order, so the pack stays the same deterministic prefix.
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for idx, enc in zip(chunks, pool.map(_encode_chunk, [(str(data_dir), size, idx) for idx in chunks]),
                            strict=True):
            n_bytes = sum(len(b) for b, _ in enc)
            if total + n_bytes > max_bytes:
                pool.shutdown(wait=False, cancel_futures=True)
                break
            c = len(chunk_sizes)
            for k, (buf, _) in enumerate(enc):
                arrays[f"chunk{c:04d}_stage{k}"] = np.frombuffer(buf, dtype=np.uint8)
            modes.append([m for _, m in enc])
            total += n_bytes
            packed_names.extend(names[i] for i in idx)
            chunk_sizes.append(len(idx))
            if progress:
                print(f"\rpacked {len(packed_names)}/{len(names)} drawings, {total / 2**20:.1f} MiB", end="",
                      file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    if not chunk_sizes:
        raise ArtflowError(f"not even one chunk of {CHUNK} drawings fits in {max_bytes} bytes")
    arrays.update(format=np.array(FORMAT), names=np.array(packed_names), size=np.array(size),
                  stage_dirs=np.array([f.name for _, _, f in folders]), channels=np.array(ds.channels),
                  chunk_sizes=np.array(chunk_sizes), modes=np.array(modes))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, **arrays)  # the chunks are compressed already
    os.replace(tmp, out)
    return {"drawings": len(packed_names), "of": len(names), "bytes": out.stat().st_size,
            "seconds": time.perf_counter() - t0}


def unpack(pack_file: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> int:
    """Write the packed drawings as a stage dataset (PNG) into `out_dir`; returns the number of drawings."""
    try:
        z = np.load(pack_file, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ArtflowError(f"{pack_file}: not a stage pack ({e})") from e
    with z:
        if "format" not in z or str(z["format"]) != FORMAT:
            raise ArtflowError(f"{pack_file}: not a stage pack ({FORMAT})")
        names, size = [str(n) for n in z["names"]], int(z["size"])
        dirs, channels = [str(d) for d in z["stage_dirs"]], [int(c) for c in z["channels"]]
        out = Path(out_dir)
        for d in dirs:
            (out / d).mkdir(parents=True, exist_ok=True)
        pos = 0
        for c, (n, modes) in enumerate(zip(z["chunk_sizes"], z["modes"], strict=True)):
            n = int(n)
            for k, (d, ch) in enumerate(zip(dirs, channels, strict=True)):
                a = _decode(z[f"chunk{c:04d}_stage{k}"].tobytes(), str(modes[k]), n, ch, size)
                for j in range(n):
                    img = Image.fromarray(a[j, 0], "L") if ch == 1 else Image.fromarray(a[j].transpose(1, 2, 0), "RGB")
                    img.save(out / d / f"{names[pos + j]}.png", compress_level=1)
            pos += n
    return len(names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="stage dataset folder -> .npz")
    p.add_argument("data", help="stage dataset folder (0-<stage>/, 1-<stage>/, ...)")
    p.add_argument("out", help="the .npz to write")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--max-mb", type=float, default=34.0,
                   help="size budget in MiB (default 34: the repository already takes ~25 of the 64 MiB that travel)")
    u = sub.add_parser("unpack", help=".npz -> stage dataset folder")
    u.add_argument("pack")
    u.add_argument("out")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "pack":
            r = pack(args.data, args.out, size=args.size, max_bytes=int(args.max_mb * 2**20))
            print(f"{args.out}: {r['drawings']} of {r['of']} drawings, {r['bytes'] / 2**20:.1f} MiB, "
                  f"{r['seconds']:.0f} s", file=sys.stderr)
        else:
            t0 = time.perf_counter()
            n = unpack(args.pack, args.out)
            print(f"{args.out}: {n} drawings in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    except ArtflowError as e:
        print(f"gpu_pack: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
