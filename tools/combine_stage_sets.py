"""Combine several stage datasets (same stage folders) into one, by symbolic links: OUT/<stage>/<set>-<NAME>.png.

Training takes one stage dataset folder; this makes one from the TRAIN splits of several sets without copying::

    python tools/combine_stage_sets.py /work/data/mix128/train fluent=/work/data/fluent128-thin/train \
        twemoji=/work/data/twemoji128/train noto=/work/data/noto128/train

Each SET=DIR must be a stage dataset with the same stage folders as the others. Links left in OUT from an
earlier run and not made now are removed; OUT must hold nothing but such links.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.stage_dataset import scan_stage_folders  # noqa: E402
from core.errors import ArtflowError  # noqa: E402


def combine(out: Path, sets: list[tuple[str, Path]]) -> int:
    """Link every sample of every set into `out`; returns the number of samples."""
    stage_dirs: list[str] | None = None
    made: set[Path] = set()
    for name, root in sets:
        dirs = [folder.name for folder in (f for _, _, f in scan_stage_folders(root))]
        if stage_dirs is None:
            stage_dirs = dirs
            for d in dirs:
                (out / d).mkdir(parents=True, exist_ok=True)
        elif dirs != stage_dirs:
            raise ArtflowError(f"{root}: stage folders {dirs} differ from {stage_dirs}")
        common = set.intersection(*({p.name for p in (root / d).iterdir()} for d in dirs))
        for d in dirs:
            for fname in sorted(common):
                link = out / d / f"{name}-{fname}"
                target = (root / d / fname).resolve()
                if link.is_symlink() and link.resolve() == target:
                    made.add(link)
                    continue
                if link.exists() or link.is_symlink():
                    link.unlink()
                link.symlink_to(target)
                made.add(link)
    for d in stage_dirs or []:
        for p in (out / d).iterdir():
            if p not in made:
                if not p.is_symlink():
                    raise ArtflowError(f"{p}: not a link made by this tool; refusing to remove it")
                p.unlink()
    return len(made) // max(1, len(stage_dirs or []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="combined stage dataset folder to (re)make")
    ap.add_argument("sets", nargs="+", metavar="SET=DIR", help="a name (file-name prefix) and a stage dataset folder")
    args = ap.parse_args(argv)
    sets = []
    for s in args.sets:
        name, sep, folder = s.partition("=")
        if not sep or not name or not folder:
            ap.error(f"expected SET=DIR, got {s!r}")
        sets.append((name, Path(folder)))
    try:
        n = combine(args.out, sets)
    except ArtflowError as e:
        print(f"combine_stage_sets: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {n} samples from {len(sets)} sets", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
