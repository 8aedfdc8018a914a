"""The history of variations tried per transition: a latent code, how it was made, and the final stage it gave.
No Qt here.

A variation's picture is the final stage once the engine has answered the request that produced it; until then
it waits (see app/request_tracking.py). A variation read from a project has no picture until chosen again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from app.layers import reduced
from app.request_tracking import Wait

THUMB = 64  # px: variation thumbnails are kept this small (at least 4x the list's icons)

VARIATION_LIMIT = 40  # per transition


@dataclass
class Variation:
    """One entry of a transition's variation history."""

    z: torch.Tensor | None  # None until a seeded sample comes back from the engine
    label: str
    seed: int | None = None
    picture: Wait | None = None  # the request whose answer is its picture; None: none will come (read from a file)
    thumb: np.ndarray | None = None  # (H, W, 3) uint8, the final stage


class Variations:
    """`variations[i]` is transition i's history, oldest first, at most VARIATION_LIMIT entries."""

    def __init__(self, num_transitions: int = 0) -> None:
        self._histories: list[list[Variation]] = [[] for _ in range(num_transitions)]

    def __getitem__(self, i: int) -> list[Variation]:
        return self._histories[i]

    def __len__(self) -> int:
        return len(self._histories)

    def __iter__(self) -> Iterator[list[Variation]]:
        return iter(self._histories)

    def add(self, i: int, var: Variation) -> bool:
        """Append `var` unless it repeats the latest code; returns whether it was added."""
        history = self._histories[i]
        if var.z is not None and history and history[-1].z is not None and torch.equal(history[-1].z, var.z):
            return False
        history.append(var)
        del history[:-VARIATION_LIMIT]
        return True

    def sent(self, rid: int) -> None:
        """The pending edits went out as request `rid`: variations waiting for them wait for its answer."""
        for history in self._histories:
            for var in history:
                if var.picture is not None and var.picture.unsent:
                    var.picture = Wait(rid)

    def sampled(self, i: int, rid: int, z: torch.Tensor) -> None:
        """Request `rid` drew transition i's code from the prior: the seeded variation it made gets its code."""
        for var in self._histories[i]:
            if var.picture == Wait(rid) and var.z is None:
                var.z = z.clone()

    def now_showing(self, i: int, z: torch.Tensor, rid: int, label: str) -> None:
        """An artwork was opened (or started) with code `z`: the latest entry if it is that code, else a new one,
        gets the picture the answer to `rid` shows."""
        history = self._histories[i]
        if history and history[-1].z is not None and torch.equal(history[-1].z, z):
            history[-1].picture = Wait(rid)
        else:
            history.append(Variation(z.clone(), label, picture=Wait(rid)))

    def fill_thumbs(self, last_answered: int, final_picture: Callable[[], np.ndarray]) -> list[int]:
        """Give the final stage's picture to every variation whose request has been answered; returns the
        transitions whose history changed."""
        changed = []
        for i, history in enumerate(self._histories):
            waiting = [v for v in history if v.thumb is None and v.z is not None and v.picture is not None
                       and v.picture.answered_by(last_answered)]
            for var in waiting:
                var.thumb = np.ascontiguousarray(reduced(final_picture(), THUMB))  # a small copy at any size
            if waiting:
                changed.append(i)
        return changed
