"""The headless CLI end to end on a tiny model: generate, reconstruct, edit, export, and every user error as one
clear line on stderr with a non-zero exit (never a traceback)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import cli
from core.config import StageSpec
from core.editing.session import Session
from core.files import bundle
from core.files.imageio import load_image, save_image, tensor_to_uint8
from core.files.project import apply_project, load_project
from tests.core.cli_util import run_cli as run
from tests.core.engine_util import image, tiny_model

ROOT = Path(__file__).resolve().parents[2]
STEPS = 3


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    bundle.save(tiny_model(seed=0), d / "m")
    bundle.save(tiny_model(seed=1, stages=(StageSpec("sketch", 1), StageSpec("paint", 3))), d / "other")
    save_image(image(1, seed=1), d / "line.png")
    save_image(image(3, seed=2), d / "art.png")
    (d / "text.png").write_text("I am not an image")
    return d


def model_args(files) -> list:
    return ["--model", files / "m", "--device", "cpu"]


@pytest.fixture(scope="module")
def reconstructed(files):
    """`reconstruct` once for the module (its output feeds edit and export)."""
    out = files / "rec"
    assert cli.main([str(a) for a in ["reconstruct", files / "art.png", "-o", out, "--steps", STEPS,
                                      *model_args(files)]]) == 0
    return out


def _same_png(path, tensor) -> bool:
    with Image.open(path) as im:
        return np.array_equal(np.asarray(im), tensor_to_uint8(tensor))


def test_reconstruct(files, reconstructed):
    out = reconstructed
    names = ["00-lineart.png", "01-flat.png", "02-detail.png"]
    assert sorted(p.name for p in (out / "inferred").iterdir()) == names
    assert sorted(p.name for p in (out / "stages").iterdir()) == names
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == STEPS and report["regularizer"] == "learned"
    assert report["perceptual"] in ("vgg16", "discriminator") and report["device"].startswith("CPU")
    assert report["model"]["config_hash"] == bundle.config_hash(bundle.load_config(files / "m"))
    assert [t["stage"] for t in report["transitions"]] == ["flat", "detail"]
    for t in report["transitions"]:
        assert t["loss_end"] < t["loss_start"] and t["seconds"] > 0
    assert report["seconds"] > 0 and report["regularizer_trained"] == [False, False]
    project = load_project(out / "project.artflow", bundle.load_config(files / "m"))
    assert not project.read_only and all(d.abs().sum() > 0 for d in project.state.deltas)  # refined
    stages = project.stage_images()
    art = load_image(files / "art.png", 3, 32)
    # The last inferred stage is the artwork, and so is the last stage written (issue 27: the artist's pixels are
    # kept at the model's size too); the last session stage is the fit, whose PSNR is reported beside the output's.
    assert _same_png(out / "inferred" / "02-detail.png", art)
    assert torch.equal(project.state.targets[-1], art)
    for k, name in enumerate(names):
        assert _same_png(out / "stages" / name, stages[k])
    assert torch.equal(stages[-1], art) and report["output_psnr"] == 100.0
    fit = project.proxy_images()[-1]
    mse = float((((fit + 1) / 2 - (art + 1) / 2) ** 2).mean())
    assert report["psnr"] == pytest.approx(10 * np.log10(1 / mse), abs=1e-3)


def test_reconstruct_encoder_only_and_progress(files, capsys):
    out = files / "rec0"
    code, stdout, err = run(["reconstruct", files / "art.png", "-o", out, "--steps", 0, "--regularizer", "none",
                             "--no-clean-flats", *model_args(files)], capsys)
    assert code == 0 and stdout.strip() == str(out / "project.artflow")
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 0 and report["regularizer"] == "none"
    assert all(t["loss_start"] == t["loss_end"] for t in report["transitions"])
    project = load_project(out / "project.artflow")
    assert all(not d.any() for d in project.state.deltas)
    # Encoder only = the session's load_artwork (inference + encoder + chain).
    s = Session(bundle.load(files / "m"), "cpu")
    s.load_artwork(load_image(files / "art.png", 3, 32))
    for a, b in zip(project.proxy_images(), s.stages, strict=True):  # to float rounding: the refinement's last
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)  # picture is the reference modules', the session's not
    assert torch.equal(project.stage_images()[-1], load_image(files / "art.png", 3, 32))  # the output: the artwork
    # ... and a refinement shows a progress bar on stderr.
    code, _, err = run(["reconstruct", files / "art.png", "-o", files / "rec1", "--steps", 1, *model_args(files)],
                       capsys)
    assert code == 0 and "refine" in err and "100%" in err


def test_generate(files, capsys):
    z = ",".join(["0.5"] * 8)
    code, stdout, err = run(["generate", files / "line.png", "-o", files / "gen", "--z", f"flat={z}", "--seed", 3,
                             "--no-clean-flats", *model_args(files)], capsys)
    assert code == 0 and stdout.strip() == str(files / "gen" / "project.artflow")
    assert "generate" in err  # the progress bar
    report = json.loads((files / "gen" / "report.json").read_text())
    assert report["latents"]["flat"] == [0.5] * 8 and report["latents_given"] == ["flat"]
    assert report["latent_coords"]["flat"] == [0.5] * 8  # the tiny model's prior is N(0, I)
    p = load_project(files / "gen" / "project.artflow")
    assert torch.equal(p.state.latents[0], torch.full((8,), 0.5))
    assert p.state.targets is None
    line = load_image(files / "line.png", 1, 32)
    assert torch.equal(p.state.bases[0], line)
    # Every stage is written, and they are the chain run with these latents.
    s = Session(bundle.load(files / "m"), "cpu")
    s.set_stage(0, line, propagate=False)
    for i, zi in enumerate(p.state.latents):
        s.set_latent(i, zi, propagate=False)
    s.propagate(0)
    for k, name in enumerate(["00-lineart.png", "01-flat.png", "02-detail.png"]):
        assert _same_png(files / "gen" / "stages" / name, s.stages[k])
    # The seed decides the sampled latents; fixing one code leaves the others as they were for that seed.
    assert run(["generate", files / "line.png", "-o", files / "gen2", "--seed", 3, *model_args(files)], capsys)[0] == 0
    q = load_project(files / "gen2" / "project.artflow")
    assert torch.equal(q.state.latents[1], p.state.latents[1])
    assert run(["generate", files / "line.png", "-o", files / "gen3", "--seed", 4, *model_args(files)], capsys)[0] == 0
    assert not torch.equal(load_project(files / "gen3" / "project.artflow").state.latents[1], p.state.latents[1])
    assert run(["generate", files / "line.png", "-o", files / "gen4", "--mean-z", *model_args(files)], capsys)[0] == 0
    assert all(not z.any() for z in load_project(files / "gen4" / "project.artflow").state.latents)


def test_generate_smooths_a_dithered_line_art(files, tmp_path, capsys):
    """A 1-bit dithered line art: its dots are smoothed when it is read (a note says so), and the first stage's
    closed regions are the drawing's (each dot was a line: one region for the whole picture, a white flat)."""
    from core.fullres.regions import find_regions, undither
    from tests.core.test_fullres_regions import dithered_drawing, worst_match

    drawing, dithered = dithered_drawing(200, size=128)
    Image.fromarray(dithered).convert("1").save(tmp_path / "dithered.png")
    code, _, err = run(["generate", tmp_path / "dithered.png", "-o", tmp_path / "gen", *model_args(files)], capsys)
    assert code == 0 and "dithered.png is a dithered 1-bit line art" in err
    first = load_project(tmp_path / "gen" / "project.artflow").fullres_u8[0]
    assert np.array_equal(first, undither(dithered))
    assert worst_match(find_regions(drawing), find_regions(first)) > 0.9
    # A line art that is not dithered is read as it is, without a note.
    Image.fromarray(drawing).save(tmp_path / "drawing.png")
    code, _, err = run(["generate", tmp_path / "drawing.png", "-o", tmp_path / "gen2", *model_args(files)], capsys)
    assert code == 0 and "dithered" not in err
    assert np.array_equal(load_project(tmp_path / "gen2" / "project.artflow").fullres_u8[0], drawing)


