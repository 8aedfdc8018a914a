"""The Iconify JSON colour emoji builder on a tiny synthetic set (no network, no /work/shared)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data.iconify_emoji import family_of, read_iconify_package, split_of, stages_from_renders
from core.data.line_art import regions_of_line_art
from core.data.stage_dataset import StageDataset
from core.errors import DatasetError
from tests.tarball import write_json_tgz

# A yellow face with a gradient (the detail's shading), a black eye and a red mouth, on a 32 x 32 box.
FACE = ('<radialGradient id="g" cx="16" cy="16" r="14" gradientUnits="userSpaceOnUse">'
        '<stop offset="0" stop-color="#ffe066"/><stop offset="1" stop-color="#e0a000"/></radialGradient>'
        '<circle cx="16" cy="16" r="13" fill="url(#g)"/><rect x="10" y="10" width="4" height="4" fill="#000"/>'
        '<rect x="9" y="20" width="14" height="3" fill="#c00000"/>')


def _tgz(path: Path, icons: dict, licence: str = "CC-BY-4.0") -> Path:
    files = {
        "package/icons.json": {"prefix": "testmoji", "width": 32, "height": 32, "icons": icons,
                               "aliases": {"face-copy": {"parent": "face"}}},
        "package/package.json": {"name": "@iconify-json/testmoji", "version": "9.9.9", "license": licence},
        "package/info.json": {"author": {"name": "Test Artist", "url": "https://example.org"}},
    }
    return write_json_tgz(path, files)


def _names():
    cands = [f"face-{i}" for i in range(300)]
    train = next(n for n in cands if split_of(n) == "train")
    test = next(n for n in cands if split_of(n) == "test")
    return train, test


@pytest.fixture
def gui(request):
    pytest.importorskip("PySide6.QtSvg")
    return request.getfixturevalue("qapp")


def test_split_rule_keeps_tone_variants_with_their_base():
    assert family_of("waving-hand-medium-dark-skin-tone") == "waving-hand"
    assert family_of("couple-dark-skin-tone-light-skin-tone") == "couple"
    assert family_of("dark-sunglasses") == "dark-sunglasses"
    _, test = _names()
    assert split_of(test) == split_of(f"{test}-light-skin-tone") == "test"


def test_stages_from_renders_qt_free():
    shapes = np.full((32, 32, 3), 255, np.uint8)
    shapes[4:28, 4:28] = (240, 200, 0)
    shapes[10:14, 10:14] = 0
    detail = shapes.copy()
    detail[4:28, 4:28] = np.linspace(180, 255, 24).astype(np.uint8)[:, None, None] * np.array([1, 0.8, 0])
    detail[10:14, 10:14] = 0
    line, flat = stages_from_renders(detail, shapes, width=1)
    regions, n = regions_of_line_art(line)
    assert n == 3
    for r in range(1, n + 1):
        assert len(np.unique(flat[regions == r].reshape(-1, 3), axis=0)) == 1
    # The flat's colour is the median of the artwork over the region (the paper's recipe).
    face = detail[4:28, 4:28][(shapes[4:28, 4:28] != 0).any(-1)]
    np.testing.assert_array_equal(flat[20, 20], np.rint(np.median(face, axis=0)).astype(np.uint8))


def test_build_iconify_set(tmp_path, gui):
    from core.data.iconify_emoji import build_iconify_set

    train, test = _names()
    icons = {train: {"body": FACE}, f"{train}-dark-skin-tone": {"body": FACE.replace("#ffe066", "#805020")},
             test: {"body": FACE}, "old": {"body": FACE, "hidden": True}, "broken": {"body": 3},
             "blank": {"body": '<rect width="32" height="32" fill="#fff"/>'}}
    src = _tgz(tmp_path / "iconify-json-testmoji-9.9.9.tgz", icons)
    pkg = read_iconify_package(src)
    assert pkg.licence == "CC-BY-4.0" and pkg.author.startswith("Test Artist") and pkg.prefix == "testmoji"

    out = tmp_path / "out"
    s = build_iconify_set(src, out, size=64, progress=False)
    assert s.written == {"train": 2, "test": 1} and s.hidden_skipped == 1 and s.aliases_skipped == 1
    assert {n for n, _ in s.skipped} == {"broken", "blank"} and "CC-BY-4.0" in str(s)
    info = json.loads((out / "build.json").read_text())
    assert info["licence"] == "CC-BY-4.0" and info["written"] == {"train": 2, "test": 1}
    ds = StageDataset(out / "train", size=64)
    assert ds.stage_names == ["lineart", "flat", "detail"] and ds.channels == [1, 3, 3]
    assert sorted(ds.sample_names) == sorted([train, f"{train}-dark-skin-tone"])
    assert StageDataset(out / "test", size=64).sample_names == [test]

    line = np.asarray(Image.open(out / "train" / "0-lineart" / f"{train}.png"))
    flat = np.asarray(Image.open(out / "train" / "1-flat" / f"{train}.png"))
    detail = np.asarray(Image.open(out / "train" / "2-detail" / f"{train}.png"))
    assert line.ndim == 2 and flat.shape == detail.shape == (64, 64, 3)
    # Thin outlines: face, eye and mouth are separate closed regions, each with one flat colour.
    regions, n = regions_of_line_art(line)
    assert n == 4
    for r in range(1, n + 1):
        assert len(np.unique(flat[regions == r].reshape(-1, 3), axis=0)) == 1
    assert (line == 0).mean() < 0.15
    # The gradient face is one flat region; the detail keeps its shading.
    face = regions == regions[30, 44]
    assert len(np.unique(detail[face].reshape(-1, 3), axis=0)) > 5
    assert tuple(flat[30, 44]) != (255, 255, 255) and flat[30, 44][0] > flat[30, 44][2]

    # Rebuilding without tone variants removes their files (no stale samples).
    s2 = build_iconify_set(src, out, size=64, include_tone_variants=False, progress=False)
    assert s2.written == {"train": 1, "test": 1} and s2.stale_removed == 3


def test_build_iconify_bad_sources(tmp_path):
    from core.data.iconify_emoji import build_iconify_set

    with pytest.raises(DatasetError, match="cannot read"):
        build_iconify_set(tmp_path / "missing.tgz", tmp_path / "out")
    bad = tmp_path / "bad.tgz"
    with tarfile.open(bad, "w:gz") as tar:
        data = b"{}"
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(DatasetError, match="icons.json"):
        build_iconify_set(bad, tmp_path / "out")


def test_cli_dataset_iconify(tmp_path, gui, capsys):
    from core import cli

    train, test = _names()
    src = _tgz(tmp_path / "set.tgz", {train: {"body": FACE}, test: {"body": FACE}})
    code = cli.main(["dataset", "iconify", str(src), "-o", str(tmp_path / "out"), "--size", "32",
                     "--line-width", "1"])
    err = capsys.readouterr().err
    assert code == 0 and "train 1, test 1" in err and "Traceback" not in err
    assert json.loads((tmp_path / "out" / "build.json").read_text())["line_width"] == 1
    assert cli.main(["dataset", "iconify", str(tmp_path / "nope.tgz"), "-o", str(tmp_path / "o2")]) != 0
    err = capsys.readouterr().err
    assert "cannot read tarball" in err and "Traceback" not in err
