"""Full resolution through the config, the project file and the CLI (issue 12): stage kinds, full-res stages in
`.artflow` projects (bit-exact, older projects still open), and generate / reconstruct / edit / export on a
non-square artwork with a tiny seeded model."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import cli
from core.config import StageSpec, WorkflowConfig, tiny
from core.editing.session import Session
from core.errors import BundleError, ProjectError
from core.files import bundle
from core.files.imageio import load_artwork, save_image, tensor_to_uint8
from core.files.project import apply_project, load_project, png_limit, project_from_session, save_project
from core.fullres import MAX_SIDE, ProxyMap, find_regions, region_spread
from core.fullres.proxy import proxy_with
from tests.core.cli_util import run_cli as run
from tests.core.engine_util import RES, image, single_thread, states_equal, tiny_model  # noqa: F401

W, H = 200, 120
OLD_PROJECT = Path(__file__).resolve().parents[1] / "data" / "tiny-project-before-fullres.artflow"


def line_art(w: int = W, h: int = H) -> torch.Tensor:
    """Black rectangles outlined on white (closed regions for clean flats), off-centre, (1, h, w)."""
    a = torch.ones(1, h, w)
    for x0, y0, x1, y1 in ((10, 10, 90, 100), (100, 20, 190, 70), (120, 80, 170, 110)):
        a[:, y0:y1, x0:x0 + 3] = a[:, y0:y1, x1 - 3:x1] = -1
        a[:, y0:y0 + 3, x0:x1] = a[:, y1 - 3:y1, x0:x1] = -1
    return a


def artwork(w: int = W, h: int = H, seed: int = 5) -> torch.Tensor:
    """A colour picture on 8-bit levels (what a PNG holds), (3, h, w)."""
    big = torch.nn.functional.interpolate(image(3, seed)[None], size=(h, w), mode="bilinear")[0]
    return torch.from_numpy(tensor_to_uint8(big).astype(np.float32)).permute(2, 0, 1) / 127.5 - 1


def png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fullres_cli")
    bundle.save(tiny_model(seed=0), d / "m")
    save_image(line_art(), d / "line.png")
    save_image(artwork(), d / "art.png")
    return d


def margs(files) -> list:
    return ["--model", files / "m", "--device", "cpu"]


# ----- stage kinds in the config -----

def test_stage_kind_is_validated_kept_out_of_the_hash_and_saved():
    cfg = tiny(resolution=RES)
    assert [s.kind for s in cfg.stages] == ["line", "flat", "detail"]
    no_kinds = cfg.replace(stages=tuple(StageSpec(s.name, s.channels, s.label) for s in cfg.stages))
    assert bundle.config_hash(cfg) == bundle.config_hash(no_kinds)  # older bundles and projects keep their hash
    assert WorkflowConfig.from_json(cfg.to_json()) == cfg
    assert '"kind"' not in no_kinds.to_json()  # a bundle without kinds is written as before
    with pytest.raises(BundleError, match=r"stages\[1\]\.kind must be one of line, flat, detail"):
        cfg.replace(stages=(cfg.stages[0], StageSpec("flat", 3, kind="flats"), cfg.stages[2]))


def test_a_bundle_without_kinds_loads_and_infers_them(tmp_path):
    model = tiny_model(seed=0, stages=(StageSpec("lineart", 1), StageSpec("flat", 3), StageSpec("detail", 3)))
    bundle.save(model, tmp_path / "m")
    text = (tmp_path / "m" / "config.json").read_text()
    assert '"kind"' not in text
    cfg = bundle.load_config(tmp_path / "m")
    assert [s.kind for s in cfg.stages] == [None, None, None]
    from core.fullres import stage_kinds

    assert stage_kinds(cfg.stages) == ["line", "flat", "detail"]


# ----- projects -----

def test_a_project_with_fullres_stages_roundtrips_bit_exact(tmp_path):
    s = Session(tiny_model(seed=0), "cpu")
    s.load_artwork(proxy_with(artwork(), ProxyMap(W, H, RES)))
    g = torch.Generator().manual_seed(3)
    full = [torch.rand(c, H, W, generator=g) * 2 - 1 for c in (1, 3, 3)]  # not on 8-bit levels
    project = project_from_session(s, {"note": 1}, full)
    assert project.artwork_size == (W, H) and project.proxy_map() == ProxyMap(W, H, RES)
    for a, b in zip(project.fullres, full, strict=True):
        assert (a - b).abs().max() <= 0.5 / 127.5 + 1e-6  # rounded to the 8-bit levels a PNG holds
    path = save_project(project, tmp_path / "p.artflow")
    back = load_project(path, s.config)
    assert back.artwork_size == (W, H) and not back.read_only
    for a, b in zip(back.fullres, project.fullres, strict=True):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(back.stage_images(), project.fullres, strict=True))
    assert states_equal(back.state, project.state)
    assert all(torch.equal(a, b) for a, b in zip(back.proxy_images(), s.stages, strict=True))
    again = load_project(save_project(back, tmp_path / "q.artflow"))
    assert all(torch.equal(a, b) for a, b in zip(again.fullres, project.fullres, strict=True))
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read("manifest.json"))["artwork"] == {"width": W, "height": H}


def test_a_project_written_before_full_resolution_opens_as_a_model_size_artwork(files, capsys):
    """tests/data/tiny-project-before-fullres.artflow was written by main at 0d75c90 (before this change):
    Session(tiny_model(seed=0)).load_artwork(image(3, seed=2)), then save_project."""
    s = Session(tiny_model(seed=0), "cpu")
    s.load_artwork(image(3, seed=2))
    project = load_project(OLD_PROJECT, s.config)
    assert not project.read_only and project.fullres is None
    assert project.artwork_size == (RES, RES) and project.proxy_map() == ProxyMap(RES, RES, RES)
    # The same state; the generated stages to float rounding (the session now makes its pictures with
    # core.nn.inference, and the layer norm is one fused kernel; the file was written with the reference modules
    # of that version).
    now = s.snapshot()
    generated = dataclasses.replace(now, bases=(now.bases[0], *project.state.bases[1:]))
    assert states_equal(project.state, generated)
    torch.testing.assert_close(project.state.bases, now.bases, rtol=0, atol=1e-4)
    torch.testing.assert_close(project.stage_images(), s.stages, rtol=0, atol=1e-4)
    apply_project(Session(tiny_model(seed=0), "cpu"), project)
    # ... and the CLI edits it: a 32 px artwork, now written with its own stages beside the proxies (issue 27:
    # the edit changes the artist's pixels only where it reaches).
    flat = project.stage_images()[1].clone()
    flat[:, :8, :8] = -1
    save_image(flat, files / "old_flat.png")
    out = files / "old_edit"
    code, _, _ = run(["edit", OLD_PROJECT, "--stage", f"flat={files / 'old_flat.png'}", "-o", out, *margs(files)],
                     capsys)
    assert code == 0
    edited = load_project(out / "project.artflow")
    assert edited.artwork_size == (RES, RES) and png(out / "stages" / "02-detail.png").shape == (RES, RES, 3)
    report = json.loads((out / "report.json").read_text())
    assert report["artwork_size"] == report["proxy_size"] == {"width": RES, "height": RES}


def _with_member(src_path, out_path, member, change):
    """A copy of the zip `src_path` with `member`'s bytes replaced by change(bytes)."""
    with zipfile.ZipFile(src_path) as src, zipfile.ZipFile(out_path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, change(data) if info.filename == member else data)
    return out_path


