"""Clean flats: one colour per closed region of the line art, at the artwork's own resolution.

The paper builds its flat-colour training data as "the median colour of each region" (supplementary); here the
same recipe decodes the model's flat stage: the model's (upsampled) flat output is only asked for the colour of
each region, and the region shapes come from the full-resolution line art, so edges are as crisp as the lines.

Regions: the connected components (4-connected) of non-line pixels, with the line art's small gaps closed the
way a fill tool's "close gap" does: components are taken over the paper farther than `close_gap` pixels from any
line (so a gap up to 2 * close_gap pixels wide lets nothing through; leaving pixels out can split regions but
never merge two), then grown back over the pixels near the lines. Solid black shapes of the line art (filled
areas much thicker than its strokes) are regions of their own. The other pixels (strokes, closed gaps, paper
next to a line) join their nearest region, so that a stroke between two colours is split down its middle; or
line pixels keep the line colour (`lines="ink"`).

Arrays: line art (1, H, W) or (H, W) in [-1, 1] (black lines on white); colours (3, H, W) in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

CLOSE_GAP = 2  # pixels: closes gaps up to 4 px wide, like a fill tool's default "close gap"
LINE_LEVEL = 0.0  # a pixel darker than mid-grey is line
SOLID_FACTOR = 2.5  # a line pixel deeper inside the ink than this many stroke half-widths is a filled shape
LINE_POLICIES = ("split", "ink")
# _near dilates by up to this radius with shifted ORs (measured ~10x faster than scipy's maximum_filter1d or a
# distance transform at 4096 x 3072); beyond, a distance transform in the mask's box
SMALL_RADIUS = 4
MEDIAN_BAND = 256  # rows per band of region_medians' histograms


@dataclass(frozen=True)
class Regions:
    """labels (H, W) int32: 1..count for every pixel, after strokes and near-line pixels joined their nearest
    region; line (H, W) bool: the line pixels; own (H, W) bool: the pixels that belong to their region in their
    own right (not a stroke, not within close_gap of one): the pixels a region's colour is measured on."""

    labels: np.ndarray
    count: int
    line: np.ndarray
    own: np.ndarray


def _line_mask(line_art: torch.Tensor | np.ndarray, level: float) -> np.ndarray:
    """Line pixels of (1, H, W) / (H, W) in [-1, 1], or of a uint8 line art (H, W) / (H, W, C) as stored."""
    if isinstance(line_art, np.ndarray) and line_art.dtype == np.uint8:
        # u / 127.5 - 1 < level, on the channels' mean, in exact integers (level 0: u < 127.5).
        u = line_art.astype(np.int32).sum(2) if line_art.ndim == 3 else line_art
        n = line_art.shape[2] if line_art.ndim == 3 else 1
        return u < (level + 1) * 127.5 * n
    a = line_art.detach().float().cpu().numpy() if isinstance(line_art, torch.Tensor) else np.asarray(line_art)
    if a.ndim == 3:
        a = a.mean(0)
    if a.ndim != 2:
        raise ValueError(f"line art must be (1, H, W) or (H, W), got shape {a.shape}")
    return a < level


def near(mask: np.ndarray, radius: float) -> np.ndarray:
    """The pixels within Euclidean distance `radius` of a True pixel of `mask`, i.e.
    distance_transform_edt(~mask) <= radius, exactly. A small radius is a dilation by the disc's offsets (shifted
    shifted ORs: no distance transform over the whole image); a large one a distance transform over the mask's bounding
    box grown by the radius (nothing farther can be that near)."""
    h, w = mask.shape
    r = int(np.floor(radius))
    if r <= SMALL_RADIUS:
        out = mask.copy()
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if (dy or dx) and dy * dy + dx * dx <= radius * radius:
                    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] |= \
                        mask[max(0, -dy):h + min(0, -dy), max(0, -dx):w + min(0, -dx)]
        return out
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    out = np.zeros_like(mask)
    if rows.size == 0:
        return out
    y0, y1 = max(0, rows[0] - r - 1), min(h, rows[-1] + r + 2)
    x0, x1 = max(0, cols[0] - r - 1), min(w, cols[-1] + r + 2)
    out[y0:y1, x0:x1] = ndimage.distance_transform_edt(~mask[y0:y1, x0:x1]) <= radius
    return out


