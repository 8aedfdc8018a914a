"""Draw a test artwork: a smiling face with dark outlines, off-centre on a wide white canvas (any size). Used by
the full-resolution benchmarks and for the README's screenshot; needs nothing but Pillow.

    python tools/draw_artwork.py OUT.png [--size 1024x768]
"""

from __future__ import annotations

import argparse

from PIL import Image, ImageDraw


def draw_artwork(width: int = 1024, height: int = 768) -> Image.Image:
    """RGB: a yellow face with eyes, cheeks and a smile, outlined in dark ink (about 1/200 of the short side),
    its centre at 40 % of the width."""
    img = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    s = min(width, height)
    ink = (34, 30, 36)
    lw = max(1, s // 200)
    cx, cy, r = int(width * 0.4), height // 2, int(s * 0.36)

    def ellipse(x: float, y: float, rx: float, ry: float, fill) -> None:
        d.ellipse([x - rx, y - ry, x + rx, y + ry], fill=fill, outline=ink, width=lw)

    ellipse(cx, cy, r, r, (252, 196, 52))
    ellipse(cx - r * 0.38, cy - r * 0.2, r * 0.12, r * 0.18, (60, 44, 40))
    ellipse(cx + r * 0.38, cy - r * 0.2, r * 0.12, r * 0.18, (60, 44, 40))
    ellipse(cx - r * 0.62, cy + r * 0.22, r * 0.14, r * 0.09, (244, 128, 110))
    ellipse(cx + r * 0.62, cy + r * 0.22, r * 0.14, r * 0.09, (244, 128, 110))
    d.chord([cx - r * 0.5, cy - r * 0.05, cx + r * 0.5, cy + r * 0.6], 0, 180, fill=(150, 40, 50), outline=ink,
            width=lw)
    # A leaf to the right: a second colour region off the face.
    lx, ly = cx + r * 1.45, cy + r * 0.5
    ellipse(lx, ly, r * 0.28, r * 0.5, (90, 170, 80))
    d.line([lx, ly - r * 0.5, lx, ly + r * 0.5], fill=ink, width=lw)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    draw_artwork(w, h).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
