"""Loss computations of the three training phases as modules, so that each can be wrapped in
DistributedDataParallel. Networks that a step only reads (discriminators in a generator step, inference networks in
generation training) are held outside the module's registered parameters."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from core.editing.regularizer import AdamMoments, regularized_step
from core.model import WorkflowModel
from core.nn.discriminator import MultiScaleDiscriminator, hinge_d_loss, hinge_g_loss
from core.nn.perceptual import Perceptual
from core.train.config import TrainConfig


class _Refs:
    """Holds modules without registering them (so DDP does not count them as this step's parameters)."""

    def __init__(self, **mods: object) -> None:
        self.__dict__.update(mods)


def _gan_pairs(fakes: list[tuple[int, torch.Tensor]], discs: nn.ModuleList) -> torch.Tensor:
    return sum(hinge_g_loss(discs[i](f)) for i, f in fakes) / max(len(fakes), 1)


class InferenceStep(nn.Module):
    """Workflow inference (pix2pix): U_i(x_{i+1}) -> x_i with lambda^1 * L1 + hinge GAN.
    joint=False: each network from the true next stage; joint=True: the chain fed with its own predictions."""

    def __init__(self, model: WorkflowModel, discs: nn.ModuleList, cfg: TrainConfig) -> None:
        super().__init__()
        self.inference = model.inference
        self.refs = _Refs(discs=discs)
        self.cfg = cfg

    def forward(self, stages: list[torch.Tensor], joint: bool) -> tuple[torch.Tensor, dict, list]:
        n = len(stages)
        cur = stages[-1]
        fakes, l1 = [], 0.0
        for i in reversed(range(n - 1)):
            src = cur if joint else stages[i + 1]
            pred = self.inference[i](src)
            l1 = l1 + F.l1_loss(pred, stages[i])
            fakes.append((i, pred))
            cur = pred
        l1 = l1 / (n - 1)
        gan = _gan_pairs(fakes, self.refs.discs)
        loss = self.cfg.lambda_l1 * l1 + gan
        return loss, {"inf_l1": float(l1.detach()), "inf_gan": float(gan.detach())}, fakes


def latent_regression(encoder: nn.Module, fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """|E(G(x, z)) - z|_1 with E's weights detached: the gradient reaches the generator (through `fake`), never E."""
    mu, _ = functional_call(encoder, {k: v.detach() for k, v in encoder.named_parameters()}, (fake,))
    return F.l1_loss(mu, z)


class GenerationStep(nn.Module):
    """Artwork generation (BicycleGAN objectives, hinge GAN): cVAE-GAN branch with z ~ E(x_{i+1}) and L1 + KL,
    cLR-GAN branch with z ~ N(0, 1) and latent regression. joint=True: the generators take the stages inferred by
    the (frozen) inference chain as content, and a cycle term asks U_i(G_i(x_i)) = x_i.

    As in BicycleGAN, the latent-regression loss trains G only: E reads G's random-z output with its weights
    detached. Letting that gradient reach E is a trap: while G still ignores z, the best E can do for
    |E(G(x, z)) - z| is to output a constant, so E stops encoding and G never learns to use z (posterior collapse,
    seen in this project's first bundle). The KL term is per sample (summed over z's dimensions), as in a VAE."""

    def __init__(self, model: WorkflowModel, cfg: TrainConfig) -> None:
        super().__init__()
        self.generators = model.generators
        self.encoders = model.encoders
        self.refs = _Refs(discs=model.discriminators, inference=model.inference)
        self.cfg = cfg

    def forward(self, stages: list[torch.Tensor], joint: bool) -> tuple[torch.Tensor, dict, list]:
        cfg = self.cfg
        n = len(stages)
        if joint:
            with torch.no_grad():
                srcs = [self.refs.inference[i](stages[i + 1]) for i in range(n - 1)]
                # The chain's content comes from inference of the finished artwork, stage by stage.
                cur = stages[-1]
                for i in reversed(range(n - 1)):
                    cur = self.refs.inference[i](cur)
                    srcs[i] = cur
        else:
            srcs = stages[:-1]
        fakes, l1s, kls, lats, cycs = [], 0.0, 0.0, 0.0, 0.0
        for i in range(n - 1):
            g, e, tgt = self.generators[i], self.encoders[i], stages[i + 1]
            mu, logvar = e(tgt)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            content = g.encode_content(srcs[i])
            fake_enc = g.decode(content, g.adain_params(z))
            z_rand = torch.randn_like(mu)
            fake_rand = g.decode(content, g.adain_params(z_rand))
            l1s = l1s + F.l1_loss(fake_enc, tgt)
            kls = kls + (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
            lats = lats + latent_regression(e, fake_rand, z_rand)
            if joint:
                cycs = cycs + F.l1_loss(self.refs.inference[i](fake_enc), srcs[i])
            fakes += [(i, fake_enc), (i, fake_rand)]
        k = n - 1
        gan = _gan_pairs(fakes, self.refs.discs)
        loss = gan + (cfg.lambda_l1 * l1s + cfg.lambda_kl * kls + cfg.lambda_latent * lats
                      + cfg.lambda_cycle * cycs) / k
        logs = {"gen_l1": float(l1s.detach()) / k, "gen_kl": float(kls.detach()) / k,
                "gen_latent": float(lats.detach()) / k, "gen_gan": float(gan.detach())}
        if joint:
            logs["gen_cycle"] = float(cycs.detach()) / k
        return loss, logs, fakes


class DiscriminatorStep(nn.Module):
    """Hinge loss of a set of discriminators on real stage images and detached fakes."""

    def __init__(self, discs: nn.ModuleList) -> None:
        super().__init__()
        self.discs = discs

    def forward(self, stages_real: dict[int, torch.Tensor], fakes: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
        losses = [hinge_d_loss(self.discs[i](stages_real[i]), self.discs[i](f.detach())) for i, f in fakes]
        return sum(losses) / len(losses)


class RegularizerStep(nn.Module):
    """Algorithm 1 for transition i: learn the per-parameter L2 weight w_i.

    From delta = 0, a few Adam-style AdaIN steps on L^Ada (L1 + lambda_p * perceptual) are unrolled
    differentiably; then L^L2R = L^Ada(G(x_i, z + delta~), x_{i+1}) + lambda^GAN * L^GAN(G(x'_i, z + delta~)) is
    backpropagated to w_i. The algorithm as printed takes a single step from delta = 0, where w * delta = 0 gives w
    no gradient; unrolling >= 2 steps is the smallest change that lets w learn.

    With `warm_steps` > 0 the differentiable steps start where that many ordinary (not differentiated) steps with
    the current w left delta and the Adam moments: truncated backpropagation over the 150-step horizon of the
    test-time refinement: without it, w only ever sees the first few steps, where delta is small and w * delta
    barely matters. Off by default: in the bundled model's run 3 it did not bring the learned-regulariser
    reconstruction closer to plain refinement (see the model card), so it is an experiment, not a fix."""

    def __init__(self, model: WorkflowModel, i: int, perceptual: Perceptual, cfg: TrainConfig) -> None:
        super().__init__()
        self.w = model.reg_weights[i]
        self.refs = _Refs(g=model.generators[i], e=model.encoders[i], d=model.discriminators[i],
                          perceptual=perceptual)
        self.cfg = cfg

    def ada_loss(self, out: torch.Tensor, tgt: torch.Tensor, tgt_feats: list[torch.Tensor]) -> torch.Tensor:
        p = self.refs.perceptual
        return F.l1_loss(out, tgt) + self.cfg.lambda_p * p.distance(p.features(out), tgt_feats)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor, src_other: torch.Tensor,
                warm_steps: int = 0) -> tuple[torch.Tensor, dict]:
        g, e = self.refs.g, self.refs.e
        with torch.no_grad():
            mu, _ = e(tgt)
            base = g.adain_params(mu)
            content = g.encode_content(src)
            content_other = g.encode_content(src_other)
            tgt_feats = self.refs.perceptual.features(tgt)
            before = float(self.ada_loss(g.decode(content, base), tgt, tgt_feats))
        d = torch.zeros_like(base)
        state = AdamMoments.zeros_like(d)
        w_now = self.w.detach()
        for _ in range(warm_steps):
            d = d.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.ada_loss(g.decode(content, base + d), tgt, tgt_feats), d)
            d, state = regularized_step(d.detach(), grad, w_now, state, self.cfg.refine_lr)
        d = d.detach().requires_grad_(True)
        for _ in range(self.cfg.reg_unroll):
            loss = self.ada_loss(g.decode(content, base + d), tgt, tgt_feats)
            (grad,) = torch.autograd.grad(loss, d, create_graph=True)
            d, state = regularized_step(d, grad, self.w, state, self.cfg.refine_lr)
        recon = self.ada_loss(g.decode(content, base + d), tgt, tgt_feats)
        edited = g.decode(content_other, base + d)
        gan = hinge_g_loss(self.refs.d(edited))
        loss = recon + self.cfg.reg_lambda_gan * gan
        return loss, {"reg_before": before, "reg_after": float(recon.detach()), "reg_edit_gan": float(gan.detach()),
                      "reg_w_mean": float(self.w.detach().mean()), "reg_warm": float(warm_steps)}


def make_inference_discriminators(model: WorkflowModel) -> nn.ModuleList:
    """Discriminators on stage i images for workflow inference (training only; not part of the bundle)."""
    cfg = model.config
    return nn.ModuleList(MultiScaleDiscriminator(cfg.stages[i].channels, cfg.discriminator)
                         for i in range(cfg.num_transitions))
