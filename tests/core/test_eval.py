"""`artflow eval` (core.evaluation.workflow): metrics on a test split, contact sheets, errors for datasets that do not
fit."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import cli, config
from core.errors import ArtflowError, DatasetError
from core.evaluation.metrics import ink_f1, l1_01, pairwise_l1_01, psnr_01
from core.evaluation.report import format_table
from core.evaluation.workflow import EvalOptions, eval_order, evaluate, evaluate_bundle
from core.files import bundle
from core.model import WorkflowModel
from tests.core.engine_util import FOUR_STAGES, single_thread  # noqa: F401
from tests.synthetic import make_stage_dataset

RES = 32
N = 6
FAST = EvalOptions(steps=2, refine_limit=2, diversity_samples=3, rows=3, batch_size=4)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    model_dir = bundle.save(WorkflowModel(config.tiny()), root / "m")
    data = make_stage_dataset(root / "data", N, RES)
    return {"root": root, "model": model_dir, "data": data}


@pytest.fixture(scope="module")
def result(setup) -> dict:
    out = setup["root"] / "out"
    metrics = evaluate_bundle(setup["model"], setup["data"], out, FAST, device="cpu", progress=False)
    return {"metrics": metrics, "out": out}


def _values(d: dict) -> list[float]:
    return list(d.values())


def test_metrics_json_keys_and_ranges(result):
    m = result["metrics"]
    on_disk = json.loads((result["out"] / "metrics.json").read_text())
    assert on_disk["inference"] == m["inference"] and on_disk["reconstruction"] == m["reconstruction"]
    assert m["format"] == "artflow-eval" and m["model"]["stages"] == ["lineart", "flat", "detail"]
    assert m["data"]["drawings"] == N and m["data"]["refined"] == 2
    assert len(m["data"]["names"]) == N and len(m["per_drawing"]) == 2
    assert set(m["inference"]["l1"]) == {"lineart", "flat"}
    assert set(m["inference"]["ink_f1"]) == {"lineart"}  # single-channel stages only
    assert 0.0 <= m["inference"]["ink_f1"]["lineart"] <= 1.0
    for key in ("l1", "psnr", "chain_l1", "chain_psnr"):
        assert set(m["generation"][key]) == {"flat", "detail"}
    for v in _values(m["inference"]["l1"]) + _values(m["generation"]["l1"]) + _values(m["generation"]["chain_l1"]):
        assert 0.0 <= v <= 1.0
    for v in _values(m["generation"]["psnr"]) + _values(m["generation"]["chain_psnr"]):
        assert 0.0 < v <= 100.0
    assert set(m["diversity"]["l1"]) == {"flat", "detail"}
    assert all(0.0 <= v <= 1.0 for v in _values(m["diversity"]["l1"]))
    assert m["diversity"]["l1"]["detail"] > 0  # random z make different images
    assert set(m["diversity"]["consistency"]) == {"flat", "detail"}
    assert all(0.0 <= v <= 1.0 for v in _values(m["diversity"]["consistency"]))
    assert m["diversity"]["prior"] == ["standard", "standard"]
    r = m["reconstruction"]
    assert set(r["psnr"]) == {"encoder", "none", "learned"} and r["steps"] == 2
    assert all(0.0 < v <= 100.0 for v in _values(r["psnr"]))
    assert all(0.0 <= v <= 1.0 for v in _values(r["l1"]))
    assert set(r["refine_seconds"]) == {"none", "learned"} and all(v > 0 for v in _values(r["refine_seconds"]))
    e = m["editing"]
    for edit in ("flip", "shrink"):
        assert set(e[edit]["psnr"]) == {"encoder", "none", "learned"}
        assert all(0.0 < v <= 100.0 for v in _values(e[edit]["psnr"]))
    assert set(e["swap"]["realism"]) == {"encoder", "none", "learned", "real"}
    assert all(math.isfinite(v) for v in _values(e["swap"]["realism"]))
    assert m["perceptual"] in ("discriminator", "vgg16") and m["options"]["seed"] == 0
    table = format_table(m)
    assert "reconstruction PSNR" in table and "diversity L1" in table and "lineart" in table
    assert "ink F-score (1 px tol.)" in table
    older = json.loads(json.dumps(m))  # a metrics.json written before the F-score was measured still prints
    del older["inference"]["ink_f1"], older["inference"]["ink_f1_tolerance_px"]
    assert "ink F-score" not in format_table(older) and "inference L1" in format_table(older)


def test_contact_sheets_open(result):
    m = result["metrics"]
    gap = 2
    with Image.open(result["out"] / "samples.png") as im:
        im.load()
        # 3 true stages + inferred line art + encoder recon + refined recon + 3 random-z finals; 3 rows
        # (no header: 32 px tiles are too small for labels)
        assert im.mode == "RGB" and im.size == (9 * RES + 8 * gap, 3 * RES + 2 * gap)
        a = np.asarray(im)
        assert a.std() > 5  # not a blank sheet
    with Image.open(result["out"] / "diversity.png") as im:
        im.load()
        # line art + 3 samples; flat and detail rows for each of the 3 sheet drawings
        assert im.size == (4 * RES + 3 * gap, 6 * RES + 5 * gap)
    assert m["sheet_rows"] == m["data"]["names"][:3]
    assert Path(m["files"]["samples"]).is_file() and Path(m["files"]["diversity"]).is_file()


def test_deterministic_with_seed_and_limit(setup, result, tmp_path):
    model = bundle.load(setup["model"])
    again = evaluate(model, setup["data"], tmp_path / "a", FAST, device="cpu", progress=False)
    first = result["metrics"]
    for key in ("inference", "generation", "diversity", "editing"):
        assert again[key] == first[key], key
    assert again["reconstruction"]["psnr"] == first["reconstruction"]["psnr"]
    # --limit: the first drawings of the fixed order (the same names as in the full run)
    limited = evaluate(model, setup["data"], tmp_path / "b",
                       EvalOptions(limit=3, refine_limit=1, steps=0, diversity_samples=2, rows=8),
                       device="cpu", progress=False)
    assert limited["data"]["names"] == first["data"]["names"][:3]
    assert limited["data"]["drawings"] == 3 and limited["data"]["refined"] == 1
    # 0 steps: both refinements are the encoder-only reconstruction
    p = limited["reconstruction"]["psnr"]
    assert p["none"] == p["learned"] == p["encoder"]
    with Image.open(tmp_path / "b" / "samples.png") as im:
        assert im.size[1] == 3 * RES + 2 * 2  # rows are capped by the drawings evaluated
    # another seed: other random z
    other = evaluate(model, setup["data"], tmp_path / "c", dataclasses.replace(FAST, seed=1),
                     device="cpu", progress=False)
    assert other["diversity"] != first["diversity"]
    assert other["inference"] == first["inference"]


def test_cli_end_to_end(setup, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = cli.main(["eval", str(setup["data"]), "--model", str(setup["model"]), "--limit", "4",
                   "--refine-limit", "1", "--steps", "1", "--diversity-samples", "2", "--rows", "2",
                   "-o", str(out), "--device", "cpu", "--seed", "3"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["data"]["drawings"] == 4 and m["options"]["seed"] == 3 and m["model"]["path"] == str(setup["model"])
    assert "inference L1" in captured.out and str(out / "metrics.json") in captured.out
    for name in ("samples.png", "diversity.png"):
        with Image.open(out / name) as im:
            im.load()


def _dataset_with(tmp_path: Path, src: Path, renames: dict[str, str | None]) -> Path:
    root = tmp_path / "bad"
    shutil.copytree(src, root)
    for old, new in renames.items():
        if new is None:
            shutil.rmtree(root / old)
        else:
            (root / old).rename(root / new)
    return root


@pytest.mark.parametrize("renames, words", [
    ({"1-flat": "1-colour"}, ["do not match", "1-colour", "0-lineart, 1-flat, 2-detail"]),
    ({"2-detail": None}, ["do not match", "2-detail"]),
])
def test_mismatched_stages_exit_2(setup, tmp_path, capsys, renames, words):
    bad = _dataset_with(tmp_path, setup["data"], renames)
    rc = cli.main(["eval", str(bad), "--model", str(setup["model"]), "-o", str(tmp_path / "o"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("artflow eval: error:") and err.count("\n") == 1
    for w in words:
        assert w in err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_wrong_channels_and_missing_folder(setup, tmp_path, capsys):
    bad = _dataset_with(tmp_path, setup["data"], {})
    for f in (bad / "0-lineart").iterdir():  # line art stored as RGB: the model's first stage is grayscale
        Image.open(f).convert("RGB").save(f)
    with pytest.raises(DatasetError, match=r"0-lineart: holds RGB images but the model's stage 'lineart' takes "
                                           r"grayscale"):
        evaluate_bundle(setup["model"], bad, tmp_path / "o", FAST, device="cpu", progress=False)
    rc = cli.main(["eval", str(tmp_path / "nowhere"), "--model", str(setup["model"]), "-o", str(tmp_path / "o")])
    assert rc == 2 and "dataset folder not found" in capsys.readouterr().err
    rc = cli.main(["eval", str(setup["data"]), "--model", str(setup["model"]), "--limit", "0"])
    assert rc == 2 and "--limit must be 1 or more" in capsys.readouterr().err


def test_four_stage_model(tmp_path):
    """Any N-stage model: stage names and channels come from the config (a 1-channel stage in the middle)."""
    rng = np.random.default_rng(1)
    dirs = [tmp_path / "data" / f"{k}-{s.name}" for k, s in enumerate(FOUR_STAGES)]
    for d in dirs:
        d.mkdir(parents=True)
    for j in range(3):
        for d, s in zip(dirs, FOUR_STAGES):
            a = rng.integers(0, 256, (RES, RES, 3) if s.channels == 3 else (RES, RES), dtype=np.uint8)
            Image.fromarray(a).save(d / f"x{j}.png")
    torch.manual_seed(0)
    model = WorkflowModel(config.tiny(stages=FOUR_STAGES))
    m = evaluate(model, tmp_path / "data", tmp_path / "out",
                 EvalOptions(steps=1, refine_limit=1, diversity_samples=2, rows=2), device="cpu", progress=False)
    assert list(m["inference"]["l1"]) == ["sketch", "flat", "shading"]
    assert list(m["diversity"]["l1"]) == ["flat", "shading", "detail"]
    assert m["reconstruction"]["psnr"]["learned"] > 0
    with Image.open(tmp_path / "out" / "diversity.png") as im:
        assert im.size == (3 * RES + 2 * 2, 6 * RES + 5 * 2)  # 3 later stages for each of the 2 sheet drawings


def test_measures():
    a = torch.zeros(2, 3, 4, 4)
    b = a.clone()
    b[1] = 1.0  # half the [-1, 1] range: 0.5 on the [0, 1] scale
    assert psnr_01(a, b).tolist() == pytest.approx([100.0, 10 * math.log10(1 / 0.25)])
    s = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    assert pairwise_l1_01(s) == pytest.approx((0.5 + 1.0 + 0.5) / 3)


def _line_art(columns: list[int], size: int = 16, width: int = 2) -> torch.Tensor:
    """(1, 1, size, size) in [-1, 1]: white with vertical ink lines `width` px wide starting at `columns`."""
    x = torch.ones(1, 1, size, size)
    for c in columns:
        x[..., c:c + width] = -1.0
    return x


def test_ink_f1_tolerates_one_pixel_where_l1_does_not():
    true = _line_art([4, 10])
    shifted = _line_art([5, 11])  # every line one pixel to the right
    blank = torch.ones_like(true)
    # L1 scores the shifted lines exactly as badly as no lines at all ...
    assert float(l1_01(shifted, true)[0]) == pytest.approx(float(l1_01(blank, true)[0]))
    # ... the ink F-score does not.
    assert ink_f1(true, true).tolist() == [1.0]
    assert ink_f1(shifted, true).tolist() == [1.0]
    assert ink_f1(blank, true).tolist() == [0.0]
    assert ink_f1(blank, blank).tolist() == [1.0]  # nothing to draw, nothing drawn


def test_ink_f1_counts_misplaced_and_missing_lines():
    true = _line_art([4, 10])
    far = _line_art([4, 13])  # one line right, one 3 px off (beyond the 1 px tolerance)
    assert ink_f1(far, true).tolist() == [pytest.approx(0.5)]  # precision 1/2, recall 1/2
    half = _line_art([4])  # one of the two lines drawn: precision 1, recall 1/2
    assert ink_f1(half, true).tolist() == [pytest.approx(2 * 0.5 / 1.5)]
    assert ink_f1(far, true, tolerance=3).tolist() == [1.0]
    both = torch.cat([true, half])  # per image
    assert ink_f1(both, torch.cat([true, true])).tolist() == [1.0, pytest.approx(2 / 3)]

def test_eval_order_is_by_sha1_of_the_name():
    # SHA-1: c 84a516..., a 86f7e4..., b e9d71f... -> c, a, b whatever order the folder lists them in.
    for names in (["b", "a", "c"], ["a", "b", "c"], ["c", "b", "a"]):
        assert [names[i] for i in eval_order(names)] == ["c", "a", "b"]
    assert eval_order(["c", "a", "b"]) == [0, 1, 2] and eval_order(["b", "c", "a"]) == [1, 2, 0]


def test_schedule_reaches_the_refinement_and_is_recorded(setup, tmp_path):
    """--schedule: the reconstruction refines on it (another step size than exact's: other pictures), metrics.json
    and the table say which; an unknown name is refused before anything runs."""
    model = bundle.load(setup["model"])
    opts = EvalOptions(limit=2, refine_limit=1, steps=20, diversity_samples=2, rows=2)
    runs = {name: evaluate(model, setup["data"], tmp_path / name, dataclasses.replace(opts, schedule=name),
                           device="cpu", progress=False) for name in ("exact", "fast")}
    assert runs["fast"]["reconstruction"]["schedule"] == "fast"
    assert runs["fast"]["reconstruction"]["psnr"] != runs["exact"]["reconstruction"]["psnr"]
    assert "schedule fast" in format_table(runs["fast"]) and "schedule" not in format_table(runs["exact"])
    with pytest.raises(ArtflowError, match="unknown schedule"):
        dataclasses.replace(opts, schedule="quick").check()
