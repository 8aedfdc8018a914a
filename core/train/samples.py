"""Sample grids for training logs and model cards: rows of (true stages | inferred stages | generated chain)."""

from __future__ import annotations

from pathlib import Path

import torch

from core.files.imageio import save_image
from core.model import WorkflowModel


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@torch.no_grad()
def sample_grid(model: WorkflowModel, stages: list[torch.Tensor], path: str | Path, seed: int = 0) -> Path:
    """stages: per stage (B, C, H, W) in [-1, 1]. One row per sample: the true stages, the stages inferred from the
    last one, then the chain generated from the true first stage with z encoded from the true stages, then with a
    random z."""
    gen = torch.Generator().manual_seed(seed)
    inferred = model.infer_chain(stages[-1])
    enc, rnd = [stages[0]], [stages[0]]
    for i, g in enumerate(model.generators):
        mu, _ = model.encoders[i](stages[i + 1])
        enc.append(g(enc[-1], mu))
        z = torch.randn(mu.shape, generator=gen).to(mu.device)
        rnd.append(g(rnd[-1], z))
    cols = [_rgb(s) for s in stages] + [_rgb(s) for s in inferred[:-1]] + [_rgb(s) for s in enc[1:]] + \
        [_rgb(s) for s in rnd[1:]]
    rows = torch.cat([torch.cat([c[b] for c in cols], dim=2) for b in range(stages[0].shape[0])], dim=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(rows.float().cpu().clamp(-1, 1), path)
    return path
