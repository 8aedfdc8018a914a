"""Opening line art (issue 28): a clean drawing comes through bit for bit, an RGBA line layer lands on white, and a
scan made here (rendered line art on tinted, textured, unevenly lit paper in grey pencil, with noise and a JPEG
round trip) comes out as clean line art: paper white, lines dark where they were drawn, the closed regions kept.
Then `artflow generate` (clean-up by default, --no-cleanup) and `artflow new --size`."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import main
from core.files import bundle
from core.files.imageio import load_artwork, save_image, tensor_to_uint8
from core.files.project import load_project
from core.fullres import find_regions
from core.fullres.lineart_import import clean_scan, prepare_line_art, to_grey
from tests.core.cli_util import run_cli as run
from tests.core.engine_util import tiny_model


# ----- drawing and scanning, numpy only -----
def _seg_dist(yy, xx, p, q):
    (y0, x0), (y1, x1) = p, q
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-9), 0, 1)
    return np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))


def _shapes(h: int, w: int) -> list[tuple[str, tuple, float]]:
    """Closed shapes and open strokes, in fractions of the canvas (kind, parameters, width in px)."""
    s = min(h, w)
    return [
        ("circle", (0.3 * h, 0.28 * w, 0.17 * s), 3.0),
        ("rect", (0.12 * h, 0.5 * w, 0.42 * h, 0.9 * w), 2.5),
        ("circle", (0.3 * h, 0.72 * w, 0.08 * s), 2.0),  # overlaps the rectangle: more regions
        ("circle", (0.7 * h, 0.35 * w, 0.2 * s), 4.0),  # a face: head, eyes, smile
        ("dot", (0.65 * h, 0.28 * w, 0.015 * s), 0.0),
        ("dot", (0.65 * h, 0.42 * w, 0.015 * s), 0.0),
        ("arc", (0.72 * h, 0.35 * w, 0.1 * s), 3.0),
        ("poly", ((0.6 * h, 0.65 * w), (0.9 * h, 0.58 * w), (0.85 * h, 0.92 * w)), 2.5),
        ("circle", (0.78 * h, 0.78 * w, 0.04 * s), 2.0),  # a small region inside the triangle
        ("wave", (0.06 * h, 0.1 * w, 0.9 * w), 2.5),  # an open stroke
    ]


def draw(h: int, w: int) -> list[np.ndarray]:
    """Each shape's antialiased ink coverage (H, W) in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for kind, p, width in _shapes(h, w):
        if kind == "circle":
            d = np.abs(np.hypot(yy - p[0], xx - p[1]) - p[2])
        elif kind == "dot":
            d, width = np.maximum(np.hypot(yy - p[0], xx - p[1]) - p[2], 0), 1.0
        elif kind == "arc":  # the lower half of a circle
            d = np.abs(np.hypot(yy - p[0], xx - p[1]) - p[2])
            d = np.where(yy >= p[0], d, np.inf)
        elif kind == "rect":
            y0, x0, y1, x1 = p
            corners = [(y0, x0), (y0, x1), (y1, x1), (y1, x0)]
            d = np.min([_seg_dist(yy, xx, corners[i], corners[(i + 1) % 4]) for i in range(4)], 0)
        elif kind == "poly":
            d = np.min([_seg_dist(yy, xx, p[i], p[(i + 1) % len(p)]) for i in range(len(p))], 0)
        else:  # wave
            y, x0, x1 = p
            xs = np.linspace(x0, x1, 60)
            pts = [(y + 0.02 * h * np.sin(x / w * 25), x) for x in xs]
            d = np.min([_seg_dist(yy, xx, pts[i], pts[i + 1]) for i in range(len(pts) - 1)], 0)
        out.append(np.clip(width / 2 + 0.5 - d, 0, 1))
    return out


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur by FFT (periodic edges; fine for noise and lines away from the border)."""
    fy, fx = np.fft.fftfreq(a.shape[0])[:, None], np.fft.rfftfreq(a.shape[1])[None, :]
    g = np.exp(-2 * (np.pi * sigma) ** 2 * (fy ** 2 + fx ** 2))
    return np.fft.irfft2(np.fft.rfft2(a) * g, s=a.shape)


def scan(cover: np.ndarray, seed: int = 0, jpeg: bool = True) -> np.ndarray:
    """A photographed pencil drawing (H, W, 3) uint8 of the ink coverage `cover`: grey pencil (90-130, grainy,
    softened), tinted paper with texture, lighting that falls to ~60 % across the page, noise, a JPEG."""
    rng = np.random.default_rng(seed)
    h, w = cover.shape
    pencil = 110 + 20 * np.tanh(_blur(rng.normal(size=(h, w)), 20) * 40)  # 90..130, varying along the strokes
    grain = np.clip(1 - 0.25 * np.abs(rng.normal(size=(h, w))), 0.4, 1)
    ink = np.clip(_blur(cover * grain, 0.8), 0, 1)[..., None]
    texture = 1 + 0.03 * _blur(rng.normal(size=(h, w)), 1.5) / 0.19 + 0.02 * _blur(rng.normal(size=(h, w)), 12) / 0.02
    paper = np.array([235, 228, 210], np.float64) * texture[..., None]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1 - 0.4 * (0.6 * xx + 0.4 * yy) ** 1.5 - 0.1 * np.hypot(yy - 0.4, xx - 0.5)
    rgb = (paper * (1 - ink) + pencil[..., None] * ink) * light[..., None] + rng.normal(0, 5, (h, w, 1))
    rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    if jpeg:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=85)
        rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return rgb


def clean_drawing(shapes: list[np.ndarray]) -> np.ndarray:
    """The digital drawing: black antialiased lines on pure white, (H, W) uint8."""
    return np.rint(255 * (1 - np.max(shapes, 0))).astype(np.uint8)


# ----- the targets -----
def paper_white(cleaned: np.ndarray, lines: np.ndarray) -> float:
    """The share of the paper farther than 3 px from any line that came out white (> 250)."""
    far = ndimage.distance_transform_edt(~lines) > 3
    return float((cleaned[far] > 250).mean())


def core_dark(cleaned: np.ndarray, shapes: list[np.ndarray]) -> list[float]:
    """Per shape, the share of its core (its line eroded by 1 px) that came out dark (< 100)."""
    shares = []
    for cover in shapes:
        core = ndimage.binary_erosion(cover >= 0.5)
        if core.any():
            shares.append(float((cleaned[core] < 100).mean()))
    return shares


def regions_kept(clean: np.ndarray, cleaned: np.ndarray, min_area: int = 200) -> float:
    """The share of the clean drawing's closed regions (over min_area px) found in the cleaned one (IoU > 0.8)."""
    a, b = find_regions(clean), find_regions(cleaned)
    found = total = 0
    for label in range(1, a.count + 1):
        mine = a.labels == label
        if np.count_nonzero(mine & a.own) < min_area:
            continue
        total += 1
        theirs = b.labels == np.bincount(b.labels[mine]).argmax()
        found += np.count_nonzero(mine & theirs) / np.count_nonzero(mine | theirs) > 0.8
    return found / total


