"""Project files (`.artflow`): one artwork's editing state, shared by the app and the CLI. No Qt here, no pickle.

A project is a zip archive:

    manifest.json          format "artflow-project", version, app version, model name + config hash, resolution,
                           stages (name, channels, has_layer, image), has_targets, latent_dim, extra (app metadata)
    tensors.safetensors    float32, bit-exact: bases.K, layers.K.colour, layers.K.alpha (stages with a layer),
                           latents.I, deltas.I (transition I: stage I -> I+1), targets.K (when the session has them)
    stages/NN-<name>.png   each stage as seen: the full-resolution stage when the manifest has "artwork" (read back,
                           bit-exact: full-res stages live on 8-bit levels); else the proxy composite (layer over
                           base), for other tools, not read back
    layers/NN-<name>.png   a full-res project's artist layer of a stage (RGBA, straight alpha; the app paints it),
    bases/NN-<name>.png    and the picture under it, for the stages whose manifest entry has "fullres_layer": true

Full resolution (issue 12): the manifest's "artwork" {"width", "height"} says the project holds full-res stages of
that size (long side at most core.fullres.MAX_SIDE), and layers/ + bases/ the app's full-res layers (read by older
versions as plain full-res stages: the layer stays baked into stages/). Projects without it (written before full
resolution, or whose session never had full-res stages) are artworks of the model's own size: their full-res
stages are the proxies.

Opening checks, in order, that the file is a readable zip, that it has a valid manifest of a known version, and that
every tensor is present, float32, finite and of the shape the manifest implies; each problem is a ProjectError that
names it. A project made with another model (its name or config hash differs from the open model's) opens read-only: its
stages can be viewed and exported, not edited.

The manifest evolves like a versioned message: `_read_manifest` upgrades older versions to the current one (there is
one version so far); a newer version than this code knows is refused with a clear "update Artflow".

Why one module of about 590 lines: the writer and the bounded reader must agree member by member on one format
(names, shapes, dtypes, size limits); kept side by side, a change to the format is one diff in one place.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.atomic import atomic_write
from core.bundle import config_hash
from core.config import _NAME_RE, MAX_STAGE_NAME, MAX_STAGES, WorkflowConfig, _short
from core.errors import ArtflowError, ProjectError
from core.fullres.proxy import MAX_SIDE, ProxyMap
from core.imageio import tensor_to_pil, tensor_to_uint8, uint8_to_tensor
from core.safe_io import MAX_PROJECT_FILE_BYTES, loads_json, open_regular_file, stat_input
from core.session import Layer, Session, SessionState, compose

PROJECT_VERSION = 1
PROJECT_FORMAT = "artflow-project"
PROJECT_SUFFIX = ".artflow"
MANIFEST = "manifest.json"
TENSORS = "tensors.safetensors"
_MAX_MANIFEST_BYTES = 16 * 2**20  # extra (variation history) is small; anything larger is not ours
_MAX_STAGES = MAX_STAGES
_MAX_LATENT = 4096
# The most tensor data a project may unpack to when no model says what to expect (opened for viewing or export, or
# made with another model): a 1024 px project of 4 colour stages with layers and targets needs 168 MB.
MAX_TENSOR_BYTES_WITHOUT_MODEL = 256 * 2**20
# The most full-res data a project may decode to (uint8, as its PNGs are decoded and kept) when no model says how
# many stages to expect: what the largest workflow a model may have (MAX_STAGES colour stages) holds at the largest
# artwork size, 768 MiB; full-res layers (stage, base and RGBA layer: 10 bytes a pixel) count against it (four
# colour stages with layers fit). An export holds the stages once and adds what its format needs whatever the file
# declares (core.export: a band of a strip, a GIF's frames at a byte a pixel), so no project opened without its
# model makes an export larger than a real one of its artwork's size. With the model: its stages at that size.
MAX_FULLRES_BYTES_WITHOUT_MODEL = MAX_STAGES * 3 * MAX_SIDE**2


@dataclass
class Project:
    """One artwork as saved. Stage images in `state` are (C, H, W) float32 in [-1, 1]; layer alphas (1, H, W) in
    [0, 1]; latents (z_dim,); deltas (P,)."""

    model_name: str
    config_hash: str
    stage_names: list[str]
    stage_channels: list[int]
    resolution: int
    state: SessionState
    extra: dict = field(default_factory=dict)  # JSON-serialisable app metadata (variation history, stage status)
    read_only: bool = False  # opened with a different model: images viewable, not editable
    warning: str = ""
    # The full-resolution stages as a PNG holds them, uint8 (height, width) or (height, width, 3), or None: the
    # artwork is the proxies. Kept in 8 bits (a 4096 x 3072 colour stage is 36 MiB, 144 MiB as float32): `fullres`
    # gives them as tensors.
    fullres_u8: list[np.ndarray] | None = None
    # With fullres_u8: per stage the artist's full-res layer (H, W, 4) uint8 RGBA or None, and the base under it
    # (uint8 like the stage; None where the stage has no layer: its base is its full-res stage).
    fullres_layers: list[np.ndarray | None] | None = None
    fullres_bases_u8: list[np.ndarray | None] | None = None

    @property
    def fullres(self) -> list[torch.Tensor] | None:
        """The full-resolution stages (C_k, height, width) float32 on 8-bit levels (new tensors), or None."""
        return None if self.fullres_u8 is None else [uint8_to_tensor(a) for a in self.fullres_u8]

    @property
    def fullres_bases(self) -> list[torch.Tensor | None] | None:
        """The bases under the full-res layers as (C_k, H, W) float32 (new tensors), or None."""
        if self.fullres_bases_u8 is None:
            return None
        return [None if b is None else uint8_to_tensor(b) for b in self.fullres_bases_u8]

    def has_fullres_layer(self, k: int) -> bool:
        return self.fullres_layers is not None and self.fullres_layers[k] is not None

    def proxy_images(self) -> list[torch.Tensor]:
        """Each stage's proxy as the model sees it: the artist's layer composited over the base, (C_k, R, R)."""
        return [compose(b, ly) for b, ly in zip(self.state.bases, self.state.layers, strict=True)]

    def stage_images(self) -> list[torch.Tensor]:
        """Each stage as the artist sees it (what exports write): the full-res stages when the project has them,
        else the proxy composites."""
        return self.fullres if self.fullres_u8 is not None else self.proxy_images()

    def export_images(self) -> list[torch.Tensor] | list[np.ndarray]:
        """stage_images as core.export takes them without copies: the full-res stages as kept (uint8, shared: only
        to be read), else the proxy composites (the model's size). stage_images would add a float32 copy of every
        stage (4 bytes a pixel per channel: 1.8 GB for nine colour stages of 4096 x 4096)."""
        return self.fullres_u8 if self.fullres_u8 is not None else self.proxy_images()

    @property
    def artwork_size(self) -> tuple[int, int]:
        """(width, height) of the artwork: the full-res stages', or the model's resolution."""
        if self.fullres_u8 is not None:
            return int(self.fullres_u8[0].shape[1]), int(self.fullres_u8[0].shape[0])
        return self.resolution, self.resolution

    def proxy_map(self) -> ProxyMap:
        width, height = self.artwork_size
        return ProxyMap(width, height, self.resolution)

    @property
    def num_stages(self) -> int:
        return len(self.stage_names)


def stage_file_name(k: int, name: str, suffix: str = ".png") -> str:
    """`NN-<name>.png`: the zero-padded stage index keeps files in workflow order in any file browser."""
    return f"{k:02d}-{name}{suffix}"


def _as_u8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """A full-res image as a project keeps it: uint8 (H, W) or (H, W, 3), from a (C, H, W) tensor in [-1, 1]
    (rounded to 8-bit levels) or a uint8 array in that layout (kept as it is, not copied: it is only read)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"a full-res image must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
        return image
    return tensor_to_uint8(image)


def project_from_session(session: Session, extra: dict | None = None,
                         fullres: list[torch.Tensor | np.ndarray] | None = None,
                         layers: list[np.ndarray | None] | None = None,
                         bases: list[torch.Tensor | np.ndarray | None] | None = None) -> Project:
    """A Project holding a copy of the session's state (later edits to the session do not change it) and, when
    given, the full-resolution stages (rounded to 8-bit levels, as they are saved), with the artist's full-res
    layers (RGBA uint8 per stage or None) and the bases under them (None where no layer). Full-res images are
    (C, H, W) tensors in [-1, 1] or uint8 arrays (H, W) / (H, W, 3); arrays are shared, not copied (the app
    passes its read-only ones)."""
    cfg = session.config
    has_layers = fullres is not None and layers is not None and any(ly is not None for ly in layers)
    return Project(model_name=cfg.name, config_hash=config_hash(cfg), stage_names=list(cfg.stage_names),
                   stage_channels=[s.channels for s in cfg.stages], resolution=cfg.resolution,
                   state=session.snapshot(), extra=dict(extra or {}),
                   fullres_u8=None if fullres is None else [_as_u8(t) for t in fullres],
                   fullres_layers=list(layers) if has_layers else None,
                   fullres_bases_u8=[None if ly is None else _as_u8(b)
                                     for ly, b in zip(layers, bases, strict=True)] if has_layers else None)


def made_with(model_name: str, model_config_hash: str, config: WorkflowConfig) -> bool:
    """Whether a project that names this model (name and config hash) was made with the model of `config`. Both
    count: two bundles of one architecture (the shipped fluent-emoji-128 and emoji-lines-128) share the hash, and
    one's latent codes and refined deltas mean nothing to the other's weights."""
    return model_config_hash == config_hash(config) and model_name == config.name


def apply_project(session: Session, project: Project) -> None:
    """Load the project's state into `session`. ProjectError (and the session unchanged) if the project is
    read-only, was made with another model, or its tensors do not fit the session's model."""
    if project.read_only:
        raise ProjectError(project.warning or "this project was made with another model and is open read-only")
    want = config_hash(session.config)
    if not made_with(project.model_name, project.config_hash, session.config):
        raise ProjectError(f"this project was made with the model '{project.model_name}' "
                           f"(config {project.config_hash}), not with the open model '{session.config.name}' "
                           f"(config {want}); open it with the model it was made with to edit it")
    try:
        session.restore(project.state)
    except ProjectError:
        raise
    except ArtflowError as exc:
        raise ProjectError(f"the project does not fit the open model: {exc}") from None


# ----- saving -----
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


# ----- opening -----
def _fail(path: Path, message: str) -> ProjectError:
    return ProjectError(f"{path}: {message}")


def _read_entry(path: Path, zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _fail(path, f"no {name} inside: not an Artflow project, or a damaged one") from None
    too_big = (f"{name} is more than a project of this size can hold ({limit:,} bytes); the file is damaged or "
               "not an Artflow project")
    if info.file_size > limit:
        raise _fail(path, too_big)  # the declared size: refused before anything is decompressed
    if info.flag_bits & 0x1:
        raise _fail(path, f"{name} is encrypted; Artflow never writes encrypted projects")
    try:
        # Read at most limit + 1 bytes whatever the member declares: the limit comes from the caller, never the zip.
        with zf.open(info) as member:
            data = member.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError,
            MemoryError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(path, f"{name} is corrupt, truncated or unreadable ({reason})") from None
    if len(data) > limit:
        raise _fail(path, too_big)
    return data


def _want(cond: bool, path: Path, message: str) -> None:
    if not cond:
        raise _fail(path, f"manifest.json: {message}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _read_manifest(path: Path, raw: bytes) -> dict[str, Any]:
    """Parse and validate manifest.json; returns it upgraded to PROJECT_VERSION."""
    # Bounded depth (no RecursionError), no NaN or infinity anywhere (extra included), so a save cannot fail late.
    data = loads_json(raw, f"{path}: manifest.json", ProjectError, _MAX_MANIFEST_BYTES)
    if not isinstance(data, dict):
        raise _fail(path, "manifest.json: expected a JSON object at the top level")
    if data.get("format") != PROJECT_FORMAT:
        raise _fail(path, f"manifest.json: format is {data.get('format')!r}, expected {PROJECT_FORMAT!r}; "
                          "not an Artflow project")
    version = data.get("version")
    _want(_is_int(version) and version >= 1, path, f"unknown format version {version!r}")
    if version > PROJECT_VERSION:
        raise _fail(path, f"project format version {version} is newer than this Artflow understands "
                          f"({PROJECT_VERSION}); update Artflow to open it")
    # (Upgrades from older versions go here, one `if version == N:` step each.)
    model = data.get("model")
    _want(isinstance(model, dict) and isinstance(model.get("name"), str) and isinstance(model.get("config_hash"), str),
          path, "'model' must be an object with string fields 'name' and 'config_hash'")
    res = data.get("resolution")
    _want(_is_int(res) and 16 <= res <= 2048, path, f"resolution must be an integer in 16..2048 (got {res!r})")
    stages = data.get("stages")
    _want(isinstance(stages, list) and 2 <= len(stages) <= _MAX_STAGES, path,
          f"'stages' must be a list of 2..{_MAX_STAGES} stages")
    seen = set()
    for k, s in enumerate(stages):
        _want(isinstance(s, dict), path, f"stages[{k}] must be an object")
        name = s.get("name")
        # Stage names become file names and labels on export: the model config's slug rule keeps them safe ("../"
        # etc.), its length limit keeps them small (a strip of 60,000-character labels took gigabytes).
        if isinstance(name, str) and len(name) > MAX_STAGE_NAME:
            raise _fail(path, f"manifest.json: stages[{k}].name is {len(name):,} characters long, more than the "
                              f"{MAX_STAGE_NAME} a stage name may have")
        _want(isinstance(name, str) and bool(_NAME_RE.match(name)) and name not in seen, path,
              f"stages[{k}].name {_short(name)} must be a unique lower-case slug")
        seen.add(name)
        _want(s.get("channels") in (1, 3) and _is_int(s.get("channels")), path,
              f"stages[{k}].channels must be 1 or 3 (got {s.get('channels')!r})")
        _want(isinstance(s.get("has_layer", False), bool), path, f"stages[{k}].has_layer must be true or false")
        _want(isinstance(s.get("fullres_layer", False), bool), path,
              f"stages[{k}].fullres_layer must be true or false")
    _want(isinstance(data.get("has_targets", False), bool), path, "has_targets must be true or false")
    zd = data.get("latent_dim")
    _want(_is_int(zd) and 1 <= zd <= _MAX_LATENT, path, f"latent_dim must be an integer in 1..{_MAX_LATENT}")
    _want(isinstance(data.get("extra", {}), dict), path, "'extra' must be an object")
    art = data.get("artwork")
    _want(art is None or (isinstance(art, dict) and all(_is_int(art.get(k)) and 1 <= art[k] <= MAX_SIDE
                                                        for k in ("width", "height"))),
          path, f"'artwork' must be an object with integer fields 'width' and 'height' in 1..{MAX_SIDE}")
    return data


def png_limit(width: int, height: int, channels: int) -> int:
    """The largest stage PNG a project of this artwork size holds: the filtered scanlines (one filter byte per
    row), zlib's worst case on incompressible data (~0.1% more), chunk headers and a little metadata. At most
    ~48 MiB per member, from MAX_SIDE."""
    raw = height * (1 + width * channels)
    return raw + raw // 500 + 2**16


def fullres_limit(config: WorkflowConfig | None) -> int:
    """How many bytes the full-res stages may decode to (uint8, as kept): from the open model's stages (each with
    a full-res layer) at MAX_SIDE, or MAX_FULLRES_BYTES_WITHOUT_MODEL without one. Never from the project's own
    manifest."""
    if config is None:
        return MAX_FULLRES_BYTES_WITHOUT_MODEL
    return MAX_SIDE**2 * sum(2 * s.channels + 4 for s in config.stages)


def _fullres_bytes_per_pixel(s: dict[str, Any]) -> int:
    """Decoded bytes per pixel of one manifest stage's full-res members, as _read_fullres keeps them (uint8): the
    stage, plus its base and RGBA layer when it has one."""
    return s["channels"] + (s["channels"] + 4 if s.get("fullres_layer", False) else 0)


def _check_fullres_size(path: Path, m: dict[str, Any], limit: int) -> None:
    """The manifest's full-res stages, all together, decode to at most `limit` bytes: checked before anything
    else is read."""
    if m.get("artwork") is None:
        return
    width, height = m["artwork"]["width"], m["artwork"]["height"]
    need = width * height * sum(_fullres_bytes_per_pixel(s) for s in m["stages"])
    if need > limit:
        raise _fail(path, f"its {len(m['stages'])} full-resolution stages of {width} x {height} pixels need "
                          f"{need:,} bytes, more than a project holds ({limit:,}); the file is damaged or not an "
                          "Artflow project")


def _read_png(path: Path, zf: zipfile.ZipFile, name: str, width: int, height: int, mode: str) -> np.ndarray:
    """One full-res member: an 8-bit PNG of exactly this size and mode, bounded by png_limit before it is inflated
    and its header checked before any pixel is decoded. Returns its uint8 array."""
    from PIL import UnidentifiedImageError

    raw = _read_entry(path, zf, name, png_limit(width, height, len(mode)))
    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as img:
            if img.size != (width, height) or img.mode != mode:
                raise _fail(path, f"{name} is a {img.size[0]} x {img.size[1]} {img.mode} image, expected "
                                  f"{width} x {height} {mode} (the manifest's artwork size)")
            img.load()
            return np.asarray(img, dtype=np.uint8)
    except ProjectError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, MemoryError,
            Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(path, f"{name} is not a readable PNG ({reason})") from None


def _read_fullres(path: Path, zf: zipfile.ZipFile, m: dict[str, Any], with_layers: bool = True
                  ) -> tuple[list[np.ndarray], list[np.ndarray | None] | None, list[np.ndarray | None] | None]:
    """The full-res stages of a manifest with "artwork" (sized by _check_fullres_size), and the layers and bases
    of the stages marked "fullres_layer" (None, None when there are none, or not with_layers); uint8 arrays, as
    decoded."""
    width, height = m["artwork"]["width"], m["artwork"]["height"]
    out, layers, bases = [], [], []
    for k, s in enumerate(m["stages"]):
        file = stage_file_name(k, s["name"])  # never a path taken from the manifest
        mode = "L" if s["channels"] == 1 else "RGB"
        out.append(_read_png(path, zf, f"stages/{file}", width, height, mode))
        has = with_layers and s.get("fullres_layer", False)
        layers.append(_read_png(path, zf, f"layers/{file}", width, height, "RGBA") if has else None)
        bases.append(_read_png(path, zf, f"bases/{file}", width, height, mode) if has else None)
    if all(ly is None for ly in layers):
        return out, None, None
    return out, layers, bases


def _tensor_limit(resolution: int, channels: list[int]) -> int:
    """The largest tensors.safetensors a project of this shape holds: base, layer colour + alpha and target per
    stage, plus latents, deltas and the header."""
    per_stage = sum((3 * c + 1) * resolution**2 for c in channels)
    return 4 * per_stage + 64 * 2**20


def model_tensor_limit(config: WorkflowConfig | None) -> int:
    """How many bytes of tensors a project may unpack to: from the open model's resolution and stages, or
    MAX_TENSOR_BYTES_WITHOUT_MODEL without one. Never from the project's own manifest."""
    if config is None:
        return MAX_TENSOR_BYTES_WITHOUT_MODEL
    return _tensor_limit(config.resolution, [s.channels for s in config.stages])


def _read_tensors(path: Path, raw: bytes, m: dict[str, Any]) -> SessionState:
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise _fail(path, f"{TENSORS} is not a readable safetensors file ({exc})") from None
    res, stages, n = m["resolution"], m["stages"], len(m["stages"])
    expected: dict[str, tuple[int, ...] | None] = {}
    for k, s in enumerate(stages):
        expected[f"bases.{k}"] = (s["channels"], res, res)
        if s.get("has_layer", False):
            expected[f"layers.{k}.colour"] = (s["channels"], res, res)
            expected[f"layers.{k}.alpha"] = (1, res, res)
        if m.get("has_targets", False):
            expected[f"targets.{k}"] = (s["channels"], res, res)
    for i in range(n - 1):
        expected[f"latents.{i}"] = (m["latent_dim"],)
        expected[f"deltas.{i}"] = None  # (P,): P depends on the network, checked against the model on apply
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise _fail(path, f"{TENSORS}: missing tensor(s) {', '.join(missing[:3])}"
                          + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise _fail(path, f"{TENSORS}: unexpected tensor(s) {', '.join(unexpected[:3])}")
    for key, shape in expected.items():
        t = tensors[key]
        if t.dtype != torch.float32:
            raise _fail(path, f"{TENSORS}: tensor '{key}' is {t.dtype}, expected float32")
        if shape is None:
            ok = t.dim() == 1 and t.numel() >= 1 and t.shape == tensors["deltas.0"].shape
            shape_text = "a 1-d tensor of the same length for every transition"
        else:
            ok = tuple(t.shape) == shape
            shape_text = str(shape)
        if not ok:
            raise _fail(path, f"{TENSORS}: tensor '{key}' has shape {tuple(t.shape)}, expected {shape_text}")
        if not torch.isfinite(t).all():
            raise _fail(path, f"{TENSORS}: tensor '{key}' holds NaN or infinite values")
    layers: list[Layer | None] = [
        (tensors[f"layers.{k}.colour"], tensors[f"layers.{k}.alpha"]) if s.get("has_layer", False) else None
        for k, s in enumerate(stages)]
    return SessionState(
        bases=tuple(tensors[f"bases.{k}"] for k in range(n)),
        layers=tuple(layers),
        latents=tuple(tensors[f"latents.{i}"] for i in range(n - 1)),
        deltas=tuple(tensors[f"deltas.{i}"] for i in range(n - 1)),
        targets=tuple(tensors[f"targets.{k}"] for k in range(n)) if m.get("has_targets", False) else None,
    )


def load_project(path: str | os.PathLike[str], config: WorkflowConfig | None = None,
                 fullres_layers: bool = True) -> Project:
    """Open a `.artflow` file. With `config` (the open model's), a project made with another model comes back
    read_only=True with a `warning` naming the model it was made with; without it no model check is done (use
    that for viewing and exporting). fullres_layers=False leaves the full-res layers and the bases under them
    unread (an export needs only the stages, each with its layer baked in; such a project is not to be saved
    back). Every problem with the file is a ProjectError naming it."""
    p = Path(path)
    if stat.S_ISDIR(stat_input(p, ProjectError).st_mode):
        raise _fail(p, "is a folder, not a project file")
    # A regular file of bounded size, opened without blocking: a FIFO or a link to /dev/zero is refused unread.
    f = open_regular_file(p, MAX_PROJECT_FILE_BYTES, ProjectError, "a project file")
    with f:
        _check_directory_size(p, f)
        try:
            zf = zipfile.ZipFile(f)
        except zipfile.BadZipFile:
            raise _fail(p, "not an Artflow project file, or it is truncated or corrupt (not a readable zip "
                           "archive)") from None
        except (OSError, ValueError, EOFError, RuntimeError, NotImplementedError) as exc:
            raise _fail(p, f"cannot be read ({exc})") from None
        with zf:
            m = _read_manifest(p, _read_entry(p, zf, MANIFEST, _MAX_MANIFEST_BYTES))
            same_model = config is not None and made_with(m["model"]["name"], m["model"]["config_hash"], config)
            if same_model:
                _check_same_shape(p, m, config)
            _check_fullres_size(p, m, fullres_limit(config if same_model else None))
            state = _read_tensors(p, _read_entry(p, zf, TENSORS, model_tensor_limit(config if same_model else None)),
                                  m)
            fullres, layers, bases = (_read_fullres(p, zf, m, fullres_layers) if m.get("artwork") is not None
                                      else (None, None, None))
    project = Project(model_name=m["model"]["name"], config_hash=m["model"]["config_hash"],
                      stage_names=[s["name"] for s in m["stages"]], stage_channels=[s["channels"] for s in m["stages"]],
                      resolution=m["resolution"], state=state, extra=dict(m.get("extra", {})), fullres_u8=fullres,
                      fullres_layers=layers, fullres_bases_u8=bases)
    if config is not None:
        want = config_hash(config)
        if not made_with(project.model_name, project.config_hash, config):
            project.read_only = True
            project.warning = (f"{p.name} was made with the model '{project.model_name}' (config "
                               f"{project.config_hash}), not the open model '{config.name}' (config {want}); its "
                               f"stages can be viewed and exported but not edited; open it with the model "
                               f"'{project.model_name}' to edit it")
    return project


_MAX_ENTRIES = 1000  # a project holds 2 + one PNG per stage
_EOCD = struct.Struct("<4s4H2LH")  # the zip's end-of-central-directory record


def _check_directory_size(p: Path, f) -> None:
    """Refuse a zip whose central directory lists more entries than a project can hold, before zipfile parses it
    (it builds one object per entry: a forged directory of millions would cost gigabytes)."""
    try:
        size = f.seek(0, os.SEEK_END)
        tail_len = min(size, _EOCD.size + 65535)  # the record and a comment of at most 64 KB
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        f.seek(0)
    except OSError as exc:
        raise _fail(p, f"cannot be read ({exc.strerror or exc})") from None
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD.size > len(tail):
        return  # not a zip: zipfile says so in its own words
    _, _, _, _, entries, cd_size, _, _ = _EOCD.unpack_from(tail, at)
    if entries > _MAX_ENTRIES or cd_size > _MAX_ENTRIES * 1024:
        raise _fail(p, f"the archive lists {entries:,} entries in {cd_size:,} bytes, more than a project holds "
                       "(not an Artflow project, or a damaged one)")


def _check_same_shape(p: Path, m: dict[str, Any], config: WorkflowConfig) -> None:
    """A manifest that claims the open model's config hash must have its stages, resolution and latent size;
    checked before the tensors are read, so a forged manifest cannot raise the size they may unpack to."""
    if ([s["name"] for s in m["stages"]] != config.stage_names or m["resolution"] != config.resolution
            or [s["channels"] for s in m["stages"]] != [s.channels for s in config.stages]
            or m["latent_dim"] != config.generator.z_dim):
        # Same hash but different shapes: the manifest was edited by hand or forged.
        raise _fail(p, "manifest.json claims the open model's config hash but its stages, resolution or "
                       "latent size differ from that model's; the file is inconsistent")

