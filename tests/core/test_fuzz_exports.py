"""Property-based fuzzing of `artflow export` (issue 29): forged projects (the reader's forgeries), every format,
any scale, output names that fit the format, do not, or are the project itself. Each run exits 0 with the file
written, or 2 with one line on stderr; the project is never changed or replaced, and a wrong name writes nothing.
(The peak memory of large forged exports is bounded in test_memory_bounds.py, in a process of its own.)"""

from __future__ import annotations

import contextlib
import io
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import cli
from tests.core.engine_util import single_thread  # noqa: F401 - fixture
from tests.core.fuzz_util import SEEDS, fuzz_settings, scratch
from tests.forgery import forge_project, make_bases

FORMATS = {"png": ".png", "strip": ".png", "ora": ".ora", "gif": ".gif", "stages": ""}


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bases")
    model_dir, project, _ = make_bases(folder)
    return model_dir, project


@fuzz_settings(30)
@given(seed=SEEDS, fmt=st.sampled_from(sorted(FORMATS)), scale=st.sampled_from([1, 1, 2, 16, 1000, 0, -3]),
       name=st.sampled_from(["right", "wrong", "self"]), forged=st.booleans())
def test_exports_write_or_refuse_in_one_line_and_never_touch_the_project(bases, seed, fmt, scale, name, forged):
    model_dir, good = bases
    with scratch() as d:
        if forged:
            project = forge_project(random.Random(seed), good, d)
        else:
            project = d / "good.artflow"
            project.write_bytes(good)
        before = project.read_bytes() if project.is_file() else None
        out = {"right": d / f"out{FORMATS[fmt]}", "wrong": d / ("out.jpg" if fmt != "stages" else "out.png"),
               "self": project}[name]
        args = ["export", project, "--format", fmt, "-o", out, "--model", model_dir]
        if scale != 1:
            args += ["--scale", scale]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main([str(a) for a in args])
        err = stderr.getvalue()
        assert "Traceback" not in err
        assert code in (0, 2), err
        if code == 2:
            assert len(err.strip().splitlines()) == 1, err
        if name != "right" or (scale != 1 and fmt != "png"):
            assert code == 2  # a name that does not fit, the project itself, a scale on another format
        if name == "wrong":
            assert not out.exists()
        if before is not None:
            assert project.read_bytes() == before  # the input is never replaced
