"""Training data held in memory as uint8 (a 3,000-sample 128 px dataset is ~350 MB), batches drawn deterministically
from (seed, phase, step, rank) so that a resumed run sees exactly the batches it would have seen."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F
from tqdm import tqdm

from core.data.stage_dataset import StageDataset
from core.errors import DatasetError
from core.train.augment import hand_drawn_lines, recolour_regions


class StageBank:
    def __init__(self, stages: list[torch.Tensor], names: list[str]) -> None:
        self.stages = stages  # per stage: (N, C, H, W) uint8
        self.names = names

    @classmethod
    def from_folder(cls, root: str, size: int, channels: list[int], progress: bool = True) -> StageBank:
        ds = StageDataset(root, size=size, channels=channels, augment=False)
        if len(ds) == 0:
            raise DatasetError(f"{root}: the dataset holds no samples")
        if ds.num_stages != len(channels):
            raise DatasetError(f"{root}: the dataset has {ds.num_stages} stages, the model {len(channels)}")
        n = len(ds)
        stages = [torch.empty(n, c, size, size, dtype=torch.uint8) for c in channels]

        def load(j: int) -> None:
            for k, img in enumerate(ds.load(j)):
                stages[k][j] = ((img + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)

        # Image decoding releases the GIL: threads cut the start of a run on a many-core (GPU) machine.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for _ in tqdm(pool.map(load, range(n)), total=n, desc=f"loading {root}", disable=not progress,
                          leave=False):
                pass
        return cls(stages, ds.sample_names)

    def __len__(self) -> int:
        return self.stages[0].shape[0]

    def batch(self, indices: torch.Tensor, gen: torch.Generator | None, augment: bool,
              device: torch.device, recolour: float = 0.0, hand_drawn: float = 0.0) -> list[torch.Tensor]:
        """Stages of the given samples as float (B, C, H, W) in [-1, 1] on `device`; paired flip + crop when
        augment (the same transform on every stage of a sample). With augment, `recolour` is the probability of
        a region-wise recolouring of stage 1 (a 3-channel flat) and all later stages, `hand_drawn` that of
        hand-drawn line art for stage 0 (core/train/augment.py)."""
        out = [s[indices].to(device).float().div(127.5).sub(1).contiguous(memory_format=torch.channels_last)
               for s in self.stages]
        if not augment:
            return out
        if gen is None:  # the extra augmentations draw from a generator; without one, a fresh seed
            gen = torch.Generator().manual_seed(int(torch.randint(2**62, ())))
        if recolour > 0 and len(out) > 1 and all(x.shape[1] == 3 for x in out[1:]):
            flat, later = recolour_regions(out[1], out[2:], gen, p=recolour)
            out = [out[0], flat, *later]
        if hand_drawn > 0 and out[0].shape[1] == 1:
            out[0] = hand_drawn_lines(out[0], gen, p=hand_drawn)
        b, size = len(indices), out[0].shape[-1]
        flip = torch.rand(b, generator=gen) < 0.5
        scale = 0.85 + 0.15 * torch.rand(b, generator=gen)
        # Paired random crop-and-resize via one affine grid per sample, applied to every stage.
        sx = scale * torch.where(flip, -1.0, 1.0)
        tx = (1 - scale) * (2 * torch.rand(b, generator=gen) - 1)
        ty = (1 - scale) * (2 * torch.rand(b, generator=gen) - 1)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, tx, scale, ty
        grid = F.affine_grid(theta.to(device), [b, 1, size, size], align_corners=False)
        return [F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
                .contiguous(memory_format=torch.channels_last) for x in out]


def step_generator(seed: int, phase: str, step: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{phase}/{step}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def batch_indices(n: int, batch: int, seed: int, phase: str, step: int, rank: int, world: int) -> torch.Tensor:
    """The same global batch on every rank for a step, split by rank (so ranks see disjoint samples)."""
    gen = step_generator(seed, phase, step)
    allidx = torch.randint(n, (batch * world,), generator=gen)
    return allidx[rank * batch:(rank + 1) * batch]
