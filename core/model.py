"""WorkflowModel: every network of one workflow, per stage in nn.ModuleLists (so .to(), .eval(), state_dict() see
them all)."""

from __future__ import annotations

import torch
from torch import nn

from core.config import WorkflowConfig
from core.latent_prior import LatentPrior
from core.nn.discriminator import MultiScaleDiscriminator
from core.nn.generator import AdaINGenerator
from core.nn.latent_encoder import LatentEncoder
from core.nn.recolour import LearnedRecolour
from core.nn.unet import UNet

REGULARIZER_INIT = 1e-3  # Algorithm 1, line 2


class WorkflowModel(nn.Module):
    """For each transition i (stage i -> stage i+1):
    - generators[i]: AdaINGenerator, stage i -> stage i+1 (artwork generation);
    - encoders[i]: LatentEncoder, stage i+1 -> z (BicycleGAN E);
    - inference[i]: UNet, stage i+1 -> stage i (workflow inference);
    - discriminators[i]: MultiScaleDiscriminator on stage i+1 images;
    - reg_weights[i]: (P,) learned per-parameter L2 weight w_i of Algorithm 1;
    - latent_priors[i]: LatentPrior, where random codes z of transition i are drawn from (N(0, I) until fitted).
    """

    def __init__(self, config: WorkflowConfig) -> None:
        super().__init__()
        self.config = config
        st = config.stages
        t = range(config.num_transitions)
        self.generators = nn.ModuleList(AdaINGenerator(st[i].channels, st[i + 1].channels, config.generator) for i in t)
        self.encoders = make_encoders(config)
        self.inference = nn.ModuleList(UNet(st[i + 1].channels, st[i].channels, config.unet) for i in t)
        self.discriminators = nn.ModuleList(
            MultiScaleDiscriminator(st[i + 1].channels, config.discriminator) for i in t)
        self.reg_weights = nn.ParameterList(
            nn.Parameter(torch.full((g.num_adain_params,), REGULARIZER_INIT)) for g in self.generators)
        self.latent_priors = nn.ModuleList(LatentPrior(config.generator.z_dim) for _ in t)
        # The bundle's learned recolour (core.nn.recolour), when it has one: a plain attribute, not a submodule,
        # so it is never part of model.safetensors.
        self.recolour: LearnedRecolour | None = None

    @property
    def num_transitions(self) -> int:
        return self.config.num_transitions

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def regularizer_trained(self, i: int) -> bool:
        flags = self.config.regularizer_trained
        return bool(flags and flags[i])

    def sample_latents(self, i: int, k: int, generator: torch.Generator | None = None,
                       clip: float | None = None) -> torch.Tensor:
        """k random codes (k, D) of transition i from its latent prior; clip bounds the standard coordinates."""
        prior = self.latent_priors[i]
        u = torch.randn(k, prior.z_dim, generator=generator)
        if clip is not None:
            u = u.clamp(-clip, clip)
        return prior.from_standard(u.to(prior.mean.device))

    @torch.no_grad()
    def infer_chain(self, artwork: torch.Tensor) -> list[torch.Tensor]:
        """Workflow inference: final artwork (B, C_last, H, W) -> all stages, first to last (the last is the input)."""
        stages = [artwork]
        for i in reversed(range(self.num_transitions)):
            stages.insert(0, self.inference[i](stages[0]))
        return stages


def make_encoders(config: WorkflowConfig) -> nn.ModuleList:
    """The latent encoders E_i (stage i+1 -> z), freshly initialised."""
    st = config.stages
    return nn.ModuleList(LatentEncoder(st[i + 1].channels, config.generator.z_dim, config.encoder)
                         for i in range(config.num_transitions))
