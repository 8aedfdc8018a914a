"""What a workflow config will cost before any network is built: its parameter count (exact, the same formulas as
the layers in core/nn) and an estimate of the activation memory of one image at the configured resolution.

config.validate refuses a config whose footprint exceeds MEMORY_BUDGET_BYTES, so a forged config.json ("dim":
4096) gives a one-line error instead of a 10 GB allocation. Pure arithmetic on the config's integers: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class _Stage(Protocol):
    channels: int


class WorkflowConfig(Protocol):
    """What the estimate reads of a core.config.WorkflowConfig (a protocol, so that this module, which the config
    calls while validating, does not import it back: no import circle)."""

    resolution: int
    stages: Sequence[_Stage]
    generator: Any
    encoder: Any
    unet: Any
    discriminator: Any

# Weights (float32) plus the activations of one image through one transition's networks must fit in this. The
# paper's preset at 256 px needs about 0.6 GB of weights and 0.3 GB of activations; the bundled model far less.
MEMORY_BUDGET_BYTES = 2 * 2**30
_F32 = 4
# Tensors autograd keeps per convolution layer (its output, the norm's and the activation's): a rough factor.
_KEPT_PER_CONV = 3


def _conv(cin: int, cout: int, k: int) -> int:
    return k * k * cin * cout + cout


def _linear(a: int, b: int) -> int:
    return a * b + b


def _generator(cin: int, cout: int, cfg, side: int) -> tuple[int, int]:
    """(parameters, activation elements) of core.nn.generator.AdaINGenerator on a side x side input."""
    d = cfg.dim
    params = _conv(cin, d, 7)
    acts = _KEPT_PER_CONV * d * side * side
    for _ in range(cfg.n_down):
        params += _conv(d, 2 * d, 4)
        d, side = 2 * d, side // 2
        acts += _KEPT_PER_CONV * d * side * side
    per_res = 2 * _conv(d, d, 3)
    params += (cfg.n_res_content + cfg.n_res_adain) * per_res
    acts += (cfg.n_res_content + cfg.n_res_adain) * (2 * _KEPT_PER_CONV + 1) * d * side * side
    adain = 4 * d * cfg.n_res_adain
    for _ in range(cfg.n_down):
        side *= 2
        params += _conv(d, d // 2, cfg.up_kernel) + 2 * (d // 2)  # + LayerNorm2d's gamma and beta
        acts += d * side * side + _KEPT_PER_CONV * (d // 2) * side * side  # the upsampled map, then the conv
        d //= 2
    params += _conv(d, cout, 7)
    acts += _KEPT_PER_CONV * cout * side * side
    dims = [cfg.z_dim] + [cfg.mlp_dim] * (cfg.mlp_layers - 1)
    params += sum(_linear(a, b) for a, b in zip(dims[:-1], dims[1:])) + _linear(dims[-1], adain)
    params += adain  # the learned regulariser's per-parameter weight (WorkflowModel.reg_weights)
    return params, acts


def _unet(cin: int, cout: int, cfg, side: int) -> tuple[int, int]:
    chans = [cfg.ngf * min(2**i, cfg.max_mult) for i in range(cfg.n_down)]
    params, acts, prev = 0, 0, cin
    for ch in chans:
        params += _conv(prev, ch, 4)
        side = max(1, side // 2)
        acts += _KEPT_PER_CONV * ch * side * side
        prev = ch
    for i in reversed(range(cfg.n_down)):
        cin_up = chans[i] if i == cfg.n_down - 1 else chans[i] * 2
        cout_up = cout if i == 0 else chans[i - 1]
        params += _conv(cin_up, cout_up, 4)
        side *= 2
        acts += _KEPT_PER_CONV * 2 * cout_up * side * side  # its output and the concatenation with the skip
    return params, acts


def _encoder(cin: int, z_dim: int, cfg, side: int) -> tuple[int, int]:
    params, ch = _conv(cin, cfg.dim, 4), cfg.dim
    side = max(1, side // 2)
    acts = _KEPT_PER_CONV * ch * side * side
    for i in range(1, cfg.n_down):
        nxt = cfg.dim * min(2**i, cfg.max_mult)
        params += _conv(ch, nxt, 4)
        side = max(1, side // 2)
        acts += _KEPT_PER_CONV * nxt * side * side
        ch = nxt
    return params + 2 * _linear(ch, z_dim), acts


def _discriminator(cin: int, cfg, side: int) -> tuple[int, int]:
    params = acts = 0
    for _ in range(cfg.n_scales):
        ch, prev, s = cfg.ndf, cin, side
        for _ in range(cfg.n_layers):
            params += _conv(prev, ch, 4)
            s = max(1, s // 2)
            acts += 2 * ch * s * s
            prev, ch = ch, min(ch * 2, cfg.ndf * 8)
        params += _conv(prev, 1, 3)
        side = max(1, (side + 1) // 2)
    return params, acts


def parameter_count(cfg: WorkflowConfig) -> int:
    """Every tensor element of the model's state dict (WorkflowModel(cfg).state_dict()), computed, not built."""
    total = 0
    z = cfg.generator.z_dim
    for a, b in zip(cfg.stages[:-1], cfg.stages[1:]):
        total += _generator(a.channels, b.channels, cfg.generator, cfg.resolution)[0]
        total += _encoder(b.channels, z, cfg.encoder, cfg.resolution)[0]
        total += _unet(b.channels, a.channels, cfg.unet, cfg.resolution)[0]
        total += _discriminator(b.channels, cfg.discriminator, cfg.resolution)[0]
        total += z + z * z  # the latent prior's mean and Cholesky factor
    return total