@pytest.fixture(scope="module")
def drawing():
    shapes = draw(640, 800)
    return shapes, clean_drawing(shapes)


@pytest.mark.parametrize("seed,jpeg", [(0, True), (1, False)])
def test_a_scan_comes_out_clean(drawing, seed, jpeg):
    shapes, clean = drawing
    raw = scan(np.max(shapes, 0), seed, jpeg)
    cleaned, info = prepare_line_art(raw)
    assert info.cleaned and info.kind == "scan"
    assert cleaned.shape == clean.shape and cleaned.dtype == np.uint8
    assert np.array_equal(cleaned, clean_scan(raw))
    lines = np.max(shapes, 0) >= 0.5
    assert paper_white(cleaned, lines) >= 0.98
    assert min(core_dark(cleaned, shapes)) >= 0.9
    assert regions_kept(clean, cleaned) >= 0.95
    # The ink stays where the artist put it: no line moved, no speck left (a faint edge may follow the grain).
    far = ndimage.distance_transform_edt(~lines)[cleaned < 128]
    assert (far > 3).mean() < 0.001 and far.max() <= 6


def test_filled_shapes_stay_filled():
    """Solid shapes wider than the closing that levels the paper (the default model's line art is such shapes)."""
    h, w = 480, 640
    yy, xx = np.mgrid[0:h, 0:w]
    disc = np.clip(100.5 - np.hypot(yy - 300, xx - 420), 0, 1)
    bar = ((yy > 60) & (yy < 170) & (xx > 60) & (xx < 320)).astype(float)
    cover = np.maximum(np.max(draw(h, w), 0), np.maximum(disc, bar))
    cleaned, info = prepare_line_art(scan(cover, 6))
    assert info.cleaned
    for shape in (disc, bar):
        assert (cleaned[shape == 1] < 100).mean() > 0.99
    assert paper_white(cleaned, cover >= 0.5) >= 0.98


def test_a_grey_scan_and_an_rgba_scan_read_like_the_colour_one(drawing):
    shapes, _ = drawing
    raw = scan(np.max(shapes, 0), 2, jpeg=False)
    grey = to_grey(raw)
    assert np.array_equal(clean_scan(grey), clean_scan(raw))
    opaque = np.dstack([raw, np.full(raw.shape[:2], 255, np.uint8)])
    assert np.array_equal(prepare_line_art(opaque)[0], prepare_line_art(raw)[0])


def test_clean_line_art_comes_through_unchanged(drawing):
    _, clean = drawing
    for image in (clean, np.dstack([clean] * 3), np.where(clean < 128, 0, 255).astype(np.uint8)):
        out, info = prepare_line_art(image)
        assert not info.cleaned and info.kind == "clean"
        assert np.array_equal(out, clean if image.ndim == 3 else image)
    # Grey or coloured lines on pure white paper are the artist's choice: left alone too.
    blue = np.dstack([clean, clean, np.full_like(clean, 255)])
    out, info = prepare_line_art(blue)
    assert not info.cleaned and np.array_equal(out, to_grey(blue))