def _edit_json(edit):
    def change(data: bytes) -> bytes:
        m = json.loads(data)
        edit(m)
        return json.dumps(m).encode()
    return change


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_project_png_members_are_bounded_and_checked(tmp_path):
    s = Session(tiny_model(seed=0), "cpu")
    s.load_artwork(proxy_with(artwork(), ProxyMap(W, H, RES)))
    path = save_project(project_from_session(s, None, [artwork()[:1], artwork(), artwork()]), tmp_path / "p.artflow")
    assert png_limit(MAX_SIDE, MAX_SIDE, 3) < 64 * 2**20
    # A stage PNG of another size than the manifest's artwork is refused with one line.
    taller = Image.new("RGB", (W, H + 1), "red")
    forged = _with_member(path, tmp_path / "forged.artflow", "stages/01-flat.png", lambda _: _png(taller))
    with pytest.raises(ProjectError, match=r"stages/01-flat.png is a 200 x 121 RGB image, expected 200 x 120 RGB"):
        load_project(forged)
    # An artwork size over the maximum in the manifest is refused before any PNG is read.
    def wider(m):
        m["artwork"]["width"] = MAX_SIDE + 1

    too_big = _with_member(path, tmp_path / "big.artflow", "manifest.json", _edit_json(wider))
    with pytest.raises(ProjectError, match=f"'artwork' must be an object .* in 1..{MAX_SIDE}"):
        load_project(too_big)
    # Many stages at the largest size (tiny PNGs claiming it) are refused before any PNG is decoded.
    def many_large_stages(m):
        m["artwork"] = {"width": MAX_SIDE, "height": MAX_SIDE}
        # (each with a full-res layer: stage and base as float32, the layer as uint8)
        m["stages"] = [{"name": f"s{k}", "channels": 3, "fullres_layer": True} for k in range(5)]

    many = _with_member(path, tmp_path / "many.artflow", "manifest.json", _edit_json(many_large_stages))
    with pytest.raises(ProjectError, match="full-resolution stages of 4096 x 4096 pixels need"):
        load_project(many)


