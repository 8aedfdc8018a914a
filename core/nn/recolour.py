"""The learned recolour: how the artist shades a region drawn in another flat colour (issue 27).

When a flat region changes colour (a fill), each later colour stage's pixel there must change too: a yellow face
with orange shading becomes a brown face with darker brown shading, not a brown face with purple highlights (the
per-channel multiply's mistake on light shading). This small per-pixel network learned that from the artist's own
drawings: Fluent Emoji draw each person in six skin tones, flat and detailed, so every pair of tones is a flat
recolour with the detail the artist drew for it (core.train.recolour trains it, TRAIN families only).

    new detail = clamp(multiply + mlp([old detail, old flat, new flat, multiply]))

where multiply is the no-model recolour (old detail * new flat / old flat per channel; plus the change where the
old flat is too dark to divide by) and the MLP (12 -> H -> H -> 3, SiLU) adds the learned correction. Colours are
on [0, 1]. It is stored as safetensors (`recolour.safetensors` in a model bundle), with the flat colour pairs it
was trained on (`seen_pairs`): a recolour far from all of them (a yellow hand filled blue) is not what it learned,
and the caller keeps its own transform there (`knows`).

numpy only at inference: it runs on a few thousand sampled pixels per edit, where torch's call overhead would
dominate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import BundleError
from core.safe_io import check_regular_file

RECOLOUR_FILE = "recolour.safetensors"
MAX_RECOLOUR_BYTES = 8 << 20
DARK = 16 / 255  # an old flat channel darker than this is shifted, not divided (as region_change's prior)
# A flat pair is known when one seen pair lies within this many 8-bit levels in every channel of both colours.
# The fits see old flats the model inferred, some levels off the artist's (training adds that noise too).
KNOWN_LEVELS = 40
_LAYERS = ("f.0", "f.2", "f.4")


def multiply_recolour(x: np.ndarray, o: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The no-model recolour of colours x (N, 3) whose flat went from o to n (N, 3 each), all on [0, 1]."""
    dark = o < DARK
    return np.clip(np.where(dark, x + n - o, x * n / np.maximum(o, 1e-6)), 0.0, 1.0)


def _silu(a: np.ndarray) -> np.ndarray:
    return a * (0.5 + 0.5 * np.tanh(0.5 * a))  # a * sigmoid(a), without exp's overflow for large -a


class LearnedRecolour:
    """The network's weights (float32 numpy) and the flat pairs it was trained on."""

    def __init__(self, weights: dict[str, np.ndarray], seen_pairs: np.ndarray) -> None:
        self.layers = [(weights[f"{k}.weight"].astype(np.float32), weights[f"{k}.bias"].astype(np.float32))
                       for k in _LAYERS]
        self.seen_pairs = np.asarray(seen_pairs, np.float32)  # (K, 6) on 8-bit levels: old flat, new flat

    def predict(self, x: np.ndarray, o: np.ndarray, n: np.ndarray) -> np.ndarray:
        """New colours (N, 3) on [0, 1] for colours x (N, 3) whose flat went from o to n (N, 3 each)."""
        x, o, n = (np.asarray(a, np.float32) for a in (x, o, n))
        m = multiply_recolour(x, o, n)
        h = np.concatenate([x, o, n, m], 1)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = _silu(h)
        return np.clip(m + h, 0.0, 1.0)

    def knows(self, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """(G,) bool: which flat pairs (old, new: (G, 3) uint8) lie near a pair it was trained on."""
        pairs = np.concatenate([old, new], 1).astype(np.float32)
        if len(pairs) == 0 or len(self.seen_pairs) == 0:
            return np.zeros(len(pairs), bool)
        out = np.zeros(len(pairs), bool)
        for i0 in range(0, len(pairs), 256):  # (256, K, 6) at a time
            d = np.abs(pairs[i0:i0 + 256, None, :] - self.seen_pairs[None]).max(2)
            out[i0:i0 + 256] = d.min(1) <= KNOWN_LEVELS
        return out

    @classmethod
    def from_file(cls, path: str | Path) -> LearnedRecolour:
        """Load and check a recolour file; every problem is a BundleError naming the file."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        check_regular_file(path, MAX_RECOLOUR_BYTES, BundleError, "a recolour weights file")
        try:
            with safe_open(str(path), framework="numpy") as f:
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise BundleError(f"{path}: not a readable safetensors file, it may be truncated or corrupt "
                              f"({exc})") from None
        return cls(*_checked(path, tensors))

    def to_file(self, path: str | Path, metadata: dict[str, str] | None = None) -> None:
        from safetensors.numpy import save_file

        tensors = {f"{k}.{p}": np.ascontiguousarray(a) for k, (w, b) in zip(_LAYERS, self.layers, strict=True)
                   for p, a in (("weight", w), ("bias", b))}
        tensors["seen_pairs"] = np.ascontiguousarray(self.seen_pairs)
        save_file(tensors, str(path), metadata=metadata)


def _checked(path: Path, tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    want = {f"{k}.{p}" for k in _LAYERS for p in ("weight", "bias")} | {"seen_pairs"}
    if set(tensors) != want:
        missing, extra = sorted(want - set(tensors)), sorted(set(tensors) - want)
        raise BundleError(f"{path}: not a recolour network (missing {missing or 'nothing'}, unexpected "
                          f"{extra or 'nothing'})")
    for k, a in tensors.items():
        if a.dtype.kind != "f" or not np.isfinite(a).all():
            raise BundleError(f"{path}: tensor '{k}' must hold finite floating-point values")
    w0, w1, w2 = (tensors[f"{k}.weight"] for k in _LAYERS)
    h = w0.shape[0] if w0.ndim == 2 else -1
    shapes_ok = (w0.shape == (h, 12) and w1.shape == (h, h) and w2.shape == (3, h) and 1 <= h <= 1024
                 and all(tensors[f"{k}.bias"].shape == (w.shape[0],) for k, w in zip(_LAYERS, (w0, w1, w2),
                                                                                     strict=True)))
    pairs = tensors["seen_pairs"]
    if not shapes_ok or pairs.ndim != 2 or pairs.shape[1] != 6 or not 1 <= pairs.shape[0] <= 100_000:
        raise BundleError(f"{path}: the recolour network's tensors have the wrong shapes")
    if pairs.min() < 0 or pairs.max() > 255:
        raise BundleError(f"{path}: 'seen_pairs' must be 8-bit colour levels (0..255)")
    return tensors, pairs
