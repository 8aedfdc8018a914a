"""Model bundles (core.files.bundle): save/load round trips, atomic saves, and every malformed input -> BundleError."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.editing.session import Session, run_to_end
from core.errors import BundleError
from core.files import bundle
from core.files.bundle import CONFIG_FILE, WEIGHTS_FILE
from tests.core.engine_util import FOUR_STAGES, image, single_thread, states_equal, tiny_model  # noqa: F401


@pytest.fixture(scope="module")
def model():
    m = tiny_model(seed=0)
    for i, w in enumerate(m.reg_weights):  # distinct values, so a mix-up of tensors would show
        w.data.copy_(torch.linspace(0, 1, w.numel()) + i)
    return m


@pytest.fixture
def saved(model, tmp_path):
    return bundle.save(model, tmp_path / "tiny-bundle")


def _listing(folder):
    return sorted(os.listdir(folder))


# ----- round trips -----

def test_round_trip_is_bit_exact(model, saved):
    assert sorted(os.listdir(saved)) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded = bundle.load(saved)
    assert loaded.config == model.config
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert b[k].dtype == torch.float32 and torch.equal(a[k], b[k]), k
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert bundle.load_config(saved) == model.config


def test_round_trip_keeps_flags_and_description(tmp_path):
    m = tiny_model(seed=1)
    m.config = m.config.replace(regularizer_trained=(True, False), description="a test model")
    path = bundle.save(m, tmp_path / "flags", model_card="# Card\n")
    cfg = bundle.load(path).config
    assert cfg.regularizer_trained == (True, False) and cfg.description == "a test model"
    assert bundle.load(path).regularizer_trained(0) and not bundle.load(path).regularizer_trained(1)
    assert (path / "MODEL_CARD.md").read_text() == "# Card\n"


def test_half_round_trip_within_fp16_tolerance(model, tmp_path):
    full = bundle.save(model, tmp_path / "full")
    half = bundle.save(model, tmp_path / "half", half=True)
    stored = load_file(str(half / WEIGHTS_FILE))
    assert all(t.dtype == torch.float16 for t in stored.values())
    assert (half / WEIGHTS_FILE).stat().st_size < 0.55 * (full / WEIGHTS_FILE).stat().st_size
    loaded = bundle.load(half).state_dict()
    for k, v in model.state_dict().items():
        got = loaded[k]
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, v, rtol=1e-3, atol=1e-6, msg=k)


def test_four_stage_bundle_round_trip(tmp_path):
    m = tiny_model(seed=2, stages=FOUR_STAGES)
    loaded = bundle.load(bundle.save(m, tmp_path / "four"))
    assert loaded.config == m.config and loaded.config.num_stages == 4
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in m.state_dict().items())


def test_a_loaded_bundle_edits_exactly_like_the_original(tmp_path):
    def edit(m):
        s = Session(m, "cpu")
        s.load_artwork(image(3, seed=1))
        run_to_end(s.refine(steps=5))
        return s.snapshot()

    original = tiny_model(seed=3)
    path = bundle.save(original, tmp_path / "b")
    assert states_equal(edit(bundle.load(path)), edit(original))


def test_describe_and_config_hash(model, saved):
    facts = bundle.describe(saved)
    assert facts["name"] == model.config.name and facts["stages"] == ["lineart", "flat", "detail"]
    assert facts["resolution"] == 32 and facts["size_mb"] > 0
    assert facts["config_hash"] == bundle.config_hash(model.config)
    # The hash covers what shapes the networks, not the name, description or training flags.
    cfg = model.config
    assert bundle.config_hash(cfg.replace(name="other", description="x")) == bundle.config_hash(cfg)
    assert bundle.config_hash(cfg.replace(resolution=64)) != bundle.config_hash(cfg)


# ----- atomic saves -----

def test_save_leaves_no_temporary_folders(model, tmp_path):
    bundle.save(model, tmp_path / "a")
    assert _listing(tmp_path) == ["a"]


def test_save_over_an_existing_bundle(model, tmp_path):
    path = bundle.save(model, tmp_path / "b", model_card="card v1")
    other = tiny_model(seed=9)
    (path / "samples.png").write_bytes(b"png")
    (path / "eval-metrics.json").write_text("{}")
    bundle.save(other, path)
    assert _listing(tmp_path) == ["b"]  # no .tmp / .old folders left behind
    assert _listing(path) == sorted([CONFIG_FILE, WEIGHTS_FILE, "MODEL_CARD.md", "samples.png", "eval-metrics.json"])
    assert (path / "eval-metrics.json").read_text() == "{}"
    assert (path / "MODEL_CARD.md").read_text() == "card v1"  # kept when no new card is given
    loaded = bundle.load(path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in other.state_dict().items())


def test_failed_save_keeps_the_previous_bundle(model, tmp_path, monkeypatch):
    path = bundle.save(model, tmp_path / "b")
    import safetensors.torch

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        bundle.save(tiny_model(seed=9), path)
    assert _listing(tmp_path) == ["b"]
    loaded = bundle.load(path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_failed_final_rename_puts_the_previous_bundle_back(model, tmp_path, monkeypatch):
    path = bundle.save(model, tmp_path / "b")
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="rename failed"):
        bundle.save(tiny_model(seed=9), path)
    monkeypatch.undo()
    assert _listing(tmp_path) == ["b"]
    loaded = bundle.load(path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_save_refuses_to_replace_a_folder_that_is_not_a_bundle(model, tmp_path):
    folder = tmp_path / "my-documents"
    folder.mkdir()
    (folder / "thesis.txt").write_text("precious")
    with pytest.raises(BundleError, match="not a model bundle"):
        bundle.save(model, folder)
    assert (folder / "thesis.txt").read_text() == "precious"
    assert _listing(tmp_path) == ["my-documents"]
    empty = tmp_path / "empty"
    empty.mkdir()
    bundle.save(model, empty)  # an empty folder is fine
    assert CONFIG_FILE in os.listdir(empty)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_saved_bundle_has_ordinary_permissions(model, tmp_path):
    umask = os.umask(0o022)
    try:
        path = bundle.save(model, tmp_path / "b")
    finally:
        os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o755  # not mkdtemp's private 0700


# ----- malformed weights -----

def _copy(saved, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(saved, dst)
    return dst


@pytest.mark.parametrize("keep", [0, 5, 100, "half", "all-but-one"])
def test_truncated_weights(saved, tmp_path, keep):
    path = _copy(saved, tmp_path, "truncated")
    data = (path / WEIGHTS_FILE).read_bytes()
    n = {"half": len(data) // 2, "all-but-one": len(data) - 1}.get(keep, keep)
    (path / WEIGHTS_FILE).write_bytes(data[:n])
    with pytest.raises(BundleError, match="not a readable safetensors file.*truncated or corrupt") as err:
        bundle.load(path)
    assert WEIGHTS_FILE in str(err.value)


def test_garbage_weights(saved, tmp_path):
    path = _copy(saved, tmp_path, "garbage")
    (path / WEIGHTS_FILE).write_bytes(b"\x00" * 8 + b"this is not a safetensors file" * 10)
    with pytest.raises(BundleError, match="not a readable safetensors file"):
        bundle.load(path)


def _forge(saved, tmp_path, name, change):
    path = _copy(saved, tmp_path, name)
    state = load_file(str(path / WEIGHTS_FILE))
    change(state)
    save_file(state, str(path / WEIGHTS_FILE))
    return path


def _set_nan(state, key, value):
    state[key] = state[key].clone()
    state[key].view(-1)[0] = value


@pytest.mark.parametrize("name,change,message", [
    ("wrong-shape", lambda s: s.__setitem__("reg_weights.0", torch.zeros(3)),
     r"tensor 'reg_weights.0' has shape \(3,\), config.json expects \(128,\)"),
    ("missing", lambda s: s.pop("generators.1.mlp.0.bias"), r"missing tensor\(s\) generators.1.mlp.0.bias"),
    ("extra", lambda s: s.__setitem__("backdoor.weight", torch.zeros(2)), r"unexpected tensor\(s\) backdoor.weight"),
    ("nan", lambda s: _set_nan(s, "encoders.0.fc_mu.weight", float("nan")),
     "tensor 'encoders.0.fc_mu.weight' holds NaN or infinite values"),
    ("inf", lambda s: _set_nan(s, "inference.1.downs.0.0.bias", float("-inf")),
     "tensor 'inference.1.downs.0.0.bias' holds NaN or infinite values"),
])
def test_forged_weights(saved, tmp_path, name, change, message):
    with pytest.raises(BundleError, match=message) as err:
        bundle.load(_forge(saved, tmp_path, name, change))
    assert WEIGHTS_FILE in str(err.value)


def test_weights_of_another_config(saved, tmp_path):
    """config.json of a 4-stage model beside 3-stage weights: the mismatch is named, not a crash."""
    path = _copy(saved, tmp_path, "mismatch")
    (path / CONFIG_FILE).write_text(tiny_model(seed=0, stages=FOUR_STAGES).config.to_json())
    with pytest.raises(BundleError, match="do not match config.json"):
        bundle.load(path)


def test_missing_weights_file(saved, tmp_path):
    path = _copy(saved, tmp_path, "noweights")
    (path / WEIGHTS_FILE).unlink()
    with pytest.raises(BundleError, match=f"no {WEIGHTS_FILE}"):
        bundle.load(path)


# ----- malformed config.json -----

def _with_config(saved, tmp_path, edit):
    path = _copy(saved, tmp_path, "cfg")
    if isinstance(edit, str):
        (path / CONFIG_FILE).write_text(edit)
    else:
        data = json.loads((path / CONFIG_FILE).read_text())
        edit(data)
        (path / CONFIG_FILE).write_text(json.dumps(data))
    return path


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


@pytest.mark.parametrize("edit,message", [
    ("{not json", "config.json is not valid JSON"),
    ("", "config.json is not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (lambda d: d.pop("stages"), "missing field 'stages'"),
    (lambda d: d.pop("name"), "missing field 'name'"),
    (lambda d: d.pop("version"), "missing integer field 'version'"),
    (lambda d: d["stages"][1].pop("channels"), "channels"),
    (_set("resolutoin", 64), "unknown top-level field(s) resolutoin"),
    (_set("generator", "dimm", 3), "generator has unknown field(s) dimm"),
    (_set("stages", 0, "colour", True), "stages[0] has unknown field(s) colour"),
    (_set("version", 2), "format version 2 is newer than this Artflow understands (1)"),
    (lambda d: d.__setitem__("stages", d["stages"][:1]), "at least 2 stages (got 1)"),
    (_set("stages", 1, "channels", 2), "stages[1].channels must be 1 or 3 (got 2)"),
    (_set("stages", 1, "name", "Flat Colours"), "stages[1].name 'Flat Colours' must be lower-case"),
    (_set("stages", 1, "name", ["x"]), "stages[1].name ['x'] must be lower-case"),
    (_set("stages", 2, "name", "flat"), "stage name 'flat' is used twice"),
    (_set("stages", "lineart"), "stages must be a list"),
    (_set("generator", None), "generator must be an object"),
    (_set("generator", "dim", 0), "generator.dim must be an integer in 1..1024"),
    (_set("resolution", 30), "resolution 30 must be divisible by 2**generator.n_down"),
    (_set("resolution", 8), "resolution must be an integer in 16..2048"),
    (_set("regularizer_trained", [True]), "regularizer_trained must have one entry per transition"),
])
def test_broken_config(saved, tmp_path, edit, message):
    path = _with_config(saved, tmp_path, edit)
    with pytest.raises(BundleError) as err:
        bundle.load(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)  # the message names the bundle


def test_unreadable_config(saved, tmp_path):
    path = _copy(saved, tmp_path, "binary")
    (path / CONFIG_FILE).write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(BundleError, match="cannot be read"):
        bundle.load(path)


def test_missing_config(saved, tmp_path):
    path = _copy(saved, tmp_path, "noconfig")
    (path / CONFIG_FILE).unlink()
    with pytest.raises(BundleError, match=f"no {CONFIG_FILE}"):
        bundle.load(path)


# ----- not a bundle at all -----

def test_missing_folder(tmp_path):
    with pytest.raises(BundleError, match="not a model folder"):
        bundle.load(tmp_path / "nowhere")


def test_a_path_the_file_system_cannot_hold(tmp_path):
    with pytest.raises(BundleError, match="not a usable model folder path"):
        bundle.load(tmp_path / ("x" * 5000))
    with pytest.raises(BundleError, match="not a model folder"):
        bundle.load("a\x00b")


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt"])
def test_pickle_checkpoint_is_refused_with_a_conversion_hint(model, tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    torch.save(model.state_dict(), path)
    with pytest.raises(BundleError) as err:
        bundle.load(path)
    msg = str(err.value)
    assert "pickle" in msg and "never loads pickle" in msg and "safetensors" in msg and "config.json" in msg


def test_a_single_file_is_not_a_bundle(saved):
    with pytest.raises(BundleError, match="is a folder with"):
        bundle.load(saved / WEIGHTS_FILE)