def _grown_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The bounding box of mask's True pixels grown by `margin` (cut at the image), as an index."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    h, w = mask.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + margin + 1)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + margin + 1)))


def find_regions(line_art: torch.Tensor | np.ndarray, close_gap: int = CLOSE_GAP,
                 level: float = LINE_LEVEL) -> Regions:
    """The closed regions of a line art (see the module doc)."""
    line = _line_mask(line_art, level)
    four = ndimage.generate_binary_structure(2, 1)
    if line.any():
        # Region cores: paper farther than close_gap from every line pixel. A gap of up to 2 * close_gap pixels
        # has no such pixel, so a fill cannot leak through it (a fill tool's "close gap"); dropping pixels can
        # split regions, never merge two.
        own = ~near(line, close_gap) if close_gap > 0 else ~line
    else:
        own = ~line
    solid_box, solid_labels, n_solid = None, None, 0
    if line.any():
        # Filled shapes: ink deeper than SOLID_FACTOR stroke half-widths, grown back to their outline (an
        # opening by distance). The half-width is the median depth along the ink's ridges (local maxima of the
        # distance to paper): strokes have long ridges, filled shapes short ones, so strokes set it.
        # Within the ink's box (grown by 2: a ring of paper, the 3 x 3 filter's reach): every ink pixel's
        # nearest paper pixel is inside it, so the depths are those of the whole image. (Before the regions
        # are labelled: the label array is not alive at this peak.)
        box = _grown_box(line, 2)
        line_box = line[box]
        depth = ndimage.distance_transform_edt(line_box)
        ridge = line_box & (depth >= ndimage.maximum_filter(depth, size=3))
        cut = SOLID_FACTOR * max(float(np.median(depth[ridge])), 1.0)
        core = np.zeros_like(line)
        core[box] = depth > cut
        del depth, ridge
        if core.any():
            solid = near(core, cut) & line
            solid_box = _grown_box(solid, 0)  # labelled in its box: no full-size label arrays
            solid_labels, n_solid = ndimage.label(solid[solid_box], structure=four)
            del solid
        del core
    labels, count = ndimage.label(own, structure=four)
    if n_solid:
        is_solid = solid_labels > 0
        labels[solid_box] = np.where(is_solid, solid_labels + count, labels[solid_box])
        own[solid_box] |= is_solid
        count += n_solid
        del solid_labels, is_solid
    if count == 0:  # all ink: one region
        return Regions(np.ones(line.shape, np.int32), 1, line, np.ones(line.shape, bool))
    if not own.all():
        # Every stroke, gap and near-line pixel joins its nearest region.
        # Within the box of those pixels grown by 2: outside it every pixel is a region's own, so a nearest
        # one is always inside (moving a farther one into the box brings it strictly closer).
        box = _grown_box(~own, 2)
        idx = ndimage.distance_transform_edt(~own[box], return_distances=False, return_indices=True)
        crop = labels[box]
        labels[box] = crop[idx[0], idx[1]]
    return Regions(labels.astype(np.int32), int(count), line, own)


