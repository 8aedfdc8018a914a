"""The closed regions of a line art (clean flats and the fill tool's rule), found once and then kept up to date
while the artist paints on the line art: a stroke re-examines a window around it, not the whole image.

The rule (find_regions): the connected components (4-connected) of non-line pixels, with the line art's small
gaps closed the way a fill tool's "close gap" does: components are taken over the paper farther than `close_gap`
pixels from any line (so a gap up to 2 * close_gap pixels wide lets nothing through; leaving pixels out can split
regions but never merge two), then grown back over the pixels near the lines. Solid black shapes of the line art
(filled areas much thicker than its strokes) are regions of their own. The other pixels (strokes, closed gaps,
paper next to a line) join their nearest region, so that a stroke between two colours is split down its middle.

RegionMap.updated: the same regions for a changed line art, bit for bit (labels numbered alike), from the
previous map. The two costly steps of the rule are distance transforms over the whole line art (the ink's depth,
which finds solid shapes, and every stroke pixel's nearest region pixel); the map keeps both results (the squared
depth and the nearest region pixel of every pixel) and recomputes them only in windows around the changed pixels,
each window grown until nothing outside it can have changed (see region_windows._quiet_window) and each crop
checked to hold every nearest pixel it uses. Labelling the components stays global (cheap, and a stroke can split
or join regions far apart). The solid shapes' depth threshold is a median over the whole image, kept as a
histogram.

This module owns the rule's order (RegionMap.build) and the map; the steps live beside it, one contract that
tests/core/test_fullres_regions.py holds the update to (the update equals the build, bit for bit):
region_rule    the Regions result, line_mask, near, the distances, the solid shapes and the labelling
region_windows the windows around a change and the steps recomputed in them (RegionMap.updated)
dither         undither: a dithered 1-bit line art smoothed to greys before its regions are found
Their public names are re-exported here, where callers import them.
"""

from __future__ import annotations

import numpy as np
import torch

from core.fullres.dither import BINARY_SHARE as BINARY_SHARE
from core.fullres.dither import BINARY_SLACK as BINARY_SLACK
from core.fullres.dither import DITHER_SIGMA as DITHER_SIGMA
from core.fullres.dither import DITHERED_SHARE as DITHERED_SHARE
from core.fullres.dither import DOT_DENSITY as DOT_DENSITY
from core.fullres.dither import DOT_SIZE as DOT_SIZE
from core.fullres.dither import DOT_WINDOW as DOT_WINDOW
from core.fullres.dither import undither as undither
from core.fullres.region_rule import (
    CLOSE_GAP,
    LINE_LEVEL,
    Regions,
    _add_counts,
    _dist2,
    _features,
    _grown_box,
    _label,
    _median_cut,
    _plain_regions,
    _ridge,
    _solid,
    line_mask,
    near,
)
from core.fullres.region_rule import DIST_BAND as DIST_BAND
from core.fullres.region_rule import FOUR as FOUR
from core.fullres.region_rule import SMALL_RADIUS as SMALL_RADIUS
from core.fullres.region_rule import SOLID_FACTOR as SOLID_FACTOR
from core.fullres.region_windows import FIRST_MARGIN as FIRST_MARGIN
from core.fullres.region_windows import REBUILD_FRACTION as REBUILD_FRACTION
from core.fullres.region_windows import TILE as TILE
from core.fullres.region_windows import Box as Box
from core.fullres.region_windows import Values as Values
from core.fullres.region_windows import change_clusters as change_clusters
from core.fullres.region_windows import update_in_windows

# The `X as X` names: moved out of this module, importable from here as before. The windows' tunables (TILE,
# FIRST_MARGIN, REBUILD_FRACTION) are read in core.fullres.region_windows: a test sets them there.


def find_regions(line_art: torch.Tensor | np.ndarray, close_gap: int = CLOSE_GAP,
                 level: float = LINE_LEVEL) -> Regions:
    """The closed regions of a line art (see the module doc)."""
    return RegionMap.build(line_mask(line_art, level), close_gap, keep=False).regions


