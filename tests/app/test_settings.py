"""Preferences: a test/CLI override of the refinement steps is never saved; a damaged settings file is ignored."""

from __future__ import annotations

import json

from app.settings import Settings, config_dir


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