def test_an_rgba_line_layer_is_composited_on_white(drawing):
    shapes, _ = drawing
    alpha = np.rint(255 * np.max(shapes, 0)).astype(np.uint8)
    layer = np.zeros((*alpha.shape, 4), np.uint8)
    layer[..., 3] = alpha  # black ink on transparency, as Krita exports a line layer
    out, info = prepare_line_art(layer)
    assert not info.cleaned and info.kind == "clean" and np.array_equal(out, 255 - alpha)
    la = np.dstack([np.zeros_like(alpha), alpha])
    assert np.array_equal(prepare_line_art(la)[0], 255 - alpha)
    # Half-transparent red over white, as Pillow composites it.
    red = np.zeros((2, 2, 4), np.uint8)
    red[..., 0], red[..., 3] = 255, 128
    expected = np.asarray(Image.alpha_composite(Image.new("RGBA", (2, 2), "white"), Image.fromarray(red))
                          .convert("L"))
    assert np.abs(to_grey(red).astype(int) - expected).max() <= 1


def test_a_picture_that_is_not_a_drawing_on_paper_is_left_alone():
    rng = np.random.default_rng(0)
    picture = np.clip(_blur(rng.normal(size=(200, 300)), 8) * 600 + 128, 0, 255).astype(np.uint8)
    out, info = prepare_line_art(picture)
    assert not info.cleaned and info.kind == "not-line-art" and np.array_equal(out, picture)


def test_a_blank_scan_comes_out_blank():
    raw = scan(np.zeros((300, 400)), seed=3)
    out, info = prepare_line_art(raw)
    assert info.cleaned and (out == 255).mean() > 0.999


# ----- the CLI -----
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lineart_cli")
    bundle.save(tiny_model(seed=0), d / "m")
    shapes = draw(160, 200)
    Image.fromarray(scan(np.max(shapes, 0), 4, jpeg=False)).save(d / "scan.png")
    return d


def margs(files) -> list:
    return ["--model", files / "m", "--device", "cpu"]


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def test_generate_cleans_a_scan_unless_told_not_to(files, capsys):
    out = files / "gen"
    code, stdout, err = run(["generate", files / "scan.png", "-o", out, *margs(files)], capsys)
    assert code == 0 and "scan.png looks like a scan" in err and "--no-cleanup" in err
    report = json.loads((out / "report.json").read_text())
    assert report["line_art_cleanup"]["cleaned"] is True and report["line_art_cleanup"]["kind"] == "scan"
    expected = prepare_line_art(tensor_to_uint8(load_artwork(files / "scan.png", 1)))[0]
    assert np.array_equal(_png(out / "stages" / "00-lineart.png"), expected)
    assert np.array_equal(load_project(out / "project.artflow").fullres_u8[0], expected)
    raw = files / "gen_raw"
    assert run(["generate", files / "scan.png", "-o", raw, "--no-cleanup", *margs(files)], capsys)[0] == 0
    report = json.loads((raw / "report.json").read_text())
    assert report["line_art_cleanup"] == {"cleaned": False, "kind": "skipped"}
    assert np.array_equal(_png(raw / "stages" / "00-lineart.png"), tensor_to_uint8(load_artwork(files / "scan.png", 1)))


def test_generate_keeps_clean_line_art_as_it_is(files, capsys):
    line = clean_drawing(draw(120, 200))
    save_image(Image.fromarray(line), files / "line.png")
    out = files / "gen_clean"
    assert run(["generate", files / "line.png", "-o", out, *margs(files)], capsys)[0] == 0
    assert json.loads((out / "report.json").read_text())["line_art_cleanup"]["kind"] == "clean"
    assert np.array_equal(_png(out / "stages" / "00-lineart.png"), line)


def test_new_starts_a_blank_drawing_of_any_size(files, capsys):
    out = files / "new"
    code, stdout, err = run(["new", "--size", "200x150", "-o", out, "--seed", 2, *margs(files)], capsys)
    assert code == 0, err
    assert stdout.strip() == str(out / "project.artflow")
    for name in ("00-lineart.png", "01-flat.png", "02-detail.png"):
        assert _png(out / "stages" / name).shape[:2] == (150, 200)
    assert (_png(out / "stages" / "00-lineart.png") == 255).all()
    project = load_project(out / "project.artflow")
    assert project.artwork_size == (200, 150)
    report = json.loads((out / "report.json").read_text())
    assert report["command"] == "new" and report["artwork_size"] == {"width": 200, "height": 150}
    # A single file when OUT names one; `python main.py new` is the CLI's, not the app's.
    single = files / "drawing.artflow"
    code = main.main([str(a) for a in ["new", "--size", "64x100", "-o", single, *margs(files)]])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout.strip() == str(single) and load_project(single).artwork_size == (64, 100)


@pytest.mark.parametrize("size,message", [("5000x100", "larger than Artflow works with"),
                                          ("40x30", "too small"), ("200", "WIDTHxHEIGHT"),
                                          ("0x100", "zero-size")])
def test_new_refuses_a_size_out_of_bounds(files, capsys, size, message):
    code, _, err = run(["new", "--size", size, "-o", files / "bad", *margs(files)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (files / "bad").exists()