# ----- the CLI at the artwork's own size -----

@pytest.fixture(scope="module")
def reconstructed(files):
    out = files / "rec"
    assert cli.main([str(a) for a in ["reconstruct", files / "art.png", "-o", out, "--steps", 2, *margs(files)]]) == 0
    return out


def test_generate_writes_stages_at_the_drawing_size(files, capsys):
    out = files / "gen"
    code, stdout, _ = run(["generate", files / "line.png", "-o", out, "--seed", 1, *margs(files)], capsys)
    assert code == 0 and stdout.strip() == str(out / "project.artflow")
    line = load_artwork(files / "line.png", 1)
    pm = ProxyMap(W, H, RES)
    names = ["00-lineart.png", "01-flat.png", "02-detail.png"]
    for name in names:
        assert png(out / "stages" / name).shape[:2] == (H, W)
    assert np.array_equal(png(out / "stages" / "00-lineart.png"), tensor_to_uint8(line))  # the artist's pixels
    project = load_project(out / "project.artflow")
    assert project.artwork_size == (W, H)
    # The model saw the drawing padded to a square, never stretched.
    assert torch.equal(project.state.bases[0], proxy_with(line, pm))
    report = json.loads((out / "report.json").read_text())
    assert report["artwork_size"] == {"width": W, "height": H} and report["proxy_size"] == {"width": RES,
                                                                                             "height": RES}
    assert report["clean_flats"] is True
    # Clean flats: one colour per closed region of the line art; --no-clean-flats leaves the model's flat.
    regions = find_regions(line)
    flat = project.stage_images()[1]
    assert region_spread(regions, flat) == 0.0
    raw = files / "gen_raw"
    assert run(["generate", files / "line.png", "-o", raw, "--seed", 1, "--no-clean-flats", *margs(files)],
               capsys)[0] == 0
    raw_flat = load_project(raw / "project.artflow").stage_images()[1]
    assert raw_flat.shape == flat.shape and region_spread(regions, raw_flat) > 0.01
    assert not np.array_equal(png(raw / "stages" / "01-flat.png"), png(out / "stages" / "01-flat.png"))


