"""`python main.py --screenshot FILE [--open IMAGE]`: starts the app, opens (and refines), saves the window, exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

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
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file()
    assert "missing" in r.stderr  # the error is reported (on stderr in screenshot mode), not a traceback
    assert "Traceback" not in r.stderr
