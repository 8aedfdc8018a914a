"""The full-res pipeline's 8-bit mode (issue 29: the CLI keeps its stages as uint8, as they are written): with
u8=True, generate, reconstruct and edit give tensor_to_uint8 of the float results bit for bit, and leave the
session exactly as the float mode does, on three- and four-stage models (tiny seeded sessions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.editing.session import Session
from core.files.imageio import tensor_to_uint8, uint8_to_tensor
from core.fullres.pipeline import apply_edit_fullres, follow_proxies, generate_fullres, reconstruct_fullres
from tests.core.engine_util import FOUR_STAGES, single_thread, tiny_model  # noqa: F401


@pytest.fixture(scope="module", params=["3 stages", "4 stages"])
def model(request):
    return tiny_model(seed=0, stages=FOUR_STAGES if request.param == "4 stages" else None)


def line_art(h=72, w=120) -> torch.Tensor:
    a = np.ones((h, w), np.float32)
    a[8:40, 10:12] = a[8:40, 40:42] = a[8:10, 10:42] = a[38:40, 10:42] = -1  # a closed box
    a[20:22, 50:75] = -1  # an open stroke
    a[50:52, 60:110] = -1
    return torch.from_numpy(a)[None]


def levels(shape, seed) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g).float() / 127.5 - 1


def assert_u8_of(floats, u8s) -> None:
    assert len(floats) == len(u8s)
    for k, (f, u) in enumerate(zip(floats, u8s)):
        assert isinstance(u, np.ndarray) and u.dtype == np.uint8, k
        assert np.array_equal(tensor_to_uint8(f), u), f"stage {k}"


def assert_same_sessions(a: Session, b: Session) -> None:
    assert all(torch.equal(x, y) for x, y in zip(a.stages, b.stages))


@pytest.mark.parametrize("clean_flats", [True, False])
def test_generate_in_8_bits_is_the_float_result_rounded(model, clean_flats):
    line = line_art()
    a, b = Session(model, "cpu"), Session(model, "cpu")
    _, floats = generate_fullres(a, line, clean_flats=clean_flats)
    _, u8s = generate_fullres(b, tensor_to_uint8(line), clean_flats=clean_flats, u8=True)
    assert_u8_of(floats, u8s)
    assert_same_sessions(a, b)


@pytest.mark.parametrize("clean_flats", [True, False])
def test_reconstruct_in_8_bits_is_the_float_result_rounded(model, clean_flats):
    art = levels((3, 50, 70), seed=7)
    a, b = Session(model, "cpu"), Session(model, "cpu")
    _, floats, _, _ = reconstruct_fullres(a, art, steps=1, clean_flats=clean_flats)
    artwork = tensor_to_uint8(art)
    _, u8s, _, _ = reconstruct_fullres(b, artwork, steps=1, clean_flats=clean_flats, u8=True)
    assert_u8_of(floats, u8s)
    assert u8s[-1] is artwork  # the artist's pixels, not a copy
    assert_same_sessions(a, b)


def edits(stored: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    """A recolour of part of the flat and a shape painted on its blank paper (the later stages are generated
    there), and line-art strokes: one across a region, a closed box on blank paper."""
    flat = stored[1].copy()
    flat[12:36, 14:38] = (20, 150, 210)
    flat[50:60, 8:30] = (200, 60, 40)  # on the paper below
    line = stored[0].copy()
    line[24:26, 12:40] = 0
    line[56:68, 84:86] = line[56:68, 100:102] = line[56:58, 84:102] = line[66:68, 84:102] = 0
    return [(1, flat), (0, line)]


@pytest.mark.parametrize("propagation, keep_unedited, guide", [
    ("regions", False, "stage"), ("regions", True, "stage"), ("global", False, "stage"), ("global", True, "stage"),
    ("global", False, "source")])
def test_an_edit_in_8_bits_is_the_float_result_rounded(model, propagation, keep_unedited, guide):
    base = Session(model, "cpu")
    pm, generated = generate_fullres(base, line_art())
    stored = [tensor_to_uint8(f) for f in generated]  # as a project keeps them
    for later in stored[1:]:
        later[44:72, 2:40] = 255  # blank paper in every colour stage
    state = base.snapshot()
    for k, image in edits(stored):
        a, b = Session(model, "cpu"), Session(model, "cpu")
        a.restore(state)
        b.restore(state)
        floats, mask_a = apply_edit_fullres(a, [uint8_to_tensor(s) for s in stored], pm, k, uint8_to_tensor(image),
                                            keep_unedited=keep_unedited, propagation=propagation, guide=guide)
        u8s, mask_b = apply_edit_fullres(b, stored, pm, k, image, keep_unedited=keep_unedited,
                                         propagation=propagation, guide=guide, u8=True)
        assert_u8_of(floats, u8s)
        assert u8s[k] is image
        assert (mask_a is None and mask_b is None) or torch.equal(mask_a, mask_b)
        assert_same_sessions(a, b)
        assert any(not np.array_equal(x, y) for x, y in zip(u8s[k + 1:], stored[k + 1:]))  # the edit went on


def test_a_latent_change_in_8_bits_is_the_float_result_rounded(model):
    base = Session(model, "cpu")
    pm, full = generate_fullres(base, line_art())
    old = [s.clone() for s in base.stages]
    base.set_latent(0, base.latents[0] + 2.0)
    a, b = Session(model, "cpu"), Session(model, "cpu")
    a.restore(base.snapshot())
    b.restore(base.snapshot())
    assert_u8_of(follow_proxies(a, full, old, pm, 0), follow_proxies(b, full, old, pm, 0, u8=True))
    assert_same_sessions(a, b)
