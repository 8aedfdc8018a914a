"""Property-based fuzzing of the model bundle reader (core.files.bundle.load): a forged config.json or
model.safetensors gives a valid fp32 model or a one-line BundleError, never another exception, a hang or a large
allocation (sizes are bounded before any network is built)."""

from __future__ import annotations

import json
import random
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.core.engine_util import single_thread  # noqa: F401 - fixture
from tests.core.fuzz_util import JSON_VALUES, SEEDS, fuzz_settings, merged, scratch
from tests.forgery import check_bundle, forge_bundle, make_bases


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return make_bases(tmp_path_factory.mktemp("bases"))[0]


@fuzz_settings(40)
@given(seed=SEEDS)
def test_forged_bundles_load_or_are_refused_cleanly(good, seed):
    with scratch() as d:
        assert check_bundle(forge_bundle(random.Random(seed), good, d)) in ("ok", "clean")


_SECTIONS = st.sampled_from(("generator", "encoder", "unet", "discriminator"))


@fuzz_settings(40)
@given(top=st.dictionaries(st.sampled_from(("version", "resolution", "stages", "name", "regularizer_trained",
                                            "description", "generator", "unet")), JSON_VALUES, max_size=3),
       section=_SECTIONS, field=st.sampled_from(("dim", "ngf", "ndf", "n_down", "n_layers", "n_scales", "z_dim",
                                                  "mlp_dim", "mlp_layers", "max_mult", "up_kernel")),
       value=JSON_VALUES | st.integers(min_value=0, max_value=5000))
def test_any_config_values_are_refused_cleanly(good, top, section, field, value):
    cfg = merged(json.loads((good / "config.json").read_text()), top)
    if isinstance(cfg.get(section), dict):
        cfg[section][field] = value
    with scratch() as d:
        path = d / "b"
        path.mkdir()
        (path / "config.json").write_text(json.dumps(cfg, allow_nan=True))
        shutil.copy(good / "model.safetensors", path / "model.safetensors")
        assert check_bundle(path) in ("ok", "clean")
