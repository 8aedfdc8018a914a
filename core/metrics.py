"""Image measures shared by the CLI and `artflow eval`. Images are (B, C, H, W) tensors in [-1, 1]; every measure is
taken on the [0, 1] scale (L1 = mean absolute difference; PSNR in dB)."""

from __future__ import annotations

import torch

PSNR_CAP = 100.0  # the PSNR of identical images


def l1_01(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference on the [0, 1] scale, (B,)."""
    return ((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)).abs() / 2).flatten(1).mean(1).cpu()


def psnr_01(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB on the [0, 1] scale, (B,); PSNR_CAP for identical images."""
    mse = (((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) / 2) ** 2).flatten(1).mean(1).cpu().double()
    return torch.where(mse <= 1e-10, torch.full_like(mse, PSNR_CAP), 10 * torch.log10(1 / mse.clamp_min(1e-10)))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of one image (C, H, W) against another, on the [0, 1] scale; PSNR_CAP for identical images."""
    return float(psnr_01(a[None], b[None])[0])


def pairwise_l1_01(samples: torch.Tensor) -> float:
    """Diversity: mean L1 ([0, 1] scale) over all unordered pairs of K samples (K, C, H, W)."""
    k = samples.shape[0]
    x = samples.float().clamp(-1, 1).flatten(1)
    d = ((x[:, None] - x[None]).abs().mean(-1) / 2).cpu()  # (K, K); plain ops, so any device runs it
    iu = torch.triu_indices(k, k, offset=1)
    return float(d[iu[0], iu[1]].mean())
