"""The app's own record in a project file (`extra["app"]`): what core's project format does not hold. No Qt here.

It is versioned: `version` says how the rest is laid out. A record of a version this app does not know (a newer
Artflow wrote it) is refused as a whole with a clear message; the project's stages, layers and latents are core's
and open all the same. Within a known version, a field that does not fit the open model is skipped (the rest is
still read), because a damaged history must not cost the artist the artwork.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from app.stage_status import StageStatus
from app.variations import VARIATION_LIMIT

log = logging.getLogger(__name__)

APP_EXTRA_VERSION = 1
KEY = "app"


class AppExtraVersionError(ValueError):
    """The record was written by a newer (or unknown) version of the app."""


@dataclass(frozen=True)
class SavedVariation:
    z: torch.Tensor  # (z_dim,)
    label: str
    seed: int | None = None


@dataclass(frozen=True)
class AppExtra:
    """origins: where each stage's generated picture came from; reset_latents: each transition's Reset code;
    variations: each transition's history (codes only: pictures are not saved)."""

    origins: tuple[StageStatus, ...] = ()
    reset_latents: tuple[torch.Tensor, ...] = ()
    variations: tuple[tuple[SavedVariation, ...], ...] = ()
    artwork_name: str = ""
    model_path: str = ""
    version: int = APP_EXTRA_VERSION

    def to_extra(self) -> dict:
        """The project's `extra` dict (JSON-ready)."""
        return {KEY: {
            "version": APP_EXTRA_VERSION,
            "origins": [o.value for o in self.origins],
            "reset_latents": [z.tolist() for z in self.reset_latents],
            "variations": [[{"z": v.z.tolist(), "label": v.label, "seed": v.seed} for v in h]
                           for h in self.variations],
            "artwork_name": self.artwork_name,
            "model_path": self.model_path,
        }}

    @classmethod
    def from_extra(cls, extra: object, num_stages: int, z_dim: int) -> AppExtra | None:
        """Read the record back for a model with `num_stages` stages and `z_dim`-value codes. None when the project
        has none (a CLI project); AppExtraVersionError when its version is not one this app reads."""
        record = extra.get(KEY) if isinstance(extra, dict) else None
        if not isinstance(record, dict):
            return None
        version = record.get("version")
        if version != APP_EXTRA_VERSION:
            raise AppExtraVersionError(f"the project's app data has version {version!r}; this Artflow reads "
                                       f"version {APP_EXTRA_VERSION}: its variation history and stage labels "
                                       "are left out")
        num_transitions = max(0, num_stages - 1)
        name = record.get("artwork_name")
        model_path = record.get("model_path")
        return cls(_origins(record.get("origins"), num_stages), _reset_latents(record, num_transitions, z_dim),
                   _variations(record, num_transitions, z_dim), name if isinstance(name, str) else "",
                   model_path if isinstance(model_path, str) else "", version)


def _origins(value: object, num_stages: int) -> tuple[StageStatus, ...]:
    values = {s.value for s in StageStatus if s.is_origin}
    if (isinstance(value, list) and len(value) == num_stages
            and all(isinstance(o, str) and o in values for o in value)):
        return tuple(StageStatus(o) for o in value)
    return ()


def _reset_latents(record: dict, num_transitions: int, z_dim: int) -> tuple[torch.Tensor, ...]:
    try:
        reset = [torch.tensor(z, dtype=torch.float32) for z in record.get("reset_latents", [])]
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        log.warning("ignoring the project's reset codes: %s", exc)
        return ()
    fits = len(reset) == num_transitions and all(z.shape == (z_dim,) and _finite(z) for z in reset)
    return tuple(reset) if fits else ()


def _finite(z: torch.Tensor) -> bool:
    return bool(torch.isfinite(z).all())  # 1e300 is valid JSON but inf as float32: a code of NaN pictures


def _variations(record: dict, num_transitions: int, z_dim: int) -> tuple[tuple[SavedVariation, ...], ...]:
    hist = record.get("variations", [])
    if not isinstance(hist, list) or len(hist) != num_transitions:
        return ()
    out: list[tuple[SavedVariation, ...]] = []
    try:
        for h in hist:
            kept = []
            for v in h[-VARIATION_LIMIT:]:
                z = torch.tensor(v["z"], dtype=torch.float32)
                if z.shape == (z_dim,) and _finite(z):
                    seed = v.get("seed")
                    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**63 else None
                    kept.append(SavedVariation(z, str(v.get("label", "")), seed))
            out.append(tuple(kept))
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError, OverflowError) as exc:
        log.warning("ignoring the project's variation history: %s", exc)
        return ()
    return tuple(out)

