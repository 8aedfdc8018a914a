"""The edit benchmark (core.evaluation.edits, `artflow eval --edits`): on a synthetic edit set, the no-model baselines
score exactly what they must, the learned methods run from the fitted state, and the CLI writes edits.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import cli
from core.editing.session import Session
from core.evaluation.edits import (
    BASELINES,
    LEARNED,
    baseline,
    edit_regions,
    evaluate_drawing,
    evaluate_edits,
    find_drawings,
    format_edit_table,
)
from core.evaluation.metrics import psnr
from core.files import bundle
from core.files.imageio import load_artwork
from tests.core.engine_util import single_thread, tiny_model  # noqa: F401

# The disc's flat colour before and after the edit, and its detail: flat in the top half, the flat halved (shade)
# in the bottom half. Every value is even, so the exact multiply result (detail * new / old) is an integer too.
OLD, NEW = (200, 100, 60), (40, 120, 220)
SIZES = {"32x32": (32, 32), "64x48": (64, 48)}


def _disc(w: int, h: int, cx: float, cy: float, r: float) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _drawing(folder: Path, w: int, h: int, cx: float, cy: float, r: float) -> None:
    disc = _disc(w, h, cx, cy, r)
    shade = disc & (np.mgrid[0:h, 0:w][0] >= cy)
    images = {}
    for name, colour in (("flat", OLD), ("flat-edited", NEW)):
        flat = np.full((h, w, 3), 255, np.uint8)
        flat[disc] = colour
        detail = flat.copy()
        detail[shade] = np.array(colour) // 2
        images[name] = flat
        images["detail" if name == "flat" else "detail-truth"] = detail
    folder.mkdir(parents=True)
    for name, a in images.items():
        Image.fromarray(a, "RGB").save(folder / f"{name}.png")


@pytest.fixture(scope="module")
def edit_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("edits")
    for label, (w, h) in SIZES.items():
        _drawing(root / label / "a", w, h, w * 0.45, h * 0.5, min(w, h) * 0.3)
        _drawing(root / label / "b", w, h, w * 0.6, h * 0.4, min(w, h) * 0.25)
    (root / "set.json").write_text(json.dumps({"families": ["b", "a"], "tone": "dark"}))
    return root


@pytest.fixture(scope="module")
def result(edit_set) -> dict:
    torch.manual_seed(0)
    return evaluate_edits(Session(tiny_model(), "cpu"), edit_set, steps=2)


def _load(folder: Path, name: str) -> torch.Tensor:
    return (load_artwork(folder / f"{name}.png", 3, 32) + 1) / 2


def test_set_order_sizes_and_limit(edit_set):
    found = find_drawings(edit_set)
    assert list(found) == ["32x32", "64x48"] and [p.name for p in found["64x48"]] == ["b", "a"]
    assert [p.name for p in find_drawings(edit_set / "64x48", limit=1)["64x48"]] == ["b"]
    assert list(find_drawings(edit_set, sizes=["64x48"])) == ["64x48"]


def test_the_no_change_baseline_is_exact(edit_set, result):
    """The baselines recolour the project's own flat, as the learned methods see it (their arithmetic is checked
    exactly in test_local_edit_takes_the_left_part); "none" is the artwork itself."""
    for label in SIZES:
        rows = result["sizes"][label]["rows"]
        for name in ("a", "b"):
            folder = edit_set / label / name
            art, truth = _load(folder, "detail"), _load(folder, "detail-truth")
            mine = {(r["edit"], r["method"]): r for r in rows if r["drawing"] == name}
            # none: the artwork itself, scored against the truth; it moves nothing, so it never spills.
            assert mine["recolour", "none"]["psnr"] == pytest.approx(psnr(art * 2 - 1, truth * 2 - 1), abs=1e-9)
            for kind in ("recolour", "local"):
                assert mine[kind, "none"]["spill"] == 0
                assert mine[kind, "none"]["psnr_changed"] < 25
            assert 0 < mine["local", "none"]["changed_share"] < mine["recolour", "none"]["changed_share"]


def test_local_edit_takes_the_left_part():
    old, new = torch.zeros(3, 8, 10), torch.zeros(3, 8, 10)
    new[:, 2:6, 2:8] = 1  # edited columns 2..7: median x 4.5 -> columns 2..4
    regions = edit_regions(old, new)
    edited, truth_region = regions["local"]
    assert edited.nonzero()[:, 1].unique().tolist() == [2, 3, 4]
    assert truth_region[:, :5].sum() > edited.sum() and not truth_region[:, 5:].any()  # dilated, left of the cut
    assert regions["recolour"][0].sum() == 24 and regions["recolour"][1].all()
    art = torch.full((3, 2, 2), 0.5)
    assert torch.equal(baseline("multiply", art, torch.full_like(art, 0.5), torch.ones_like(art)), torch.ones_like(art))
    assert torch.equal(baseline("add", art, torch.zeros_like(art), torch.ones_like(art)), torch.ones_like(art))


def test_learned_methods_run_from_the_fitted_state(result):
    expect_learned = list(LEARNED)
    assert result["methods"] == expect_learned + list(BASELINES)
    for label in SIZES:
        s = result["sizes"][label]
        assert s["drawings"] == ["b", "a"] and s["fit_seconds"] > 0
        for kind in ("recolour", "local"):
            for m in expect_learned:
                means = s["edits"][kind][m]
                assert math.isfinite(means["psnr"]) and 0 <= means["spill"] <= 1 and means["seconds"] > 0
    rows = result["sizes"]["64x48"]["rows"]
    table = format_edit_table(result)
    assert "| 64x48 | local | multiply |" in table and len(rows) == 2 * 2 * len(result["methods"])


def test_every_learned_edit_starts_from_the_fitted_session(edit_set):
    torch.manual_seed(0)
    session = Session(tiny_model(), "cpu")
    rows = evaluate_drawing(session, edit_set / "64x48" / "a", 2, ["learned-global"] * 2, "exact")
    first, second = (r for r in rows if r["edit"] == "recolour")
    assert first["psnr"] == second["psnr"] and first["spill"] == second["spill"]


def test_cli_edits_only(edit_set, tmp_path, capsys):
    torch.manual_seed(0)
    model = bundle.save(tiny_model(), tmp_path / "m")
    rc = cli.main(["eval", "--edits", str(edit_set), "--model", str(model), "--steps", "1", "--limit", "1",
                   "--edit-size", "64x48", "-o", str(tmp_path / "out"), "--device", "cpu", "--threads", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "out" / "edits.json").read_text())
    assert list(data["sizes"]) == ["64x48"] and data["sizes"]["64x48"]["drawings"] == ["b"]
    assert data["steps"] == 1 and "| 64x48 | recolour | none |" in out
    rc = cli.main(["eval", "--model", str(model)])
    assert rc == 2 and "TEST_DATA_DIR" in capsys.readouterr().err


def test_a_structure_edit_is_scored_against_the_variant(tmp_path):
    """A structure drawing (a shape added to the line art): the learned methods and "none" are scored; none moves
    nothing and so never spills; the rows name the edit "structure"."""
    from core.evaluation.edits import STRUCTURE_METHODS, evaluate_structure

    w, h = 48, 40
    folder = tmp_path / "32x32" / "structure-x"
    folder.mkdir(parents=True)
    line = np.full((h, w), 255, np.uint8)
    ring = _disc(w, h, 24, 20, 14) & ~_disc(w, h, 24, 20, 12)
    line[ring] = 0
    edited = line.copy()
    edited[26:28, 14:34] = 0  # a new stroke across the lower part: a new closed shape
    detail = np.full((h, w, 3), 255, np.uint8)
    detail[_disc(w, h, 24, 20, 13)] = OLD
    truth = detail.copy()
    truth[28:33, 15:33] = NEW
    for name, a in (("lineart", line), ("lineart-edited", edited), ("detail", detail), ("detail-truth", truth)):
        Image.fromarray(a).save(folder / f"{name}.png")
    assert list(find_drawings(tmp_path)) == ["32x32"]
    torch.manual_seed(0)
    rows = evaluate_structure(Session(tiny_model(), "cpu"), folder, 2, STRUCTURE_METHODS, "exact")
    assert [r["method"] for r in rows] == list(STRUCTURE_METHODS) and {r["edit"] for r in rows} == {"structure"}
    none = rows[-1]
    assert none["spill"] == 0 and none["psnr"] == pytest.approx(psnr(_load(folder, "detail") * 2 - 1,
                                                                      _load(folder, "detail-truth") * 2 - 1))
