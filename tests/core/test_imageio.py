"""core.files.imageio: reading any image into (C, S, S) [-1, 1] tensors, and writing them back safely."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import ArtflowError, ImageError
from core.files import imageio
from core.files.imageio import (
    fit_square,
    load_image,
    pil_to_tensor,
    save_image,
    tensor_to_pil,
    tensor_to_uint8,
    uint8_to_tensor,
)


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


# ---------------------------------------------------------------------------------------------- conversions


def test_uint8_tensor_roundtrip_is_exact():
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (5, 7, 3)]:
        a = rng.integers(0, 256, size=shape, dtype=np.uint8)
        t = uint8_to_tensor(a)
        assert t.dtype == torch.float32
        assert t.shape == ((1, 5, 7) if len(shape) == 2 else (3, 5, 7))
        assert t.min() >= -1 and t.max() <= 1
        np.testing.assert_array_equal(tensor_to_uint8(t), a)
    assert uint8_to_tensor(np.zeros((2, 2), np.uint8)).eq(-1).all()
    assert uint8_to_tensor(np.full((2, 2), 255, np.uint8)).eq(1).all()
    assert uint8_to_tensor(np.zeros((4, 3, 1), np.uint8)).shape == (1, 4, 3)


def test_uint8_to_tensor_rejects_bad_input():
    with pytest.raises(ValueError):
        uint8_to_tensor(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError):
        uint8_to_tensor(np.zeros((4, 4, 4), np.uint8))


def test_tensor_to_pil_modes_batch_and_clamping():
    g = torch.linspace(-1, 1, 12).reshape(1, 3, 4)
    assert tensor_to_pil(g).mode == "L"
    rgb = torch.zeros(1, 3, 5, 6)  # batch of one
    im = tensor_to_pil(rgb)
    assert im.mode == "RGB" and im.size == (6, 5)
    assert np.asarray(im).max() == 128  # 0 -> mid grey
    wild = torch.tensor([[[-5.0, 5.0, float("nan")]]])
    np.testing.assert_array_equal(tensor_to_uint8(wild), [[0, 255, 128]])
    assert tensor_to_uint8(torch.zeros(3, 2, 2, requires_grad=True)).shape == (2, 2, 3)
    for bad in (torch.zeros(2, 4, 4), torch.zeros(2, 3, 4, 4), torch.zeros(4, 4)):
        with pytest.raises(ValueError):
            tensor_to_pil(bad)


# --------------------------------------------------------------------------------------------------- loading


@pytest.mark.parametrize("channels", [1, 3])
def test_load_png_shape_range_dtype(tmp_path, channels):
    p = _save(Image.new("RGB", (20, 20), (255, 0, 0)), tmp_path / "red.png")
    t = load_image(p, channels, 16)
    assert t.shape == (channels, 16, 16) and t.dtype == torch.float32
    assert -1 <= t.min() and t.max() <= 1
    if channels == 3:
        assert torch.allclose(t[:, 8, 8], torch.tensor([1.0, -1.0, -1.0]))
    else:
        assert abs(float(t[0, 8, 8]) - (76 / 127.5 - 1)) < 0.02  # Pillow's luma of pure red


def test_aspect_ratio_kept_and_padded_with_white(tmp_path):
    p = _save(Image.new("L", (40, 20), 0), tmp_path / "wide.png")
    t = load_image(p, 1, 16)
    a = tensor_to_uint8(t)
    assert (a[4:12] == 0).all()  # the drawing: 16 x 8, centred
    assert (a[:4] == 255).all() and (a[12:] == 255).all()  # white padding
    tall = load_image(_save(Image.new("RGB", (10, 30), (0, 0, 0)), tmp_path / "tall.png"), 3, 30)
    b = tensor_to_uint8(tall)
    assert (b[:, :10] == 255).all() and (b[:, 10:20] == 0).all() and (b[:, 20:] == 255).all()


def test_downscale_is_smooth_not_nearest(tmp_path):
    # A 1-px checkerboard averaged by LANCZOS comes out mid grey, nearest-neighbour would not.
    a = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    t = load_image(_save(Image.fromarray(a, "L"), tmp_path / "check.png"), 1, 16)
    assert abs(float(t[0, 4:12, 4:12].mean())) < 0.1


def test_transparency_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 0, 255))
    t = load_image(_save(rgba, tmp_path / "a.png"), 3, 8)
    assert torch.all(t[:, 0, 0] == -1) and torch.all(t[:, 4, 4] == 1)
    half = Image.new("LA", (4, 4), (0, 128))
    v = float(load_image(_save(half, tmp_path / "la.png"), 1, 4)[0, 1, 1])
    assert abs(v - 0.0) < 0.02  # black at 50% over white -> mid grey
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((0, 0), 0)
    p = tmp_path / "p.png"
    pal.save(p, transparency=1)  # index 1 (blue) is transparent
    t = load_image(p, 3, 4)
    assert torch.allclose(t[:, 0, 0], torch.tensor([1.0, -1.0, -1.0]))  # red stays
    assert torch.all(t[:, 2, 2] == 1)  # transparent blue -> white
    gif = tmp_path / "t.gif"
    pal.save(gif, transparency=1)
    assert torch.all(load_image(gif, 1, 4)[:, 2, 2] == 1)


def test_many_modes_and_formats(tmp_path):
    base = Image.new("RGB", (12, 12), (200, 100, 50))
    cases = {
        "l.png": base.convert("L"),
        "one.png": base.convert("1"),
        "p.png": base.convert("P"),
        "rgba.webp": base.convert("RGBA"),
        "cmyk.jpg": base.convert("CMYK"),
        "rgb.jpg": base,
        "rgb.bmp": base,
        "rgb.tif": base,
        "ycc.jpg": base.convert("YCbCr"),
    }
    for name, img in cases.items():
        p = _save(img, tmp_path / name)
        for c in (1, 3):
            t = load_image(p, c, 9)
            assert t.shape == (c, 9, 9), name
            assert torch.isfinite(t).all() and t.min() >= -1 and t.max() <= 1, name


def test_16bit_and_float_grayscale_are_scaled_not_clipped(tmp_path):
    a = np.array([[0, 32896, 65535]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(a).save(p)
    assert Image.open(p).mode.startswith("I")
    u = tensor_to_uint8(pil_to_tensor(Image.open(p), 1, 3))
    np.testing.assert_array_equal(u[1], [0, 128, 255])
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    np.testing.assert_array_equal(tensor_to_uint8(pil_to_tensor(f, 1, 3))[1], [0, 128, 255])


def test_exif_orientation_applied(tmp_path):
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif)
    u = tensor_to_uint8(load_image(p, 1, 20))
    # Shown upright it is 10 wide x 20 tall: dark columns in the middle, white at the sides.
    assert u[:, 10].mean() < 20 and u[:, 0].mean() > 235


def test_pil_to_tensor_matches_load_image(tmp_path):
    img = Image.new("RGB", (30, 17), (10, 200, 30))
    p = _save(img, tmp_path / "x.png")
    assert torch.equal(pil_to_tensor(img, 3, 24), load_image(p, 3, 24))
    assert fit_square(img, 24).size == (24, 24)


# ---------------------------------------------------------------------------------------------------- errors


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="not found") as e:
        load_image(tmp_path / "nope.png", 3, 8)
    assert "nope.png" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path, 3, 8)


def test_symlink_loop_is_said_to_be_one(tmp_path):
    # Issue 29 F9: not "file not found".
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(ImageError, match="symbolic link loop") as e:
        load_image(tmp_path / "a.png", 3, 8)
    assert str(e.value).startswith(str(tmp_path / "a.png")) and "\n" not in str(e.value)


def test_garbage_and_truncated_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("this is not an image")
    with pytest.raises(ImageError, match="bad.png") as e:
        load_image(bad, 3, 8)
    assert isinstance(e.value, ArtflowError)
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="cut.png.*(corrupt|truncated)"):
        load_image(cut, 3, 8)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    cutj = tmp_path / "cut.jpg"
    cutj.write_bytes(buf.getvalue()[:200])
    with pytest.raises(ImageError, match="cut.jpg"):
        load_image(cutj, 3, 8)
    empty = tmp_path / "empty.webp"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty.webp"):
        load_image(empty, 3, 8)


def test_bad_channels_and_zero_size(tmp_path):
    p = _save(Image.new("RGB", (4, 4)), tmp_path / "ok.png")
    with pytest.raises(ImageError, match="channel"):
        load_image(p, 2, 8)
    with pytest.raises(ImageError, match="zero-size"):
        pil_to_tensor(Image.new("RGB", (0, 5)), 3, 8)
    with pytest.raises(ImageError):
        load_image(p, 3, 0)


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    p = _save(Image.new("L", (100, 100)), tmp_path / "big.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 5000)
    with pytest.raises(ImageError, match="big.png.*decompression bomb"):
        load_image(p, 1, 8)
    # Pillow's own (lower) limit is reported the same way, not as a warning or a raw Pillow exception.
    monkeypatch.setattr(imageio, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(p, 1, 8)


# ---------------------------------------------------------------------------------------------------- saving


@pytest.mark.parametrize("c", [1, 3])
def test_save_png_roundtrip_exact(tmp_path, c):
    rng = np.random.default_rng(c)
    shape = (9, 11) if c == 1 else (9, 11, 3)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    p = tmp_path / "out.png"
    save_image(uint8_to_tensor(a), p)
    im = Image.open(p)
    assert im.mode == ("L" if c == 1 else "RGB")
    np.testing.assert_array_equal(np.asarray(im), a)
    assert os.listdir(tmp_path) == ["out.png"]  # no temp file left behind


def test_save_formats_from_suffix(tmp_path):
    t = torch.zeros(1, 3, 8, 8)
    for name, fmt in [("a.jpg", "JPEG"), ("a.JPEG", "JPEG"), ("a.webp", "WEBP"), ("a.bmp", "BMP")]:
        save_image(t, tmp_path / name)
        assert Image.open(tmp_path / name).format == fmt
    save_image(Image.new("RGBA", (4, 4)), tmp_path / "pil.jpg")  # PIL input, alpha dropped for JPEG
    with pytest.raises(ImageError, match="suffix"):
        save_image(t, tmp_path / "a.xyz")
    with pytest.raises(ImageError, match="does not exist"):
        save_image(t, tmp_path / "missing" / "a.png")


def test_save_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "keep.png"
    save_image(torch.ones(1, 4, 4), p)
    before = p.read_bytes()

    def boom(self, fp, *a, **k):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(ImageError, match="keep.png"):
        save_image(-torch.ones(1, 4, 4), p)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.png"]