def region_medians(labels: np.ndarray, count: int, colours: torch.Tensor | np.ndarray, where: np.ndarray | None = None
                   ) -> np.ndarray:
    """The median colour of every region: (count + 1, C) uint8, row r for label r (row 0 unused).

    colours (C, H, W) in [-1, 1] (or uint8 (H, W, C)) are taken at 8-bit precision (what is displayed and
    saved); the median of a region's n values is the lower one for even n. Only pixels where `where` is True
    count; a region without such pixels takes the median over all its pixels. A histogram per region: linear in
    the pixel count."""
    if isinstance(colours, np.ndarray):  # uint8 (H, W, C) or (H, W): already on 8-bit levels
        q = colours[None] if colours.ndim == 2 else np.moveaxis(colours, 2, 0)
    else:
        a = colours.detach().float().cpu().clamp(-1, 1)
        q = ((a + 1) * 127.5).round().to(torch.uint8).numpy()  # (C, H, W)
    nc, bins = q.shape[0], (count + 1) * 256

    def histograms(sel: np.ndarray | None) -> np.ndarray:
        # Row bands: the int64 keys bincount needs stay a band's size (~300 MB at once for a 4096 px stage).
        hists = np.zeros((nc, bins), np.int64)
        for y0 in range(0, labels.shape[0], MEDIAN_BAND):
            band = slice(y0, y0 + MEDIAN_BAND)
            lab = labels[band].astype(np.int64) * 256
            for c in range(nc):
                key = lab + q[c, band]
                hists[c] += np.bincount((key if sel is None else key[sel[band]]).ravel(), minlength=bins)
        return hists.reshape(nc, count + 1, 256)

    hists = histograms(where)
    out = np.zeros((count + 1, nc), np.uint8)
    missing = np.flatnonzero(hists[0, 1:].sum(1) == 0) + 1
    if missing.size and where is not None:
        hists[:, missing] = histograms(None)[:, missing]
    for c in range(nc):
        hist = hists[c]
        cum = hist.cumsum(1)
        n = cum[:, -1]
        # Lower median: the first level whose cumulative count reaches ceil(n / 2).
        out[:, c] = (cum < ((n + 1) // 2)[:, None]).sum(1).clip(0, 255)
    return out


def clean_flat(line_art: torch.Tensor, colours: torch.Tensor, close_gap: int = CLOSE_GAP, lines: str = "split",
               regions: Regions | None = None) -> torch.Tensor:
    """One colour per closed region of `line_art` (1, H, W): the median of `colours` (3, H, W) (the model's
    upsampled flat output) over the region's own pixels. lines="split": strokes take their nearest region's
    colour (flats drawn without outlines, like Fluent Emoji); "ink": line pixels keep the line art's own grey
    (flats drawn over their lines). Returns (3, H, W) in [-1, 1], on 8-bit levels."""
    if lines not in LINE_POLICIES:
        raise ValueError(f"lines must be one of {', '.join(LINE_POLICIES)}, got {lines!r}")
    if colours.shape[-2:] != line_art.shape[-2:]:
        raise ValueError(f"line art {tuple(line_art.shape)} and colours {tuple(colours.shape)} differ in size")
    reg = regions if regions is not None else find_regions(line_art, close_gap)
    table = region_medians(reg.labels, reg.count, colours, reg.own)
    flat = torch.from_numpy(table[reg.labels]).permute(2, 0, 1).float() / 127.5 - 1.0  # (C, H, W)
    if lines == "ink":
        ink = line_art.detach().float().cpu().reshape(1, *flat.shape[-2:])
        flat = torch.where(torch.from_numpy(reg.line)[None], ink.expand_as(flat), flat)
    return flat.contiguous()


def clean_flat_u8(regions: Regions, colours: np.ndarray, lines: str = "split", line_art: np.ndarray | None = None
                  ) -> np.ndarray:
    """clean_flat on 8-bit images, without float copies: `colours` uint8 (H, W, C) (the model's flat output
    brought to full size), the line art's `regions`; lines="ink" keeps the uint8 `line_art` (H, W) on the line
    pixels. Returns uint8 (H, W, C), equal to clean_flat's result rounded to 8 bits."""
    if lines not in LINE_POLICIES:
        raise ValueError(f"lines must be one of {', '.join(LINE_POLICIES)}, got {lines!r}")
    table = region_medians(regions.labels, regions.count, colours, regions.own)
    flat = table[regions.labels]  # (H, W, C)
    if lines == "ink":
        if line_art is None:
            raise ValueError('lines="ink" needs the line art')
        ink = line_art if line_art.ndim == 2 else line_art[..., 0]
        flat[regions.line] = ink[regions.line][:, None]
    return flat


def region_spread(regions: Regions, image: torch.Tensor) -> float:
    """Area-weighted mean over regions of the per-region colour standard deviation (RMS over channels), on the
    [0, 1] scale, measured on each region's own pixels (strokes left out): exactly 0 for flat regions."""
    x = (image.detach().float().cpu().clamp(-1, 1).numpy().astype(np.float64) + 1) / 2  # (C, H, W)
    lab = regions.labels[regions.own].astype(np.int64)
    n = np.bincount(lab, minlength=regions.count + 1).astype(np.float64)
    if n[1:].sum() == 0:
        return 0.0
    var = np.zeros_like(n)
    for c in range(x.shape[0]):
        v = x[c][regions.own]
        mean = np.bincount(lab, v, minlength=regions.count + 1) / np.maximum(n, 1)
        var += np.bincount(lab, (v - mean[lab]) ** 2, minlength=regions.count + 1) / np.maximum(n, 1)
    std = np.sqrt(var / x.shape[0])
    return float((std[1:] * n[1:]).sum() / n[1:].sum())


FILL_WINDOW = 256  # pixels: the first window a fill looks in; it doubles until the region closes inside it


def fill_region(wall: np.ndarray | Callable[[int, int, int, int], np.ndarray], x: int, y: int,
                close_gap: int = CLOSE_GAP, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The pixels a gap-closing bucket fill started at (x, y) covers: (H, W) bool. `wall` (H, W) bool marks what
    stops the fill (a line, a different colour), or is a function (y0, y1, x0, x1) -> that window of it (then
    `shape` gives (H, W)). The rule of find_regions: the fill spreads 4-connected over the seed's pixels farther
    than `close_gap` from every wall (so a gap up to 2 * close_gap pixels wide lets nothing through), then grows
    back over the paper within close_gap + 1 pixels of that, up to the walls. A seed next to a wall starts from
    the nearest such pixel; a region too narrow to have any is filled plainly. All empty when the seed is
    outside the image or on a wall. Work is limited to a window around the seed that grows until the seed's
    plain flood region closes inside it (a small region costs little on a 4096 px stage)."""
    wall_of = (lambda y0, y1, x0, x1: wall[y0:y1, x0:x1]) if isinstance(wall, np.ndarray) else wall
    h, w = wall.shape if isinstance(wall, np.ndarray) else shape
    out = np.zeros((h, w), bool)
    if not (0 <= x < w and 0 <= y < h) or wall_of(y, y + 1, x, x + 1)[0, 0]:
        return out
    four = ndimage.generate_binary_structure(2, 1)
    m = close_gap + 2
    half = FILL_WINDOW // 2
    while True:
        wy0, wy1, wx0, wx1 = max(0, y - half), min(h, y + half), max(0, x - half), min(w, x + half)
        window = wall_of(wy0, wy1, wx0, wx1)
        labels, _ = ndimage.label(~window, structure=four)
        plain = labels == labels[y - wy0, x - wx0]
        del labels
        rows, cols = np.flatnonzero(plain.any(1)), np.flatnonzero(plain.any(0))
        # Closed inside the window: `m` pixels of margin on every side that is not the image's edge.
        if ((wy0 == 0 or rows[0] >= m) and (wy1 == h or rows[-1] < wy1 - wy0 - m)
                and (wx0 == 0 or cols[0] >= m) and (wx1 == w or cols[-1] < wx1 - wx0 - m)):
            break
        half *= 2
        if 4 * half * half >= h * w / 4:  # a window this large: look at the whole image at once
            half = max(h, w)
    y0, y1 = max(0, rows[0] - m), min(wy1 - wy0, rows[-1] + m + 1)
    x0, x1 = max(0, cols[0] - m), min(wx1 - wx0, cols[-1] + m + 1)
    comp = plain[y0:y1, x0:x1]
    y0, y1, x0, x1 = y0 + wy0, y1 + wy0, x0 + wx0, x1 + wx0  # in the image
    sy, sx = y - y0, x - x0
    core = ~near(~comp, close_gap) if close_gap > 0 else comp
    if not core.any():
        out[y0:y1, x0:x1] = comp
        return out
    if not core[sy, sx]:
        dist, idx = ndimage.distance_transform_edt(~core, return_indices=True)
        if dist[sy, sx] > close_gap + 1:  # the seed sits in a strip cut off from every core: fill it plainly
            out[y0:y1, x0:x1] = comp
            return out
        sy, sx = int(idx[0, sy, sx]), int(idx[1, sy, sx])
    core_labels, _ = ndimage.label(core, structure=four)
    seed_core = core_labels == core_labels[sy, sx]
    grown = near(seed_core, close_gap + 1) & comp
    out[y0:y1, x0:x1] = grown
    return out