def activation_bytes(cfg: WorkflowConfig) -> int:
    """An estimate of the float32 activations one image keeps through the networks of the costliest transition
    (what a refinement step or a training step of batch 1 holds for its backward pass)."""
    worst = 0
    r, z = cfg.resolution, cfg.generator.z_dim
    for a, b in zip(cfg.stages[:-1], cfg.stages[1:]):
        elems = (_generator(a.channels, b.channels, cfg.generator, r)[1] + _encoder(b.channels, z, cfg.encoder, r)[1]
                 + _unet(b.channels, a.channels, cfg.unet, r)[1] + _discriminator(b.channels, cfg.discriminator, r)[1])
        worst = max(worst, elems)
    return worst * _F32


def _network_bytes(cfg: WorkflowConfig) -> dict[str, int]:
    """Weights of every transition plus activations of the costliest one, per network kind."""
    r, z = cfg.resolution, cfg.generator.z_dim
    out = {"generator": 0, "encoder": 0, "unet": 0, "discriminator": 0}
    worst = {k: 0 for k in out}
    for a, b in zip(cfg.stages[:-1], cfg.stages[1:]):
        for name, (p, act) in (("generator", _generator(a.channels, b.channels, cfg.generator, r)),
                               ("encoder", _encoder(b.channels, z, cfg.encoder, r)),
                               ("unet", _unet(b.channels, a.channels, cfg.unet, r)),
                               ("discriminator", _discriminator(b.channels, cfg.discriminator, r))):
            out[name] += p * _F32
            worst[name] = max(worst[name], act * _F32)
    return {k: out[k] + worst[k] for k in out}


_WIDTH_FIELD = {"generator": "dim", "encoder": "dim", "unet": "ngf", "discriminator": "ndf"}


def footprint_problem(cfg: WorkflowConfig) -> str | None:
    """None when the config fits MEMORY_BUDGET_BYTES, else a one-line reason naming the network and field that
    cost the most."""
    weights = parameter_count(cfg) * _F32
    acts = activation_bytes(cfg)
    if weights + acts <= MEMORY_BUDGET_BYTES:
        return None
    per = _network_bytes(cfg)
    name = max(per, key=per.__getitem__)
    field = _WIDTH_FIELD[name]
    gb = 2**30
    return (f"{name}.{field}={getattr(getattr(cfg, name), field)} at resolution {cfg.resolution}: the networks "
            f"would need {weights / gb:.1f} GB of weights and about {acts / gb:.1f} GB of activations "
            f"({name}: {per[name] / gb:.1f} GB), more than the {MEMORY_BUDGET_BYTES / gb:.0f} GB budget; "
            f"reduce {name}'s sizes or the resolution")
