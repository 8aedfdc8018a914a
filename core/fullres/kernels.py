"""Compiled inner loops of the full-resolution composite (numba), and the row split that runs them on the cores.

The composite after a proxy update touches every pixel of a 2048 x 1536 (up to 4096 x 3072) stage a few times:
the guided transfer of the change, the proxy's bin sums, the line art's regions (labelling), the per-region colour
histograms of a clean flat and the flat's colour lookup. As numpy/torch array passes each of them walks the image
many times (one pass per map, per channel, per temporary); here each is one pass, with the temporaries in
registers. The guided filter's fit at the proxy's size is one kernel too (it was a few hundred small tensor
operations). Measured in benchmarks/bench_app_fullres.py (see the README's full-resolution benchmarks).

The kernels release the GIL (nogil): `split` runs one per core on a small thread pool of plain threads (no
OpenMP team: on a loaded machine a busy-waiting team stalls, a blocked thread does not), and several threads of
the app (the engine, the fill worker) may call them at once. Each kernel is compiled on first use (or by
warm_up, which the engine calls when it loads a model) and cached on disk (cache=True), so only the first run on
a machine pays the compile (about a second per kernel).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit, types

# Explicit signatures: every array is typed with any layout ('A') and read-only where the kernel only reads it,
# so views, frozen (read-only) arrays and fresh ones all run the same compiled code (each combination would
# otherwise be compiled on its first call: ~1 s each, in the middle of an edit).


def _in(dtype, ndim: int, layout: str = "A"):
    return types.Array(dtype, ndim, layout, readonly=True)


def _out(dtype, ndim: int, layout: str = "A"):
    return types.Array(dtype, ndim, layout)


_I64 = _in(types.int64, 1)
_compile_lock = threading.Lock()


class _Kernel:
    """A kernel compiled for its one signature on first use (or by warm_up), not at import: a fresh machine
    compiles in about a second per kernel, later runs load numba's disk cache (cache=True) in milliseconds."""

    def __init__(self, signature, fn) -> None:
        self.signature, self.py_func, self._compiled = signature, fn, None
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    def compiled(self):
        if self._compiled is None:
            with _compile_lock:
                if self._compiled is None:
                    self._compiled = njit(self.signature, nogil=True, cache=True)(self.py_func)
        return self._compiled

    def __call__(self, *args):
        return self.compiled()(*args)


def _kernel(signature):
    return lambda fn: _Kernel(signature, fn)

MIN_PIXELS_PER_TASK = 1 << 17  # a part below this many pixels costs more in hand-over than it saves


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


WORKERS = min(4, _cores())
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WORKERS - 1, thread_name_prefix="artflow-kernel")
    return _pool


