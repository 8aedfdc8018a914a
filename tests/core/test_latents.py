"""Choosing a chain's latent codes outside the app (core.editing.latents): slider coordinates by stage name, the prior's
mean, seeded samples that do not move when another code is fixed."""

from __future__ import annotations

import pytest
import torch

from core.editing.latents import choose_latents, parse_latent_coords, stage_by_name
from core.editing.session import Z_RANGE
from core.errors import ArtflowError
from tests.core.engine_util import FOUR_STAGES, tiny_model


def test_coordinates_by_stage_name_or_index():
    model = tiny_model(stages=FOUR_STAGES)
    cfg = model.config
    d = cfg.generator.z_dim
    names = cfg.stage_names
    coords = parse_latent_coords([f"{names[2]}=" + ",".join(["1"] * d), "3=" + ",".join(["-2.5"] * d)], cfg)
    assert coords == {1: [1.0] * d, 2: [-2.5] * d}  # transition i produces stage i+1
    assert stage_by_name(cfg, f" {names[1]} ") == 1
    with pytest.raises(ArtflowError, match="a stage name is missing"):
        stage_by_name(cfg, " ")
    with pytest.raises(ArtflowError, match=r"--z .*within \+-3"):
        parse_latent_coords([f"{names[1]}=" + ",".join([str(Z_RANGE + 0.1)] * d)], cfg)


def test_fixing_one_code_leaves_the_others_as_sampled():
    model = tiny_model(stages=FOUR_STAGES)
    sampled = choose_latents(model, seed=5)
    assert len(sampled) == model.num_transitions and all(z.shape == (model.config.generator.z_dim,) for z in sampled)
    assert not torch.equal(sampled[0], sampled[1])
    given = choose_latents(model, seed=5, given={1: [0.5] * model.config.generator.z_dim})
    assert torch.equal(given[0], sampled[0]) and torch.equal(given[2], sampled[2])
    assert torch.equal(given[1], torch.full_like(given[1], 0.5))  # N(0, I): coordinates are the code itself
    assert not torch.equal(choose_latents(model, seed=6)[0], sampled[0])


def test_mean_codes_come_from_the_fitted_prior():
    model = tiny_model(stages=FOUR_STAGES)
    d = model.config.generator.z_dim
    model.latent_priors[0].set(torch.full((d,), 0.25), 2 * torch.eye(d))
    means = choose_latents(model, seed=0, mean=True, given={2: [1.0] * d})
    assert torch.equal(means[0], torch.full((d,), 0.25)) and torch.equal(means[1], torch.zeros(d))
    assert torch.equal(means[2], torch.ones(d))  # a given code wins over the mean
    sampled = choose_latents(model, seed=0)[0]
    assert bool(((sampled - 0.25).abs() <= 2 * Z_RANGE + 1e-6).all())  # clipped to +-3 of the prior's spread
