"""The AdaIN optimisation step with the learned per-parameter L2 weight w_i (Algorithm 1 of the paper).

The update is Adam-style on the incremental term delta of the AdaIN parameters:
    g = dL/d(delta) + w * delta;  m, v = Adam moments of g;  delta <- delta - alpha * m_hat / (sqrt(v_hat) + eps)
It is written functionally (no in-place ops on its inputs) so that Algorithm 1 can differentiate through it w.r.t. w.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch

BETAS = (0.9, 0.999)
EPS = 1e-8


class Regularizer(str, Enum):
    """How the refinement regularises delta: the learned per-parameter weight w_i of Algorithm 1, or none (plain
    AdaIN optimisation). A str, so its value is what reports and metrics.json hold."""

    LEARNED = "learned"
    NONE = "none"

    def __str__(self) -> str:
        return self.value


@dataclass
class AdamMoments:
    m: torch.Tensor
    v: torch.Tensor
    t: int = 0

    @classmethod
    def zeros_like(cls, x: torch.Tensor) -> AdamMoments:
        return cls(torch.zeros_like(x), torch.zeros_like(x), 0)


def effective_weight(w: torch.Tensor) -> torch.Tensor:
    """w may drift negative while being learned; a negative L2 weight would push delta away, so clamp at 0."""
    return w.clamp_min(0.0)


def regularized_step(delta: torch.Tensor, grad: torch.Tensor, w: torch.Tensor | None, state: AdamMoments,
                     lr: float) -> tuple[torch.Tensor, AdamMoments]:
    """One update of delta (B, P). grad is dL/d(delta) (B, P); w is (P,) or None (plain AdaIN optimisation)."""
    g = grad if w is None else grad + effective_weight(w) * delta
    t = state.t + 1
    m = BETAS[0] * state.m + (1 - BETAS[0]) * g
    v = BETAS[1] * state.v + (1 - BETAS[1]) * g * g
    m_hat = m / (1 - BETAS[0] ** t)
    v_hat = v / (1 - BETAS[1] ** t)
    # eps inside the sqrt keeps the derivative finite where v is 0 (needed when differentiating w.r.t. w).
    new_delta = delta - lr * m_hat / (torch.sqrt(v_hat + EPS * EPS) + EPS)
    return new_delta, AdamMoments(m, v, t)
