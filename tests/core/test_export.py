"""Exports (core.files.export): final PNG, stage PNGs, strip, OpenRaster and GIF; atomic writes and clear errors."""

from __future__ import annotations

import os
import zipfile
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

import core.files.export as export_module
from core.errors import ImageError
from core.files.export import (
    FORMATS,
    MAX_OUTPUT_SIDE,
    ExportFormat,
    check_output,
    check_output_size,
    export,
    export_final_png,
    export_gif,
    export_ora,
    export_stages,
    export_strip,
    gif_frame,
    largest_scale,
    strip_image,
)
from core.files.imageio import tensor_to_uint8
from tests.core.engine_util import image

NAMES = ["lineart", "flat", "detail"]


@pytest.fixture()
def images():
    return [image(1, seed=1), image(3, seed=2), image(3, seed=3)]


def _pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.copy())


def test_final_png(tmp_path, images):
    p = export_final_png(images, tmp_path / "sub" / "art.png")  # missing folders are created
    assert np.array_equal(_pixels(p), tensor_to_uint8(images[-1]))  # lossless, the last stage
    big = export_final_png(images, tmp_path / "big.png", scale=3)
    with Image.open(big) as im:
        assert im.size == (96, 96) and im.mode == "RGB"
    gray = export_final_png(images[:1], tmp_path / "gray.png", scale=2)
    with Image.open(gray) as im:
        assert im.size == (64, 64) and im.mode == "L"
    for bad in (0, -1, 17, 1.5, True):
        with pytest.raises(ImageError, match="scale"):
            export_final_png(images, tmp_path / "x.png", scale=bad)


def test_stages(tmp_path, images):
    paths = export_stages(images, NAMES, tmp_path / "out")
    assert [p.name for p in paths] == ["00-lineart.png", "01-flat.png", "02-detail.png"]
    for p, t in zip(paths, images, strict=True):
        assert np.array_equal(_pixels(p), tensor_to_uint8(t))
    # A hand-made name can never leave the folder.
    paths = export_stages(images[:2], ["../../evil", "a b"], tmp_path / "safe")
    assert all(p.parent == tmp_path / "safe" for p in paths)


def test_strip(tmp_path, images):
    p = export_strip(images, NAMES, tmp_path / "strip.png")
    with Image.open(p) as im:
        assert im.mode == "RGB" and im.width >= 3 * 32 and im.height > 32
    plain = strip_image(images, None)
    labelled = strip_image(images, NAMES)
    assert labelled.height > plain.height  # the label band
    assert plain.size == (3 * 32 + 4 * 4, 32 + 2 * 4)


def test_ora(tmp_path, images):
    p = export_ora(images, NAMES, tmp_path / "art.ora")
    with zipfile.ZipFile(p) as zf:
        first = zf.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED and first.extra == b""
        assert zf.read("mimetype") == b"image/openraster"
        # The OpenRaster magic: the mimetype's bytes sit at a fixed offset of the file (readers sniff it).
        assert p.read_bytes()[30:38 + 16] == b"mimetypeimage/openraster"
        root = ET.fromstring(zf.read("stack.xml"))
        assert root.tag == "image" and (root.get("w"), root.get("h")) == ("32", "32")
        layers = root.find("stack").findall("layer")
        assert [ly.get("name") for ly in layers] == ["detail", "flat", "lineart"]  # topmost first
        assert [ly.get("visibility") for ly in layers] == ["visible", "hidden", "hidden"]
        for ly, t in zip(layers, reversed(images), strict=True):
            with zf.open(ly.get("src")) as f, Image.open(f) as im:
                assert im.size == (32, 32)
                rgb = np.asarray(im.convert("RGB"))
            want = tensor_to_uint8(t)
            want = np.repeat(want[:, :, None], 3, axis=2) if want.ndim == 2 else want
            assert np.array_equal(rgb, want)
        for name in ("mergedimage.png", "Thumbnails/thumbnail.png"):
            with zf.open(name) as f, Image.open(f) as im:
                assert im.size == (32, 32)
                merged = np.asarray(im.convert("RGB"))
            assert np.array_equal(merged, tensor_to_uint8(images[-1]))


