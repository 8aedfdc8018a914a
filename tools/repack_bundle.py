"""Copy a model bundle under a new name and description, its weights stored as the source stores them (or as fp16
with --half: half the size; they load back as fp32): how a trained run's bundle becomes one of the models shipped
in resources/models/.

    python tools/repack_bundle.py RUN/bundle resources/models/NAME --name NAME --description TEXT [--half]

Only the weights and config.json are written (bundle.save); the model card and sample sheets are added beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.files import bundle  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="a bundle folder")
    ap.add_argument("out", help="the new bundle folder")
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--half", action="store_true", help="store the weights as fp16 (default: as the source does)")
    args = ap.parse_args(argv)
    model = bundle.load(args.source)  # fp32 in memory, whatever the file holds
    model.config = dataclasses.replace(model.config, name=args.name, description=args.description)
    bundle.save(model, args.out, half=args.half or bundle.stored_half(args.source))
    print(f"{args.out}: {sum(p.stat().st_size for p in Path(args.out).iterdir()) / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