class RegionMap:
    """find_regions' result (`regions`) and what updating it needs: depth2 (H, W) int32, every ink pixel's
    squared distance to the paper (0 on paper); nearest (H, W) int32, for every pixel the flat index of its
    region pixel (an `own` pixel: itself, else the nearest one, scipy's choice among equals); ridge (int64), the
    histogram of the ridge pixels' squared depths; cut, the solid shapes' depth threshold. An update takes the
    map's arrays over (the old map must not be used after it)."""

    def __init__(self, regions: Regions, close_gap: int, depth2: np.ndarray | None = None,
                 nearest: np.ndarray | None = None, ridge: np.ndarray | None = None, cut: float | None = None) -> None:
        self.regions = regions
        self.close_gap = close_gap
        self.depth2, self.nearest, self.ridge, self.cut = depth2, nearest, ridge, cut
        self.how = "built"  # how this map was made: "built", "unchanged", "updated" (in windows) or "rebuilt"

    @property
    def incremental(self) -> bool:
        """False for the degenerate line arts (no ink, no paper, no region): those are found from scratch."""
        return self.depth2 is not None

    # ----- from scratch -----
    @classmethod
    def build(cls, line: np.ndarray, close_gap: int = CLOSE_GAP, keep: bool = True) -> RegionMap:
        """The regions of the line mask (H, W) bool (find_regions' rule). keep=False: only the regions are wanted
        (find_regions): the depths are let go once used and the nearest pixels are not kept, two full-size int32
        arrays less at the peak (the map then updates from scratch)."""
        h, w = line.shape
        if not line.any() or line.all():
            return cls(_plain_regions(line, close_gap), close_gap)
        # Region cores: paper farther than close_gap from every line pixel. A gap of up to 2 * close_gap pixels
        # has no such pixel, so a fill cannot leak through it (a fill tool's "close gap"); dropping pixels can
        # split regions, never merge two.
        own = ~near(line, close_gap) if close_gap > 0 else ~line
        # Filled shapes: ink deeper than SOLID_FACTOR stroke half-widths, grown back to their outline (an
        # opening by distance). The half-width is the median depth along the ink's ridges (local maxima of the
        # distance to paper): strokes have long ridges, filled shapes short ones, so strokes set it.
        # Within the ink's box (grown by 2: a ring of paper, the 3 x 3 filter's reach): every ink pixel's
        # nearest paper pixel is inside it, so the depths are those of the whole image.
        box = _grown_box(line, 2)
        depth2 = np.zeros((h, w), np.int32)
        depth2[box] = _dist2(line[box])
        ridge = _add_counts(np.zeros(1, np.int64), depth2[box][_ridge(depth2[box], line[box])], 1)
        cut = _median_cut(ridge)
        solid = _solid(depth2, line, cut)
        if not keep:
            depth2 = ridge = cut = None
        labels, count = _label(own, solid)
        own |= solid
        if count == 0:  # all ink: one region
            return cls(Regions(np.ones(line.shape, np.int32), 1, line, np.ones(line.shape, bool)), close_gap)
        nearest = None
        if not own.all():
            # Every stroke, gap and near-line pixel joins its nearest region.
            # Within the box of those pixels grown by 2: outside it every pixel is a region's own, so a nearest
            # one is always inside (moving a farther one into the box brings it strictly closer).
            box = _grown_box(~own, 2)
            idx = _features(~own[box])
            flat = idx[0]  # the flat index, in place (int32 holds any index up to MAX_SIDE squared)
            np.multiply(flat, w, out=flat)
            flat += idx[1]
            flat += box[0].start * w + box[1].start
            if not keep:  # the box's labels gathered (all read before any is written), in place
                labels[box] = labels.ravel()[flat]
                return cls(Regions(labels, count, line, own), close_gap)
            nearest = np.arange(h * w, dtype=np.int32).reshape(h, w)  # (after the transform: a lower peak)
            nearest[box] = flat
            # Outside the box every pixel is its own nearest: only the box's labels are gathered (read whole
            # before any is written), as for keep=False.
            labels[box] = labels.ravel()[flat]
            del idx, flat
        elif keep:
            nearest = np.arange(h * w, dtype=np.int32).reshape(h, w)
        return cls(Regions(labels, count, line, own), close_gap, depth2, nearest, ridge, cut)

    # ----- after a change -----
    def updated(self, line: np.ndarray) -> RegionMap:
        """The map of the line mask `line` (same shape), found from this one: equal to build(line). This map's
        arrays are taken over (it is spent: its regions lose their labels, and a later update of it finds the
        regions from scratch)."""
        old = self.regions
        if line.shape != old.line.shape:
            raise ValueError(f"line mask {line.shape} differs from the map's {old.line.shape}")
        incremental = self.incremental
        depth2, nearest = self.depth2, self.nearest
        self.depth2 = self.nearest = None
        changed = line != old.line
        if not changed.any() and old.labels is not None:
            out = RegionMap(Regions(old.labels, old.count, line, old.own), self.close_gap, depth2, nearest,
                            self.ridge, self.cut)
            out.how = "unchanged"
            return out
        out = None
        if incremental and line.any() and not line.all():
            # The update reads the old line and own pixels only: the old labels (a full-size int32 array) are
            # let go before the new ones are made (the spent map keeps no labels).
            self.regions = old = Regions(None, old.count, old.line, old.own)
            parts = update_in_windows(old, self.close_gap, self.ridge, self.cut, depth2, nearest, line, changed)
            if parts is not None:
                regions, *kept = parts
                out = RegionMap(regions, self.close_gap, *kept)
        if out is None:
            out = RegionMap.build(line, self.close_gap)
            out.how = "rebuilt"
        else:
            out.how = "updated"
        return out
