"""AdaIN optimisation of one transition, as a plain generator: each `yield` is both progress and the point where a
cancel takes effect. The per-image work (content of the input, perceptual features of the target) is done once,
before the step loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.nn.generator import AdaINGenerator
from core.perceptual import Perceptual
from core.regularizer import AdamMoments, regularized_step

# The paper's values (supplementary, "AdaIN optimization").
STEPS = 150
STEP_SIZE = 0.1
LAMBDA_P = 10.0


@dataclass(frozen=True)
class RefineStep:
    """Progress of the refinement. `preview` is the stage image (C, H, W) in [-1, 1] on the CPU, every few steps."""

    transition: int
    step: int  # 1-based, within this transition
    steps: int
    loss: float
    preview: torch.Tensor | None = None


@dataclass(frozen=True)
class TransitionResult:
    delta: torch.Tensor  # (P,) the refined incremental AdaIN term
    output: torch.Tensor  # (C, H, W) the stage generated with it
    loss_start: float
    loss_end: float
    seconds: float
    completed: bool  # False when cancelled


def refine_transition(
    generator: AdaINGenerator,
    perceptual: Perceptual,
    source: torch.Tensor,
    target: torch.Tensor,
    base_params: torch.Tensor,
    delta: torch.Tensor,
    reg_weight: torch.Tensor | None,
    *,
    transition: int = 0,
    steps: int = STEPS,
    lr: float = STEP_SIZE,
    lambda_p: float = LAMBDA_P,
    preview_every: int = 10,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[RefineStep, None, TransitionResult]:
    """Optimise delta so that generator(source, base_params + delta) reproduces target.

    source (Cin, H, W), target (Cout, H, W) in [-1, 1]; base_params = MLP(z) (P,); delta (P,) start value;
    reg_weight (P,) the learned L2 weight, or None for plain AdaIN optimisation. Tensors are moved to the
    generator's device. Returns (as the generator's value) a TransitionResult; the step loss is L1 + lambda_p *
    perceptual. Checks should_stop() before every step: a stop ends the loop within one step (completed=False).
    """
    device = next(generator.parameters()).device
    t0 = time.perf_counter()
    src = source.unsqueeze(0).to(device)
    tgt = target.unsqueeze(0).to(device)
    base = base_params.detach().reshape(1, -1).to(device)
    d = delta.detach().reshape(1, -1).to(device).clone()
    w = reg_weight.detach().to(device) if reg_weight is not None else None
    with torch.no_grad():  # per-image work, once
        content = generator.encode_content(src)
        tgt_feats = [f.detach() for f in perceptual.features(tgt)]

    def loss_of(out: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(out, tgt) + lambda_p * perceptual.distance(perceptual.features(out), tgt_feats)

    state = AdamMoments.zeros_like(d)
    loss_start = loss_end = float("nan")
    completed = True
    with torch.enable_grad():
        for step in range(1, steps + 1):
            if should_stop is not None and should_stop():
                completed = False
                break
            d.requires_grad_(True)
            out = generator.decode(content, base + d)
            loss = loss_of(out)
            (grad,) = torch.autograd.grad(loss, d)
            with torch.no_grad():
                d, state = regularized_step(d.detach(), grad, w, state, lr)
            value = float(loss.detach())
            if step == 1:
                loss_start = value
            preview = None
            if preview_every and (step % preview_every == 0 or step == steps):
                preview = out.detach()[0].float().cpu()
            yield RefineStep(transition, step, steps, value, preview)
    with torch.no_grad():
        final = generator.decode(content, base + d)
        loss_end = float(loss_of(final))
        if steps == 0 or loss_start != loss_start:  # no step ran
            loss_start = loss_end
    return TransitionResult(d.detach()[0].cpu(), final[0].float().cpu(), loss_start, loss_end,
                            time.perf_counter() - t0, completed)
