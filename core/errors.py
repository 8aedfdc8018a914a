"""Errors that reach the user. Each message names the file or value at fault and what to do."""

from __future__ import annotations

import re


class ArtflowError(Exception):
    """Base class for every error the engine reports to a user (CLI prints it as one line, the app in a box)."""


class ImageError(ArtflowError):
    """An image file is missing, unreadable, corrupt, or cannot be taken by the model."""


class BundleError(ArtflowError):
    """A model bundle (config.json + model.safetensors) is missing, malformed or inconsistent."""


class ProjectError(ArtflowError):
    """A project file (.artflow) is missing, corrupt, of an unknown version, or made for another model."""


class DatasetError(ArtflowError):
    """A stage dataset folder is missing stages or has mismatched files."""


class CancelledError(ArtflowError):
    """Long work (refinement, training) was cancelled by the user; nothing was changed."""


# Characters that must not reach a terminal or a one-line message raw: C0 controls (newline, NUL, ESC: a name read
# from a file could end the line or send escape codes), DEL, C1 controls, the Unicode line and paragraph separators
# (str.splitlines breaks on them) and the bidirectional overrides (they reorder what the terminal shows).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def one_line(text: str) -> str:
    """`text` safe to print as one line: control characters escaped as repr does (\\n, \\r, \\t, \\x1b, \\u2028),
    everything else kept as it is (backslashes included: they are common in Windows paths)."""
    return _UNSAFE.sub(_escape, text)


def shown(text: str, limit: int = 80) -> str:
    """A name read from a file (a model name, a file name) for a message or a dialog: one_line, cut to `limit`
    characters with an ellipsis. Only that much of it is looked at: a forged million-character name costs
    nothing."""
    out = one_line(text[:limit + 1])
    return out if len(out) <= limit else out[:limit - 1] + "…"


class ArtflowWarning(UserWarning):
    """A notice to the user about work that went on another way than asked (the CLI prints it as one line)."""
