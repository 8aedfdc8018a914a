"""Saving `.artflow` projects (format: core.files.project_format): save_project, its consistency checks, and the
manifest, tensors and PNGs it writes. No Qt here, no pickle."""

from __future__ import annotations

import io
import json
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.artwork_size import MAX_SIDE
from core.errors import ProjectError
from core.files.atomic import atomic_write
from core.files.imageio import tensor_to_pil
from core.files.project_format import MANIFEST, PROJECT_FORMAT, PROJECT_VERSION, TENSORS, Project, stage_file_name
from core.session_state import SessionState


def _manifest(project: Project) -> dict[str, Any]:
    from core import __version__

    st = project.state
    artwork = {}
    if project.fullres_u8 is not None:
        width, height = project.artwork_size
        artwork = {"artwork": {"width": width, "height": height}}
    return {
        "format": PROJECT_FORMAT,
        "version": PROJECT_VERSION,
        "app_version": __version__,
        "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": project.model_name, "config_hash": project.config_hash},
        "resolution": project.resolution,
        "stages": [{"name": n, "channels": c, "has_layer": st.layers[k] is not None,
                    "image": f"stages/{stage_file_name(k, n)}",
                    **({"fullres_layer": True} if project.has_fullres_layer(k) else {})}
                   for k, (n, c) in enumerate(zip(project.stage_names, project.stage_channels, strict=True))],
        "has_targets": st.targets is not None,
        "latent_dim": int(st.latents[0].numel()) if st.latents else 0,
        "extra": project.extra,
        **artwork,
    }


def _tensors(state: SessionState) -> dict[str, torch.Tensor]:
    def f32(t: torch.Tensor) -> torch.Tensor:
        # clone: safetensors refuses tensors that share memory (a hand-built state may reuse one tensor).
        return t.detach().to("cpu", torch.float32).contiguous().clone()

    out: dict[str, torch.Tensor] = {}
    for k, b in enumerate(state.bases):
        out[f"bases.{k}"] = f32(b)
    for k, ly in enumerate(state.layers):
        if ly is not None:
            colour, alpha = ly
            out[f"layers.{k}.colour"] = f32(colour)
            out[f"layers.{k}.alpha"] = f32(alpha.reshape(1, *alpha.shape[-2:]))
    for i, z in enumerate(state.latents):
        out[f"latents.{i}"] = f32(z.reshape(-1))
    for i, d in enumerate(state.deltas):
        out[f"deltas.{i}"] = f32(d.reshape(-1))
    for k, t in enumerate(state.targets or ()):
        out[f"targets.{k}"] = f32(t)
    return out


def _png_bytes(image: torch.Tensor | np.ndarray) -> bytes:
    """PNG of a (C, H, W) tensor in [-1, 1] or of a uint8 array (H, W), (H, W, 3) or (H, W, 4)."""
    buf = io.BytesIO()
    if isinstance(image, np.ndarray):
        mode = "L" if image.ndim == 2 else {3: "RGB", 4: "RGBA"}[image.shape[2]]
        Image.fromarray(np.ascontiguousarray(image), mode=mode).save(buf, format="PNG")
    else:
        tensor_to_pil(image).save(buf, format="PNG")
    return buf.getvalue()


def save_project(project: Project, path: str | os.PathLike[str]) -> Path:
    """Write `project` to `path` (a `.artflow` zip) atomically: a temp file in the same folder, then os.replace.
    ProjectError if the project is inconsistent, its `extra` is not JSON-serialisable, or the file cannot be
    written."""
    from safetensors.torch import save as st_save

    p = Path(path)
    st = project.state
    n = len(project.stage_names)
    if not (len(project.stage_channels) == len(st.bases) == len(st.layers) == n
            and len(st.latents) == len(st.deltas) == n - 1
            and (st.targets is None or len(st.targets) == n)):
        raise ProjectError(f"{p}: cannot save: the project's stage lists have inconsistent lengths")
    if project.fullres_u8 is not None:
        _check_fullres(p, project)
    try:
        manifest = json.dumps(_manifest(project), indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProjectError(f"{p}: cannot save: the project's extra metadata is not JSON-serialisable ({exc})") from None
    blob = st_save(_tensors(st), metadata={"format": PROJECT_FORMAT, "version": str(PROJECT_VERSION)})
    with atomic_write(p, ProjectError) as f:
        with zipfile.ZipFile(f, "w") as zf:
            zf.writestr(MANIFEST, manifest, compress_type=zipfile.ZIP_DEFLATED)
            # Float data deflates a little; level 1 keeps saving quick.
            zf.writestr(TENSORS, blob, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
            # One stage at a time, from the 8-bit images when the project has them (no float copies).
            images = project.fullres_u8 if project.fullres_u8 is not None else project.proxy_images()
            for k, (name, image) in enumerate(zip(project.stage_names, images, strict=True)):
                zf.writestr(f"stages/{stage_file_name(k, name)}", _png_bytes(image), compress_type=zipfile.ZIP_STORED)
                if project.has_fullres_layer(k):
                    zf.writestr(f"layers/{stage_file_name(k, name)}", _png_bytes(project.fullres_layers[k]),
                                compress_type=zipfile.ZIP_STORED)
                    zf.writestr(f"bases/{stage_file_name(k, name)}", _png_bytes(project.fullres_bases_u8[k]),
                                compress_type=zipfile.ZIP_STORED)
    return p


def _channels(image: np.ndarray) -> int:
    """The channel count of a uint8 image (H, W) or (H, W, C)."""
    return 1 if image.ndim == 2 else int(image.shape[2])


def _check_fullres(p: Path, project: Project) -> None:
    full = project.fullres_u8 or []
    sizes = {tuple(a.shape[:2]) for a in full}
    if len(full) != len(project.stage_names) or len(sizes) != 1:
        raise ProjectError(f"{p}: cannot save: the full-resolution stages must be one image per stage, all of one "
                           "size")
    height, width = sizes.pop()
    if not 1 <= max(width, height) <= MAX_SIDE:
        raise ProjectError(f"{p}: cannot save: the artwork is {width} x {height} pixels, more than {MAX_SIDE} px "
                           "on its long side")
    for k, (a, c) in enumerate(zip(full, project.stage_channels, strict=True)):
        if a.ndim not in (2, 3) or _channels(a) != c:
            raise ProjectError(f"{p}: cannot save: full-resolution stage {k} has shape {a.shape}, expected "
                               f"{c} channels")
        if project.has_fullres_layer(k):
            layer, base = project.fullres_layers[k], (project.fullres_bases_u8 or [None] * len(full))[k]
            if (layer.shape != (height, width, 4) or layer.dtype != np.uint8 or base is None
                    or base.shape != a.shape):
                raise ProjectError(f"{p}: cannot save: the full-resolution layer of stage {k} or its base does not "
                                   "fit the artwork")
