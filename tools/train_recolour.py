"""Train the learned recolour of the bundled models (core/train/recolour.py) from the Fluent Emoji tarballs::

    python tools/train_recolour.py /work/shared/data/fluent-emoji \
        -o resources/models/fluent-emoji-128/recolour.safetensors

TRAIN families only, and never the first 32 candidates of the edit benchmark's order (the benchmark's 8 and the
tuning set's 24: `tools/make_edit_set.py --limit 8` and `--skip 8 --limit 24`). CPU: about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.errors import ArtflowError  # noqa: E402
from core.train.recolour import RecolourOptions, train_recolour  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="FLUENT_DIR", help="folder with the Fluent Emoji npm tarballs")
    p.add_argument("-o", "--out", required=True, type=Path, help="the recolour.safetensors to write")
    defaults = RecolourOptions()
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--skip", type=int, default=defaults.skip,
                   help=f"candidate families held out for the edit benchmark (default {defaults.skip})")
    p.add_argument("--seed", type=int, default=defaults.seed)
    args = p.parse_args(argv)
    try:
        train_recolour(args.source, args.out, RecolourOptions(steps=args.steps, skip=args.skip, seed=args.seed),
                       log=lambda line: print(line, file=sys.stderr))
    except ArtflowError as e:
        print(f"train_recolour: error: {e}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
