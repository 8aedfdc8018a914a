"""Autosave files and crash recovery. No Qt here.

Each running app autosaves to `<data dir>/autosave/artflow-<pid>.artflow` (+ a small `.json` with what it was: the
project path it belongs to, the model folder, when). A clean exit deletes both, so a file whose process is gone
is the work of a crashed (or killed) session: the next start offers to recover it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from app.settings import data_dir, read_json_object
from core.files.atomic import process_alive

MAX_INFO_BYTES = 2**20  # the record beside an autosave is a few hundred bytes


def autosave_dir() -> Path:
    return data_dir() / "autosave"


def autosave_path(pid: int | None = None) -> Path:
    return autosave_dir() / f"artflow-{os.getpid() if pid is None else pid}.artflow"


def write_info(project_path: Path, info: dict) -> None:
    meta = project_path.with_suffix(".json")
    tmp = meta.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**info, "saved": datetime.now().isoformat(timespec="seconds")}), encoding="utf-8")
    os.replace(tmp, meta)


def remove(project_path: Path) -> None:
    for p in (project_path, project_path.with_suffix(".json")):
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass


@dataclass(frozen=True)
class Recoverable:
    path: Path  # the autosaved .artflow
    saved: str  # ISO time
    project: str  # the project file it belonged to ("" if never saved)
    model: str  # model folder it was made with

    @property
    def when(self) -> str:
        try:
            return datetime.fromisoformat(self.saved).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return self.saved or "an unknown time"


def find_recoverable() -> list[Recoverable]:
    """Autosaves left by sessions that are no longer running, newest first."""
    folder = autosave_dir()
    if not folder.is_dir():
        return []
    found = []
    for p in folder.glob("artflow-*.artflow"):
        try:
            pid = int(p.stem.split("-", 1)[1])
        except (IndexError, ValueError):
            continue
        if process_alive(pid):
            continue
        info = read_json_object(p.with_suffix(".json"), MAX_INFO_BYTES)  # damaged: recoverable all the same
        saved = str(info.get("saved") or datetime.fromtimestamp(p.stat().st_mtime).isoformat(timespec="seconds"))
        found.append(Recoverable(p, saved, str(info.get("project", "")), str(info.get("model", ""))))
    return sorted(found, key=lambda r: r.saved, reverse=True)