def test_ora_thumbnail_is_at_most_256(tmp_path):
    big = [torch.zeros(3, 300, 300), torch.ones(3, 300, 300)]
    with zipfile.ZipFile(export_ora(big, ["a", "b"], tmp_path / "big.ora")) as zf:
        with zf.open("Thumbnails/thumbnail.png") as f, Image.open(f) as im:
            assert max(im.size) == 256


def test_gif(tmp_path, images):
    p = export_gif(images, tmp_path / "flow.gif", ms_per_frame=500)
    with Image.open(p) as im:
        assert im.n_frames == 3 and im.info.get("loop") == 0 and im.size == (32, 32)
        im.seek(1)
        assert im.info.get("duration") == 500
    with pytest.raises(ImageError, match="ms_per_frame"):
        export_gif(images, tmp_path / "x.gif", ms_per_frame=0)


def test_dispatch_and_errors(tmp_path, images):
    assert export(images, NAMES, "gif", tmp_path / "a.gif")[0].exists()
    with zipfile.ZipFile(export(images, NAMES, ExportFormat.ORA, tmp_path / "a.ora")[0]) as zf:
        assert zf.read("mimetype") == b"image/openraster"
    assert FORMATS == ("png", "stages", "strip", "ora", "gif")  # the CLI's --format words
    assert len(export(images, NAMES, "stages", tmp_path / "st")) == 3
    with pytest.raises(ImageError, match="unknown export format"):
        export(images, NAMES, "psd", tmp_path / "a.psd")
    with pytest.raises(ImageError, match="png export only"):
        export(images, NAMES, "gif", tmp_path / "a.gif", scale=2)
    with pytest.raises(ImageError, match="no stage images"):
        export_final_png([], tmp_path / "a.png")
    with pytest.raises(ImageError, match="differ in size"):
        export_gif([torch.zeros(3, 8, 8), torch.zeros(3, 16, 16)], tmp_path / "b.gif")
    with pytest.raises(ImageError, match="stage names"):
        export_stages(images, NAMES[:2], tmp_path / "c")
    with pytest.raises(ImageError, match="is a folder"):
        export_final_png(images, tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageError, match="not a folder"):
        export_stages(images, NAMES, tmp_path / "file")


