"""App preferences and where the app keeps its files. No Qt here.

Preferences live in `<user config dir>/settings.json`; autosaves in `<user data dir>/autosave/` (platformdirs).
Environment overrides, for tests and for running several copies side by side:
ARTFLOW_DATA_DIR (both folders), ARTFLOW_REFINE_STEPS (refinement steps; the default stays the paper's 150).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from core.editing.refine import STEPS
from core.errors import ArtflowError
from core.safe_io import read_json_file

log = logging.getLogger(__name__)
APP_NAME = "Artflow"
MAX_SETTINGS_BYTES = 2**20  # a few hundred bytes in practice; a bigger file is not ours


def data_dir() -> Path:
    env = os.environ.get("ARTFLOW_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    env = os.environ.get("ARTFLOW_DATA_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def _same_kind(default: object, value: object) -> bool:
    if default is None or isinstance(default, list):
        return value is None or (isinstance(value, list) and all(isinstance(x, str) for x in value))
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    return isinstance(value, type(default))


def read_json_object(path: Path, limit: int) -> dict:
    """A small JSON object file of the app's own (bounded like every input); {} with a warning when it is damaged,
    huge or not an object, {} silently when it does not exist yet."""
    if not os.path.lexists(path):
        return {}
    try:
        data = read_json_file(path, limit=limit)
    except ArtflowError as exc:
        log.warning("ignoring %s", exc)
        return {}
    if not isinstance(data, dict):
        log.warning("ignoring %s: not a JSON object", path)
        return {}
    return data


@dataclass
class Settings:
    refine_steps: int = STEPS  # the paper's 150 AdaIN optimisation steps
    refine_after_open: bool = True  # run the refinement right after an artwork is opened
    refine_stop_early: bool = False  # end each transition once its loss has flattened (core.editing.refine's "fast")
    preview_every: int = 5  # refinement preview images every n steps
    autosave_seconds: int = 60
    auto_regenerate: bool = True  # later stages follow every edit (off: they go stale until "Regenerate")
    keep_unedited: bool = False  # "Keep unedited areas" when editing (with edit_restyles)
    # "Let an edit restyle the whole picture": the paper's global propagation; off, an edit changes later stages
    # only inside the regions it touched (issue 27)
    edit_restyles: bool = False
    clean_flats: bool = True  # "Clean flats": one colour per closed line-art region in flat stages (full res)
    last_folder: str = ""
    # File > New drawing's last choice (0 / "": not chosen yet: 2048 x 2048 with the bundle for drawn line art)
    new_width: int = 0
    new_height: int = 0
    new_model: str = ""
    recent_models: list[str] | None = None  # model bundle folders, the last loaded first: the next start opens it

    @classmethod
    def load(cls) -> Settings:
        s = cls()
        path = config_dir() / "settings.json"
        data = read_json_object(path, MAX_SETTINGS_BYTES)  # a damaged settings file must never stop the app
        known = {f.name for f in fields(cls)}
        for k, v in data.items():
            if k in known and _same_kind(getattr(s, k), v):
                setattr(s, k, v)
        s.refine_steps = int(min(max(1, s.refine_steps), 5000))
        s._stored_steps = s.refine_steps
        env = os.environ.get("ARTFLOW_REFINE_STEPS")
        if env:
            try:
                s.override_steps(int(env))
            except ValueError:
                log.warning("ARTFLOW_REFINE_STEPS=%r is not an integer; using %d", env, s.refine_steps)
        s.preview_every = int(min(max(1, s.preview_every), 1000))
        s.autosave_seconds = int(min(max(5, s.autosave_seconds), 3600))
        return s

    def remember_model(self, path: str) -> None:
        """A model was loaded from `path`: first in recent_models (at most 5 kept)."""
        path = str(Path(path).resolve())
        self.recent_models = [path] + [p for p in (self.recent_models or []) if p != path][:4]

    def last_model(self) -> str | None:
        """The most recently loaded model folder that still holds a config.json, or None."""
        for p in self.recent_models or []:
            try:
                if isinstance(p, str) and (Path(p) / "config.json").is_file():
                    return p
            except (OSError, ValueError):  # a forged or damaged entry (a name too long, a NUL byte): skipped
                continue
        return None

    def override_steps(self, steps: int) -> None:
        """Steps for this run only (ARTFLOW_REFINE_STEPS, --steps): never written back to the preferences."""
        self.refine_steps = int(min(max(1, steps), 5000))
        self._override = self.refine_steps

    def save(self) -> None:
        path = config_dir() / "settings.json"
        data = asdict(self)
        if getattr(self, "_override", None) == self.refine_steps:
            data["refine_steps"] = getattr(self, "_stored_steps", STEPS)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot save settings to %s: %s", path, exc)
