"""Clean flats of line arts with very many regions (issue 29 F1): the region medians from the pixels sorted by region
equal the histogram tables' (and numpy's lower medians), set_enclosed_apart's vectorised pairs make the table the
per-pair rule made, and past MAX_FLAT_REGIONS the smaller regions keep the model's colours with a one-line notice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import ArtflowWarning
from core.files import bundle
from core.files.imageio import save_image, tensor_to_uint8, uint8_to_tensor
from core.fullres import flats, kernels
from core.fullres.flats import (
    MIN_DISTINCT_AREA,
    clean_flat,
    clean_flat_u8,
    coloured_one_by_one,
    find_regions,
    region_medians,
    set_enclosed_apart,
)
from tests.core.cli_util import run_cli
from tests.core.engine_util import single_thread, tiny_model  # noqa: F401
from tests.core.test_fullres_cli import line_art


def grid(h: int, w: int, step: int = 6) -> np.ndarray:
    """A line art (H, W) uint8 drawn as a grid of 1 px lines every `step` px: a region per cell."""
    a = np.full((h, w), 255, np.uint8)
    a[::step] = 0
    a[:, ::step] = 0
    return a


def numpy_medians(labels, count, colours, where):
    """The lower median per region and channel over `where` pixels (all of the region's without any), by numpy's
    sort of (label, value) pairs."""
    lab = labels.ravel()
    where = where.ravel()
    has = np.bincount(lab[where], minlength=count + 1) > 0
    use = where | ~has[lab]
    lab = lab[use]
    n = np.bincount(lab, minlength=count + 1)
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    out = np.zeros((count + 1, colours.shape[2]), np.uint8)
    some = n > 0
    for c in range(colours.shape[2]):
        v = colours[..., c].ravel()[use]
        ordered = v[np.lexsort((v, lab))]
        out[some, c] = ordered[first[some] + (n[some] - 1) // 2]
    out[0] = 0
    return out


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("channels", [1, 3])
def test_sorted_medians_equal_the_histograms_and_numpy(monkeypatch, workers, channels):
    monkeypatch.setattr(kernels, "WORKERS", workers)
    rng = np.random.default_rng(7)
    h, w, count = 420, 380, 900  # 160 k pixels: more than one part on three workers
    labels = rng.integers(1, count + 1, (h // 4, w // 4)).repeat(4, 0).repeat(4, 1).astype(np.int32)
    labels[:20, :20] = count  # a larger region; some labels have no pixel at all
    colours = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    where = rng.random((h, w)) < 0.5
    where[labels == 5] = False  # a region without `where` pixels: the median over all of its pixels
    for sel in (where, None):
        dense = region_medians(labels, count, colours, sel)
        monkeypatch.setattr(flats, "HISTOGRAM_BYTES", 0)  # the sorted route, whatever the count
        sparse = region_medians(labels, count, colours, sel)
        monkeypatch.undo()
        monkeypatch.setattr(kernels, "WORKERS", workers)
        assert np.array_equal(dense, sparse)
        assert np.array_equal(sparse, numpy_medians(labels, count, colours, np.ones((h, w), bool) if sel is None
                                                    else sel))


def test_a_fine_grid_takes_the_sorted_route_and_its_medians():
    line = grid(480, 600)
    regions = find_regions(uint8_to_tensor(line))
    assert regions.count == 80 * 100
    assert 2 * 3 * (regions.count + 1) * 256 * 8 > flats.HISTOGRAM_BYTES  # (on one core too)
    colours = np.random.default_rng(1).integers(0, 256, (480, 600, 3), dtype=np.uint8)
    got = region_medians(regions.labels, regions.count, colours, regions.own)
    assert np.array_equal(got, numpy_medians(regions.labels, regions.count, colours, regions.own))


def enclosed_apart_per_pair(table, regions, min_contrast=flats.MIN_CONTRAST):
    """set_enclosed_apart as it was written before issue 29: a Python loop over the touching pairs."""
    pairs = regions.touching
    if min_contrast <= 0 or len(pairs) == 0:
        return table
    colours = table.astype(np.int32)
    if (np.abs(colours[pairs[:, 0]] - colours[pairs[:, 1]]).max(1) >= min_contrast).all():
        return table
    areas = regions.areas
    larger_of = {}
    for a, b in pairs:
        if areas[a] == areas[b]:
            continue
        inner, outer = (a, b) if areas[a] < areas[b] else (b, a)
        larger_of[inner] = outer if inner not in larger_of else None
    out = colours
    for inner in sorted(larger_of, key=lambda r: -areas[r]):
        outer = larger_of[inner]
        if outer is None or areas[inner] < MIN_DISTINCT_AREA * regions.labels.size:
            continue
        if np.abs(out[inner] - out[outer]).max() >= min_contrast:
            continue
        goal = 0 if out[outer].mean() >= 128 else 255
        for s in np.linspace(0.1, 1.0, 10):
            moved = np.rint(out[inner] + s * (goal - out[inner])).astype(np.int32)
            if np.abs(moved - out[outer]).max() >= min_contrast:
                break
        out[inner] = moved
    return out.astype(np.uint8)


def nested_boxes(seed: int) -> np.ndarray:
    """Boxes inside boxes, side by side and overlapping (enclosed shapes, pieces, equal areas), (H, W) uint8."""
    rng = np.random.default_rng(seed)
    a = np.full((200, 260), 255, np.uint8)
    for _ in range(14):
        y0, x0 = rng.integers(0, 170), rng.integers(0, 230)
        y1, x1 = y0 + rng.integers(12, 200 - y0), x0 + rng.integers(12, 260 - x0)
        a[y0:y1, [x0, x1 - 1]] = 0
        a[[y0, y1 - 1], x0:x1] = 0
    return a


@pytest.mark.parametrize("seed", range(6))
def test_enclosed_apart_sets_the_same_regions_apart_as_the_per_pair_rule(seed):
    regions = find_regions(uint8_to_tensor(nested_boxes(seed)))
    rng = np.random.default_rng(seed)
    # Colours close together, so that many touching regions are painted alike
    table = (128 + rng.integers(-30, 30, (regions.count + 1, 3))).astype(np.uint8)
    for contrast in (0, 20, flats.MIN_CONTRAST, 90):
        assert np.array_equal(set_enclosed_apart(table, regions, contrast),
                              enclosed_apart_per_pair(table, regions, contrast))


def test_past_the_region_limit_the_small_regions_keep_the_models_colours(monkeypatch):
    line = grid(120, 150)
    line[30:90, 30:120] = 255  # one large region with two cells left inside it
    line[30, 30:120] = line[89, 30:120] = 0
    line[30:90, 30] = line[30:90, 119] = 0
    regions = find_regions(uint8_to_tensor(line))
    rng = np.random.default_rng(3)
    colours = rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)
    assert coloured_one_by_one(regions) is None  # within MAX_FLAT_REGIONS: every region is coloured
    monkeypatch.setattr(flats, "MAX_FLAT_REGIONS", 1)
    with pytest.warns(ArtflowWarning, match=rf"has {regions.count:,} closed regions, more than the 1 a clean flat"):
        keep = coloured_one_by_one(regions)
    assert keep.sum() == 1 and keep[regions.labels[60, 80]]  # the large region, larger than the second (a cell)
    with pytest.warns(ArtflowWarning) as caught:
        flat = clean_flat_u8(regions, colours)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    big = regions.labels == regions.labels[60, 80]
    medians = region_medians(regions.labels, regions.count, colours, regions.own)
    assert (flat[big] == medians[regions.labels[60, 80]]).all()
    assert np.array_equal(flat[~big], colours[~big])  # every other pixel: the model's colour
    # The float route makes the same flat, and a box of it is that part of it.
    with pytest.warns(ArtflowWarning):
        as_float = clean_flat(uint8_to_tensor(line), uint8_to_tensor(colours), regions=regions)
    assert np.array_equal(tensor_to_uint8(as_float), flat)
    with pytest.warns(ArtflowWarning):
        assert np.array_equal(clean_flat_u8(regions, colours, box=(10, 70, 40, 140)), flat[10:70, 40:140])


def test_generate_prints_the_region_notice_as_one_line(tmp_path, capsys, monkeypatch):
    bundle.save(tiny_model(seed=0), tmp_path / "m")
    save_image(line_art(), tmp_path / "line.png")  # four regions
    monkeypatch.setattr(flats, "MAX_FLAT_REGIONS", 2)
    code, _, err = run_cli(["generate", tmp_path / "line.png", "-o", tmp_path / "out", "--model", tmp_path / "m",
                            "--device", "cpu"], capsys)
    assert code == 0
    # Lines as a terminal shows them: the progress bar redraws itself after a carriage return.
    notices = [ln for ln in err.replace("\r", "\n").splitlines() if "closed regions" in ln]
    assert len(notices) >= 1 and all(ln.startswith("artflow generate: warning: the line art has 4 closed regions")
                                     for ln in notices)
    assert "ArtflowWarning" not in err  # not Python's two-line warning


def test_many_regions_do_not_change_a_flat_within_the_limit():
    # The rule only applies past the limit: a grid of 2,000 cells is coloured cell by cell, as before.
    line = grid(240, 300)
    regions = find_regions(uint8_to_tensor(line))
    colours = torch.rand(3, 240, 300) * 2 - 1
    flat = tensor_to_uint8(clean_flat(uint8_to_tensor(line), colours, regions=regions))
    table = region_medians(regions.labels, regions.count, colours, regions.own)
    assert np.array_equal(flat, table[regions.labels])
