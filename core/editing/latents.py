"""Choosing the latent codes of a chain outside the app: by stage name, from slider coordinates (standard deviations
of each transition's latent prior, as on the app's sliders), the prior's mean, or seeded samples of the prior."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from core.config import WorkflowConfig
from core.editing.session import Z_RANGE
from core.errors import ArtflowError
from core.model import WorkflowModel


def stage_by_name(config: WorkflowConfig, name: str) -> int:
    """The index of the stage called `name` (or given by its index); ArtflowError lists the stages."""
    name = name.strip()
    if not name:
        raise ArtflowError(f"a stage name is missing; this model's stages are: {', '.join(config.stage_names)}")
    return config.stage_index(name)


def parse_latent_coords(items: Iterable[str], config: WorkflowConfig, option: str = "--z") -> dict[int, list[float]]:
    """STAGE=v1,...,vD items -> {transition index: values}; the latent of transition i shapes stage i+1. The values
    are slider coordinates, each within +-Z_RANGE. ArtflowError (naming `option`) for anything else."""
    z_dim = config.generator.z_dim
    names = config.stage_names
    out: dict[int, list[float]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ArtflowError(f"{option} must look like STAGE=v1,...,v{z_dim}, got {item!r}")
        k = stage_by_name(config, name)
        where = f"{option} {name.strip()}"
        if k == 0:
            raise ArtflowError(f"{where}: the first stage is the chain's input and has no latent code; "
                               f"{option} applies to: {', '.join(names[1:])}")
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            raise ArtflowError(f"{where}: values must be numbers separated by commas, got {text!r}") from None
        if len(values) != z_dim:
            raise ArtflowError(f"{where}: this model's latent codes have {z_dim} values, got {len(values)}")
        if not all(math.isfinite(v) and abs(v) <= Z_RANGE for v in values):
            raise ArtflowError(f"{where}: values must be numbers within +-{Z_RANGE:g} (standard "
                               "deviations of the model's latent prior, as on the app's sliders)")
        if k - 1 in out:
            raise ArtflowError(f"{where} is given twice")
        out[k - 1] = values
    return out


def choose_latents(model: WorkflowModel, seed: int, given: dict[int, list[float]] | None = None,
                   mean: bool = False) -> list[torch.Tensor]:
    """One code (D,) per transition, on the CPU: `given` slider coordinates where there are some, else the prior's
    mean (mean=True) or a sample of the prior clipped to +-Z_RANGE. Every transition's sample is drawn in order
    even where it is not used, so fixing one code leaves the others as they were for this seed."""
    given = given or {}
    gen = torch.Generator().manual_seed(seed)
    latents = []
    for i in range(model.num_transitions):
        prior = model.latent_priors[i]
        z = model.sample_latents(i, 1, gen, clip=Z_RANGE)[0].float().cpu()
        if mean:
            z = prior.mean.float().cpu().clone()
        if i in given:
            z = prior.from_standard(torch.tensor(given[i])).float().cpu()
        latents.append(z)
    return latents
