"""Artflow entry point.

    python main.py                      -> the desktop app (also: `artflow` with no sub-command)
    python main.py --screenshot F.png   -> the app, a screenshot of its window, exit
    python main.py <command> ...        -> the headless CLI (generate, reconstruct, edit, export, dataset, train,
                                           eval, info); this path never imports Qt
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from core.cli import COMMANDS

    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version")):
        from core.cli import main as cli_main

        return cli_main(argv)
    # Before Qt loads: a missing xcb library would otherwise end in Qt's bare "could not load the platform plugin".
    from core.desktop_deps import xcb_problem

    problem = xcb_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from app.application import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