def test_writes_are_atomic(tmp_path, images, monkeypatch):
    path = tmp_path / "art.ora"
    export_ora(images, NAMES, path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(ImageError, match="No space left"):
        export_ora(images[::-1], NAMES, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["art.ora"]  # no temp file left behind


@pytest.mark.parametrize("fmt", FORMATS)
def test_uint8_stages_export_exactly_like_their_tensors(images, tmp_path, fmt):
    # The app exports its 8-bit stages without float copies: every format writes the same pixels as from tensors.
    u8 = [tensor_to_uint8(t) for t in images]
    a = export(images, NAMES, fmt, tmp_path / f"t.{fmt}")
    b = export(u8, NAMES, fmt, tmp_path / f"u.{fmt}")
    assert len(a) == len(b)
    for pa, pb in zip(a, b, strict=True):
        if fmt == "ora":
            with zipfile.ZipFile(pa) as za, zipfile.ZipFile(pb) as zb:
                assert za.namelist() == zb.namelist()
                assert all(za.read(n) == zb.read(n) for n in za.namelist())
        else:
            assert pa.read_bytes() == pb.read_bytes()


def test_uint8_stage_of_another_size_is_refused(images, tmp_path):
    u8 = [tensor_to_uint8(t) for t in images]
    u8[1] = u8[1][:-1]
    with pytest.raises(ImageError, match="differ in size"):
        export(u8, NAMES, "strip", tmp_path / "s.png")


def _frames(path) -> list[np.ndarray]:
    with Image.open(path) as im:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]


def test_gif_frames_are_the_stages_in_their_own_palettes(tmp_path, images):
    # Written a frame at a time (issue 29: Pillow's animated writer held every frame and compared them as RGBA):
    # every frame is whole, in its stage's own adaptive palette, even one identical to the frame before.
    images = [*images, images[-1]]
    p = export_gif(images, tmp_path / "flow.gif", ms_per_frame=500)
    got = _frames(p)
    assert len(got) == 4
    for frame, t in zip(got, images):
        assert np.array_equal(frame, np.asarray(gif_frame(t).convert("RGB")))
        truth = tensor_to_uint8(t)
        truth = truth if truth.ndim == 3 and truth.shape[2] == 3 else np.repeat(truth.reshape(32, 32, 1), 3, 2)
        assert np.abs(frame.astype(int) - truth).mean() < 12  # 256 colours for a picture of noise


def test_a_large_gif_frames_palette_keeps_thin_ink(tmp_path, monkeypatch):
    # Above GIF_PALETTE_PIXELS the palette is found on a spread of the frame's own pixels, not on an averaged
    # copy: 1 px black lines on white stay black, a smooth gradient stays within a few levels.
    monkeypatch.setattr(export_module, "GIF_PALETTE_PIXELS", 50 * 50)
    line = np.full((199, 211), 255, np.uint8)
    line[::17] = 0
    line[:, 5::23] = 0
    y, x = np.mgrid[0:199, 0:211]
    gradient = np.stack([x * 255 // 210, y * 255 // 198, np.full_like(x, 90)], 2).astype(np.uint8)
    got = _frames(export_gif([line, gradient], tmp_path / "big.gif"))
    assert np.array_equal(got[0][..., 0], line)
    assert np.abs(got[1].astype(int) - gradient).max() <= 24


def test_scale_is_bounded_by_the_output_size(tmp_path):
    # Issue 29 F4: --scale 16 of a 4096 x 3072 artwork died in the LANCZOS resize; the bound comes before it.
    with pytest.raises(ImageError) as err:
        check_output_size(4096, 3072, 8)
    assert "largest scale for this 4096 x 3072 artwork is 4" in str(err.value) and "\n" not in str(err.value)
    assert largest_scale(4096, 3072) == 4 and largest_scale(1024, 1024) == 16 and largest_scale(20_000, 1) == 1
    thin = [np.zeros((2, 2048), np.uint8)]  # long and thin: cheap at any scale
    with pytest.raises(ImageError, match="the largest scale for this 2048 x 2 artwork is 8"):
        export_final_png(thin, tmp_path / "x.png", scale=9)
    assert not (tmp_path / "x.png").exists()
    with Image.open(export_final_png(thin, tmp_path / "x.png", scale=8)) as im:
        assert im.size == (MAX_OUTPUT_SIDE, 16)


def test_output_name_must_fit_the_format(tmp_path):
    # Issue 29 F9: PNG bytes under a .jpg name; a stages folder named like a file.
    for fmt, name in (("png", "x.jpg"), ("png", "x"), ("strip", "x.gif"), ("ora", "x.png"), ("gif", "x.GIF.png")):
        with pytest.raises(ImageError, match="export writes a ") as err:
            check_output(fmt, tmp_path / name)
        assert str(err.value).startswith(str(tmp_path / name)) and "\n" not in str(err.value)
    with pytest.raises(ImageError, match="writes a folder"):
        check_output("stages", tmp_path / "x.png")
    for fmt, name in (("png", "x.PNG"), ("strip", "s.png"), ("ora", "a.ora"), ("gif", "a.gif"), ("stages", "st")):
        check_output(fmt, tmp_path / name)


def test_output_must_not_be_an_input(tmp_path):
    # Issue 29 F8: `export self.artflow -o self.artflow` replaced the project; links to it count as the same file.
    src = tmp_path / "art.png"
    src.write_bytes(b"the project")
    with pytest.raises(ImageError, match="is the input"):
        check_output("png", src, [src])
    (tmp_path / "link.png").symlink_to(src)
    os.link(src, tmp_path / "hard.png")
    for name in ("link.png", "hard.png"):
        with pytest.raises(ImageError, match="is the input"):
            check_output("png", tmp_path / name, [src])
    check_output("png", tmp_path / "new.png", [src])  # not there yet: another file
    (tmp_path / "copy.png").write_bytes(b"the project")
    check_output("png", tmp_path / "copy.png", [src])  # equal bytes, another file
    assert src.read_bytes() == b"the project"


# ----- written a band of rows at a time (issue 29 F3) -----
def test_png_rows_give_back_every_row_exactly(tmp_path):
    import io

    from core.files.png_rows import PngRows

    rng = np.random.default_rng(4)
    for h, w, c, band in ((37, 53, 3, 7), (64, 20, 1, 64), (1, 1, 3, 1), (9, 300, 1, 4)):
        a = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        a[: h // 2] //= 64  # flat parts: other filters win there
        buf = io.BytesIO()
        out = PngRows(buf, w, h, c)
        for y in range(0, h, band):
            out.write(a[y:y + band] if c == 3 else a[y:y + band, :, 0])
        out.close()
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            assert im.mode == ("RGB" if c == 3 else "L") and np.array_equal(np.asarray(im).reshape(a.shape), a)
    out = PngRows(io.BytesIO(), 4, 2, 3)
    with pytest.raises(ValueError, match="rows must be uint8"):
        out.write(np.zeros((1, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="3 rows given, 2 left"):
        out.write(np.zeros((3, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="2 rows of the image were not written"):
        out.close()


@pytest.mark.parametrize("labelled", [True, False])
def test_a_strip_png_has_strip_images_pixels(tmp_path, monkeypatch, labelled):
    import core.files.export as export_module

    monkeypatch.setattr(export_module, "STRIP_BAND", 5)  # many bands, the last one short
    stages = [image(1, seed=4), tensor_to_uint8(image(3, seed=5)), image(3, seed=6), tensor_to_uint8(image(1, seed=7))]
    names = ["lineart", "a-rather-long-stage-name", "detail", "x"]  # labels wider than the 32 px images too
    p = export_strip(stages, names, tmp_path / "s.png", labels=labelled)
    assert np.array_equal(_pixels(p), np.asarray(strip_image(stages, names if labelled else None)))
    big = [torch.rand(3, 130, 210) * 2 - 1, torch.rand(1, 130, 210) * 2 - 1]  # a larger font and gap
    p = export_strip(big, ["flat", "shading"], tmp_path / "big.png", labels=labelled)
    assert np.array_equal(_pixels(p), np.asarray(strip_image(big, ["flat", "shading"] if labelled else None)))


@pytest.mark.parametrize("channels", [1, 3])
def test_an_enlarged_png_is_pillows_resize_of_the_whole_picture(tmp_path, monkeypatch, channels):
    import core.files.export as export_module

    monkeypatch.setattr(export_module, "ENLARGE_BAND", 20)  # a few source rows a band
    stage = tensor_to_uint8(torch.rand(channels, 41, 53) * 2 - 1)
    pil = Image.fromarray(stage)
    for scale in (2, 3, 5, 16):
        p = export_final_png([stage], tmp_path / f"x{scale}.png", scale=scale)
        whole = pil.resize((53 * scale, 41 * scale), Image.Resampling.LANCZOS)
        assert np.array_equal(_pixels(p), np.asarray(whole))


def test_ora_keeps_the_line_art_over_the_colours_as_its_own_layer(tmp_path):
    """"Line art over colours": the .ora gets the first stage once more, on top, visible and multiplied, and its
    merged image is the final stage with the ink multiplied over it."""
    import zipfile

    from PIL import Image

    from core.files.export import export_ora

    line = np.full((20, 30), 255, np.uint8)
    line[10, 5:25] = 0
    final = np.full((20, 30, 3), (200, 100, 50), np.uint8)
    path = export_ora([line, final], ["lineart", "detail"], tmp_path / "a.ora", line_over=True)
    with zipfile.ZipFile(path) as zf:
        stack = zf.read("stack.xml").decode()
        merged = np.asarray(Image.open(zf.open("mergedimage.png")).convert("RGB"))
    first = stack.index("<layer")
    assert 'composite-op="svg:multiply"' in stack[first:stack.index("/>", first)]
    assert stack.count("<layer") == 3
    assert (merged[10, 5:25] == 0).all() and (merged[0, 0] == (200, 100, 50)).all()
