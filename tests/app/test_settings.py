"""Preferences: a test/CLI override of the refinement steps is never saved; a damaged settings file is ignored."""

from __future__ import annotations

import json
import logging
import os

import pytest

from app import autosave
from app.settings import MAX_SETTINGS_BYTES, Settings, config_dir
from tests import forgery


def test_step_override_is_not_persisted(monkeypatch):
    monkeypatch.setenv("ARTFLOW_REFINE_STEPS", "7")
    s = Settings.load()
    assert s.refine_steps == 7
    s.keep_unedited = True
    s.save()
    data = json.loads((config_dir() / "settings.json").read_text())
    assert data["refine_steps"] == 150 and data["keep_unedited"] is True
    monkeypatch.delenv("ARTFLOW_REFINE_STEPS")
    s = Settings.load()
    assert s.refine_steps == 150 and s.keep_unedited
    s.refine_steps = 40  # a choice made in the app is kept
    s.save()
    assert Settings.load().refine_steps == 40


def test_damaged_settings_are_ignored(monkeypatch):
    monkeypatch.delenv("ARTFLOW_REFINE_STEPS")
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "settings.json").write_text('{"refine_steps": "many", "auto_regenerate": 3, "x": 1')
    assert Settings.load() == Settings()
    (config_dir() / "settings.json").write_text('{"refine_steps": "many", "auto_regenerate": 3, "x": 1}')
    s = Settings.load()
    assert s.refine_steps == 150 and s.auto_regenerate is True


@pytest.mark.parametrize("forged", ["nested", "huge", "nan", "fifo", "folder", "list"])
def test_forged_settings_give_defaults_and_a_warning(monkeypatch, caplog, forged):
    """Read through core.safe_io's bounded reader: never a RecursionError, a read of a huge file or a hang."""
    monkeypatch.delenv("ARTFLOW_REFINE_STEPS")
    path = config_dir() / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if forged == "nested":
        path.write_text(forgery.nested(200_000))
    elif forged == "huge":
        path.write_text('{"refine_steps": 40, "last_folder": "' + "x" * MAX_SETTINGS_BYTES + '"}')
    elif forged == "nan":
        path.write_text('{"refine_steps": 40, "preview_every": NaN}')
    elif forged == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)
    elif forged == "folder":
        path.mkdir()
    else:
        path.write_text("[1, 2, 3]")
    with caplog.at_level(logging.WARNING, logger="app.settings"):
        assert Settings.load() == Settings()
    assert any("settings.json" in r.getMessage() for r in caplog.records), caplog.text


def test_a_damaged_autosave_record_still_offers_the_autosave(caplog):
    dead = autosave.autosave_path(pid=999999)
    dead.parent.mkdir(parents=True, exist_ok=True)
    dead.write_bytes(b"PK")  # recovery itself reads the project later, with its own checks
    dead.with_suffix(".json").write_text(forgery.nested(100_000))
    with caplog.at_level(logging.WARNING, logger="app.settings"):
        found = autosave.find_recoverable()
    assert [r.path for r in found] == [dead] and found[0].project == "" and found[0].model == ""
    assert any("artflow-999999.json" in r.getMessage() for r in caplog.records), caplog.text


def test_remembered_models_skip_entries_that_cannot_be_a_model_folder(tmp_path):
    """recent_models comes from a file anyone can edit: a name too long for the file system, a NUL byte or a folder
    without config.json is passed over, never an exception at start-up."""
    good = tmp_path / "model"
    good.mkdir()
    (good / "config.json").write_text("{}")
    path = config_dir() / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"recent_models": ["x" * 5000, "a\u0000b", str(tmp_path / "gone"), str(good)]}))
    s = Settings.load()
    assert s.last_model() == str(good)
    s.remember_model(str(tmp_path / "other"))
    assert s.recent_models[0] == str((tmp_path / "other").resolve()) and len(s.recent_models) == 5
