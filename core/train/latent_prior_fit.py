"""Fitting the latent priors (core/latent_prior.py) to the codes that the training artworks encode to: done by
`train` on every export and by `artflow fit-prior`. Training code, so the engine's modules never import it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from core.errors import ArtflowError
from core.files import bundle
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


def fit_bundle_latent_priors(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path,
                             device: torch.device, batch: int = 64) -> WorkflowModel:
    """Fit the latent priors of the bundle at `model_dir` (on `device`) to the stage dataset `data_dir` (its TRAIN
    split) and save the bundle to `out_dir` (which may be `model_dir`) in the precision it came in; returns the
    fitted model, on the CPU. ArtflowError for a batch size below 1 or fewer than 2 drawings."""
    if batch < 1:
        raise ArtflowError("the batch size must be at least 1")
    model = bundle.load(model_dir)
    half = bundle.stored_half(model_dir)
    cfg = model.config
    bank = StageBank.from_folder(data_dir, cfg.resolution, [s.channels for s in cfg.stages])
    if len(bank) < 2:
        raise ArtflowError(f"{data_dir}: fitting a latent prior needs at least 2 drawings")
    model.to(device)
    fit_model_latent_priors(model, bank, model.device, batch)
    bundle.save(model.cpu(), out_dir, half=half)
    return model
