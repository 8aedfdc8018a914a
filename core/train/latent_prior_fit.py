"""Fitting the latent priors (core/latent_prior.py) to the codes that the training artworks encode to: done by
`train` on every export and by `artflow fit-prior`. Training code, so the engine's modules never import it."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from core.model import WorkflowModel
from core.train.data import StageBank

JITTER = 1e-4  # added to the covariance's diagonal: a dimension the encoder never varies stays samplable


def _gaussian(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and Cholesky factor of the covariance (+ JITTER) of codes (N, D)."""
    if codes.shape[0] < 2:
        raise ValueError("fitting a latent prior needs at least 2 images")
    d = codes.shape[1]
    cov = torch.cov(codes.T).reshape(d, d) + JITTER * torch.eye(d)
    return codes.mean(0), torch.linalg.cholesky(cov)


@torch.no_grad()
def fit_latent_prior(encoder: nn.Module, batches: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and Cholesky factor of the encoder's mean codes over `batches` of stage images (B, C, H, W) in [-1, 1].

    The codes used are the posterior means, which is what the engine assigns when it encodes an artwork, so a
    random code is drawn from where encoded artworks lie."""
    return _gaussian(torch.cat([encoder(x)[0].float().cpu() for x in batches]))


@torch.no_grad()
def fit_model_latent_priors(model: WorkflowModel, bank: StageBank, device: torch.device, batch: int = 256) -> None:
    """Fit every transition's latent prior of `model` (on `device`) to the artworks of `bank`, in place: one pass
    over the data, every encoder reading its own stage of each batch."""
    n = len(bank)
    codes: list[list[torch.Tensor]] = [[] for _ in model.encoders]
    for s in range(0, n, batch):
        stages = bank.batch(torch.arange(s, min(s + batch, n)), None, False, device)
        for i, encoder in enumerate(model.encoders):
            codes[i].append(encoder(stages[i + 1])[0].float().cpu())
    for prior, c in zip(model.latent_priors, codes):
        prior.set(*_gaussian(torch.cat(c)))
