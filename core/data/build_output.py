"""What every stage-dataset builder does around its renders: the split/stage folders, the limit on how many drawings,
the removal of a previous build's drawings that this build did not write, and the atomically written build.json."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


def stage_split_dirs(out: Path, splits: Iterable[str], stage_dirs: Iterable[str]) -> dict[tuple[str, str], Path]:
    """OUT/<split>/<stage>/ for every split and stage, created; keyed by (split, stage)."""
    stage_dirs = list(stage_dirs)
    dirs = {(sp, st): out / sp / st for sp in splits for st in stage_dirs}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def first(names: list[str], limit: int | None) -> list[str]:
    """The first `limit` names (all with None; none for a negative limit)."""
    return names if limit is None else names[: max(0, limit)]


def remove_unwritten(dirs: dict[tuple[str, str], Path], written: set[Path]) -> int:
    """Delete the PNGs a previous build left that this build did not write (a rebuild with a smaller --limit, or a
    drawing now skipped), so that every stage folder holds the same names. Returns how many were removed."""
    removed = 0
    for d in dirs.values():
        for f in d.glob("*.png"):
            if f not in written:
                f.unlink()
                removed += 1
    return removed


def write_build_info(out: Path, info: dict) -> None:
    """OUT/build.json, replaced atomically (a killed build never leaves half a record)."""
    tmp = out / ".build.json.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / "build.json")
