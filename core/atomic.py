"""Atomic file writes for projects and exports: a temp file beside the destination, fsync, then os.replace, so a
crash or a full disk never leaves a half-written file under the destination's name."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from core.errors import ArtflowError


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
    # Not tempfile.mkstemp: its files are private (0600) and would stay so after the rename; os.open honours
    # the umask like any ordinary file the user writes.
    tmp = folder / f".{p.name}.{secrets.token_hex(6)}.tmp"
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
