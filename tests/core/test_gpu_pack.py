"""tools/gpu_pack.py (pack / unpack roundtrip, size budget) and tools/combine_stage_sets.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.line_art import line_art_from_flat
from core.data.stage_dataset import StageDataset
from core.errors import ArtflowError
from tools.combine_stage_sets import combine
from tools.gpu_pack import CHUNK, pack, unpack


def _make_set(root: Path, n: int, size: int = 32, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    names = [f"d{i:03d}" for i in range(n)]
    for d in ("0-lineart", "1-flat", "2-detail"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for name in names:
        flat = np.full((size, size, 3), 255, np.uint8)
        y, x = rng.integers(2, size // 2, 2)
        flat[y:y + 12, x:x + 12] = rng.integers(0, 256, 3)
        detail = np.clip(flat.astype(int) + rng.integers(-20, 20, flat.shape), 0, 255).astype(np.uint8)
        Image.fromarray(line_art_from_flat(flat), "L").save(root / "0-lineart" / f"{name}.png")
        Image.fromarray(flat, "RGB").save(root / "1-flat" / f"{name}.png")
        Image.fromarray(detail, "RGB").save(root / "2-detail" / f"{name}.png")
    return names


def test_pack_unpack_roundtrip(tmp_path):
    src = tmp_path / "src"
    names = _make_set(src, CHUNK + 5)
    r = pack(src, tmp_path / "p.npz", size=32, progress=False)
    assert r["drawings"] == r["of"] == len(names) and r["bytes"] == (tmp_path / "p.npz").stat().st_size
    assert unpack(tmp_path / "p.npz", tmp_path / "out") == len(names)
    a, b = StageDataset(src, size=32), StageDataset(tmp_path / "out", size=32)
    assert sorted(b.sample_names) == sorted(names) and b.stage_names == a.stage_names and b.channels == [1, 3, 3]
    for name in names[:: CHUNK // 4]:
        i, j = a.sample_names.index(name), b.sample_names.index(name)
        for x, y in zip(a.load(i), b.load(j), strict=True):
            assert np.array_equal(x.numpy(), y.numpy())  # lossless


def test_pack_respects_the_budget_with_a_deterministic_subset(tmp_path):
    src = tmp_path / "src"
    _make_set(src, 2 * CHUNK + 1)
    full = pack(src, tmp_path / "full.npz", size=32, progress=False)
    with np.load(tmp_path / "full.npz", allow_pickle=False) as z:
        first_chunk = sum(len(z[f"chunk0000_stage{k}"]) for k in range(3))
    r = pack(src, tmp_path / "small.npz", size=32, max_bytes=first_chunk + 10, progress=False)
    assert r["drawings"] == CHUNK and full["drawings"] == 2 * CHUNK + 1
    with np.load(tmp_path / "small.npz", allow_pickle=False) as s, np.load(tmp_path / "full.npz") as f:
        assert list(s["names"]) == list(f["names"][:CHUNK])
    with pytest.raises(ArtflowError, match="fits"):
        pack(src, tmp_path / "none.npz", size=32, max_bytes=100, progress=False)


def test_unpack_rejects_other_files(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(3))
    with pytest.raises(ArtflowError, match="stage pack"):
        unpack(tmp_path / "x.npz", tmp_path / "o")
    (tmp_path / "y.npz").write_bytes(b"nonsense")
    with pytest.raises(ArtflowError, match="stage pack"):
        unpack(tmp_path / "y.npz", tmp_path / "o")


def test_combine_stage_sets(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _make_set(a, 3)
    _make_set(b, 2, seed=1)
    out = tmp_path / "mix"
    assert combine(out, [("a", a), ("b", b)]) == 5
    ds = StageDataset(out, size=32)
    assert sorted(ds.sample_names) == ["a-d000", "a-d001", "a-d002", "b-d000", "b-d001"]
    # Re-running with fewer sets removes the links of the others.
    assert combine(out, [("a", a)]) == 3 and len(StageDataset(out, size=32)) == 3
    (b / "1-flat").rename(b / "1-colour")
    with pytest.raises(ArtflowError, match="differ"):
        combine(out, [("a", a), ("b", b)])