def test_edit_propagates_with_the_project_latents_and_deltas(files, reconstructed, capsys):
    src = load_project(reconstructed / "project.artflow")
    new_flat = image(3, seed=7)
    save_image(new_flat, files / "flat.png")
    out = files / "edit"
    code, stdout, _ = run(["edit", reconstructed / "project.artflow", "--stage", f"flat={files / 'flat.png'}",
                           "-o", out, *model_args(files)], capsys)
    assert code == 0
    p = load_project(out / "project.artflow")
    assert torch.equal(p.state.bases[0], src.state.bases[0])  # earlier stages untouched
    assert torch.equal(p.state.bases[1], load_image(files / "flat.png", 3, 32))
    for a, b in zip(p.state.latents + p.state.deltas, src.state.latents + src.state.deltas, strict=True):
        assert torch.equal(a, b)  # the refined deltas are kept and used
    s = Session(bundle.load(files / "m"), "cpu")
    apply_project(s, src)
    s.set_stage(1, load_image(files / "flat.png", 3, 32))
    assert torch.equal(p.state.bases[2], s.stages[2])  # the model's own chain follows the edit
    # The detail written is the artist's, moved where the flat changed (here everywhere), by the model's change.
    detail = p.stage_images()[2]
    assert _same_png(out / "stages" / "02-detail.png", detail)
    assert not torch.equal(detail, src.stage_images()[2])
    report = json.loads((out / "report.json").read_text())
    assert report["stage"] == "flat" and report["regenerated"] == ["detail"] and not report["keep_unedited"]
    assert report["stage_change"]["lineart"] == 0 and report["stage_change"]["detail"] > 0
    assert p.extra["cli"][-1]["command"] == "edit" and p.extra["cli"][0]["command"] == "reconstruct"


