"""Reading untrusted input files with bounds: only regular files of a bounded size (never a FIFO, a device or a
symlink to /dev/zero, which would hang or read forever), and JSON with a size and a nesting-depth limit (a file of
200,000 brackets must give an error, not a RecursionError).

Every check happens before a byte is read, and the file is opened with O_NONBLOCK so that a path swapped for a FIFO
between the check and the open still cannot block; the open descriptor is checked again (fstat).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.errors import ArtflowError

# Limits of the files Artflow reads (documented in README "Limits"). Generous for real files, small enough that a
# forged one costs at most this much memory.
MAX_JSON_BYTES = 16 * 2**20  # config.json, a project's manifest.json
MAX_JSON_DEPTH = 64  # nesting of objects and arrays; Artflow's own files use 3
MAX_IMAGE_FILE_BYTES = 512 * 2**20
MAX_WEIGHTS_FILE_BYTES = 4 * 2**30  # model.safetensors, VGG16 weights (memory-mapped, not read at once)
MAX_PROJECT_FILE_BYTES = 2 * 2**30


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_stat(st: os.stat_result, name: str, limit: int, error: type[ArtflowError], what: str) -> int:
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{name}: is {_kind(st.st_mode)}, not {what}")
    if st.st_size > limit:
        raise error(f"{name}: {st.st_size:,} bytes, more than the {limit:,} bytes allowed for {what}")
    return st.st_size


def stat_input(path: str | os.PathLike[str], error: type[ArtflowError] = ArtflowError) -> os.stat_result:
    """os.stat of an input file (symlinks followed); `error` naming it when there is none: "file not found", or a
    symbolic link loop said as such (Path.exists() is False for both)."""
    name = str(path)
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{name}: file not found") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{name}: is a symbolic link loop (too many levels of symbolic links)") from None
        raise error(f"{name}: cannot be read ({exc.strerror or exc})") from None


def check_regular_file(path: str | os.PathLike[str], limit: int, error: type[ArtflowError] = ArtflowError,
                       what: str = "a file") -> int:
    """The size of `path` if it is a regular file (symlinks followed) of at most `limit` bytes; else `error`
    naming it. Does not open the file."""
    return _check_stat(stat_input(path, error), str(path), limit, error, what)


def open_regular_file(path: str | os.PathLike[str], limit: int, error: type[ArtflowError] = ArtflowError,
                      what: str = "a file") -> BinaryIO:
    """Open `path` for binary reading after checking (before and after opening, without blocking) that it is a
    regular file of at most `limit` bytes. The caller closes it."""
    check_regular_file(path, limit, error, what)
    name = str(path)
    nonblock = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFOs to block on
    try:
        fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise error(f"{name}: cannot be read ({exc.strerror or exc})") from None
    try:
        _check_stat(os.fstat(fd), name, limit, error, what)
        if nonblock:
            os.set_blocking(fd, True)  # a regular file: blocking mode only matters for pipes
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str | os.PathLike[str], limit: int, error: type[ArtflowError] = ArtflowError,
                      what: str = "a file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (a file that grows past it while read is refused)."""
    with open_regular_file(path, limit, error, what) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise error(f"{path}: more than the {limit:,} bytes allowed for {what}")
    return data


# A JSON string literal (escapes included): removed before counting brackets, which may appear inside strings.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN = np.zeros(256, np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (0 for a scalar), counted without parsing."""
    stripped = _JSON_STRING.sub(b'""', raw)
    if not stripped:
        return 0
    steps = _OPEN[np.frombuffer(stripped, np.uint8)].astype(np.int64)
    return int(np.cumsum(steps).max(initial=0))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # Python's json accepts NaN and Infinity; the standard does not


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def loads_json(text: str | bytes, where: str, error: type[ArtflowError] = ArtflowError,
               limit: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON of at most `limit` bytes nested at most `max_depth` deep; every problem is `error` naming
    `where` (never a RecursionError, a MemoryError or a UnicodeDecodeError)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if len(raw) > limit:
        raise error(f"{where}: {len(raw):,} bytes, more than the {limit:,} bytes allowed")
    depth = json_depth(raw)
    if depth > max_depth:
        raise error(f"{where}: nested {depth} levels deep, more than the {max_depth} allowed")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise error(f"{where} cannot be read (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise error(f"{where} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:  # an integer of more than 4300 digits; depth is checked above
        raise error(f"{where} is not valid JSON ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") \
            from None


def read_json_file(path: str | os.PathLike[str], error: type[ArtflowError] = ArtflowError,
                   limit: int = MAX_JSON_BYTES) -> Any:
    """A bounded JSON file: regular, at most `limit` bytes, nested at most MAX_JSON_DEPTH deep."""
    return loads_json(read_regular_file(path, limit, error, "a JSON file"), str(Path(path)), error, limit)
