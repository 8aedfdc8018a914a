"""The CLI's parser (every command's module adds its own) and its error handling: an ArtflowError or a file-system
failure is one line on stderr (control characters escaped) and exit code 2, an interrupt exit code 130."""

from __future__ import annotations

import argparse
import sys
import warnings

from tqdm import tqdm

from core import __version__
from core.cli import dataset, edit, export, fit_prior, generate, info, new, reconstruct, train
from core.cli import eval as eval_command
from core.cli.common import apply_threads
from core.errors import ArtflowError, ArtflowWarning, one_line

# In the order of `artflow --help`.
COMMAND_MODULES = (generate, new, reconstruct, edit, export, train, fit_prior, dataset, info, eval_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artflow", description="Artflow: paint with a learned model of your "
                                     "artistic workflow. With no command, `artflow` opens the desktop app.")
    parser.add_argument("--version", action="version", version=f"artflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_parser(sub)
    return parser


def _notices(command: str):
    """warnings.showwarning that prints an ArtflowWarning as one line, like an error (others as Python does)."""
    python_way = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ArtflowWarning):
            # tqdm.write: on a line of its own, a progress bar under way cleared and drawn again below it
            tqdm.write(one_line(f"artflow {command}: warning: {message}"), file=sys.stderr)
        else:
            python_way(message, category, filename, lineno, file, line)

    return show


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _notices(args.command)
            apply_threads(args)
            return int(args.func(args) or 0)
    except ArtflowError as exc:
        # One line whatever the message holds: names read from files (a model's, a stage's, a path) are escaped.
        print(one_line(f"artflow {args.command}: error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"artflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # A safety net for file-system failures not already worded by the engine (disk full, permissions).
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(one_line(f"artflow {args.command}: error: {where}{exc.strerror or exc}"), file=sys.stderr)
        return 2