def test_reconstruct_keeps_the_artwork_and_its_aspect(files, reconstructed):
    out = reconstructed
    for folder in ("stages", "inferred"):
        for name in ("00-lineart.png", "01-flat.png", "02-detail.png"):
            assert png(out / folder / name).shape[:2] == (H, W)
    # No edit: the final stage is the artwork itself, pixel for pixel.
    assert np.array_equal(png(out / "stages" / "02-detail.png"), png(files / "art.png"))
    project = load_project(out / "project.artflow")
    assert torch.equal(project.stage_images()[-1], load_artwork(files / "art.png", 3))
    assert torch.equal(project.state.targets[-1], proxy_with(artwork(), ProxyMap(W, H, RES)))
    report = json.loads((out / "report.json").read_text())
    assert report["artwork_size"] == {"width": W, "height": H} and report["proxy_size"]["width"] == RES
    assert report["psnr"] is not None and report["fullres_seconds"] >= 0


def test_edit_at_full_resolution_keeps_unedited_pixels(files, reconstructed, capsys):
    src = load_project(reconstructed / "project.artflow")
    flat = src.stage_images()[1].clone()
    flat[:, 10:30, 10:40] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]  # a red patch, top left
    save_image(flat, files / "flat_edit.png")
    out = files / "edit_keep"
    code, _, _ = run(["edit", reconstructed / "project.artflow", "--stage", f"flat={files / 'flat_edit.png'}",
                      "--keep-unedited", "-o", out, *margs(files)], capsys)
    assert code == 0
    p = load_project(out / "project.artflow")
    assert p.artwork_size == (W, H)
    assert torch.equal(p.stage_images()[1], load_artwork(files / "flat_edit.png", 3))
    assert torch.equal(p.stage_images()[0], src.stage_images()[0])
    before, after = src.stage_images()[2], p.stage_images()[2]
    assert not torch.equal(after[:, 10:30, 10:40], before[:, 10:30, 10:40])
    assert torch.equal(after[:, :, 100:], before[:, :, 100:])  # beyond 24 px of the edit: the artwork's pixels
    report = json.loads((out / "report.json").read_text())
    assert 0 < report["edited_fraction"] < 0.2 and report["stage_change"]["detail"] > 0
    assert report["artwork_size"] == {"width": W, "height": H}
    # Exports are full-res too.
    code, _, _ = run(["export", out / "project.artflow", "--format", "png", "-o", files / "final.png"], capsys)
    assert code == 0 and np.array_equal(png(files / "final.png"), tensor_to_uint8(after))
    code, _, _ = run(["export", out / "project.artflow", "--format", "strip", "-o", files / "strip.png"], capsys)
    with Image.open(files / "strip.png") as im:
        assert code == 0 and im.width >= 3 * W


def test_edit_with_an_image_of_another_size_is_one_line(files, reconstructed, capsys):
    save_image(artwork(W + 10, H), files / "wide.png")
    code, _, err = run(["edit", reconstructed / "project.artflow", "--stage", f"flat={files / 'wide.png'}", "-o",
                        files / "o", *margs(files)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "the image is 210 x 120 pixels, the project's artwork is 200 x 120" \
        in lines[0]
    assert not (files / "o").exists()


@pytest.mark.parametrize("command", ["generate", "reconstruct"])
def test_an_image_over_the_maximum_is_one_line(files, capsys, command):
    Image.new("L", (MAX_SIDE + 1, 8), 255).save(files / "huge.png")
    code, _, err = run([command, files / "huge.png", "-o", files / "o", *margs(files)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert f"{MAX_SIDE + 1} x 8 pixels is larger than Artflow works with ({MAX_SIDE} px" in lines[0]
    assert not (files / "o").exists()