def test_edit_keep_unedited(files, reconstructed, capsys):
    src = load_project(reconstructed / "project.artflow")
    flat = src.stage_images()[1].clone()
    flat[:, 2:6, 2:6] = torch.tensor([1.0, -1.0, -1.0])[:, None, None]  # a red square in a corner
    save_image(flat, files / "flat_edit.png")
    out = files / "edit_keep"
    code, _, _ = run(["edit", reconstructed / "project.artflow", "--stage", f"flat={files / 'flat_edit.png'}",
                      "--keep-unedited", "-o", out, *model_args(files)], capsys)
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert 0 < report["edited_fraction"] < 1
    detail_before, detail_after = src.stage_images()[2], load_project(out / "project.artflow").stage_images()[2]
    far = torch.ones(32, 32, dtype=torch.bool)
    far[2:6, 2:6] = False  # outside the square: kept bit for bit (regions: only the pixels whose flat changed)
    assert torch.equal(detail_after[:, far], detail_before[:, far])
    assert not torch.equal(detail_after[:, 2:6, 2:6], detail_before[:, 2:6, 2:6])


@pytest.mark.parametrize("fmt", ["png", "stages", "strip", "ora", "gif"])
def test_export(files, reconstructed, capsys, fmt):
    target = files / "exp" / {"stages": "stages", "strip": "strip.png"}.get(fmt, f"art.{fmt}")
    code, stdout, err = run(["export", reconstructed / "project.artflow", "--format", fmt, "-o", target,
                             *model_args(files)], capsys)
    assert code == 0 and "warning" not in err
    stages = load_project(reconstructed / "project.artflow").stage_images()
    if fmt == "png":
        assert _same_png(target, stages[-1])
    elif fmt == "stages":
        assert stdout.split() == [str(target / f) for f in ("00-lineart.png", "01-flat.png", "02-detail.png")]
    elif fmt == "strip":
        with Image.open(target) as im:
            assert im.width > 3 * 32
    elif fmt == "ora":
        with zipfile.ZipFile(target) as zf:
            assert zf.namelist()[0] == "mimetype" and len([n for n in zf.namelist() if n.startswith("data/")]) == 3
    else:
        with Image.open(target) as im:
            assert im.n_frames == 3
    if fmt != "stages":
        assert stdout.strip() == str(target)


def test_export_scale_and_other_model(files, reconstructed, capsys):
    code, _, _ = run(["export", reconstructed / "project.artflow", "--format", "png", "--scale", 2, "-o",
                      files / "big.png", *model_args(files)], capsys)
    assert code == 0
    with Image.open(files / "big.png") as im:
        assert im.size == (64, 64)
    # A project of another model exports its images, with a warning.
    code, _, err = run(["export", reconstructed / "project.artflow", "--format", "gif", "-o", files / "o.gif",
                        "--model", files / "other"], capsys)
    assert code == 0 and "warning:" in err and "made with the model 'tiny'" in err


