"""Clean flats: one colour per closed region of the line art, at the artwork's own resolution.

The paper builds its flat-colour training data as "the median colour of each region" (supplementary); here the
same recipe decodes the model's flat stage: the model's (upsampled) flat output is only asked for the colour of
each region, and the region shapes come from the full-resolution line art, so edges are as crisp as the lines.

Regions (core.fullres.regions): the connected components of non-line pixels with the line art's small gaps closed
the way a fill tool's "close gap" does, solid black shapes as regions of their own; strokes join their nearest
region (split down their middle between two colours), or line pixels keep the line colour (`lines="ink"`).

Arrays: line art (1, H, W) or (H, W) in [-1, 1] (black lines on white); colours (3, H, W) in [-1, 1].
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

from core.errors import ArtflowWarning
from core.files.imageio import tensor_to_uint8, uint8_to_tensor
from core.fullres import kernels
from core.fullres.kernels import lookup_rows, region_histograms, sort_by_region, sorted_medians, split, split_rows

# The regions' rule lives in core.fullres.regions; its names are re-exported here, where callers look for them.
from core.fullres.regions import CLOSE_GAP, Regions, find_regions, near

__all__ = ["CLOSE_GAP", "LINE_POLICIES", "MAX_FLAT_REGIONS", "MIN_CONTRAST", "Regions", "clean_flat", "clean_flat_u8",
           "coloured_one_by_one", "fill_region", "find_regions", "near", "region_medians", "region_spread",
           "set_enclosed_apart"]

LINE_POLICIES = ("split", "ink")
# A closed shape drawn inside another (an eye or a mouth in a face) says its colour differs from the one around it:
# the flats the model learned from have a line exactly where the colour changes. Where the model painted such a
# shape like its surroundings, it would vanish from the flat; it is moved to this contrast instead (8-bit levels,
# largest channel difference), darker on light paint and lighter on dark. Only enclosed shapes: on 64 Fluent TEST
# drawings (emoji-lines-128, true line art, encoded codes) the model paints 70 % of all regions within 40 levels
# of a neighbour, and setting every such pair apart cost 0.2 dB of flat PSNR (14.57 against 14.77 dB); enclosed
# shapes painted alike are 36 of the 1,071 regions there, and setting those apart costs nothing (14.78 dB).
MIN_CONTRAST = 40
# Regions smaller than this share of the image keep the model's colour: specks and slivers of a rough line art
# are not shapes the artist means to colour.
MIN_DISTINCT_AREA = 0.001
# A clean flat colours at most this many regions one by one: a 256 px model's proxy has as many pixels, so smaller
# and more regions than that get no colour of their own from the model. Past it (a hatched or screen-toned line
# art: a 6 px grid at 4096 x 4096 px has 466,489 regions) the smaller regions keep the model's colours, and an
# ArtflowWarning says so. Drawings have tens to thousands of regions.
MAX_FLAT_REGIONS = 65_536
# The region medians count into one int64 histogram table (regions x 256 levels per channel) per core, summed:
# the fastest for the usual number of regions (~2,100 colour regions fit on 4 cores, ~3,600 on 2). Past this many
# bytes of tables they are taken from the pixels sorted by region (linear in the pixels whatever the count; 2.7x
# slower at 358 regions of 2048 x 1536, 21 against 8 ms).
HISTOGRAM_BYTES = 64 * 2**20


def set_enclosed_apart(table: np.ndarray, regions: Regions, min_contrast: int = MIN_CONTRAST) -> np.ndarray:
    """The region colour table (count + 1, C) uint8 with every enclosed region of at least MIN_DISTINCT_AREA of
    the image at least `min_contrast` levels away from the region around it. Enclosed: of the regions it touches,
    exactly one is larger (an eye in a face, a pupil in the eye; not one of several pieces side by side).
    Largest first, so that a shape is judged against its surroundings as they end up. A new table; the input is
    not changed. min_contrast 0: unchanged."""
    if min_contrast <= 0 or regions.areas[1:].max(initial=0) < MIN_DISTINCT_AREA * regions.labels.size:
        return table  # no region large enough to be set apart (a screen tone's cells): no pairs to find
    pairs = regions.touching
    if len(pairs) == 0:
        return table
    colours = table.astype(np.int32)
    if (np.abs(colours[pairs[:, 0]] - colours[pairs[:, 1]]).max(1) >= min_contrast).all():
        return table  # no two touching regions painted alike: nothing to set apart
    areas = regions.areas
    # Each enclosed region and the one larger region it touches: a region that is the smaller of exactly one pair
    # of unequal areas (one of several pieces side by side is the smaller of several). Only those of at least
    # MIN_DISTINCT_AREA of the image count: at most 1 / MIN_DISTINCT_AREA of them, whatever the line art.
    a, b = pairs[:, 0], pairs[:, 1]
    unequal = areas[a] != areas[b]
    a_smaller = areas[a] < areas[b]
    inner = np.where(a_smaller, a, b)[unequal]
    outer = np.where(a_smaller, b, a)[unequal]
    alone = np.bincount(inner, minlength=regions.count + 1)[inner] == 1
    big = areas[inner] >= MIN_DISTINCT_AREA * regions.labels.size
    inner, outer = inner[alone & big], outer[alone & big]
    out = colours
    # Largest first (an outer region is strictly larger than its inner one, so it is settled before it; regions
    # of one area never read each other's colour, so their order does not matter).
    for k in np.argsort(-areas[inner], kind="stable"):
        inner_k, outer_k = inner[k], outer[k]
        if np.abs(out[inner_k] - out[outer_k]).max() >= min_contrast:
            continue
        goal = 0 if out[outer_k].mean() >= 128 else 255  # away from it in lightness, hue kept
        for s in np.linspace(0.1, 1.0, 10):
            moved = np.rint(out[inner_k] + s * (goal - out[inner_k])).astype(np.int32)
            if np.abs(moved - out[outer_k]).max() >= min_contrast:
                break
        out[inner_k] = moved
    return out.astype(np.uint8)


def region_medians(labels: np.ndarray, count: int, colours: torch.Tensor | np.ndarray, where: np.ndarray | None = None
                   ) -> np.ndarray:
    """The median colour of every region: (count + 1, C) uint8, row r for label r (row 0 unused).

    colours (C, H, W) in [-1, 1] (or uint8 (H, W, C)) are taken at 8-bit precision (what is displayed and
    saved); the median of a region's n values is the lower one for even n. Only pixels where `where` is True
    count; a region without such pixels takes the median over all its pixels. Linear in the pixel count, in time
    and memory, whatever the number of regions."""
    # uint8 (H, W, C) or (H, W): already on 8-bit levels; a tensor is converted band by band (tensor_to_uint8:
    # no full-size float temporaries, 3 x 144 MiB at 4096 x 3072 otherwise)
    levels = colours if isinstance(colours, np.ndarray) else tensor_to_uint8(colours)
    if levels.ndim == 2:
        levels = levels[..., None]
    labels = labels.astype(np.int32, copy=False)
    h, w = labels.shape
    nc = levels.shape[2]
    if (kernels.WORKERS + 1) * nc * (count + 1) * 256 * 8 > HISTOGRAM_BYTES:
        # Too many regions for a table per core (a 6 px grid at 4096 px has 466,489: 2.7 GB each): the pixels
        # sorted by region, then one region at a time (kernels.sort_by_region, sorted_medians).
        sel_arg = np.zeros((1, 1), bool) if where is None else where
        start, values, chosen = sort_by_region(labels, sel_arg, where is not None, levels, count)
        out = np.empty((count + 1, nc), np.uint8)
        split(lambda l0, l1: sorted_medians(out, start, values, chosen, l0, l1), count + 1,
              np.diff(start).astype(np.float64))
        out[0] = 0
        return out

    def histograms(sel: np.ndarray | None) -> np.ndarray:
        # One compiled pass per part of the rows (kernels.region_histograms), the parts' counts added.
        sel_arg = np.zeros((1, 1), bool) if sel is None else sel
        parts = split_rows(lambda r0, r1: region_histograms(labels, sel_arg, sel is not None, levels, count, r0, r1),
                           h, w)
        hists = parts[0] if len(parts) == 1 else np.sum(parts, axis=0)
        hists[:, 0] = 0  # label 0 is no region
        return hists

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


def coloured_one_by_one(regions: Regions) -> np.ndarray | None:
    """The regions a clean flat gives one colour each: None for all of them (at most MAX_FLAT_REGIONS), else
    (count + 1,) bool, the regions larger than the (MAX_FLAT_REGIONS + 1)-th largest (at most MAX_FLAT_REGIONS:
    regions of one size are in or out together); the others keep the model's colours, and an ArtflowWarning
    says so."""
    count = regions.count
    if count <= MAX_FLAT_REGIONS:
        return None
    areas = regions.areas
    cut = int(np.partition(areas[1:], count - MAX_FLAT_REGIONS - 1)[count - MAX_FLAT_REGIONS - 1])
    keep = areas > cut
    keep[0] = False
    warnings.warn(f"the line art has {count:,} closed regions, more than the {MAX_FLAT_REGIONS:,} a clean flat "
                  f"colours one by one; its {count - int(keep.sum()):,} regions of {cut:,} pixels or fewer keep "
                  "the model's colours", ArtflowWarning, stacklevel=3)
    return keep


def clean_flat(line_art: torch.Tensor | np.ndarray, colours: torch.Tensor | np.ndarray, close_gap: int = CLOSE_GAP,
               lines: str = "split", regions: Regions | None = None, min_contrast: int = MIN_CONTRAST
               ) -> torch.Tensor:
    """One colour per closed region of `line_art` (1, H, W): the median of `colours` (3, H, W) (the model's
    upsampled flat output) over the region's own pixels, a shape enclosed by another kept `min_contrast` apart
    from it (set_enclosed_apart). lines="split": strokes take their nearest region's colour (flats drawn without
    outlines, like Fluent Emoji); "ink": line pixels keep the line art's own grey (flats drawn over their lines).
    Past MAX_FLAT_REGIONS regions the smaller ones keep `colours` (coloured_one_by_one). `colours` may be given
    rounded to 8 bits, uint8 (H, W, 3) (tensor_to_uint8's): the same result, all that is measured of them;
    `line_art` uint8 (H, W) (its regions then found by line_mask's rule for uint8). Returns (3, H, W) in [-1, 1],
    on 8-bit levels."""
    if lines not in LINE_POLICIES:
        raise ValueError(f"lines must be one of {', '.join(LINE_POLICIES)}, got {lines!r}")
    u8 = isinstance(colours, np.ndarray)
    if (colours.shape[:2] if u8 else colours.shape[-2:]) != line_art.shape[-2:]:
        raise ValueError(f"line art {tuple(line_art.shape)} and colours {tuple(colours.shape)} differ in size")
    reg = regions if regions is not None else find_regions(line_art, close_gap)
    # On 8-bit levels once (what region_medians measures, and the colours kept past MAX_FLAT_REGIONS); the flat
    # made in 8 bits and converted in place (no float temporaries of the whole image)
    levels = colours if u8 else tensor_to_uint8(colours)
    flat = uint8_to_tensor(clean_flat_u8(reg, levels, min_contrast=min_contrast))  # (C, H, W)
    if lines == "ink":
        ink = line_art if isinstance(line_art, torch.Tensor) else uint8_to_tensor(line_art)
        ink = ink.detach().float().cpu().reshape(1, *flat.shape[-2:])
        flat = torch.where(torch.from_numpy(reg.line)[None], ink.expand_as(flat), flat)
    return flat.contiguous()


def clean_flat_u8(regions: Regions, colours: np.ndarray, lines: str = "split", line_art: np.ndarray | None = None,
                  box: tuple[int, int, int, int] | None = None, min_contrast: int = MIN_CONTRAST) -> np.ndarray:
    """clean_flat on 8-bit images, without float copies: `colours` uint8 (H, W, C) (the model's flat output
    brought to full size), the line art's `regions`; lines="ink" keeps the uint8 `line_art` (H, W) on the line
    pixels. Returns uint8 (H, W, C), equal to clean_flat's result rounded to 8 bits. box (y0, y1, x0, x1): only
    that part of the flat is returned (the colours are still measured over whole regions); line_art is then
    that part of the line art."""
    if lines not in LINE_POLICIES:
        raise ValueError(f"lines must be one of {', '.join(LINE_POLICIES)}, got {lines!r}")
    keep = coloured_one_by_one(regions)
    table = set_enclosed_apart(region_medians(regions.labels, regions.count, colours, regions.own), regions,
                                min_contrast)
    ix = np.s_[:, :] if box is None else np.s_[box[0]:box[1], box[2]:box[3]]
    labels = regions.labels[ix].astype(np.int32, copy=False)
    flat = np.empty((*labels.shape, table.shape[1]), np.uint8)
    split_rows(lambda r0, r1: lookup_rows(flat, table, labels, r0, r1), labels.shape[0], labels.shape[1])
    if keep is not None:
        np.copyto(flat, colours[ix].reshape(flat.shape), where=~keep[labels][..., None])
    if lines == "ink":
        if line_art is None:
            raise ValueError('lines="ink" needs the line art')
        ink = line_art if line_art.ndim == 2 else line_art[..., 0]
        line = regions.line[ix]
        flat[line] = ink[line][:, None]
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
