"""Model bundles: a folder with config.json + model.safetensors (+ MODEL_CARD.md, + recolour.safetensors: the
learned recolour of region-bounded edits, core.nn.recolour, optional). No pickle, ever."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from core.config import WorkflowConfig
from core.errors import BundleError
from core.files.atomic import sweep_stale, temp_name
from core.model import WorkflowModel
from core.nn.recolour import RECOLOUR_FILE, LearnedRecolour
from core.safe_io import MAX_JSON_BYTES, MAX_WEIGHTS_FILE_BYTES, check_regular_file, read_regular_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_PICKLE_SUFFIXES = {".pth", ".pt", ".ckpt", ".pkl", ".bin"}
# Tensors a bundle may lack: bundles written before latent priors existed sample from N(0, I), the default.
_OPTIONAL_PREFIXES = ("latent_priors.",)
# Every tensor of a WorkflowModel is float32; bundle.save(half=True) stores fp16. Anything else (bool, integers)
# is not a model Artflow wrote.
_FLOAT_DTYPES = ("F32", "F16", "BF16")
# A model whose weights take more than this is built only once the file is known to hold as many values.
_PREFLIGHT_BYTES = 256 * 2**20
_CONVERT_HINT = (
    "Artflow never loads pickle files (they can run arbitrary code). Convert it once, in a trusted environment, "
    "with: python -c \"import torch, safetensors.torch as s; "
    "s.save_file({k: v.contiguous() for k, v in torch.load('IN.pth', weights_only=True).items()}, "
    "'model.safetensors')\" "
    "and write a config.json beside it"
)


def config_hash(config: WorkflowConfig) -> str:
    """A short stable hash of everything that shapes the networks (not the description or training flags)."""
    d = config.to_dict()
    for k in ("description", "regularizer_trained", "name"):
        d.pop(k, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def save(model: WorkflowModel, path: str | Path, *, half: bool = False, model_card: str | None = None) -> Path:
    """Write the bundle folder atomically: into a temp folder beside it, then renamed into place.
    half=True stores floating tensors as fp16 (they load back as fp32)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.is_dir() and any(path.iterdir()) and not (path / CONFIG_FILE).is_file():
        # Saving replaces the whole folder: never wipe a folder that is not a model bundle.
        raise BundleError(f"{path}: the folder exists and is not a model bundle (no {CONFIG_FILE}); "
                          "choose a new or empty folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)  # temp folders of saves that were killed (their process is gone)
    # Not tempfile.mkdtemp: its folder is private (0700) and would stay so after the rename; mkdir honours the umask.
    tmp = path.parent / temp_name(path.name)
    tmp.mkdir()
    try:
        state = {}
        for k, v in model.state_dict().items():
            v = v.detach().to("cpu").contiguous()
            if half and v.is_floating_point():
                v = v.half()
            state[k] = v
        meta = {"format": "artflow-bundle", "config_hash": config_hash(model.config)}
        save_file(state, str(tmp / WEIGHTS_FILE), metadata=meta)
        (tmp / CONFIG_FILE).write_text(model.config.to_json())
        if model_card is not None:
            (tmp / "MODEL_CARD.md").write_text(model_card)
        if model.recolour is not None:
            model.recolour.to_file(tmp / RECOLOUR_FILE)
        if path.is_dir():
            # Whatever else lives beside the weights (model card, sample sheets, evaluation results) stays.
            for extra in path.iterdir():
                if extra.is_file() and not (tmp / extra.name).exists():
                    shutil.copy2(extra, tmp / extra.name)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the previous bundle back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def stored_half(path: str | Path) -> bool:
    """Whether the bundle's floating-point weights are stored as fp16 (bundle.save(half=True))."""
    from safetensors import safe_open

    with safe_open(str(Path(path) / WEIGHTS_FILE), framework="pt") as f:
        for k in f.keys():
            t = f.get_slice(k)
            if t.get_dtype() in ("F16", "F32", "BF16", "F64"):
                return t.get_dtype() == "F16"
    return False


def load_config(path: str | Path) -> WorkflowConfig:
    path = Path(path)
    try:
        path.is_dir()
    except (OSError, ValueError) as exc:  # a path the file system cannot hold: too long, a NUL byte
        raise BundleError(f"{str(path)[:200]}: not a usable model folder path ({exc.__class__.__name__}: "
                          f"{getattr(exc, 'strerror', None) or exc})") from None
    _check_not_pickle(path)
    cfg_path = path / CONFIG_FILE
    if not path.is_dir():
        raise BundleError(f"{path}: not a model folder (expected a folder with {CONFIG_FILE} and {WEIGHTS_FILE})")
    if not cfg_path.exists():
        raise BundleError(f"{path}: no {CONFIG_FILE} in the model folder")
    raw = read_regular_file(cfg_path, MAX_JSON_BYTES, BundleError, f"a model's {CONFIG_FILE}")
    try:
        return WorkflowConfig.from_json(raw)
    except BundleError as exc:
        raise BundleError(f"{path}: {exc}") from None


def load(path: str | Path, device: str | torch.device = "cpu") -> WorkflowModel:
    """Load and validate a bundle; the model comes back in eval mode, fp32, on `device`.
    Every inconsistency is a BundleError that names the file and the tensor."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    config = load_config(path)
    weights = path / WEIGHTS_FILE
    if not weights.exists():
        raise BundleError(f"{path}: no {WEIGHTS_FILE} in the model folder")
    # Memory-mapped, not read whole: the bound is on the file; each tensor is then checked against the config.
    check_regular_file(weights, MAX_WEIGHTS_FILE_BYTES, BundleError, "a safetensors weights file")
    try:
        with safe_open(str(weights), framework="pt") as f:
            # From the header alone, before any network is built: a forged file cannot make us allocate a model
            # its weights could never fill.
            _check_header(weights, f, config)
            model = WorkflowModel(config)  # the config's footprint was bounded when it was parsed
            expected = model.state_dict()
            keys = set(f.keys())
            missing = sorted(k for k in set(expected) - keys if not k.startswith(_OPTIONAL_PREFIXES))
            unexpected = sorted(keys - set(expected))
            if missing:
                raise BundleError(f"{weights}: missing tensor(s) {', '.join(missing[:3])}"
                                  + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
                                  + " (the weights do not match config.json)")
            if unexpected:
                raise BundleError(f"{weights}: unexpected tensor(s) {', '.join(unexpected[:3])} "
                                  "(the weights do not match config.json)")
            state = {}
            for k in expected:
                if k not in keys:
                    continue  # optional, keeps its default
                stored = f.get_slice(k)
                if tuple(stored.get_shape()) != tuple(expected[k].shape):
                    raise BundleError(f"{weights}: tensor '{k}' has shape {tuple(stored.get_shape())}, "
                                      f"config.json expects {tuple(expected[k].shape)}")
                t = f.get_tensor(k)  # read only once its dtype and shape are known to fit
                if tuple(t.shape) != tuple(expected[k].shape):
                    raise BundleError(f"{weights}: tensor '{k}' has shape {tuple(t.shape)}, "
                                      f"config.json expects {tuple(expected[k].shape)}")
                if t.is_floating_point() and not torch.isfinite(t).all():
                    raise BundleError(f"{weights}: tensor '{k}' holds NaN or infinite values")
                state[k] = t.to(expected[k].dtype)
    except BundleError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise BundleError(
            f"{weights}: not a readable safetensors file, it may be truncated or corrupt ({exc})") from None
    model.load_state_dict(state, strict=False)  # every required tensor was checked above
    for i, prior in enumerate(model.latent_priors):
        tril = prior.scale_tril
        if not torch.equal(tril, tril.tril()) or not bool((torch.diagonal(tril) > 0).all()):
            raise BundleError(f"{weights}: the latent prior of transition {i} is not a Cholesky factor "
                              "(lower triangular with a positive diagonal)")
    recolour = path / RECOLOUR_FILE
    if recolour.exists() or recolour.is_symlink():
        model.recolour = LearnedRecolour.from_file(recolour)
    return model.eval().requires_grad_(False).to(device)


def _check_header(weights: Path, f, config: WorkflowConfig) -> None:
    """Every stored tensor floating point; and for a model of more than _PREFLIGHT_BYTES of weights, as many
    values in all as the config implies (the latent priors, the only optional tensors, counted where present).
    Smaller models are built first, so that a mismatch is reported by the name of the tensor at fault."""
    from core.platform.footprint import parameter_count

    total = 0
    priors = 0
    for k in f.keys():
        stored = f.get_slice(k)
        if stored.get_dtype() not in _FLOAT_DTYPES:
            raise BundleError(f"{weights}: tensor '{k}' is stored as {stored.get_dtype()}, "
                              "expected floating point (F32, F16 or BF16)")
        n = math.prod(stored.get_shape())
        total += n
        if k.startswith(_OPTIONAL_PREFIXES):
            priors += n
    z = config.generator.z_dim
    want = parameter_count(config) - config.num_transitions * (z + z * z) + priors
    if total != want and 4 * want > _PREFLIGHT_BYTES:
        raise BundleError(f"{weights}: holds {total:,} values, config.json implies {want:,} "
                          "(the weights do not match config.json)")


def _check_not_pickle(path: Path) -> None:
    if path.suffix.lower() in _PICKLE_SUFFIXES and path.is_file():
        raise BundleError(f"{path}: this looks like a PyTorch pickle checkpoint. {_CONVERT_HINT}")
    if path.is_file():
        raise BundleError(f"{path}: a model is a folder with {CONFIG_FILE} and {WEIGHTS_FILE}, not a single file")


BUNDLED_DIR = Path(__file__).resolve().parents[2] / "resources" / "models"
DEFAULT_BUNDLE = "fluent-emoji-128"
# The bundled model made for drawing from one's own (thin, inked) line art: a blank sheet's default (issue 28).
DRAWING_BUNDLE = "emoji-lines-128"


def default_bundle_path() -> Path:
    """The bundled default model that ships in resources/models/."""
    return BUNDLED_DIR / DEFAULT_BUNDLE


@dataclass(frozen=True)
class BundledModel:
    """A model that ships in resources/models/: its folder name (what --model and the app's menu take), folder,
    label (config name) and description."""

    name: str
    path: Path
    description: str


def _bundled_folders() -> list[Path]:
    """The folders of resources/models/ that hold a config.json, the default first, then by name."""
    folders = [f for f in BUNDLED_DIR.iterdir() if (f / CONFIG_FILE).is_file()] if BUNDLED_DIR.is_dir() else []
    return sorted(folders, key=lambda f: (f.name != DEFAULT_BUNDLE, f.name))


def bundled_models() -> list[BundledModel]:
    """The models shipped in resources/models/, the default first, then by name. A folder whose config.json does
    not read is left out (the app and the CLI report it when it is opened by path)."""
    found = []
    for folder in _bundled_folders():
        try:
            config = load_config(folder)
        except BundleError:
            continue
        found.append(BundledModel(folder.name, folder, config.description))
    return found


def model_argument_help() -> str:
    """The --model option's help (the CLI's and the app's): built with every sub-command's parser at start-up, so
    it lists the folders without reading their configs."""
    names = [f.name for f in _bundled_folders()]
    listed = f" ({', '.join(names)})" if names else ""
    return f"model bundle folder, or the name of a bundled model{listed}; default: {DEFAULT_BUNDLE}"


def resolve_model(name_or_path: str | Path | None) -> Path:
    """The bundle folder for a --model argument: a folder path, or the name of a bundled model (a path that
    exists wins); None: the default bundle. BundleError names the choices when neither fits."""
    if name_or_path is None:
        return default_bundle_path()
    path = Path(name_or_path)
    try:
        if path.exists():
            return path
    except (OSError, ValueError):  # a name the file system cannot hold (too long, a NUL byte): not a folder here
        pass
    for m in bundled_models():
        if m.name == str(name_or_path):
            return m.path
    names = ", ".join(m.name for m in bundled_models()) or "none installed"
    raise BundleError(f"{path}: model folder not found, and not the name of a bundled model ({names})")


def describe(path: str | Path) -> dict:
    """Facts about a bundle for display (no weights loaded)."""
    path = Path(path)
    config = load_config(path)
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return {"name": config.name, "stages": config.stage_names, "resolution": config.resolution,
            "size_mb": round(size / 2**20, 2), "config_hash": config_hash(config)}
