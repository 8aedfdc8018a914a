"""Atomic writes for projects, exports and output folders: a temp file (or folder) beside the destination, fsync,
then os.replace, so a crash or a full disk never leaves a half-written file under the destination's name.

Temp names are `.<name>.<12 hex>.<pid>.tmp`. A write that was killed (kill -9, power loss) leaves one behind; the
next write into that folder removes it once its process is gone (`sweep_stale`). Names of the older form
`.<name>.<12 hex>.tmp` (no pid) are removed once they are an hour old.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from core.errors import ArtflowError

_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}(?:\.(\d+))?\.tmp$")
_OLD_TEMP_AGE_S = 3600.0


def temp_name(name: str) -> str:
    """A hidden temp name for `name` in Artflow's own pattern (recognised by sweep_stale)."""
    return f".{name}.{secrets.token_hex(6)}.{os.getpid()}.tmp"


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (this one does: another thread may be writing). Meant for POSIX: on
    Windows os.kill terminates the process, so sweep_stale goes by age there."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def sweep_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove temp files and folders of Artflow's naming in `folder` left by writes whose process is gone (or
    pid-less ones over an hour old). Best effort: a failure to remove one is ignored. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if not m:
            continue
        try:
            if m.group(1) is not None and sys.platform != "win32":
                stale = not process_alive(int(m.group(1)))
            else:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > _OLD_TEMP_AGE_S
            if not stale:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def ensure_folder(folder: str | os.PathLike[str], error: type[ArtflowError] = ArtflowError) -> Path:
    """Create `folder` (and its parents) if needed; an OSError becomes `error` naming the folder."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise error(f"{p}: exists and is not a folder (a folder is needed here)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(f"{p}: cannot create the folder ({exc.strerror or exc})") from None
    return p


@contextmanager
def atomic_write(path: str | os.PathLike[str], error: type[ArtflowError] = ArtflowError) -> Iterator[BinaryIO]:
    """`with atomic_write(path) as f: f.write(...)`: the file appears under `path` only when the block completes.

    The parent folder is created if missing. Any OSError (no permission, disk full) becomes `error` naming `path`;
    the temp file is removed on every failure.
    """
    p = Path(path)
    if p.is_dir():
        raise error(f"{p}: is a folder; give a file name")
    folder = ensure_folder(p.parent if str(p.parent) else ".", error)
    sweep_stale(folder)
    # Not tempfile.mkstemp: its files are private (0600) and would stay so after the rename; os.open honours
    # the umask like any ordinary file the user writes.
    tmp = folder / temp_name(p.name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise error(f"{p}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise error(f"{p}: cannot write ({exc.strerror or exc})") from None
        raise


class OutputDir:
    """An output folder being written: files go under `staging` (a hidden sibling of `path`) and appear under
    `path` together when the `atomic_output_dir` block completes."""

    def __init__(self, path: Path, staging: Path) -> None:
        self.path = path
        self.staging = staging

    def final(self, staged: str | os.PathLike[str]) -> Path:
        """Where a file written under `staging` will be once committed."""
        return self.path / Path(staged).relative_to(self.staging)


def check_output_folder(folder: str | os.PathLike[str], error: type[ArtflowError] = ArtflowError) -> Path:
    """Refuse early an output folder that cannot be one (an existing file); nothing is created."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise error(f"{p}: exists and is not a folder (a folder is needed here)")
    return p


@contextmanager
def atomic_output_dir(folder: str | os.PathLike[str], error: type[ArtflowError] = ArtflowError) -> Iterator[OutputDir]:
    """`with atomic_output_dir(OUT) as out:` write every file under `out.staging`; on success they appear in OUT.

    A new OUT appears at once (one rename of the staging folder) or not at all. Into an existing OUT each staged
    file replaces its namesake by a rename (no data is written then, so a full disk cannot strike half-way) and
    other files in OUT are kept. On any failure the staging folder is removed and OUT is as it was. Stale temp
    files of earlier killed writes are swept from OUT and its parent.
    """
    p = check_output_folder(folder, error)
    parent = p.parent if str(p.parent) else Path(".")
    ensure_folder(parent, error)
    sweep_stale(parent)
    if p.is_dir():
        sweep_stale(p)
    staging = parent / temp_name(p.name)
    try:
        staging.mkdir()
    except OSError as exc:
        raise error(f"{p}: cannot write ({exc.strerror or exc})") from None
    try:
        yield OutputDir(p, staging)
        _commit(staging, p)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            where = exc.filename or p
            raise error(f"{where}: cannot write ({exc.strerror or exc})") from None
        raise
    shutil.rmtree(staging, ignore_errors=True)  # emptied by the commit into an existing folder


def _commit(staging: Path, dest: Path) -> None:
    if not dest.exists():
        os.replace(staging, dest)
        return
    # Folders first, files after, each sorted: project.artflow lands before report.json, the last word.
    for src in sorted(staging.rglob("*"), key=lambda q: (not q.is_dir(), str(q))):
        target = dest / src.relative_to(staging)
        if src.is_dir():
            if target.exists() and not target.is_dir():
                raise OSError(20, "exists and is not a folder", str(target))
            target.mkdir(exist_ok=True)
        else:
            os.replace(src, target)
