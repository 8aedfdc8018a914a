"""Which engine answers the document waits for: the stale-stage and request-id bookkeeping. No Qt here.

Every request the document submits gets an id from the engine, increasing. Three things wait on ids:
- a stale stage waits for the request that will regenerate it;
- each artist input (a stage's layer, a transition's latent code) remembers the latest request that sent it, so a
  late result never overwrites a newer value (see Document's class notes);
- a variation waits for the request whose answer is its picture.
An input changed in the GUI but not sent yet (auto-regenerate off, a slider being dragged) waits for a request
that does not exist yet: `UNSENT`, which `sent()` turns into the id of the request that carries it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Wait:
    """Waiting for the engine's answer to request `rid`; rid None: for edits not sent yet."""

    rid: int | None

    @property
    def unsent(self) -> bool:
        return self.rid is None

    def answered_by(self, rid: int) -> bool:
        """The answer to request `rid` (or a later one) settles this wait."""
        return self.rid is not None and self.rid <= rid

    def newer_than(self, rid: int) -> bool:
        """Something was sent (or changed here) after request `rid`: its answer must not overwrite it."""
        return self.rid is None or self.rid > rid

    def later(self, other: Wait) -> Wait:
        """The wait that settles both (an unsent one stays unsent until sent)."""
        if self.rid is None or other.rid is None:
            return UNSENT
        return self if self.rid >= other.rid else other


UNSENT = Wait(None)
NOTHING_SENT = Wait(0)  # settled by any answer


class RequestTracker:
    """Stale stages, the inputs waiting to be sent, and what the engine has answered so far."""

    def __init__(self, num_stages: int = 0) -> None:
        self.num_stages = num_stages
        self._stale: dict[int, Wait] = {}
        self._layer_sent = [NOTHING_SENT] * num_stages
        self._latent_sent = [NOTHING_SENT] * max(0, num_stages - 1)
        self._unsent_layers: set[int] = set()
        self._unsent_latents: set[int] = set()
        self.last_result = 0  # the highest id of a request the engine has answered with a result

    # ----- stale stages -----
    def is_stale(self, k: int) -> bool:
        return k in self._stale

    def waits_for_sending(self, k: int) -> bool:
        """Stage k is stale because of edits that are not sent yet."""
        return k in self._stale and self._stale[k].unsent

    def mark_stale(self, stages: Iterable[int], wait: Wait) -> list[int]:
        """Stages `stages` wait for `wait` too; returns those that were not stale before."""
        newly = []
        for j in stages:
            old = self._stale.get(j)
            if old is None:
                newly.append(j)
                self._stale[j] = wait
            elif not old.unsent:  # an unsent wait stays: stale until the edits are sent and answered
                self._stale[j] = old.later(wait)
        return newly

    def answered(self, rid: int) -> list[int]:
        """The engine answered request `rid` (a result or a failure): returns the stages no longer stale."""
        done = [j for j, w in self._stale.items() if w.answered_by(rid)]
        for j in done:
            del self._stale[j]
        return done

    def result_arrived(self, rid: int) -> None:
        self.last_result = max(self.last_result, rid)

    # ----- artist inputs -----
    def layer_edited(self, k: int) -> None:
        self._layer_sent[k] = UNSENT
        self._unsent_layers.add(k)

    def latent_edited(self, i: int) -> None:
        self._latent_sent[i] = UNSENT
        self._unsent_latents.add(i)

    def latent_requested(self, i: int, rid: int) -> None:
        """Request `rid` sets transition i's code (a seeded sample): its answer is the code's new value."""
        self._latent_sent[i] = Wait(rid)

    def latent_wait(self, i: int) -> Wait:
        return self._latent_sent[i]

    def layer_newer_than(self, k: int, rid: int) -> bool:
        return self._layer_sent[k].newer_than(rid)

    def latent_newer_than(self, i: int, rid: int) -> bool:
        return self._latent_sent[i].newer_than(rid)

    def unsent_inputs(self) -> tuple[list[int], list[int]]:
        """(stages whose layer, transitions whose code) changed here and were not sent yet, in order."""
        return sorted(self._unsent_layers), sorted(self._unsent_latents)

    def has_unsent(self) -> bool:
        return bool(self._unsent_layers or self._unsent_latents)

    def sent(self, rid: int, layers: Iterable[int], latents: Iterable[int], first_stage: int | None) -> None:
        """Request `rid` carries these inputs; the stages after `first_stage` that waited for them wait for it."""
        for k in layers:
            self._layer_sent[k] = Wait(rid)
        for i in latents:
            self._latent_sent[i] = Wait(rid)
        for j, w in self._stale.items():
            if w.unsent and first_stage is not None and j > first_stage:
                self._stale[j] = Wait(rid)
        self._unsent_layers.clear()
        self._unsent_latents.clear()

    def settled(self) -> bool:
        """Nothing is stale and nothing waits to be sent."""
        return not self._stale and not self.has_unsent()
