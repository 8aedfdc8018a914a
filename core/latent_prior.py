"""The latent prior a bundle samples random codes from: a Gaussian N(mean, L L^T) per transition.

BicycleGAN samples z ~ N(0, I) and trusts the KL term to make the encoded codes look like that. With short training
they do not: an encoder can put a drawing's whole colour into one dimension, far from 0 and with a small spread, and
leave the others nearly constant. N(0, I) codes then fall where the generator has never been and give broken
images (the bundled model's measurements are in its model card). Fitting a Gaussian to the codes that the training
artworks encode to, after training, makes random codes look like the codes of real artworks (ex-post density estimation,
Ghosh et al., ICLR 2020). A bundle without a fitted prior keeps N(0, I), so older bundles behave as before. The fitting
is training code: core/train/latent_prior_fit.py.

Sampling goes through standard coordinates u ~ N(0, I): z = mean + L u. The clipping of u to +-Z_RANGE (the
sliders' range) therefore keeps z within 3 standard deviations of the fitted distribution in every direction.
"""

from __future__ import annotations

import torch
from torch import nn


class LatentPrior(nn.Module):
    def __init__(self, z_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(z_dim))
        self.register_buffer("scale_tril", torch.eye(z_dim))

    @property
    def z_dim(self) -> int:
        return self.mean.numel()

    @property
    def is_standard(self) -> bool:
        """True for the N(0, I) of the paper (no prior fitted)."""
        return bool(torch.equal(self.mean, torch.zeros_like(self.mean))
                    and torch.equal(self.scale_tril, torch.eye(self.z_dim, device=self.mean.device)))

    def from_standard(self, u: torch.Tensor) -> torch.Tensor:
        """Standard coordinates (..., D) -> latent codes z = mean + L u."""
        u = u.to(self.mean)
        return self.mean + u @ self.scale_tril.T

    def to_standard(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (..., D) -> standard coordinates u = L^-1 (z - mean)."""
        z = z.to(self.mean)
        flat = (z - self.mean).reshape(-1, self.z_dim).T
        u = torch.linalg.solve_triangular(self.scale_tril, flat, upper=False)
        return u.T.reshape(z.shape)

    def clip(self, z: torch.Tensor, bound: float) -> torch.Tensor:
        """z moved into the box |u| <= bound of standard coordinates (unchanged where it already is inside)."""
        u = self.to_standard(z)
        if bool((u.abs() <= bound).all()):
            return z.to(self.mean).clone()
        return self.from_standard(u.clamp(-bound, bound))

    @torch.no_grad()
    def set(self, mean: torch.Tensor, scale_tril: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.scale_tril.copy_(scale_tril)