def test_export_scale_is_bounded_by_the_output_size(files, reconstructed, capsys, monkeypatch):
    import core.files.export

    monkeypatch.setattr(core.files.export, "MAX_OUTPUT_SIDE", 100)  # 32 px: at most 3 times
    code, _, err = run(["export", reconstructed / "project.artflow", "--format", "png", "--scale", 4, "-o",
                        files / "x4.png", *model_args(files)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the largest scale for this 32 x 32 artwork is 3" in err and not (files / "x4.png").exists()


def test_export_refuses_to_write_onto_its_input(files, reconstructed, tmp_path, capsys):
    project = tmp_path / "self.artflow"
    project.write_bytes((reconstructed / "project.artflow").read_bytes())
    before = project.read_bytes()
    (tmp_path / "self.png").symlink_to(project)
    for out in (project, tmp_path / "self.png"):  # the very file (a name a png export refuses), a link to it
        code, _, err = run(["export", project, "--format", "png", "-o", out, *model_args(files)], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "is the input" in err
    assert project.read_bytes() == before and (tmp_path / "self.png").is_symlink()


@pytest.mark.parametrize("command", ["generate", "reconstruct", "edit", "export"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for option in ("--model", "--device", "--seed", "-o"):
        assert option in out


# ----- errors: one clear line, non-zero exit -----
def _errors(files, rec):
    m = model_args(files)
    proj = rec / "project.artflow"
    art, line = files / "art.png", files / "line.png"
    z = ",".join(["0"] * 8)
    return {
        "missing_image": (["generate", files / "nope.png", "-o", files / "o", *m], "nope.png: file not found"),
        "unreadable_image": (["reconstruct", files / "text.png", "-o", files / "o", *m], "not an image format"),
        "image_is_folder": (["reconstruct", files, "-o", files / "o", *m], "is a folder"),
        "missing_model": (["generate", line, "-o", files / "o", "--model", files / "nomodel"],
                          "model folder not found"),
        "model_not_a_bundle": (["generate", line, "-o", files / "o", "--model", files / "rec"], "no config.json"),
        "z_count": (["generate", line, "-o", files / "o", "--z", "flat=1,2", *m], "have 8 values, got 2"),
        "z_text": (["generate", line, "-o", files / "o", "--z", "flat=a,b", *m], "must be numbers"),
        "z_nan": (["generate", line, "-o", files / "o", "--z", "flat=" + ",".join(["nan"] * 8), *m], "within"),
        "z_far": (["generate", line, "-o", files / "o", "--z", "flat=" + ",".join(["3.5"] * 8), *m], "within"),
        "z_first_stage": (["generate", line, "-o", files / "o", "--z", f"lineart={z}", *m], "no latent code"),
        "z_unknown_stage": (["generate", line, "-o", files / "o", "--z", f"paint={z}", *m],
                            "unknown stage 'paint'; this model's stages are: lineart, flat, detail"),
        "z_no_equals": (["generate", line, "-o", files / "o", "--z", "flat", *m], "must look like STAGE="),
        "z_twice": (["generate", line, "-o", files / "o", "--z", f"flat={z}", "--z", f"flat={z}", *m], "twice"),
        "steps_negative": (["reconstruct", art, "-o", files / "o", "--steps", -1, *m], "--steps must be 0 or more"),
        "out_is_a_file": (["reconstruct", art, "-o", line, *m], "not a folder"),
        "wrong_stage": (["edit", proj, "--stage", f"colour={art}", "-o", files / "o", *m],
                        "unknown stage 'colour'; this model's stages are: lineart, flat, detail"),
        "stage_no_image": (["edit", proj, "--stage", "flat", "-o", files / "o", *m], "must look like NAME=IMAGE"),
        "edit_missing_image": (["edit", proj, "--stage", f"flat={files / 'nope.png'}", "-o", files / "o", *m],
                               "nope.png: file not found"),
        "missing_project": (["edit", files / "nope.artflow", "--stage", f"flat={art}", "-o", files / "o", *m],
                            "nope.artflow: file not found"),
        "corrupt_project": (["export", art, "--format", "png", "-o", files / "o.png"], "not a readable zip"),
        "incompatible_project": (["edit", proj, "--stage", f"paint={art}", "-o", files / "o", "--model",
                                  files / "other"], "was made with the model 'tiny'"),
        "scale_not_png": (["export", proj, "--format", "gif", "--scale", 2, "-o", files / "o.gif"],
                          "--scale applies to --format png only"),
        "scale_too_big": (["export", proj, "--format", "png", "--scale", 99, "-o", files / "o.png"],
                          "scale must be an integer in 1..16"),
        "png_named_jpg": (["export", proj, "--format", "png", "-o", files / "o.jpg"],
                          "o.jpg: the png export writes a .png file; give a name ending in .png"),
        "stages_named_png": (["export", proj, "--format", "stages", "-o", files / "o.png"], "writes a folder"),
    }


ERROR_CASES = sorted(_errors(Path("."), Path(".")))


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_are_one_clear_line(files, reconstructed, capsys, case):
    argv, message = _errors(files, reconstructed)[case]
    code, _, err = run(argv, capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"artflow {argv[0]}: error: ") and message in lines[0], lines[0]


def test_names_from_files_are_printed_with_control_characters_escaped(files, reconstructed, tmp_path, capsys):
    """A model name (from a project's manifest) or a file name holding a newline, NUL or ESC: the error is still
    one line, and sends no escape code to the terminal."""
    from tests import forgery

    evil = "evil\n\x1b[2J\x00\r\x9b31m\u2028name"
    project = tmp_path / "forged.artflow"
    project.write_bytes(forgery.rename_model((reconstructed / "project.artflow").read_bytes(), evil))
    cases = [(["edit", project, "--stage", f"flat={files / 'art.png'}", "-o", tmp_path / "o", *model_args(files)],
              "made with the model 'evil\\n\\x1b[2J\\x00\\r\\x9b31m\\u2028name'"),
             (["generate", tmp_path / "no\npe\x1b[2J.png", "-o", tmp_path / "o", *model_args(files)],
              "no\\npe\\x1b[2J.png: file not found")]
    for argv, message in cases:
        code, _, err = run(argv, capsys)
        assert code == 2
        assert len(err.splitlines()) == 1 and err.endswith("\n"), repr(err)
        assert message in err, repr(err)
        assert not any(c in err[:-1] for c in "\n\r\x00\x1b\x9b\u2028"), repr(err)


def test_image_too_large_for_the_model(files, capsys, monkeypatch):
    import core.files.imageio

    monkeypatch.setattr(core.files.imageio, "MAX_PIXELS", 100)
    code, _, err = run(["reconstruct", files / "art.png", "-o", files / "o", *model_args(files)], capsys)
    assert code == 2 and "too large" in err and len(err.strip().splitlines()) == 1


def test_default_model_missing_is_explained(files, reconstructed, capsys, monkeypatch):
    monkeypatch.setattr(bundle, "default_bundle_path", lambda: files / "not-installed")
    code, _, err = run(["generate", files / "line.png", "-o", files / "o"], capsys)
    assert code == 2 and "the bundled model is not installed" in err and "--model DIR" in err
    # export needs no model: without the bundled one it simply skips the model check.
    code, _, err = run(["export", reconstructed / "project.artflow", "--format", "png", "-o", files / "d.png"],
                       capsys)
    assert code == 0 and err == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_device(files, capsys):
    code, _, err = run(["generate", files / "line.png", "-o", files / "o", "--model", files / "m", "--device",
                        "cuda"], capsys)
    assert code == 2 and "no CUDA GPU" in err


def test_main_py_subprocess_no_qt_no_traceback(files, reconstructed):
    """`python main.py <command>` runs the commands without importing Qt, and an error is one line on stderr
    (one interpreter for all of it: starting Python with torch is the slow part)."""
    script = (
        "import sys, main\n"
        f"m = {str(files / 'm')!r}\n"
        f"rc = main.main(['export', {str(reconstructed / 'project.artflow')!r}, '--format', 'ora', '-o', "
        f"{str(files / 'sub.ora')!r}])\n"
        f"rc += main.main(['generate', {str(files / 'line.png')!r}, '-o', {str(files / 'sub_gen')!r}, "
        "'--model', m])\n"
        "print('ERR-START', file=sys.stderr)\n"
        f"bad = main.main(['reconstruct', {str(files / 'nope.png')!r}, '-o', {str(files / 'o')!r}, '--model', m])\n"
        "qt = [k for k in sys.modules if k.startswith(('PySide6', 'shiboken6', 'PyQt'))]\n"
        "print('QT', qt, 'RC', rc, bad)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "QT [] RC 0 2" in r.stdout
    assert "Traceback" not in r.stderr
    assert r.stderr.split("ERR-START")[1].strip() == (
        f"artflow reconstruct: error: {files / 'nope.png'}: file not found")


def test_model_option_takes_a_bundled_models_name(capsys, monkeypatch, tmp_path):
    """--model NAME opens resources/models/NAME (a folder of that name, if one exists here, wins); `info` lists the
    bundled models with their descriptions."""
    from core.config import tiny
    from core.model import WorkflowModel

    shipped = tmp_path / "models"
    for name in ("first", "second"):
        cfg = dataclasses.replace(tiny(resolution=32, name=name), description=f"the {name} model, for testing")
        bundle.save(WorkflowModel(cfg), shipped / name)
    monkeypatch.setattr(bundle, "BUNDLED_DIR", shipped)
    monkeypatch.setattr(bundle, "DEFAULT_BUNDLE", "first")
    monkeypatch.chdir(tmp_path)  # no folder named "second" here
    code, out, err = run(["info", "--model", "second"], capsys)
    assert code == 0, err
    facts = json.loads(out)
    assert facts["name"] == "second" and facts["path"] == str(shipped / "second")
    assert facts["bundled_models"] == {"first": "the first model, for testing",
                                       "second": "the second model, for testing"}
    code, _, err = run(["info", "--model", "third"], capsys)
    assert code != 0 and "not the name of a bundled model (first, second)" in err
