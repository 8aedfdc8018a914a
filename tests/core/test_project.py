"""Project files (core.files.project): bit-exact round trips, atomic saves, every way a file can be damaged or forged,
and projects made with another model. Also the edit mask of "keep unedited areas" (core.editing.edit_mask)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile

import pytest
import torch
from PIL import Image
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core.config import StageSpec
from core.editing.edit_mask import edit_mask
from core.editing.session import Session, run_to_end
from core.errors import ProjectError
from core.files.bundle import config_hash
from core.files.project import PROJECT_VERSION, Project, apply_project, load_project, project_from_session, save_project
from core.model import WorkflowModel
from tests.core.engine_util import image, tiny_model

OTHER_STAGES = (StageSpec("sketch", 1), StageSpec("paint", 3))


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def other_model():
    return tiny_model(seed=1, stages=OTHER_STAGES)


@pytest.fixture(scope="module")
def edited_session(model):
    """A session in every state a project must keep: inferred targets, refined (non-zero) deltas, an artist layer."""
    s = Session(model, "cpu")
    s.load_artwork(image(3, seed=1))
    run_to_end(s.refine(steps=2, regularizer="none", preview_every=0))
    g = torch.Generator().manual_seed(5)
    s.set_layer(1, (image(3, seed=2), torch.rand(1, 32, 32, generator=g)))
    assert all(d.abs().sum() > 0 for d in s.deltas)
    return s


def _tensors(state):
    out = list(state.bases) + list(state.latents) + list(state.deltas) + list(state.targets or ())
    for ly in state.layers:
        if ly is not None:
            out += list(ly)
    return out


def _assert_states_equal(a, b):
    assert len(a.bases) == len(b.bases)
    assert [ly is None for ly in a.layers] == [ly is None for ly in b.layers]
    assert (a.targets is None) == (b.targets is None)
    for x, y in zip(_tensors(a), _tensors(b), strict=True):
        assert x.dtype == y.dtype == torch.float32
        assert torch.equal(x, y)


EXTRA = {"variations": [{"stage": 1, "z": [0.5] * 8, "label": "warm"}], "stage_status": {"flat": "edited"},
         "note": "ünïcode ✓"}


def test_round_trip_is_bit_exact(tmp_path, model, edited_session):
    project = project_from_session(edited_session, EXTRA)
    path = save_project(project, tmp_path / "a.artflow")
    again = load_project(path, model.config)
    assert not again.read_only and again.warning == ""
    assert (again.model_name, again.config_hash) == ("tiny", config_hash(model.config))
    assert again.stage_names == ["lineart", "flat", "detail"] and again.stage_channels == [1, 3, 3]
    assert again.resolution == 32 and again.extra == EXTRA
    _assert_states_equal(project.state, again.state)
    for x, y in zip(project.stage_images(), again.stage_images(), strict=True):
        assert torch.equal(x, y)
    # Applying it to a fresh session gives back the very same session, and the same generated images.
    fresh = Session(model, "cpu")
    apply_project(fresh, again)
    _assert_states_equal(edited_session.snapshot(), fresh.snapshot())
    for x, y in zip(edited_session.stages, fresh.stages, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(edited_session.generate(1), fresh.generate(1))
    # Saving what was loaded changes nothing either.
    _assert_states_equal(load_project(save_project(again, tmp_path / "b.artflow")).state, project.state)


def test_new_artwork_without_targets_or_layers(tmp_path, model):
    s = Session(model, "cpu")
    s.start_from(image(1, seed=3))
    s.sample_latent(1, seed=4)
    p = load_project(save_project(project_from_session(s), tmp_path / "n.artflow"), model.config)
    assert p.state.targets is None and all(ly is None for ly in p.state.layers) and p.extra == {}
    _assert_states_equal(s.snapshot(), p.state)


def test_file_layout(tmp_path, edited_session):
    path = save_project(project_from_session(edited_session, {"k": 1}), tmp_path / "p.artflow")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[:2] == ["manifest.json", "tensors.safetensors"]
        assert [n for n in names if n.startswith("stages/")] == [
            "stages/00-lineart.png", "stages/01-flat.png", "stages/02-detail.png"]
        assert not any(n.endswith((".pkl", ".pt", ".pth", ".bin")) for n in names)
        m = json.loads(zf.read("manifest.json"))
        assert m["format"] == "artflow-project" and m["version"] == PROJECT_VERSION
        assert m["model"] == {"name": "tiny", "config_hash": config_hash(edited_session.config)}
        assert [s["has_layer"] for s in m["stages"]] == [False, True, False]
        assert m["has_targets"] is True and m["extra"] == {"k": 1} and m["app_version"]
        tensors = st_load(zf.read("tensors.safetensors"))  # plain safetensors, readable by any tool
        assert "latents.1" in tensors and "deltas.0" in tensors and "layers.1.alpha" in tensors
        for k, stage in enumerate(edited_session.stages):
            png = Image.open(io.BytesIO(zf.read(m["stages"][k]["image"])))
            assert png.size == (32, 32) and png.mode == ("L" if stage.shape[0] == 1 else "RGB")


def test_save_is_atomic(tmp_path, edited_session, monkeypatch):
    path = tmp_path / "p.artflow"
    save_project(project_from_session(edited_session, {"v": 1}), path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(ProjectError, match="No space left"):
        save_project(project_from_session(edited_session, {"v": 2}), path)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the previous file is intact
    assert sorted(os.listdir(tmp_path)) == ["p.artflow"]  # and no temp file is left behind
    save_project(project_from_session(edited_session, {"v": 3}), path)  # overwrite in place
    assert load_project(path).extra == {"v": 3}
    assert sorted(os.listdir(tmp_path)) == ["p.artflow"]


def test_extra_must_be_json(tmp_path, edited_session):
    with pytest.raises(ProjectError, match="not JSON-serialisable"):
        save_project(project_from_session(edited_session, {"bad": torch.zeros(1)}), tmp_path / "x.artflow")
    assert not any(tmp_path.iterdir())


# ----- damaged and forged files -----
@pytest.fixture(scope="module")
def good_file(tmp_path_factory, edited_session):
    return save_project(project_from_session(edited_session), tmp_path_factory.mktemp("good") / "good.artflow")


def _entries(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in entries.items():
            zf.writestr(n, data)
    return path


def _with_manifest(good, change):
    e = _entries(good)
    m = json.loads(e["manifest.json"])
    change(m)
    e["manifest.json"] = json.dumps(m).encode()
    return e


def _with_tensors(good, change):
    e = _entries(good)
    t = dict(st_load(e["tensors.safetensors"]))
    change(t)
    e["tensors.safetensors"] = st_save(t)
    return e


def _set(key, value):
    def change(d):
        d[key] = value
    return change


DAMAGE = {
    "not_a_zip": (lambda g: b"hello, I am text", "not a readable zip archive"),
    "empty": (lambda g: b"", "not a readable zip archive"),
    "truncated": (lambda g: g.read_bytes()[: len(g.read_bytes()) // 2], "truncated or corrupt"),
    "no_manifest": (lambda g: {k: v for k, v in _entries(g).items() if k != "manifest.json"}, "no manifest.json"),
    "no_tensors": (lambda g: {k: v for k, v in _entries(g).items() if k != "tensors.safetensors"},
                   "no tensors.safetensors"),
    "bad_json": (lambda g: {**_entries(g), "manifest.json": b"{not json"}, "not valid JSON"),
    "json_list": (lambda g: {**_entries(g), "manifest.json": b"[1, 2]"}, "JSON object"),
    "not_utf8": (lambda g: {**_entries(g), "manifest.json": b"\xff\xfe\x00"}, "not UTF-8"),
    "wrong_format": (lambda g: _with_manifest(g, _set("format", "zip-of-cats")), "not an Artflow project"),
    "newer_version": (lambda g: _with_manifest(g, _set("version", PROJECT_VERSION + 1)), "newer than this Artflow"),
    "version_string": (lambda g: _with_manifest(g, _set("version", "1")), "unknown format version"),
    "version_zero": (lambda g: _with_manifest(g, _set("version", 0)), "unknown format version"),
    "no_model": (lambda g: _with_manifest(g, _set("model", "tiny")), "'model'"),
    "bad_resolution": (lambda g: _with_manifest(g, _set("resolution", 10**6)), "resolution"),
    "one_stage": (lambda g: _with_manifest(g, lambda m: m.update(stages=m["stages"][:1])), "'stages'"),
    "path_in_name": (lambda g: _with_manifest(g, lambda m: m["stages"][1].update(name="../../evil")), "slug"),
    "bad_channels": (lambda g: _with_manifest(g, lambda m: m["stages"][1].update(channels=4)), "channels"),
    "extra_not_object": (lambda g: _with_manifest(g, _set("extra", [1])), "'extra'"),
    "corrupt_tensors": (lambda g: {**_entries(g), "tensors.safetensors": b"\x10\x00\x00\x00garbage"},
                        "not a readable safetensors"),
    "missing_tensor": (lambda g: _with_tensors(g, lambda t: t.pop("latents.1")), "missing tensor(s) latents.1"),
    "unexpected_tensor": (lambda g: _with_tensors(g, _set("evil", torch.zeros(1))), "unexpected tensor(s) evil"),
    "wrong_shape": (lambda g: _with_tensors(g, _set("bases.1", torch.zeros(3, 16, 16))), "'bases.1' has shape"),
    "wrong_dtype": (lambda g: _with_tensors(g, _set("latents.0", torch.zeros(8, dtype=torch.float64))),
                    "float64"),
    "nan": (lambda g: _with_tensors(g, _set("deltas.1", torch.full_like(st_load(_entries(g)[
        "tensors.safetensors"])["deltas.1"], float("nan")))), "NaN"),
    "uneven_deltas": (lambda g: _with_tensors(g, _set("deltas.1", torch.zeros(3))), "'deltas.1' has shape"),
    "layer_flag_lies": (lambda g: _with_manifest(g, lambda m: m["stages"][2].update(has_layer=True)),
                        "missing tensor(s) layers.2.colour"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_files_are_refused_clearly(tmp_path, good_file, model, case):
    make, message = DAMAGE[case]
    content = make(good_file)
    path = tmp_path / "bad.artflow"
    if isinstance(content, dict):
        _write(path, content)
    else:
        path.write_bytes(content)
    with pytest.raises(ProjectError, match=None) as err:
        load_project(path, model.config)
    text = str(err.value)
    assert message in text, text
    assert str(path) in text  # names the file
    assert "\n" not in text  # one line


def test_zip_bomb_manifest_is_refused(tmp_path, good_file):
    e = _entries(good_file)
    e["manifest.json"] = b" " * (17 * 2**20)  # compresses to almost nothing; the declared size gives it away
    with pytest.raises(ProjectError, match="more than a project"):
        load_project(_write(tmp_path / "bomb.artflow", e))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ProjectError, match="file not found"):
        load_project(tmp_path / "nope.artflow")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)


def test_symlink_loop_is_said_to_be_one(tmp_path):
    # Issue 29 F9: not "file not found".
    (tmp_path / "a.artflow").symlink_to(tmp_path / "b.artflow")
    (tmp_path / "b.artflow").symlink_to(tmp_path / "a.artflow")
    with pytest.raises(ProjectError, match="symbolic link loop") as err:
        load_project(tmp_path / "a.artflow")
    assert str(err.value).startswith(str(tmp_path / "a.artflow"))


def test_stage_names_longer_than_a_configs_are_refused(tmp_path, good_file):
    # Issue 29 F5: 60,000-character names made a strip export take 6.6 GB; configs allow 64 characters.
    def rename(n):
        return lambda m: m["stages"][1].update(name="a" * n)

    ok = load_project(_write(tmp_path / "ok.artflow", _with_manifest(good_file, rename(64))))
    assert ok.stage_names[1] == "a" * 64
    for n in (65, 60_000):
        with pytest.raises(ProjectError, match=f"stages.1..name is {n:,} characters long, more than the 64") as err:
            load_project(_write(tmp_path / "long.artflow", _with_manifest(good_file, rename(n))))
        assert len(str(err.value)) < 300 and "\n" not in str(err.value)


def test_hash_of_this_model_with_other_stages_is_inconsistent(tmp_path, good_file, model):
    e = _with_manifest(good_file, lambda m: m["stages"][1].update(name="colour"))
    with pytest.raises(ProjectError, match="inconsistent"):
        load_project(_write(tmp_path / "forged.artflow", e), model.config)


def test_apply_refuses_tensors_that_do_not_fit(tmp_path, good_file, model):
    # A consistent file whose deltas have another length than this model's: caught when applied, and the session
    # is left as it was.
    def shorter(t):
        for i in range(2):
            t[f"deltas.{i}"] = t[f"deltas.{i}"][:5].clone()

    p = load_project(_write(tmp_path / "short.artflow", _with_tensors(good_file, shorter)), model.config)
    s = Session(model, "cpu")
    s.start_from(image(1, seed=9))
    before = s.snapshot()
    with pytest.raises(ProjectError, match="does not fit the open model"):
        apply_project(s, p)
    _assert_states_equal(before, s.snapshot())


# ----- another model -----
def test_project_of_another_model_opens_read_only(tmp_path, good_file, model, other_model):
    p = load_project(good_file, other_model.config)
    assert p.read_only
    assert "made with the model 'tiny'" in p.warning and config_hash(model.config) in p.warning
    assert "viewed" in p.warning and "not edited" in p.warning
    images = p.stage_images()  # still viewable
    assert [tuple(t.shape) for t in images] == [(1, 32, 32), (3, 32, 32), (3, 32, 32)]
    other = Session(other_model, "cpu")
    with pytest.raises(ProjectError, match="made with the model 'tiny'"):
        apply_project(other, p)
    # Opened without a model it is not read-only, but applying it to the wrong model still fails clearly.
    q = load_project(good_file)
    assert not q.read_only
    with pytest.raises(ProjectError, match="not with the open model"):
        apply_project(other, q)


def test_project_of_a_same_architecture_model_of_another_name_opens_read_only(good_file, model):
    """Two bundles of one architecture (the shipped fluent-emoji-128 and emoji-lines-128) share a config hash; the
    name tells them apart, since one's codes and deltas mean nothing to the other's weights."""
    twin = WorkflowModel(dataclasses.replace(model.config, name="tiny-twin"))
    assert config_hash(twin.config) == config_hash(model.config)
    p = load_project(good_file, twin.config)
    assert p.read_only and "made with the model 'tiny'" in p.warning
    with pytest.raises(ProjectError, match="made with the model 'tiny'"):
        apply_project(Session(twin, "cpu"), load_project(good_file))
    assert not load_project(good_file, model.config).read_only


def test_project_dataclass_api(edited_session):
    p = project_from_session(edited_session)
    assert isinstance(p, Project) and p.read_only is False and p.warning == "" and p.extra == {}
    edited_session_copy = [s.clone() for s in edited_session.stages]
    for x, y in zip(p.stage_images(), edited_session_copy, strict=True):
        assert torch.equal(x, y)


# ----- keep unedited areas -----
def test_edit_mask_marks_changed_pixels_dilated_and_feathered():
    old = torch.zeros(3, 32, 32)
    new = old.clone()
    new[:, 10:12, 20:22] = 0.8  # a small stroke
    new[:, 0, 0] += 0.01  # below the threshold (PNG round-off size): not an edit
    m = edit_mask(old, new, threshold=0.02, dilate=3, feather=2)
    assert m.shape == (32, 32) and m.dtype == torch.float32
    assert 0 <= float(m.min()) and float(m.max()) <= 1
    assert torch.all(m[10:12, 20:22] == 1)  # the edit itself
    assert torch.all(m[7:15, 17:25] == 1)  # grown by `dilate`
    assert 0 < float(m[10, 16]) < 1 and 0 < float(m[5, 21]) < 1  # a soft border
    assert float(m[0, 0]) == 0 and float(m[25, 5]) == 0  # untouched far away
    # No change at all -> an all-zero mask; a 1-channel stage works the same.
    assert float(edit_mask(old[:1], old[:1]).max()) == 0
    hard = edit_mask(old, new, dilate=0, feather=0)
    assert int(hard.sum()) == 4


def test_edit_mask_with_session_keeps_unedited_areas(model):
    s = Session(model, "cpu")
    s.start_from(image(1, seed=6))
    before = [t.clone() for t in s.stages]
    new = before[0].clone()
    new[:, 4:8, 4:8] = -1.0
    mask = edit_mask(before[0], new)
    s.set_stage(0, new, keep_mask=mask)
    far = mask == 0
    assert far.any()
    for k in (1, 2):
        assert torch.equal(s.stages[k][:, far], before[k][:, far])
        assert not torch.equal(s.stages[k], before[k])


def test_edit_mask_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        edit_mask(torch.zeros(3, 8, 8), torch.zeros(1, 8, 8))
