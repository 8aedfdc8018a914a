"""Property-based fuzzing of the project reader (core.files.project.load_project + apply_project, as `edit` and the
app use them): a forged .artflow gives a project that can be saved again, or a one-line ProjectError."""

from __future__ import annotations

import io
import json
import random
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.core.engine_util import single_thread  # noqa: F401 - fixture
from tests.core.fuzz_util import JSON_VALUES, SEEDS, fuzz_settings, merged, scratch
from tests.forgery import check_project, forge_project, make_bases


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    _, project, session = make_bases(tmp_path_factory.mktemp("bases"))
    return project, session


@fuzz_settings(40)
@given(seed=SEEDS)
def test_forged_projects_open_or_are_refused_cleanly(bases, seed):
    project, session = bases
    with scratch() as d:
        assert check_project(forge_project(random.Random(seed), project, d), session) in ("ok", "clean")


@fuzz_settings(40)
@given(changes=st.dictionaries(st.sampled_from(("format", "version", "model", "resolution", "stages",
                                                "has_targets", "latent_dim", "extra")), JSON_VALUES, max_size=3))
def test_any_manifest_values_are_refused_cleanly(bases, changes):
    project, session = bases
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(project)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename == "manifest.json":
                payload = json.dumps(merged(json.loads(payload), changes), allow_nan=True).encode()
            dst.writestr(info, payload)
    with scratch() as d:
        path = d / "p.artflow"
        path.write_bytes(out.getvalue())
        assert check_project(path, session) in ("ok", "clean")
