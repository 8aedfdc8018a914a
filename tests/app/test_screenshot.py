"""`python main.py --screenshot FILE [--open IMAGE]`: starts the app, opens (and refines), saves the window, exits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests import forgery

ROOT = Path(__file__).resolve().parents[2]


def run_main(args, tmp_path, timeout=180):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ARTFLOW_DATA_DIR=str(tmp_path / "data"),
               ARTFLOW_REFINE_STEPS="4", OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_screenshot_with_open_and_refinement(tmp_path, tiny_bundle, artwork_png):
    out = tmp_path / "shot.png"
    r = run_main(["--model", str(tiny_bundle), "--open", str(artwork_png), "--screenshot", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    img = Image.open(out)
    assert img.width >= 1000 and img.height >= 700
    # The window is not blank: a painting app's chrome and the stages are there.
    assert len(img.convert("RGB").getcolors(1 << 20) or []) > 50
    assert not (tmp_path / "data" / "autosave").exists() or not any((tmp_path / "data" / "autosave").iterdir())


def test_screenshot_without_a_model_and_a_bad_model(tmp_path):
    out = tmp_path / "nomodel.png"
    r = run_main(["--model", str(tmp_path / "missing"), "--screenshot", str(out)], tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]  # what it was asked to open failed
    assert out.is_file()
    assert "missing" in r.stderr  # the error is reported (on stderr in screenshot mode), not a traceback
    assert "Traceback" not in r.stderr


def _forged_project(folder: Path) -> Path:
    """A valid tiny project with the encrypted flag set on its manifest (a zip reader's RuntimeError, once)."""
    _bundle, good, _session = forgery.make_bases(folder)
    path = folder / "locked.artflow"
    path.write_bytes(forgery.set_encrypted_flag(good, "manifest.json"))
    return path


def _forged_model(folder: Path, tiny_bundle: Path) -> Path:
    """The tiny bundle with a config.json of 200,000 nested brackets (a RecursionError, once)."""
    bad = folder / "bad-model"
    shutil.copytree(tiny_bundle, bad)
    (bad / "config.json").write_text(forgery.nested(200_000))
    return bad


@pytest.mark.parametrize("case", ["image", "project", "model"])
def test_screenshot_exits_nonzero_when_an_open_fails(tmp_path, tiny_bundle, case):
    out = tmp_path / "shot.png"
    if case == "image":
        bad = tmp_path / "broken.png"
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
        args = ["--model", str(tiny_bundle), "--open", str(bad)]
    elif case == "project":
        bad = _forged_project(tmp_path)
        args = ["--model", str(tiny_bundle), "--open", str(bad)]
    else:
        bad = _forged_model(tmp_path, tiny_bundle)
        args = ["--model", str(bad)]
    r = run_main([*args, "--screenshot", str(out)], tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]
    lines = r.stderr.splitlines()
    # One line, naming the file, and nothing else: no traceback, no Qt plugin chatter (propagateSizeHints ...).
    assert len(lines) == 1, r.stderr[-2000:]
    assert lines[0].startswith("artflow: ") and bad.name in lines[0]
    assert "Traceback" not in r.stderr and "Internal error" not in r.stderr


# Explicit ids: an id made from the million-character name becomes PYTEST_CURRENT_TEST, which no child process can
# inherit (E2BIG, over Linux's 128 KiB limit per environment string; pytest 9.0 makes such ids, 9.2 does not).
@pytest.mark.parametrize("name", ["other", "evil\n\x1b[2J\x00" + "A" * 1_000_000], ids=["other", "forged-long-name"])
def test_screenshot_of_another_models_project_exits_1_without_a_dialog(tmp_path, tiny_bundle, name):
    """No dialog waits in screenshot mode: a project of another model is an error on one line of stderr, its
    names escaped and shortened (a forged model name of a million characters costs nothing)."""
    from tests.app.conftest import other_model_project

    project = other_model_project(tmp_path / "theirs.artflow")
    project.write_bytes(forgery.rename_model(project.read_bytes(), name))
    out = tmp_path / "shot.png"
    r = run_main(["--model", str(tiny_bundle), "--open", str(project), "--screenshot", str(out)], tmp_path,
                 timeout=120)
    assert r.returncode == 1, r.stderr[-2000:]
    assert out.is_file()
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 1000, r.stderr[:2000]
    assert lines[0].startswith("artflow: theirs.artflow was made with the model '") and "open model 'tiny'" in lines[0]
    assert "\x1b" not in r.stderr and "\x00" not in r.stderr
    if name != "other":
        assert "'evil\\n\\x1b[2J\\x00AAAA" in lines[0] and "…" in lines[0]


def test_failed_screenshot_write_leaves_the_old_file(tmp_path, tiny_bundle):
    """A full disk (here: a file size limit of 8 KB) fails the write: exit 1, one line, and the file that was
    there is left as it was (no truncated PNG, no temp file)."""
    import resource
    import signal

    out = tmp_path / "shot.png"
    out.write_bytes(b"the old screenshot")

    def small_files() -> None:  # in the child: writes past 8 KB fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", ARTFLOW_DATA_DIR=str(tmp_path / "data"),
               OMP_NUM_THREADS="2", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--model", str(tiny_bundle), "--screenshot",
                        str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                       preexec_fn=small_files)
    assert r.returncode == 1, r.stderr[-2000:]
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("artflow: cannot write the screenshot") and "shot.png" in lines[0]
    assert out.read_bytes() == b"the old screenshot"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_qt_plugin_noise_is_dropped_and_real_warnings_kept(monkeypatch, caplog):
    from PySide6.QtCore import QtMsgType

    from app import qt_messages

    monkeypatch.delenv("ARTFLOW_DEBUG", raising=False)
    with caplog.at_level("DEBUG", logger="qt"):
        qt_messages.handle_message(QtMsgType.QtWarningMsg, None, "This plugin does not support propagateSizeHints()")
        qt_messages.handle_message(QtMsgType.QtDebugMsg, None, "a debug note")
        qt_messages.handle_message(QtMsgType.QtWarningMsg, None, "QPainter::begin: Paint device returned engine == 0")
    assert [r.getMessage() for r in caplog.records] == ["QPainter::begin: Paint device returned engine == 0"]
    caplog.clear()
    monkeypatch.setenv("ARTFLOW_DEBUG", "1")
    with caplog.at_level("DEBUG", logger="qt"):
        qt_messages.handle_message(QtMsgType.QtWarningMsg, None, "This plugin does not support propagateSizeHints()")
    assert len(caplog.records) == 1  # kept when debugging


def test_tab_option_picks_a_stage_by_index_name_or_title(window, capsys):
    from app.application import _show_tab, stage_index

    doc = window.doc
    last = doc.num_stages - 1
    spec = doc.config.stages[last]
    assert stage_index(doc, str(last)) == last
    assert stage_index(doc, spec.name.upper()) == last and stage_index(doc, spec.title) == last
    assert stage_index(doc, str(doc.num_stages)) is None and stage_index(doc, "-1") is None
    doc.set_current_stage(0)
    assert _show_tab(window, spec.name) and doc.current_stage == last
    assert window.tabs.currentIndex() == last  # the tab bar follows: the screenshot shows that stage
    assert not _show_tab(window, "nonsense") and doc.current_stage == last
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tab nonsense" in err[0] and spec.name in err[0]
