"""Contact sheet of a bundle's colourings of drawn-style line art: TEST line art made to look hand-drawn (the
training augmentation: pressure-like width, small gaps, wobble, lighter ink), each with K random colourings
(latent codes drawn from the bundle's prior), flat and detail side by side. The model card shows it.

    python tools/contact_sheet.py data/fluent128-thin/test -o sheet.png [--model DIR] [--rows 8] [--colourings 4]

Rows are the first --rows drawings in the order of sha256(name), so a sheet is repeatable and any bundle can be
shown on the same drawings. Only the model's own 128 px output is shown (no clean flats): this is the network.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.stage_dataset import StageDataset  # noqa: E402
from core.editing.session import Session  # noqa: E402
from core.files import bundle  # noqa: E402
from core.files.imageio import tensor_to_uint8  # noqa: E402
from core.train.augment import hand_drawn_lines  # noqa: E402


def _pil(image: torch.Tensor) -> Image.Image:
    a = tensor_to_uint8(image)
    return Image.fromarray(a, "L" if a.ndim == 2 else "RGB").convert("RGB")


def contact_sheet(data_dir: str, model_dir: str | None, rows: int, colourings: int, seed: int) -> Image.Image:
    model = bundle.load(model_dir or bundle.default_bundle_path())
    session = Session(model, device="cpu")
    size = model.config.resolution
    ds = StageDataset(data_dir, size=size, augment=False)
    order = sorted(range(len(ds)), key=lambda i: hashlib.sha256(ds.sample_names[i].encode()).hexdigest())[:rows]
    cols = 1 + 2 * colourings
    sheet = Image.new("RGB", (cols * size, len(order) * size), "white")
    gen = torch.Generator().manual_seed(seed)
    for r, i in enumerate(order):
        line = hand_drawn_lines(ds.load(i)[0][None], gen, p=1.0)[0]
        session.start_from(line)
        sheet.paste(_pil(session.stages[0]), (0, r * size))
        for c in range(colourings):
            for t in range(session.num_stages - 1):
                session.sample_latent(t, seed=seed * 1000 + r * 10 + c)
            for k, stage in enumerate(session.stages[1:3]):
                sheet.paste(_pil(stage), ((1 + 2 * c + k) * size, r * size))
    return sheet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help="a stage dataset's TEST folder")
    ap.add_argument("-o", "--out", required=True, help="the PNG to write")
    ap.add_argument("--model", default=None, help="model bundle folder (default: the bundled model)")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--colourings", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    contact_sheet(args.data, args.model, args.rows, args.colourings, args.seed).save(args.out)
    print(f"{args.out}: {args.rows} drawings x {args.colourings} colourings", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
