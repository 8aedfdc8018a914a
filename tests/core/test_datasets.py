"""Stage datasets (core.data.stage_dataset), the anime/face recipes and the Fluent Emoji builder.

Everything runs on tiny fixtures made in tmp_path; nothing here needs /work/shared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from core.data import StageDataset, paired_augment, scan_stage_folders
from core.data.recipes import build_anime_dataset, build_face_dataset, pencil_sketch, region_median_colors, slic_flat
from core.errors import DatasetError
from tests.tarball import write_json_tgz

STAGES = (("sketch", "L"), ("flat", "RGB"), ("detail", "RGB"))


def _pattern(i: int, n: int = 24) -> np.ndarray:
    """A distinct, asymmetric grayscale picture per i (so flips and crops are visible)."""
    y, x = np.indices((n, n))
    return ((x * 7 + y * 3 + i * 40) % 256).astype(np.uint8)


def make_dataset(root: Path, names=("a", "b", "c"), stages=STAGES, suffix=".png") -> Path:
    for k, (stage, mode) in enumerate(stages):
        d = root / f"{k}-{stage}"
        d.mkdir(parents=True)
        for i, n in enumerate(names):
            Image.fromarray(_pattern(i), "L").convert(mode).save(d / f"{n}{suffix}")
    return root


# -------------------------------------------------------------------------------------------- StageDataset


def test_stage_dataset_basics(tmp_path):
    root = make_dataset(tmp_path / "ds")
    (root / "notes").mkdir()  # not a stage folder: ignored
    (root / "README.txt").write_text("hi")
    (root / "1-flat" / ".DS_Store").write_text("junk")  # hidden: ignored
    (root / "2-detail" / "info.json").write_text("{}")  # not an image: ignored
    ds = StageDataset(root, size=16)
    assert len(ds) == 3 and ds.stage_names == ["sketch", "flat", "detail"]
    assert ds.channels == [1, 3, 3] and ds.sample_names == ["a", "b", "c"]
    item = ds[1]
    assert isinstance(item, tuple) and [t.shape for t in item] == [(1, 16, 16), (3, 16, 16), (3, 16, 16)]
    for t in item:
        assert t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
    assert torch.allclose(item[1][0], item[0][0], atol=2 / 255)  # same picture in every stage
    assert ds[-1][0].shape == (1, 16, 16)
    with pytest.raises(IndexError):
        ds[3]
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert [b.shape for b in batch] == [(2, 1, 16, 16), (2, 3, 16, 16), (2, 3, 16, 16)]
    assert [s[:2] for s in scan_stage_folders(root)] == [(0, "sketch"), (1, "flat"), (2, "detail")]


def test_files_match_by_stem_and_explicit_channels(tmp_path):
    root = make_dataset(tmp_path / "ds", stages=(("line", "L"), ("colour", "RGB")))
    for f in (root / "1-colour").glob("*.png"):
        Image.open(f).convert("RGB").save(f.with_suffix(".jpg"))
        f.unlink()
    ds = StageDataset(root, size=8, channels=[3, 1])
    assert ds.files(0)[1].suffix == ".jpg"
    assert [t.shape[0] for t in ds[0]] == [3, 1]
    with pytest.raises(DatasetError, match="channel counts"):
        StageDataset(root, size=8, channels=[1])
    with pytest.raises(DatasetError, match="unsupported channel"):
        StageDataset(root, size=8, channels=[1, 4])


def test_channel_inference_grayscale_modes(tmp_path):
    root = make_dataset(tmp_path / "ds", stages=(("a", "LA"), ("b", "1"), ("c", "RGBA"), ("d", "P")))
    assert StageDataset(root, size=8).channels == [1, 1, 3, 3]


def test_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        StageDataset(tmp_path / "missing", size=8)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a dataset folder"):
        StageDataset(tmp_path / "file", size=8)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "stuff").mkdir()
    with pytest.raises(DatasetError, match="no stage folders"):
        StageDataset(tmp_path / "empty", size=8)
    gap = make_dataset(tmp_path / "gap")
    (gap / "1-flat").rename(gap / "3-flat")
    with pytest.raises(DatasetError, match="0..2 without gaps"):
        StageDataset(gap, size=8)
    dup = make_dataset(tmp_path / "dup")
    (dup / "1-other").mkdir()
    with pytest.raises(DatasetError, match="share an index.*1-flat"):
        StageDataset(dup, size=8)
    one = make_dataset(tmp_path / "one", stages=(("only", "L"),))
    with pytest.raises(DatasetError, match="at least 2 stages"):
        StageDataset(one, size=8)
    nofiles = make_dataset(tmp_path / "nofiles", names=())
    with pytest.raises(DatasetError, match="holds no images"):
        StageDataset(nofiles, size=8)
    twice = make_dataset(tmp_path / "twice")
    Image.new("L", (4, 4)).save(twice / "0-sketch" / "a.jpg")
    with pytest.raises(DatasetError, match="a.jpg"):
        StageDataset(twice, size=8)


def test_mismatched_stages_name_missing_files(tmp_path):
    root = make_dataset(tmp_path / "ds", names=[f"n{i}" for i in range(9)])
    for i in range(7):
        (root / "2-detail" / f"n{i}.png").unlink()
    (root / "0-sketch" / "n8.png").unlink()
    with pytest.raises(DatasetError) as e:
        StageDataset(root, size=8)
    msg = str(e.value)
    assert "2-detail lacks 7: n0, n1, n2, n3, n4 (and 2 more)" in msg
    assert "0-sketch lacks 1: n8" in msg and "\n" not in msg


def test_unreadable_image_is_named(tmp_path):
    root = make_dataset(tmp_path / "ds")
    (root / "1-flat" / "b.png").write_bytes(b"not a png at all")
    ds = StageDataset(root, size=8)  # only the first images are opened up front
    ds[0]
    with pytest.raises(DatasetError, match=r"1-flat/b\.png"):
        ds[1]
    with pytest.raises(DatasetError, match=r"b\.png"):
        ds.verify()
    (root / "0-sketch" / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"a\.png"):
        StageDataset(root, size=8)  # channel inference reads it


def test_augmentation_is_paired(tmp_path):
    root = make_dataset(tmp_path / "ds", names=["a"])
    plain = StageDataset(root, size=24)[0][0][0]
    ds = StageDataset(root, size=24, augment=True)
    torch.manual_seed(0)
    changed = flipped = 0
    for _ in range(40):
        s, f, d = ds[0]
        assert s.shape == (1, 24, 24) and f.shape == (3, 24, 24)
        # Same flip and crop on every stage: the pictures stay identical across stages.
        assert torch.allclose(s[0], f[0], atol=2 / 255) and torch.allclose(f, d)
        assert s.min() >= -1 and s.max() <= 1
        changed += not torch.allclose(s[0], plain)
        flipped += float((s[0] - plain.flip(-1)).abs().mean()) < float((s[0] - plain).abs().mean())
    assert changed > 30 and 8 < flipped < 32


def test_paired_augment_flip_only():
    x = torch.arange(12.0).reshape(1, 3, 4) / 12
    y = x.expand(3, 3, 4).clone()
    out = paired_augment((x, y), scale=(1.0, 1.0), flip_p=1.0)
    assert torch.equal(out[0], x.flip(-1)) and torch.equal(out[1], y.flip(-1))


# ------------------------------------------------------------------------------------------------- recipes


def _two_tone(n: int = 48) -> np.ndarray:
    a = np.zeros((n, n, 3), np.uint8)
    a[:, : n // 2] = (220, 40, 40)
    a[:, n // 2:] = (40, 40, 220)
    return a


def test_pencil_sketch_gives_dark_lines_on_white():
    rgb = np.full((48, 48, 3), 255, np.uint8)
    rgb[12:36, 12:36] = (30, 120, 200)
    sk = pencil_sketch(rgb)
    assert sk.shape == (48, 48) and sk.dtype == np.uint8
    assert sk[2, 2] == 255 and sk[24, 24] == 255  # flat areas: paper white
    assert sk[24, 10:14].min() < 60  # the square's outline is a dark line
    assert (sk < 128).mean() < 0.2


def test_region_median_colors_and_slic():
    rng = np.random.default_rng(0)
    rgb = np.clip(_two_tone().astype(int) + rng.integers(-8, 9, (48, 48, 3)), 0, 255).astype(np.uint8)
    labels = np.zeros((48, 48), np.int64)
    labels[:, 24:] = 7
    flat = region_median_colors(rgb, labels)
    assert len(np.unique(flat[:, :24].reshape(-1, 3), axis=0)) == 1
    np.testing.assert_allclose(flat[0, 0], np.median(rgb[:, :24].reshape(-1, 3), axis=0), atol=0.5)
    np.testing.assert_allclose(flat[0, 40], np.median(rgb[:, 24:].reshape(-1, 3), axis=0), atol=0.5)
    sf = slic_flat(rgb, n_segments=20)
    assert sf.shape == rgb.shape and sf.dtype == np.uint8
    # Much flatter than the noisy input, yet the two colours survive.
    assert sf[:, :20].std(axis=(0, 1)).max() < 5 and sf[10, 5, 0] > 150 and sf[10, 40, 2] > 150


def test_build_anime_dataset(tmp_path):
    src = tmp_path / "art"
    src.mkdir()
    Image.fromarray(_two_tone()).save(src / "one.png")
    Image.fromarray(_two_tone(40)[:30]).save(src / "two.jpg")
    (src / "broken.png").write_bytes(b"garbage")
    (src / "notes.txt").write_text("not art")
    s = build_anime_dataset(src, tmp_path / "out", size=32, n_segments=10, progress=False)
    assert s.written == 2
    assert dict(s.skipped).keys() == {"broken.png", "notes.txt"} and "broken.png" in dict(s.skipped)["broken.png"]
    ds = StageDataset(tmp_path / "out", size=32)
    assert ds.stage_names == ["sketch", "flat", "detail"] and ds.channels == [1, 3, 3]
    assert ds.sample_names == ["one", "two"]
    sketch = np.asarray(Image.open(tmp_path / "out" / "0-sketch" / "one.png"))
    assert sketch.shape == (32, 32) and sketch[16, 15:17].min() < 100 and sketch[16, 4] == 255
    assert "wrote 2" in str(s)


def test_build_face_dataset(tmp_path):
    src, masks = tmp_path / "img", tmp_path / "mask"
    src.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(3)
    noisy = np.clip(_two_tone(64).astype(int) + rng.integers(-30, 31, (64, 64, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(src / "face.png")
    Image.fromarray(noisy).save(src / "nomask.png")
    m = np.zeros((32, 32), np.uint8)  # half-resolution mask, as in CelebAMask-HQ
    m[:, 16:] = 3
    Image.fromarray(m, "L").save(masks / "face.png")
    s = build_face_dataset(src, masks, tmp_path / "out", size=None, progress=False)
    assert s.written == 1 and [n for n, _ in s.skipped] == ["nomask.png"]
    flat = np.asarray(Image.open(tmp_path / "out" / "1-flat" / "face.png"))
    assert len(np.unique(flat.reshape(-1, 3), axis=0)) == 2
    np.testing.assert_allclose(flat[0, 0], np.median(noisy[:, :32].reshape(-1, 3), axis=0), atol=0.5)
    sketch = np.asarray(Image.open(tmp_path / "out" / "0-sketch" / "face.png"))
    assert sketch[:, 31:33].mean() < 128 and sketch[:, :20].min() == 255  # one clean line at the boundary
    # Colour-coded mask + fitting to a square.
    Image.fromarray(np.where(m[..., None] == 3, [0, 255, 0], [255, 0, 255]).astype(np.uint8)).save(
        masks / "nomask.png")
    s2 = build_face_dataset(src, masks, tmp_path / "out2", size=48, progress=False)
    assert s2.written == 2 and StageDataset(tmp_path / "out2", size=48).channels == [1, 3, 3]


# -------------------------------------------------------------------------------------- Fluent Emoji builder

LINE = '<path fill="currentColor" d="M4 4h24v24H4zm3 3v18h18V7z"/>'  # a square outline


def _colour(c: str) -> str:
    return f'<circle cx="16" cy="16" r="12" fill="{c}"/>'


def _tgz(path: Path, prefix: str, icons: dict, aliases: dict | None = None, version: str = "1.0.0") -> None:
    files = {
        "package/icons.json": {"prefix": prefix, "width": 32, "height": 32, "icons": icons,
                               "aliases": aliases or {}},
        "package/package.json": {"name": f"@iconify-json/{prefix}", "version": version},
    }
    write_json_tgz(path, files)


def _names_by_split():
    from core.data.fluent_emoji import is_test_family
    cands = [f"thing-{i}" for i in range(200)]
    return [n for n in cands if not is_test_family(n)][:2], next(n for n in cands if is_test_family(n))


@pytest.fixture
def fluent_src(tmp_path):
    (a, b), t = _names_by_split()
    src = tmp_path / "src"
    src.mkdir()
    line = {a: {"body": LINE}, b: {"body": LINE, "height": 33}, t: {"body": LINE}}
    flat = {a: {"body": _colour("#ff0000")}, f"{a}-medium-dark": {"body": _colour("#800000")},
            b: {"body": _colour("#00ff00"), "height": 33}, t: {"body": _colour("#0000ff")},
            f"{t}-light": {"body": _colour("#8080ff")}, "orphan": {"body": _colour("#000000")}}
    detail = {k: dict(v) for k, v in flat.items()}
    detail[f"{a}-medium-dark"]["hidden"] = True
    aliases = {f"{a}-mirrored": {"parent": a, "hFlip": True}}
    _tgz(src / "iconify-json-fluent-emoji-high-contrast-1.0.0.tgz", "fluent-emoji-high-contrast", line, aliases)
    _tgz(src / "iconify-json-fluent-emoji-flat-1.0.0.tgz", "fluent-emoji-flat", flat, aliases)
    _tgz(src / "iconify-json-fluent-emoji-1.0.1.tgz", "fluent-emoji", detail, aliases, "1.0.1")
    return src, a, b, t


@pytest.fixture
def gui(request):
    """A QApplication (pytest-qt's, so later widget tests can share it); skipped only without PySide6."""
    pytest.importorskip("PySide6.QtSvg")
    return request.getfixturevalue("qapp")


def _pngs(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.png")}


def test_fluent_split_rule():
    from core.data.fluent_emoji import family_of, split_of
    assert family_of("baby-medium-light") == "baby" and family_of("baby-light") == "baby"
    assert family_of("baby") == "baby" and family_of("horizontal-traffic-light") == "horizontal-traffic"
    # Known values of the fixed rule (also documented in the data README).
    _, t = _names_by_split()
    assert split_of(t) == split_of(f"{t}-dark") == "test"


def test_build_fluent_emoji(fluent_src, tmp_path, gui):
    from core.data.fluent_emoji import build_fluent_emoji, split_of
    src, a, b, t = fluent_src
    out = tmp_path / "out"
    s = build_fluent_emoji(src, out, size=32, progress=False, line_art="high-contrast")
    stages = ("0-lineart", "1-flat", "2-detail")
    for st in stages:
        assert _pngs(out / "train" / st) == {a, f"{a}-medium-dark", b}
        assert _pngs(out / "test" / st) == {t, f"{t}-light"}
    assert s.written == {"train": 3, "test": 2}
    assert s.base_written == {"train": 2, "test": 1} and s.tone_written == {"train": 1, "test": 1}
    assert s.hidden_included == 1
    assert "orphan" in dict(s.skipped) and len(s.aliases_skipped) == 3 and "aliases" in str(s)
    info = json.loads((out / "build.json").read_text())
    assert info["written"] == {"train": 3, "test": 2}

    line = Image.open(out / "train" / "0-lineart" / f"{a}.png")
    assert line.mode == "L" and line.size == (32, 32)
    la = np.asarray(line)
    assert la[0, 0] == 255 and la[16, 16] == 255 and la[16, 5] < 40  # black outline on white
    tone_line = np.asarray(Image.open(out / "train" / "0-lineart" / f"{a}-medium-dark.png"))
    np.testing.assert_array_equal(tone_line, la)  # tone variants reuse their base line art
    flat = Image.open(out / "train" / "1-flat" / f"{a}.png")
    assert flat.mode == "RGB" and flat.getpixel((16, 16)) == (255, 0, 0) and flat.getpixel((0, 0)) == (255, 255, 255)
    assert Image.open(out / "test" / "2-detail" / f"{t}-light.png").getpixel((16, 16)) == (128, 128, 255)
    # The 32x33 drawing is fitted (aspect kept) and every stage uses the same box, so they stay aligned.
    bl = np.asarray(Image.open(out / "train" / "0-lineart" / f"{b}.png"))
    bf = np.asarray(Image.open(out / "train" / "1-flat" / f"{b}.png").convert("L"))
    assert (bl[:, 0] == 255).all() and (bf[:, 0] == 255).all()

    for split in ("train", "test"):
        ds = StageDataset(out / split, size=32)
        assert ds.stage_names == ["lineart", "flat", "detail"] and ds.channels == [1, 3, 3]

    # Rebuilding without tone variants, and with a limit, leaves no stale files behind.
    s2 = build_fluent_emoji(src, out, size=32, include_tone_variants=False, limit=1, progress=False)
    first = min(a, b, t)  # `limit` takes base drawings in name order
    assert _pngs(out / "train" / "1-flat") | _pngs(out / "test" / "1-flat") == {first}
    assert _pngs(out / split_of(first) / "0-lineart") == {first}
    assert s2.tone_variants_excluded == 2 and s2.stale_removed == 4 * 3


def test_build_fluent_emoji_thin_outlines(fluent_src, tmp_path, gui):
    """The default first stage: thin outlines of the flat's regions, not the high-contrast silhouettes."""
    from core.data.fluent_emoji import build_fluent_emoji
    from core.data.line_art import regions_of_line_art
    src, a, _, _ = fluent_src
    out = tmp_path / "out"
    build_fluent_emoji(src, out, size=32, progress=False, line_width=1)
    assert json.loads((out / "build.json").read_text())["line_art"] == "outlines"
    la = np.asarray(Image.open(out / "train" / "0-lineart" / f"{a}.png"))
    flat = np.asarray(Image.open(out / "train" / "1-flat" / f"{a}.png"))
    # A 1 px ring around the red disc (radius 12 px at 32 px): paper inside and outside, ink on the rim only.
    assert la[16, 16] == 255 and la[0, 0] == 255 and (la[16, 2:7] == 0).sum() == 1
    assert 60 < (la == 0).sum() < 100  # about the circumference, 2 pi 12 = 75 px
    regions, n = regions_of_line_art(la)
    assert n == 2
    inside = flat[regions == regions[16, 16]]
    assert (inside == (255, 0, 0)).all(-1).mean() > 0.95  # one flat colour (antialiased rim pixels aside)
    # Tone variants get the outlines of their own flat: the same shape gives the same lines.
    np.testing.assert_array_equal(np.asarray(Image.open(out / "train" / "0-lineart" / f"{a}-medium-dark.png")), la)
    with pytest.raises(DatasetError, match="line art style"):
        build_fluent_emoji(src, out, size=32, progress=False, line_art="pencil")


def test_fluent_missing_sources(fluent_src, tmp_path):
    from core.data.fluent_emoji import build_fluent_emoji
    src, *_ = fluent_src
    (src / "iconify-json-fluent-emoji-flat-1.0.0.tgz").unlink()
    with pytest.raises(DatasetError, match="fluent-emoji-flat"):
        build_fluent_emoji(src, tmp_path / "out", size=32, progress=False)
    (src / "junk.tgz").write_bytes(b"not a tarball")
    with pytest.raises(DatasetError, match="junk.tgz"):
        build_fluent_emoji(src, tmp_path / "out", size=32, progress=False)
    with pytest.raises(DatasetError, match="not found"):
        build_fluent_emoji(tmp_path / "nowhere", tmp_path / "out", progress=False)
