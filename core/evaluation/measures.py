"""The measurements of `artflow eval` (core/evaluation/workflow.py says what each one means), one function per
measurement, and the edits that the editing measurement applies. Images (B, C, H, W) in [-1, 1]; L1/PSNR/diversity come
from core/evaluation/metrics.py."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.editing.refine import DEFAULT_SCHEDULE
from core.editing.regularizer import Regularizer
from core.editing.session import Z_RANGE, Session, run_to_end
from core.evaluation.metrics import ink_f1, l1_01, pairwise_l1_01, psnr_01
from core.model import WorkflowModel
from core.session_state import SessionState

SHRINK = 0.75
# Encoder-only, then Session.refine with each regularizer: "encoder", "none", "learned".
METHODS = ("encoder", Regularizer.NONE.value, Regularizer.LEARNED.value)
EDITS = ("flip", "shrink")

def realism(discriminator: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-image discriminator score (mean logit over patches and scales; higher = judged more real), (B,)."""
    outs = discriminator(x)
    return (sum(o.flatten(1).mean(1).float() for o in outs) / len(outs)).cpu()


def flip_edit(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def shrink_edit(x: torch.Tensor, factor: float = SHRINK) -> torch.Tensor:
    """(C, H, W) scaled by `factor` (antialiased) and centred on white."""
    c, h, w = x.shape
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    small = F.interpolate(x[None].float(), size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    out = torch.ones(c, h, w)
    top, left = (h - nh) // 2, (w - nw) // 2
    out[:, top:top + nh, left:left + nw] = small.clamp(-1, 1)
    return out


EDIT_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"flip": flip_edit, "shrink": shrink_edit}


class RunningMeans:
    """Running means of named per-image values."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, key: str, values: torch.Tensor | float) -> None:
        v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
        self.sums[key] = self.sums.get(key, 0.0) + float(v.sum())
        self.counts[key] = self.counts.get(key, 0) + v.numel()

    def get(self, key: str, digits: int = 6) -> float | None:
        n = self.counts.get(key, 0)
        if not n:
            return None
        value = self.sums[key] / n
        return round(value, digits) if math.isfinite(value) else None



# ----- one function per measurement -----
def measure_inference(model: WorkflowModel, true: list[torch.Tensor], names: Sequence[str], acc: RunningMeans) -> None:
    """1. Workflow inference from the true final stage: L1 of each inferred earlier stage against the true one, and
    for single-channel (line-art) stages the ink F-score with a 1 px tolerance."""
    inferred = model.infer_chain(true[-1])
    for k in range(len(names) - 1):
        acc.add(f"inference.l1.{names[k]}", l1_01(inferred[k], true[k]))
        if true[k].shape[1] == 1:
            acc.add(f"inference.ink_f1.{names[k]}", ink_f1(inferred[k], true[k]))


def measure_generation(model: WorkflowModel, true: list[torch.Tensor], names: Sequence[str], acc: RunningMeans) -> None:
    """2. Each stage generated from the true previous one with z = E_i(true stage i+1), and along the whole chain."""
    chain = true[0]
    for i in range(model.num_transitions):
        g = model.generators[i]
        mu, _ = model.encoders[i](true[i + 1])
        one = g(true[i], mu)
        acc.add(f"generation.l1.{names[i + 1]}", l1_01(one, true[i + 1]))
        acc.add(f"generation.psnr.{names[i + 1]}", psnr_01(one, true[i + 1]))
        chain = g(chain, mu)
        acc.add(f"generation.chain_l1.{names[i + 1]}", l1_01(chain, true[i + 1]))
        acc.add(f"generation.chain_psnr.{names[i + 1]}", psnr_01(chain, true[i + 1]))


def measure_diversity(model: WorkflowModel, first: torch.Tensor, k: int, gen: torch.Generator,
                      names: Sequence[str], acc: RunningMeans) -> list[torch.Tensor]:
    """4. K random-z chains from one true first stage (1, C, H, W): mean pairwise L1 per generated stage and the
    U-Net consistency. Returns the chains' stages, per transition (K, C, H, W) on the CPU."""
    dev = first.device
    x = first.expand(k, -1, -1, -1)
    produced = []
    for i in range(model.num_transitions):
        z = model.sample_latents(i, k, gen, clip=Z_RANGE).to(dev)
        src, x = x, model.generators[i](x, z)
        produced.append(x.float().cpu().clamp(-1, 1))
        acc.add(f"diversity.l1.{names[i + 1]}", pairwise_l1_01(x))
        acc.add(f"diversity.consistency.{names[i + 1]}", l1_01(model.inference[i](x), src))
    return produced


@dataclass
class Reconstruction:
    """One artwork's reconstructions: per method ("encoder", then each regulariser) the session state and its final
    stage; the inferred first stage; the refinements' wall times (seconds_<regulariser>)."""

    states: dict[str, SessionState]
    finals: dict[str, torch.Tensor]
    inferred_first: torch.Tensor
    seconds: dict[str, float]


def measure_reconstruction(session: Session, art: torch.Tensor, steps: int, acc: RunningMeans,
                           on_step: Callable[[object], None], schedule: str = DEFAULT_SCHEDULE) -> Reconstruction:
    """3. The editing pipeline on the artwork alone: the encoder-only reconstruction, then Session.refine (steps
    per transition, on `schedule`) with each regulariser from it. on_step is called once for the encoding and once
    per refinement step."""
    session.load_artwork(art)
    rec = Reconstruction({"encoder": session.snapshot()}, {"encoder": session.stages[-1].clone()},
                         session.stages[0].clone(), {})
    on_step(None)
    for reg in METHODS[1:]:
        session.restore(rec.states["encoder"])
        report = run_to_end(session.refine(steps=steps, regularizer=reg, preview_every=0, schedule=schedule),
                            on_step)
        rec.states[reg] = session.snapshot()
        rec.finals[reg] = session.stages[-1].clone()
        acc.add(f"reconstruction.seconds.{reg}", report.seconds)
        rec.seconds[f"seconds_{reg}"] = round(report.seconds, 3)
    return rec


def measure_reconstruction_quality(final: torch.Tensor, art: torch.Tensor, method: str, acc: RunningMeans) -> float:
    """3. PSNR and L1 of a reconstruction's final stage against the artwork; returns the PSNR."""
    p = float(psnr_01(final[None], art[None])[0])
    acc.add(f"reconstruction.psnr.{method}", p)
    acc.add(f"reconstruction.l1.{method}", l1_01(final[None], art[None]))
    return p


def measure_editing(session: Session, state: SessionState, method: str, inferred_first: torch.Tensor,
                    art: torch.Tensor, swap_first: torch.Tensor, acc: RunningMeans) -> dict[str, float]:
    """5. Edits of the first stage after the reconstruction `state`: flip and shrink (PSNR against the artwork
    edited the same way), swap (another drawing's first stage; the last discriminator's realism score)."""
    row = {}
    for edit in EDITS:
        fn = EDIT_FNS[edit]
        session.restore(state)
        session.set_stage(0, fn(inferred_first))
        ep = float(psnr_01(session.stages[-1][None], fn(art)[None])[0])
        acc.add(f"editing.{edit}.psnr.{method}", ep)
        row[f"{edit}_psnr_{method}"] = round(ep, 4)
    session.restore(state)
    session.set_stage(0, swap_first)
    score = float(realism(session.model.discriminators[-1], session.stages[-1][None].to(session.device))[0])
    acc.add(f"editing.swap.realism.{method}", score)
    row[f"swap_realism_{method}"] = round(score, 4)
    return row
