"""Image measures shared by the CLI and `artflow eval`. Images are (B, C, H, W) tensors in [-1, 1]; every measure is
taken on the [0, 1] scale (L1 = mean absolute difference; PSNR in dB)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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


INK_LEVEL = 0.5  # on the [0, 1] scale: darker pixels of a line-art stage are ink
LINE_TOLERANCE = 1  # px (Chebyshev): how far an inked pixel may sit from the other image's ink and still match


def ink_f1(pred: torch.Tensor, true: torch.Tensor, tolerance: int = LINE_TOLERANCE) -> torch.Tensor:
    """Per-image F-score of the ink of two line-art images (B, 1, H, W), with a position tolerance, (B,).

    L1 cannot tell thin lines one pixel off from no lines at all (a 2 px line shifted by 1 px differs in as many
    pixels as it has), so line-art inference is also scored as in edge detection: precision = the share of
    predicted ink within `tolerance` px of true ink, recall = the share of true ink within `tolerance` px of
    predicted ink, F = their harmonic mean; 1 when neither image has ink, 0 when only one has."""
    p = pred.float().clamp(-1, 1) < 2 * INK_LEVEL - 1
    t = true.float().clamp(-1, 1) < 2 * INK_LEVEL - 1
    k = 2 * tolerance + 1

    def near(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x.float(), k, stride=1, padding=tolerance) > 0

    p_n, t_n = p.flatten(1).sum(1).double(), t.flatten(1).sum(1).double()
    precision = (p & near(t)).flatten(1).sum(1).double() / p_n.clamp_min(1)
    recall = (t & near(p)).flatten(1).sum(1).double() / t_n.clamp_min(1)
    f = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    f = torch.where((p_n == 0) & (t_n == 0), torch.ones_like(f), f)
    return f.cpu()
