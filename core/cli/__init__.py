"""The headless command line: `artflow <command>` (same as `python main.py <command>`). No Qt on this path, except
`artflow dataset fluent-emoji`, whose builder renders SVG with QtSvg.

One module per command (core/cli/<command>.py: `add_parser` and `run`, a thin layer over core functions);
core/cli/common.py holds what the commands share; core/cli/entry.py builds the parser and turns errors into one
line on stderr and an exit code."""

from __future__ import annotations

COMMANDS = ("generate", "new", "reconstruct", "edit", "export", "dataset", "train", "fit-prior", "eval", "info")


def main(argv: list[str] | None = None) -> int:
    # Imported on call: main.py reads COMMANDS from this package to choose between the CLI and the desktop app, and
    # the commands' modules load torch and the training code, which the app's start must not wait for.
    from core.cli.entry import run
    from core.platform.memory import return_large_blocks

    return_large_blocks()  # resident memory follows what a command holds (core/platform/memory.py)
    return run(argv)