def split(run: Callable[[int, int], object], n: int, weights: np.ndarray) -> list:
    """run(i0, i1) over [0, n) cut into one part per core of about equal weight (`weights`: the pixels of each
    of the n items), the parts on the pool and the last on this thread; returns their results in order. `run`
    must be a GIL-free kernel writing disjoint pixels."""
    total = np.cumsum(weights, dtype=np.float64)
    parts = int(min(WORKERS, n, max(1, (total[-1] if n else 0) // MIN_PIXELS_PER_TASK)))
    if parts <= 1:
        return [run(0, n)]
    cuts = [0, *np.searchsorted(total, total[-1] * np.arange(1, parts) / parts).tolist(), n]
    cuts = sorted(set(cuts))
    futures = [_executor().submit(run, a, b) for a, b in zip(cuts[:-2], cuts[1:-1])]
    last = run(cuts[-2], cuts[-1])
    return [f.result() for f in futures] + [last]


def split_rows(run: Callable[[int, int], object], rows: int, width: int) -> list:
    """split() over the rows of an image `width` pixels wide."""
    return split(run, rows, np.full(rows, width, np.float64))


@_kernel(types.void(_out(types.uint8, 3), _in(types.uint8, 3), _in(types.uint8, 3), _in(types.float32, 2),
                    types.boolean, _in(types.float32, 3, "C"), _I64, _I64, _in(types.float32, 1),
                    _in(types.int64, 2), types.int64, types.int64))
def guided_windows(out, base, guide, mask, has_mask, maps, ry0, ry1, wy, windows, c, cg):  # pragma: no cover
    """core.fullres.guided.apply_change's full-resolution step over `windows` (n, 4) int64 rows (y0, y1, x0, x1):
    out[y, x, ch] = round(base + mask * (B + sum_g A_g * guide_g)) clamped to 0..255, where each coefficient is
    the bilinear blend (weight wy[y]) of proxy rows ry0[y] and ry1[y] of `maps` (c * cg + c, R, W) float32
    (A for channel ch and guide channel g at ch * cg + g, then B per channel), already upsampled along the
    columns. Images (H, W, C) uint8 views; mask (H, W) float32 (read only when has_mask).
    Row by row, every step a loop over contiguous float rows (the interleaved 8-bit channels are split once per
    row): LLVM vectorises them, ~4x faster than the same arithmetic pixel by pixel."""
    na = c * cg
    width = maps.shape[2]
    rows = np.empty((maps.shape[0], width), np.float32)  # the maps blended for this artwork row
    planes = np.empty((cg, width), np.float32)  # the guide's channels, split
    acc = np.empty(width, np.float32)
    for i in range(windows.shape[0]):
        y0, y1, x0, x1 = windows[i, 0], windows[i, 1], windows[i, 2], windows[i, 3]
        n = x1 - x0
        for y in range(y0, y1):
            k0, k1, t = ry0[y], ry1[y], wy[y]
            for m in range(maps.shape[0]):
                lo, hi, row = maps[m, k0, x0:x1], maps[m, k1, x0:x1], rows[m]
                for x in range(n):
                    row[x] = lo[x] + t * (hi[x] - lo[x])
            g_row = guide[y, x0:x1]
            for g in range(cg):
                for x in range(n):
                    planes[g, x] = g_row[x, g]
            b_row, o_row = base[y, x0:x1], out[y, x0:x1]
            for ch in range(c):
                acc[:n] = rows[na + ch, :n]
                for g in range(cg):
                    a_row, plane = rows[ch * cg + g], planes[g]
                    for x in range(n):
                        acc[x] += a_row[x] * plane[x]
                if has_mask:
                    m_row = mask[y, x0:x1]
                    for x in range(n):
                        acc[x] *= m_row[x]
                for x in range(n):
                    o_row[x, ch] = np.uint8(min(max(np.rint(acc[x] + b_row[x, ch]), 0.0), 255.0))


@_kernel(_out(types.int64, 3, "C")(_in(types.int32, 2), _in(types.boolean, 2), types.boolean, _in(types.uint8, 3),
                                 types.int64, types.int64, types.int64))
def region_histograms(labels, sel, has_sel, levels, count, r0, r1):  # pragma: no cover
    """Per-region histograms of 8-bit levels over rows r0..r1: (C, count + 1, 256) int64, row l for label l.
    labels (H, W) int; levels (H, W, C) uint8; only pixels where sel (H, W) bool is True count (when has_sel)."""
    nc = levels.shape[2]
    hists = np.zeros((nc, count + 1, 256), np.int64)
    for y in range(r0, r1):
        for x in range(labels.shape[1]):
            if has_sel and not sel[y, x]:
                continue
            lab = labels[y, x]
            for ch in range(nc):
                hists[ch, lab, levels[y, x, ch]] += 1
    return hists


@_kernel(types.Tuple((_out(types.int64, 1, "C"), _out(types.uint8, 2, "C"), _out(types.boolean, 1, "C")))(
    _in(types.int32, 2), _in(types.boolean, 2), types.boolean, _in(types.uint8, 3), types.int64))
def sort_by_region(labels, sel, has_sel, levels, count):  # pragma: no cover
    """The pixels' 8-bit levels grouped by region (a counting sort on the labels): (start (count + 2,) int64,
    values (H * W, C) uint8, chosen (H * W,) bool); region l's pixels are values[start[l]:start[l + 1]] in raster
    order, chosen where sel is True (every pixel when not has_sel). Memory linear in the pixels, whatever the
    number of regions. labels (H, W) int in 0..count; levels (H, W, C) uint8."""
    h, w = labels.shape
    nc = levels.shape[2]
    start = np.zeros(count + 2, np.int64)
    for y in range(h):
        for x in range(w):
            start[labels[y, x] + 1] += 1
    for i in range(count + 1):
        start[i + 1] += start[i]
    at = start[:-1].copy()  # the next free place of each region
    values = np.empty((h * w, nc), np.uint8)
    chosen = np.empty(h * w, np.bool_)
    for y in range(h):
        for x in range(w):
            lab = labels[y, x]
            i = at[lab]
            at[lab] = i + 1
            for ch in range(nc):
                values[i, ch] = levels[y, x, ch]
            chosen[i] = sel[y, x] if has_sel else True
    return start, values, chosen


@_kernel(types.void(_out(types.uint8, 2), _in(types.int64, 1), _in(types.uint8, 2), _in(types.boolean, 1),
                    types.int64, types.int64))
def sorted_medians(out, start, values, chosen, l0, l1):  # pragma: no cover
    """out[l, ch] = the lower median of region l's chosen values (all of its values when none is chosen), for
    regions l0..l1 of sort_by_region's result; 0 for a region without pixels. One histogram of 256 levels per
    channel, filled in one pass over a region's values and cleared after it (a small region by its own values:
    it costs its pixels, not 256 levels)."""
    nc = values.shape[1]
    hist = np.zeros((nc, 256), np.int64)
    for lab in range(l0, l1):
        a, b = start[lab], start[lab + 1]
        n = 0
        for i in range(a, b):
            n += chosen[i]
        every = n == 0
        if every:
            n = b - a
        for i in range(a, b):
            if every or chosen[i]:
                for ch in range(nc):
                    hist[ch, values[i, ch]] += 1
        goal = (n + 1) // 2  # the lower median: the first level whose cumulative count reaches ceil(n / 2)
        for ch in range(nc):
            seen, level = 0, 0
            while level < 255:
                seen += hist[ch, level]
                if seen >= goal:
                    break
                level += 1
            out[lab, ch] = level
        if b - a > 256:
            hist[:] = 0
        else:
            for i in range(a, b):
                for ch in range(nc):
                    hist[ch, values[i, ch]] = 0


@_kernel(types.void(_out(types.uint8, 3), _in(types.uint8, 2), _in(types.int32, 2), types.int64, types.int64))
def lookup_rows(out, table, labels, r0, r1):  # pragma: no cover
    """out[y, x, :] = table[labels[y, x], :] for rows r0..r1 (out (h, w, C) uint8, table (n, C) uint8)."""
    for y in range(r0, r1):
        for x in range(labels.shape[1]):
            lab = labels[y, x]
            for ch in range(table.shape[1]):
                out[y, x, ch] = table[lab, ch]


@_kernel(_out(types.int64, 3, "C")(_in(types.uint8, 3), _I64, _I64, _I64, _I64, types.int64, types.int64))
def bin_sums(part, row_lo, row_hi, col_lo, col_hi, b0, b1):  # pragma: no cover
    """Sums of a uint8 block `part` (h, w, C) over bins: for row bins b0..b1 and every column bin j, the pixels
    of rows row_lo[b]..row_hi[b] and columns col_lo[j]..col_hi[j] (bins may overlap or be empty). Returns
    int64 (C, b1 - b0, number of column bins). Each bin's rows are summed once per column (int32: a bin row of
    at most 33 rows of 8-bit values), then the columns of each bin."""
    w, nc = part.shape[1], part.shape[2]
    nb = col_lo.shape[0]
    out = np.zeros((nc, b1 - b0, nb), np.int64)
    column = np.empty((w, nc), np.int32)
    for b in range(b0, b1):
        column[:] = 0
        for y in range(row_lo[b], row_hi[b]):
            row = part[y]
            for x in range(w):
                for ch in range(nc):
                    column[x, ch] += row[x, ch]
        for j in range(nb):
            for x in range(col_lo[j], col_hi[j]):
                for ch in range(nc):
                    out[ch, b - b0, j] += column[x, ch]
    return out


@_kernel(types.void(_out(types.uint8, 3), _in(types.uint8, 3), _in(types.uint8, 3), _in(types.uint8, 3),
                    _in(types.boolean, 2), _I64, _in(types.float32, 3, "C"), types.int64, types.int64, types.int64,
                    types.int64))
def colour_transform_rows(out, stage, driver_old, driver_new, changed, keys, transforms, r0, r1, x0, x1
                          ):  # pragma: no cover
    """The region rule's colour move (core.fullres.region_change.follow_colour_change) for rows r0..r1, columns
    x0..x1: at each `changed` pixel, its group is found by the key of its (old, new) driver colours (keys: sorted
    int64, region_change._keys' packing; every changed pixel's key is among them) and the stage's pixel moved by
    the group's affine transform (transforms (G, C + 1, C) on [0, 1]: [x, 1] @ W), rounded to 8 bits: the numpy
    formula's float32 arithmetic in its order."""
    c, cd, g = stage.shape[2], driver_old.shape[2], keys.shape[0]
    scale = np.float32(255.0)
    for y in range(r0, r1):
        for x in range(x0, x1):
            if not changed[y, x]:
                continue
            key = np.int64(0)
            for k in range(cd):
                key = (key << 8) | np.int64(driver_old[y, x, k])
            for k in range(cd):
                key = (key << 8) | np.int64(driver_new[y, x, k])
            lo, hi = 0, g
            while lo < hi:
                mid = (lo + hi) >> 1
                if keys[mid] < key:
                    lo = mid + 1
                else:
                    hi = mid
            for d in range(c):
                acc = np.float32(0.0)
                for k in range(c):
                    acc += (np.float32(stage[y, x, k]) / scale) * transforms[lo, k, d]
                v = min(max(acc + transforms[lo, c, d], np.float32(0.0)), np.float32(1.0)) * scale
                out[y, x, d] = np.uint8(np.rint(v))


@_kernel(types.void(_out(types.uint8, 3), _in(types.uint8, 3), _in(types.uint8, 3), types.int64, types.int64))
def composite_rows(out, base, layer, r0, r1):  # pragma: no cover
    """A straight-alpha RGBA layer (h, w, 4) over a base (h, w, C), C = 3 or 1 (grey: the layer's colour is the
    rounded mean of its RGB, (r + g + b + 1) // 3), rounded to 8 bits, rows r0..r1: layer_pixels.composite's
    numpy formula in its float32 order, base * (1 - a) + colour * a with a = alpha / 255."""
    c = base.shape[2]
    for y in range(r0, r1):
        for x in range(base.shape[1]):
            alpha = layer[y, x, 3]
            if alpha == 0:
                for ch in range(c):
                    out[y, x, ch] = base[y, x, ch]
                continue
            a = np.float32(alpha) / np.float32(255.0)
            keep = np.float32(1.0) - a
            if c == 1:
                total = np.int64(layer[y, x, 0]) + np.int64(layer[y, x, 1]) + np.int64(layer[y, x, 2])
                mixed = np.float32(base[y, x, 0]) * keep + np.float32((total + 1) // 3) * a
                out[y, x, 0] = np.uint8(np.rint(mixed))
            else:
                for ch in range(c):
                    mixed = np.float32(base[y, x, ch]) * keep + np.float32(layer[y, x, ch]) * a
                    out[y, x, ch] = np.uint8(np.rint(mixed))


@njit(nogil=True, cache=True)
def _window_means(values, out, run, r):  # pragma: no cover
    """out[i] = the mean of values[i - r..i + r] cut at the ends, by a running sum (run: scratch, len + 1)."""
    n = values.shape[0]
    run[0] = 0.0
    for i in range(n):
        run[i + 1] = run[i] + values[i]
    for i in range(n):
        lo, hi = max(0, i - r), min(n, i + r + 1)
        out[i] = (run[hi] - run[lo]) / (hi - lo)


@njit(nogil=True, cache=True)
def _box_mean(x, r):  # pragma: no cover
    """Mean of a 2-D float64 map over (2r+1)^2 windows cut at the border (no padding counted): separable (a cut
    window is a product of two cut intervals)."""
    h, w = x.shape
    run = np.empty(max(h, w) + 1)
    rows = np.empty((h, w))
    for y in range(h):
        _window_means(x[y], rows[y], run, r)
    out = np.empty((h, w))
    for c in range(w):
        _window_means(rows[:, c], out[:, c], run, r)
    return out


@_kernel(types.Tuple((_out(types.float32, 4, "C"), _out(types.float32, 3, "C")))(
    _in(types.float64, 3), _in(types.float64, 3), types.int64, types.float64))
def guided_fit(guide, src, r, eps):  # pragma: no cover
    """core.fullres.guided.guided_coefficients on float64 arrays: guide (Cg, h, w) with Cg 1 or 3, src (C, h, w).
    Returns A (C, Cg, h, w) and B (C, h, w), each already averaged over the windows covering a pixel. A colour
    guide solves its 3 x 3 system per pixel by the inverse of the (symmetric, eps-regularised) covariance."""
    cg, c = guide.shape[0], src.shape[0]
    h, w = guide.shape[1], guide.shape[2]
    mean_i = np.empty((cg, h, w))
    for g in range(cg):
        mean_i[g] = _box_mean(guide[g], r)
    mean_p = np.empty((c, h, w))
    cov = np.empty((c, cg, h, w))
    for ch in range(c):
        mean_p[ch] = _box_mean(src[ch], r)
        for g in range(cg):
            cov[ch, g] = _box_mean(src[ch] * guide[g], r) - mean_p[ch] * mean_i[g]
    a = np.empty((c, cg, h, w))
    if cg == 1:
        var = _box_mean(guide[0] * guide[0], r) - mean_i[0] * mean_i[0]
        for ch in range(c):
            a[ch, 0] = cov[ch, 0] / (var + eps)
    else:
        s = np.empty((3, 3, h, w))
        for i in range(3):
            for j in range(i, 3):
                s[i, j] = _box_mean(guide[i] * guide[j], r) - mean_i[i] * mean_i[j]
                if i == j:
                    s[i, j] += eps
                else:
                    s[j, i] = s[i, j]
        for y in range(h):
            for x in range(w):
                s00, s01, s02 = s[0, 0, y, x], s[0, 1, y, x], s[0, 2, y, x]
                s11, s12, s22 = s[1, 1, y, x], s[1, 2, y, x], s[2, 2, y, x]
                # The inverse of a symmetric 3 x 3 matrix by its cofactors.
                i00, i01, i02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
                i11, i12, i22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
                det = s00 * i00 + s01 * i01 + s02 * i02
                for ch in range(c):
                    v0, v1, v2 = cov[ch, 0, y, x], cov[ch, 1, y, x], cov[ch, 2, y, x]
                    a[ch, 0, y, x] = (i00 * v0 + i01 * v1 + i02 * v2) / det
                    a[ch, 1, y, x] = (i01 * v0 + i11 * v1 + i12 * v2) / det
                    a[ch, 2, y, x] = (i02 * v0 + i12 * v1 + i22 * v2) / det
    a_mean = np.empty((c, cg, h, w), np.float32)
    b_mean = np.empty((c, h, w), np.float32)
    for ch in range(c):
        b = mean_p[ch].copy()
        for g in range(cg):
            b -= a[ch, g] * mean_i[g]
            a_mean[ch, g] = _box_mean(a[ch, g], r)
        b_mean[ch] = _box_mean(b, r)
    return a_mean, b_mean


@njit(cache=True)
def _root(parent, i):  # pragma: no cover
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving
        i = parent[i]
    return i


@_kernel(types.Tuple((_out(types.int32, 2, "C"), types.int64))(_in(types.boolean, 2)))
def label4(mask):  # pragma: no cover
    """scipy.ndimage.label(mask) with 4-connectivity, numbered alike (components in the raster order of their
    first pixel): (labels (H, W) int32, count). By runs: each row's runs of True are joined (union-find) with
    the runs of the row above that share a column, then every run is written with its component's number."""
    h, w = mask.shape
    cap = 1024
    start = np.empty(cap, np.int64)
    stop = np.empty(cap, np.int64)
    row_first = np.zeros(h + 1, np.int64)  # runs of row y: row_first[y]..row_first[y + 1]
    n = 0
    for y in range(h):
        row_first[y] = n
        x = 0
        while x < w:
            if mask[y, x]:
                x0 = x
                while x < w and mask[y, x]:
                    x += 1
                if n == cap:
                    cap *= 2
                    start2, stop2 = np.empty(cap, np.int64), np.empty(cap, np.int64)
                    start2[:n], stop2[:n] = start[:n], stop[:n]
                    start, stop = start2, stop2
                start[n], stop[n] = x0, x
                n += 1
            else:
                x += 1
    row_first[h] = n
    parent = np.arange(n)
    for y in range(1, h):
        i, i_end = row_first[y - 1], row_first[y]
        j, j_end = row_first[y], row_first[y + 1]
        while i < i_end and j < j_end:  # runs of the two rows that overlap in a column are joined
            if start[i] < stop[j] and start[j] < stop[i]:
                a, b = _root(parent, i), _root(parent, j)
                if a != b:
                    if a < b:
                        parent[b] = a
                    else:
                        parent[a] = b
            if stop[i] < stop[j]:
                i += 1
            else:
                j += 1
    labels = np.zeros((h, w), np.int32)
    number = np.zeros(n, np.int32)  # per root: its label, given in the order roots are first met
    count = 0
    for y in range(h):
        for k in range(row_first[y], row_first[y + 1]):
            r = _root(parent, k)
            if number[r] == 0:
                count += 1
                number[r] = count
            lab = number[r]
            for x in range(start[k], stop[k]):
                labels[y, x] = lab
    return labels, count



_warm_up_thread: threading.Thread | None = None
_warm_up_lock = threading.Lock()


def warm_up_in_background() -> None:
    """warm_up on a daemon thread, once per process: the caller goes on (a fresh machine compiles for ~10-20 s;
    a kernel needed meanwhile waits for its own compile only)."""
    global _warm_up_thread
    with _warm_up_lock:
        if _warm_up_thread is None:
            _warm_up_thread = threading.Thread(target=warm_up, name="artflow-kernel-warm-up", daemon=True)
            _warm_up_thread.start()


def warm_up() -> None:
    """Compiles every kernel (a fresh machine: ~1 s each) or loads it from numba's disk cache (milliseconds), so
    that an artist's first edit does not wait for the compiler."""
    for kernel in (guided_windows, region_histograms, sort_by_region, sorted_medians, lookup_rows, bin_sums, guided_fit,
                   label4, colour_transform_rows, composite_rows):
        kernel.compiled()
