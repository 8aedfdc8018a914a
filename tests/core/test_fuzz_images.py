"""Property-based fuzzing of the image reader (core.files.imageio.load_image, used by every command and the app): any
bytes give a (C, size, size) tensor in [-1, 1] or a one-line ImageError; every valid image of any mode loads."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests.core.fuzz_util import SEEDS, fuzz_settings, scratch
from tests.forgery import IMAGE_FORMATS, IMAGE_MODES, SUFFIX, _encode, check_image, forge_image, random_image


@fuzz_settings(80)
@given(seed=SEEDS, channels=st.sampled_from((1, 3)))
def test_forged_images_read_or_refused_cleanly(seed, channels):
    with scratch() as d:
        assert check_image(forge_image(random.Random(seed), d), channels) in ("ok", "clean")


@fuzz_settings(40)
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(sorted(set(SUFFIX.values()))))
def test_arbitrary_bytes_are_refused_cleanly(data, suffix):
    with scratch() as d:
        path = d / f"x{suffix}"
        path.write_bytes(data)
        assert check_image(path, 3) in ("ok", "clean")


@fuzz_settings(40)
@given(mode=st.sampled_from(IMAGE_MODES), fmt=st.sampled_from(sorted(IMAGE_FORMATS)), seed=SEEDS,
       channels=st.sampled_from((1, 3)), size=st.sampled_from((8, 32)))
def test_every_valid_image_loads(mode, fmt, seed, channels, size):
    with scratch() as d:
        path = d / f"x{SUFFIX[fmt]}"
        path.write_bytes(_encode(random_image(random.Random(seed), mode), fmt))
        assert check_image(path, channels, size) == "ok"
