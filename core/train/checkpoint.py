"""Training checkpoints as one safetensors file: every tensor (weights, optimiser moments, random-generator states)
in the safetensors body, everything else (optimiser settings, steps done per phase, configurations) as JSON in its
header's metadata. Nothing is unpickled on resume, and one file is replaced atomically, so a checkpoint is never
half written.

The JSON keeps what plain JSON would lose: a tensor is {"__tensor__": key}, a tuple {"__tuple__": [...]} and a dict
whose keys are not all strings (an optimiser's state, keyed by parameter index) {"__items__": [[key, value], ...]}.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from core.errors import ArtflowError

CHECKPOINT = "checkpoint.safetensors"
LEGACY_CHECKPOINT = "checkpoint.pt"  # torch.save pickles of earlier versions: refused, never unpickled
FORMAT = "artflow-checkpoint"
VERSION = 2  # 1 was the pickle
META_KEY = "artflow_checkpoint"


def _split(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """obj as JSON-able data, its tensors moved into `tensors` under their path in obj."""
    if isinstance(obj, torch.Tensor):
        if path in tensors:
            raise ValueError(f"two checkpoint entries are both called {path!r}")
        # A copy: safetensors refuses tensors that share memory, and the training goes on with the originals.
        tensors[path] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _split(v, f"{path}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _split(v, f"{path}/{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_split(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"a checkpoint cannot hold {type(obj).__name__} (at {path!r})")


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of _split."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_join(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {k: _join(v, tensors) for k, v in obj["__items__"]}
        return {k: _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def write_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write `state` (nested dicts, lists and tuples of tensors, numbers, strings, None) to `path` atomically."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    tree = _split(state, "", tensors)
    meta = {META_KEY: json.dumps({"format": FORMAT, "version": VERSION, "state": tree})}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The state written by write_checkpoint, tensors on the CPU. ArtflowError when the file cannot be read or is
    not an Artflow checkpoint of this version."""
    path = Path(path)
    hint = "move it away to start afresh"
    try:
        with safe_open(str(path), framework="pt") as f:
            header = (f.metadata() or {}).get(META_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        record = json.loads(header) if header is not None else None
    except Exception as exc:  # a truncated or foreign file: safetensors and json raise several kinds
        raise ArtflowError(f"{path}: the checkpoint cannot be read ({exc}); {hint}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ArtflowError(f"{path}: not an Artflow training checkpoint; {hint}")
    if record.get("version") != VERSION:
        raise ArtflowError(f"{path}: a checkpoint of format version {record.get('version')}, this Artflow reads "
                           f"version {VERSION}; {hint}")
    try:
        return _join(record["state"], tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtflowError(f"{path}: the checkpoint is damaged ({exc}); {hint}") from None


def refuse_legacy_checkpoint(folder: str | os.PathLike[str]) -> None:
    """ArtflowError when `folder` holds an earlier version's pickled checkpoint and no current one: such a file is
    never unpickled, so the run cannot resume from it."""
    folder = Path(folder)
    legacy = folder / LEGACY_CHECKPOINT
    if legacy.exists() and not (folder / CHECKPOINT).exists():
        raise ArtflowError(f"{legacy}: a checkpoint of an earlier Artflow version (a pickle, which this version never "
                           f"loads); resume it with that version, or move it away to train afresh")
