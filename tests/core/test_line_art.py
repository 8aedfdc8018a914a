"""Thin line art from a flat's colour regions, and the SVG gradient flattening that finds an artwork's regions."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.line_art import (
    boundary_mask,
    color_labels,
    line_art_from_flat,
    merge_small_regions,
    outline,
    regions_of_line_art,
)
from core.data.svg_flatten import flatten_gradients, gradient_colors, parse_color

YELLOW, RED, BLACK, WHITE = (250, 200, 0), (200, 0, 0), (0, 0, 0), (255, 255, 255)


def three_region_flat(size: int = 48) -> np.ndarray:
    """White paper, a yellow face, a black eye and a red mouth inside it (4 regions, 3 of them drawn)."""
    f = np.full((size, size, 3), WHITE, np.uint8)
    f[6:42, 6:42] = YELLOW
    f[14:20, 14:20] = BLACK
    f[30:34, 12:36] = RED
    return f


def test_color_labels_counts_connected_regions_not_colours():
    f = three_region_flat()
    f[0:3, 0:3] = YELLOW  # same colour as the face, but not connected to it: its own region
    labels = color_labels(f, min_area=1)
    assert labels.dtype == np.int32 and labels.min() == 0 and labels.max() == 4  # 5 regions
    assert labels[1, 1] != labels[20, 20] and labels[20, 20] == labels[40, 40]


def test_small_specks_merge_into_their_surroundings():
    f = three_region_flat()
    f[25, 25] = (1, 2, 3)  # a one-pixel speck inside the face
    assert color_labels(f, min_area=1).max() == 4
    labels = color_labels(f, min_area=4)
    assert labels.max() == 3 and labels[25, 25] == labels[24, 25]
    # A speck touching two regions joins the one it shares the longer border with.
    lab = np.zeros((5, 5), np.int32)
    lab[:, 3:] = 1
    lab[2, 2] = 2  # borders region 0 on three sides, region 1 on one
    assert merge_small_regions(lab, 2)[2, 2] == merge_small_regions(lab, 2)[2, 1]


@pytest.mark.parametrize("width", [1, 2, 3])
def test_outlines_separate_the_regions_and_each_closed_region_holds_one_flat_colour(width):
    f = three_region_flat()
    line = line_art_from_flat(f, width=width)
    assert line.dtype == np.uint8 and line.shape == f.shape[:2] and set(np.unique(line)) == {0, 255}
    regions, n = regions_of_line_art(line)
    assert n == 4  # paper, face, eye, mouth: each enclosed by its own line
    for r in range(1, n + 1):
        colours = np.unique(f[regions == r].reshape(-1, 3), axis=0)
        assert len(colours) == 1, f"closed region {r} holds {len(colours)} flat colours"
    # Lines are thin: about `width` px of ink per px of boundary (face 144 + eye 24 + mouth 56 = 224 px).
    assert 200 * width <= (line == 0).sum() <= 240 * width
    assert (line[24, 24] == 255) and (line[16, 16] == 255)  # inside the face and inside the eye: paper


def test_outline_widths_and_one_sided_boundary():
    labels = np.zeros((10, 10), np.int32)
    labels[:, 5:] = 1
    b = boundary_mask(labels)
    assert b[:, 4].all() and b.sum() == 10  # one px, on the left side of the colour change
    for w in (1, 2, 3):
        assert ((outline(labels, w) == 0).sum(axis=1) == w).all()
    with pytest.raises(ValueError):
        outline(labels, 0)


def test_color_labels_rejects_non_rgb():
    with pytest.raises(ValueError, match="uint8"):
        color_labels(np.zeros((4, 4), np.uint8))


def test_gradient_flattening():
    body = ('<linearGradient id="a"><stop offset="0" stop-color="#000"/><stop offset="1" stop-color="#ffffff"/>'
            '</linearGradient><radialGradient id="b" xlink:href="#a" cx="3"/>'
            '<linearGradient id="c"><stop style="stop-color:rgb(255,0,0)"/></linearGradient>'
            '<path fill="url(#a)" d="M0 0h4v4z"/><path fill="url(#b)" d="M0 0h4v4z"/>'
            '<path style="fill:url(#c)" d="M0 0h4v4z"/><path fill="url(#missing)" d="M0 0h4v4z"/>')
    assert gradient_colors(body) == {"a": (128, 128, 128), "b": (128, 128, 128), "c": (255, 0, 0)}
    flat = flatten_gradients(body)
    assert 'fill="#808080"' in flat and flat.count("#808080") == 2 and "fill:#ff0000" in flat
    assert "url(#missing)" in flat  # unknown paint is left as it is
    assert parse_color("#abc") == (170, 187, 204) and parse_color("none") is None and parse_color("#12") is None
