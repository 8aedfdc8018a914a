"""Atomic writes for projects, exports and output folders: a temp file (or folder) beside the destination, fsync,
then os.replace, so a crash or a full disk never leaves a half-written file under the destination's name.

Temp names are `.<name>.<12 hex>.<pid>.tmp`. A write that was killed (kill -9, power loss) leaves one behind; the
next write into that folder removes it once its process is gone (`sweep_stale`). Names of the older form
`.<name>.<12 hex>.tmp` (no pid) are removed once they are an hour old. An existing output folder is replaced by
swapping folders (`atomic_output_dir`); the old one waits under `.<name>.<12 hex>.<pid>.old` until the new one is in
place, and a killed swap's backup is put back (no folder under its name) or removed (the new one made it) likewise.
"""

from __future__ import annotations

import errno
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
_BACKUP_RE = re.compile(r"^\.(.+)\.[0-9a-f]{12}\.(\d+)\.old$")  # group 1: the name of the folder it was
_OLD_TEMP_AGE_S = 3600.0


def temp_name(name: str) -> str:
    """A hidden temp name for `name` in Artflow's own pattern (recognised by sweep_stale)."""
    return f".{name}.{secrets.token_hex(6)}.{os.getpid()}.tmp"


def backup_name(name: str) -> str:
    """The hidden name an output folder `name` has while its replacement is swapped in (sweep_stale restores it)."""
    return f".{name}.{secrets.token_hex(6)}.{os.getpid()}.old"


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


def _stale(entry: os.DirEntry, pid: str | None, now: float) -> bool:
    if pid is not None and sys.platform != "win32":
        return not process_alive(int(pid))
    return now - entry.stat(follow_symlinks=False).st_mtime > _OLD_TEMP_AGE_S


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a folder of ours, read-only subfolders included (an old output folder may hold some); best effort."""
    def retry(func, p, _exc) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o700)  # a folder of the tree itself (files are never changed)
            func(p)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)


def sweep_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove temp files and folders of Artflow's naming in `folder` left by writes whose process is gone (or
    pid-less ones over an hour old), and settle output-folder swaps that were killed half-way: the old folder's
    backup goes back under its name when no folder is there, else it is removed. Best effort: a failure to remove
    one is ignored. Returns what was removed (or put back)."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        backup = _BACKUP_RE.match(entry.name) if not m else None
        if not m and not backup:
            continue
        try:
            if not _stale(entry, m.group(1) if m else backup.group(2), now):
                continue
            if backup and not os.path.lexists(os.path.join(folder, backup.group(1))):
                os.rename(entry.path, os.path.join(folder, backup.group(1)))  # the swap never finished: undo it
            elif entry.is_dir(follow_symlinks=False):
                remove_tree(entry.path)
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

    All or nothing, even against kill -9: the new OUT is staged as a whole beside the old one and swapped in by
    renames (old OUT -> a hidden backup, staging -> OUT, the backup removed). Into an existing OUT each staged file
    replaces its namesake and the other files in OUT are kept (hard-linked into the staging folder before the
    swap: no data is copied, so a full disk cannot strike then). On any failure the staging folder is removed and
    OUT is as it was; the errors name OUT, never the staging folder. Stale temp files and backups of earlier
    killed writes are swept from OUT's parent (see sweep_stale) and from OUT.
    """
    p = check_output_folder(folder, error)
    # Swapped where it really is: `-o .` or a symlink to a folder replaces that folder, not a name for it.
    real = Path(os.path.realpath(p))
    parent = real.parent
    ensure_folder(parent, error)
    sweep_stale(parent)
    if real.is_dir():
        sweep_stale(real)
    if real.is_dir() and Path(os.path.realpath(os.getcwd())).is_relative_to(real):
        # Swapping the folder the user works in (`-o .`, a parent of it) would pull it from under the shell and
        # carry a whole tree of unrelated files over: an output folder is one of its own.
        raise error(f"{p}: cannot write into the current folder or one above it; give an output folder, e.g. "
                    f"{Path(p) / 'out'}")
    if real.is_dir() and os.path.ismount(real):
        raise error(f"{p}: cannot write (a mount point cannot be swapped for a new folder; give a folder inside it)")
    staging = parent / temp_name(real.name)
    try:
        staging.mkdir()
    except OSError as exc:
        raise error(f"{p}: cannot write ({exc.strerror or exc})") from None
    try:
        yield OutputDir(p, staging)
        _commit(staging, real)
    except BaseException as exc:
        remove_tree(staging)
        if isinstance(exc, OSError):
            raise error(f"{p}: cannot write ({_reason(exc, staging, real)})") from None
        if isinstance(exc, ArtflowError) and str(staging) in str(exc):
            # A file written into the staging folder failed: name it where the user will look for it.
            raise type(exc)(str(exc).replace(str(staging), str(p))) from None
        raise


def _reason(exc: OSError, staging: Path, dest: Path) -> str:
    """An OSError's reason, with the file inside the output folder it concerns (never the staging folder's)."""
    reason = exc.strerror or str(exc)
    for root in (staging, dest):
        try:
            rel = Path(exc.filename).relative_to(root) if exc.filename else None
        except (ValueError, TypeError):
            continue
        return f"{rel}: {reason}" if rel and str(rel) != "." else reason
    return reason


def _commit(staging: Path, dest: Path) -> None:
    if not dest.exists():
        os.replace(staging, dest)
        return
    _check_writable(staging, dest)
    _carry_over(dest, staging)
    shutil.copymode(dest, staging)  # OUT keeps the permissions its owner gave it
    backup = dest.parent / backup_name(dest.name)
    os.rename(dest, backup)
    try:
        os.rename(staging, dest)
    except BaseException:
        os.rename(backup, dest)  # the old folder back under its name (after a kill, sweep_stale does this)
        raise
    remove_tree(backup)


def _check_writable(staging: Path, dest: Path) -> None:
    """The folders of `dest` that the new files go into must be writable, as when files were written into them:
    a folder made read-only is not replaced behind its owner's back."""
    for d in [staging, *(q for q in staging.rglob("*") if q.is_dir() and not q.is_symlink())]:
        target = dest / d.relative_to(staging)
        if target.is_dir() and not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(target))


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link into `new` each file of `old` that `new` does not have (copied where the file system has no hard
    links), folders recreated: the swap keeps them, as writing into the old folder would have."""
    for entry in os.scandir(old):
        src, dst = Path(entry.path), new / entry.name
        if entry.is_dir(follow_symlinks=False):
            if dst.is_symlink() or (dst.exists() and not dst.is_dir()):
                raise IsADirectoryError(errno.EISDIR, "is a folder, where a file is to be written", str(src))
            fresh = not dst.exists()
            if fresh:
                dst.mkdir()
            _carry_over(src, dst)
            # The old folder's permissions (last: a read-only folder is filled first); its times when only carried.
            (shutil.copystat if fresh else shutil.copymode)(src, dst, follow_symlinks=False)
        elif os.path.lexists(dst):
            if dst.is_dir() and not dst.is_symlink():
                raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(src))
        else:
            _link_or_copy(entry, dst)


def _link_or_copy(entry: os.DirEntry, dst: Path) -> None:
    try:
        os.link(entry.path, dst, follow_symlinks=False)
    except (OSError, NotImplementedError):
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), dst)
        elif entry.is_file(follow_symlinks=False):
            shutil.copy2(entry.path, dst)
        else:
            raise
