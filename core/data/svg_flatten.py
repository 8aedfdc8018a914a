"""Flatten an SVG body's gradients into one colour each (Qt-free), to find the artist's shapes as regions.

A gradient-shaded shape is one region of the drawing; replaced by the mean colour of its stops and rendered
without antialiasing, it becomes one patch of one colour that core.data.line_art can label.
"""

from __future__ import annotations

import re

import numpy as np

_GRADIENT = re.compile(r"<(linearGradient|radialGradient)\b([^>]*?)(?:/>|>(.*?)</\1\s*>)", re.S)
_STOP = re.compile(r"<stop\b([^>]*?)/?>", re.S)
_NAMED = {"white": (255, 255, 255), "black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 128, 0),
          "blue": (0, 0, 255), "yellow": (255, 255, 0), "gray": (128, 128, 128), "grey": (128, 128, 128)}


def _attr(attrs: str, name: str) -> str | None:
    m = re.search(rf'(?<![\w-]){name}\s*=\s*"([^"]*)"', attrs) or re.search(rf"(?<![\w-]){name}\s*=\s*'([^']*)'",
                                                                          attrs)
    if m:
        return m.group(1).strip()
    m = re.search(rf"(?<![\w-]){name}\s*:\s*([^;\"']+)", attrs)  # inside style="..."
    return m.group(1).strip() if m else None


def parse_color(text: str | None) -> tuple[int, int, int] | None:
    """#rgb, #rrggbb, rgb(r, g, b) or a few colour names -> (r, g, b); None if not understood."""
    if not text:
        return None
    t = text.strip().lower()
    if t.startswith("#"):
        h = t[1:]
        if len(h) == 3 and all(c in "0123456789abcdef" for c in h):
            return tuple(int(c * 2, 16) for c in h)  # type: ignore[return-value]
        if len(h) == 6 and all(c in "0123456789abcdef" for c in h):
            return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
        return None
    m = re.fullmatch(r"rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)", t)
    if m:
        return tuple(min(255, int(v)) for v in m.groups())  # type: ignore[return-value]
    return _NAMED.get(t)


def gradient_colors(body: str) -> dict[str, tuple[int, int, int]]:
    """{gradient id: mean colour of its stops}, following href to the gradient whose stops it reuses."""
    stops: dict[str, list[tuple[int, int, int]]] = {}
    hrefs: dict[str, str] = {}
    for m in _GRADIENT.finditer(body):
        gid = _attr(m.group(2), "id")
        if not gid:
            continue
        cols = [c for c in (parse_color(_attr(s.group(1), "stop-color")) for s in _STOP.finditer(m.group(3) or ""))
                if c is not None]
        stops[gid] = cols
        href = _attr(m.group(2), "xlink:href") or _attr(m.group(2), "href")
        if href and href.startswith("#"):
            hrefs[gid] = href[1:]
    out: dict[str, tuple[int, int, int]] = {}
    for gid in stops:
        seen, cur = set(), gid
        while not stops.get(cur) and cur in hrefs and cur not in seen:
            seen.add(cur)
            cur = hrefs[cur]
        cols = stops.get(cur) or []
        if cols:
            out[gid] = tuple(int(round(v)) for v in np.mean(np.array(cols, dtype=np.float64), axis=0))  # type: ignore[assignment]
    return out


def flatten_gradients(body: str) -> str:
    """The SVG body with every `url(#gradient)` paint replaced by the gradient's mean stop colour: the artist's
    shapes, each in one colour, for finding the regions of the drawing."""
    colors = gradient_colors(body)

    def repl(m: re.Match[str]) -> str:
        c = colors.get(m.group(1))
        return m.group(0) if c is None else "#{:02x}{:02x}{:02x}".format(*c)

    return re.sub(r"url\(\s*['\"]?#([^)'\"\s]+)['\"]?\s*\)", repl, body)
