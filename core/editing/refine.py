"""AdaIN optimisation of one transition, as a plain generator: each `yield` is both progress and the point where a
cancel takes effect. The per-image work (content of the input, perceptual features of the target) is done once,
before the step loop (once per size with coarse-to-fine steps).

Two schedules: "exact" is the paper's (150 steps of 0.1), "fast" trades steps for time (see SCHEDULES and
benchmarks/bench_refine.py for what each costs and reaches on the TEST drawings)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.editing.refine_graph import StaticStep
from core.editing.regularizer import AdamMoments, regularized_step
from core.nn.generator import AdaINGenerator
from core.nn.perceptual import Perceptual

# The paper's values (supplementary, "AdaIN optimization").
STEPS = 150
# The fit an opened artwork gets before it is editable (the app after File > Open, `artflow reconstruct` without
# --steps): chosen by the edit benchmark (`artflow eval --edits`, 8 TRAIN skin-tone families, default model), not by
# reconstruction PSNR. Region-bounded recolour edits scored 22.97 / 22.61 / 22.85 / 22.81 dB at 0 / 5 / 10 / 30
# steps at 1024 x 768 and 22.34 / 22.34 / 22.41 / 22.82 dB at 128 px; local edits 27.27 / 27.38 / 27.44 / 26.94 and
# 25.88 / 25.79 / 25.76 / 26.11 dB. 10 steps is within 0.4 dB of the best everywhere and ready within about 2 s at
# 1024 x 768 on 2 cores; the paper's 150 steps (STEPS) stay one click away (Refine, --steps 150).
EDIT_READY_STEPS = 10
STEP_SIZE = 0.1
LAMBDA_P = 10.0


@dataclass(frozen=True)
class Schedule:
    """How many steps at which step size. steps: the most steps; lr_end: the step size decays linearly from
    `lr` to it over the steps (None: constant); coarse_steps: the first steps run on half-size images (the AdaIN
    parameters do not depend on the size); stop_window, stop_tol: stop once the best loss has not improved by
    stop_tol (relative) over the last stop_window steps (0: never)."""

    name: str
    steps: int = STEPS
    lr: float = STEP_SIZE
    lr_end: float | None = None
    coarse_steps: int = 0
    stop_window: int = 0
    stop_tol: float = 0.0


SCHEDULES = {
    "exact": Schedule("exact"),
    # At most the paper's 150 steps, the step size decaying from 0.12 to 0.05, ended once the loss has flattened
    # (best loss < 0.2 % lower than 10 steps before). benchmarks/bench_refine.py, 12 of the bundled model's TEST
    # drawings: the same mean PSNR as "exact" (+0.00 dB; single drawings -0.5 to +0.7) in 0.74-0.80x its time
    # (two runs; 236 of 300 steps), with the learned regulariser (the default); `artflow eval --schedule fast`: the
    # same reconstruction (26.53 against 26.52 dB) and edits (flip +0.19, shrink +0.13 dB), but plain refinement
    # 0.48 dB lower (28.88 dB). The constant 0.1 with the same stop lost 0.25 dB; 60-step and half-size schedules
    # more. It does not carry over: on 6 Emoji One TEST drawings (an artist the model never saw) it ended 0.34 dB
    # below "exact" in 0.99x its time (284 steps), and with the thin-line-art model emoji-lines-128 on 6 Fluent
    # drawings 0.25 dB below in 0.79x (bench_refine.py, one thread, 2026-12-01). So "exact" stays the default.
    "fast": Schedule("fast", lr=0.12, lr_end=0.05, stop_window=10, stop_tol=0.002),
}
DEFAULT_SCHEDULE = "exact"


def schedule_named(name: str | Schedule) -> Schedule:
    from core.errors import ArtflowError

    if isinstance(name, Schedule):
        return name
    if name not in SCHEDULES:
        raise ArtflowError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    return SCHEDULES[name]


def _graphed_step(generator: AdaINGenerator, loss_of, problem, base: torch.Tensor, d: torch.Tensor,
                  w: torch.Tensor | None, bf16: bool) -> StaticStep | None:
    """The step captured as a CUDA graph, or None (eager steps) where this torch or device cannot capture it."""
    content, t, t_feats, start = problem
    step = StaticStep(generator, lambda out: loss_of(out, t, t_feats), content, base, d, w,
                      torch.bfloat16 if bf16 else None, start=start)
    try:
        step.capture()
    except RuntimeError as e:
        warnings.warn(f"CUDA graph capture failed, refining with eager steps: {e}", RuntimeWarning, stacklevel=3)
        return None
    return step


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
    lr_end: float | None = None,
    coarse_steps: int = 0,
    stop_window: int = 0,
    stop_tol: float = 0.0,
    cuda_graph: bool = True,
    cuda_bf16: bool = False,
) -> Generator[RefineStep, None, TransitionResult]:
    """Optimise delta so that generator(source, base_params + delta) reproduces target.

    source (Cin, H, W), target (Cout, H, W) in [-1, 1]; base_params = MLP(z) (P,); delta (P,) start value;
    reg_weight (P,) the learned L2 weight, or None for plain AdaIN optimisation. Tensors are moved to the
    generator's device. Returns (as the generator's value) a TransitionResult; the step loss is L1 + lambda_p *
    perceptual. Checks should_stop() before every step: a stop ends the loop within one step (completed=False).
    lr_end, coarse_steps, stop_window, stop_tol: see Schedule (their defaults give the paper's loop exactly).
    cuda_graph: on a CUDA device, replay each step as one CUDA graph (core/editing/refine_graph.py; same update,
    launched at once), falling back to the eager step where capture fails; not used with coarse steps (two sizes).
    cuda_bf16: in that graph, the networks' passes in bfloat16 autocast (measured in benchmarks/bench_paper.py).
    """
    device = next(generator.parameters()).device
    t0 = time.perf_counter()
    src = source.unsqueeze(0).to(device)
    tgt = target.unsqueeze(0).to(device)
    base = base_params.detach().reshape(1, -1).to(device)
    d = delta.detach().reshape(1, -1).to(device).clone()
    w = reg_weight.detach().to(device) if reg_weight is not None else None

    def problem(size: int | None) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """(content code, target, target's features, decoder start): the per-image work, once per size."""
        s, t = src, tgt
        if size is not None:
            s = F.interpolate(s, size=(size, size), mode="area")
            t = F.interpolate(t, size=(size, size), mode="area")
        with torch.no_grad():
            content = generator.encode_content(s)
            return content, t, [f.detach() for f in perceptual.features(t)], generator.decode_start(content)

    def loss_of(out: torch.Tensor, t: torch.Tensor, t_feats: list[torch.Tensor]) -> torch.Tensor:
        return F.l1_loss(out, t) + lambda_p * perceptual.distance(perceptual.features(out), t_feats)

    coarse_steps = min(coarse_steps, steps)
    full = problem(None) if coarse_steps < steps else None
    current = problem(max(src.shape[-1] // 2, 8)) if coarse_steps else full
    state = AdamMoments.zeros_like(d)
    graphed = _graphed_step(generator, loss_of, current, base, d, w, cuda_bf16) if (
        cuda_graph and device.type == "cuda" and coarse_steps == 0 and steps > 0) else None
    loss_start = loss_end = float("nan")
    completed = True
    best, history = float("inf"), []
    with torch.enable_grad():
        for step in range(1, steps + 1):
            if should_stop is not None and should_stop():
                completed = False
                break
            if step == coarse_steps + 1:
                current = full
            content, t, t_feats, start = current
            step_lr = lr if lr_end is None else lr + (lr_end - lr) * (step - 1) / max(steps - 1, 1)
            if graphed is not None:
                graphed.run(step_lr)
                value, out = float(graphed.loss), graphed.output
                d = graphed.delta
            else:
                d.requires_grad_(True)
                out = generator.decode(content, base + d, start=start)
                loss = loss_of(out, t, t_feats)
                (grad,) = torch.autograd.grad(loss, d)
                with torch.no_grad():
                    d, state = regularized_step(d.detach(), grad, w, state, step_lr)
                value = float(loss.detach())
            if step == 1:
                loss_start = value
            flat = False
            if stop_window and step > coarse_steps:
                best = min(best, value)
                history.append(best)
                # Flattened: the best full-size loss gained less than stop_tol (relative) over the window.
                flat = len(history) > stop_window and history[-1 - stop_window] - best <= stop_tol * best
            last = step == steps or flat
            preview = None
            if preview_every and (step % preview_every == 0 or last):
                preview = out.detach()[0].float().cpu()
            yield RefineStep(transition, step, steps, value, preview)
            if flat:
                break
    if full is None:  # every step ran at half size: the result is still judged and returned at full size
        full = problem(None)
    with torch.no_grad():
        final = generator.decode(full[0], base + d, start=full[3])
        loss_end = float(loss_of(final, full[1], full[2]))
        if steps == 0 or loss_start != loss_start:  # no step ran
            loss_start = loss_end
    return TransitionResult(d.detach()[0].cpu(), final[0].float().cpu(), loss_start, loss_end,
                            time.perf_counter() - t0, completed)
