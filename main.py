"""Artflow entry point.

    python main.py                      -> the desktop app (also: `artflow` with no sub-command)
    python main.py --screenshot F.png   -> the app, a screenshot of its window, exit
    python main.py <command> ...        -> the headless CLI (generate, new, reconstruct, edit, export, dataset,
                                           train, fit-prior, eval, info); this path never imports Qt
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from core.cli import COMMANDS

    if argv and (argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version")):
        from core.cli import main as cli_main

        return cli_main(argv)
    # Before Qt loads: a missing xcb library would otherwise end in Qt's bare "could not load the platform plugin".
    from core.platform.desktop_deps import xcb_problem

    problem = xcb_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    # Before torch loads OpenMP: threads that spin-wait at every barrier take the CPU from each other and from the
    # GUI when the machine is busy. On a loaded 2-core machine a slider drag repainted 3x less often with 2 spinning
    # engine threads than with passive ones (benchmarks/bench_slider_app.py --configs). An explicit value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    from app.application import run_app

    return run_app(argv)


if __name__ == "__main__":
    sys.exit(main())
