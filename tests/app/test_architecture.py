"""The app holds no model math: no torch.nn, no optimisers, no direct calls into the networks."""

from __future__ import annotations

import re
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def test_no_model_math_in_the_app():
    forbidden = re.compile(r"torch\.nn|import nn\b|from torch import nn|torch\.optim|\.generators\b|\.encoders\b|"
                           r"\.inference\b|\.discriminators\b|\.backward\(|F\.conv")
    offenders = []
    for path in APP.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if forbidden.search(line):
                offenders.append(f"{path.relative_to(APP.parent)}:{n}: {line.strip()}")
    assert not offenders, "model math belongs in core/:\n" + "\n".join(offenders)


# The engine thread (app/engine_worker.py) and the handlers it runs on its own thread (app/engine_handlers.py).
ENGINE_THREAD_MODULES = {APP / "engine_worker.py", APP / "engine_handlers.py"}


def test_only_the_engine_thread_touches_the_session():
    for path in APP.rglob("*.py"):
        if path in ENGINE_THREAD_MODULES:
            continue
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r"engine\.session|\bSession\(", code), path
