"""Opening `.artflow` projects (format: core.files.project_format): load_project, the bounded reader of forged or
damaged files, its manifest checks and size limits. No Qt here, no pickle.

Opening checks, in order, that the file is a readable zip, that it has a valid manifest of a known version, and that
every tensor is present, float32, finite and of the shape the manifest implies; each problem is a ProjectError that
names it. A project made with another model (its name or config hash differs from the open model's) opens read-only: its
stages can be viewed and exported, not edited. Every member is read with a limit that comes from the open model (or a
fixed one without it), never from the file.

The manifest evolves like a versioned message: `_read_manifest` upgrades older versions to the current one (there is
one version so far); a newer version than this code knows is refused with a clear "update Artflow".
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.artwork_size import MAX_SIDE
from core.config import _NAME_RE, MAX_STAGE_NAME, MAX_STAGES, WorkflowConfig, _short
from core.errors import ProjectError
from core.files.bundle import config_hash
from core.files.project_format import (
    MANIFEST,
    PROJECT_FORMAT,
    PROJECT_VERSION,
    TENSORS,
    Project,
    made_with,
    stage_file_name,
)
from core.safe_io import MAX_PROJECT_FILE_BYTES, loads_json, open_regular_file
from core.session_state import Layer, SessionState

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
# declares (core.files.export: a band of a strip, a GIF's frames at a byte a pixel), so no project opened without its
# model makes an export larger than a real one of its artwork's size. With the model: its stages at that size.
MAX_FULLRES_BYTES_WITHOUT_MODEL = MAX_STAGES * 3 * MAX_SIDE**2


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
