"""Configuration of a workflow model: frozen dataclasses that are saved next to the weights as config.json.

A workflow has N >= 2 stages (e.g. line art -> flat colours -> detail). Transition i maps stage i to stage i+1
(generation) and stage i+1 back to stage i (workflow inference).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from core.errors import BundleError

CONFIG_VERSION = 1
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

# The documented range of every size field (inclusive). Far above any sensible model, low enough that no single
# field can make the networks' construction itself exhaust memory or time; footprint.MEMORY_BUDGET_BYTES then
# bounds the whole model. config.json's version must be 1..CONFIG_VERSION.
FIELD_BOUNDS: dict[str, dict[str, tuple[int, int]]] = {
    "generator": {"dim": (1, 1024), "n_down": (1, 8), "n_res_content": (1, 32), "n_res_adain": (1, 16),
                  "mlp_dim": (1, 8192), "mlp_layers": (1, 16), "z_dim": (1, 512), "up_kernel": (1, 9)},
    "encoder": {"dim": (1, 1024), "n_down": (1, 11), "max_mult": (1, 64)},
    "unet": {"ngf": (1, 1024), "n_down": (1, 11), "max_mult": (1, 64)},
    "discriminator": {"ndf": (1, 1024), "n_layers": (1, 11), "n_scales": (1, 6)},
}
RESOLUTION_RANGE = (16, 2048)
MAX_STAGES = 16
MAX_STAGE_NAME = 64  # characters of a stage name (a slug in file names; project manifests obey it too)
MAX_TEXT = 10_000  # characters of a name, label or description
STAGE_KINDS = ("line", "flat", "detail")  # what StageSpec.kind may say (core.fullres.kinds uses them)


@dataclass(frozen=True)
class StageSpec:
    """One stage of the workflow. `name` is a slug used in file names; `label` is shown to people."""

    name: str
    channels: int  # 1 (line art, grayscale) or 3 (colour)
    label: str = ""
    # "line" | "flat" | "detail" | None: how the stage is brought to full resolution (clean flats for "flat").
    # None: inferred from the name (core.fullres.kinds). Not part of config_hash: it shapes no network.
    kind: str | None = None

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").replace("-", " ").capitalize()


@dataclass(frozen=True)
class GeneratorConfig:
    """MUNIT-style generator: content encoder (IN + residual blocks), AdaIN decoder, MLP z -> AdaIN parameters."""

    dim: int = 64  # channels after the first conv; doubles at each downsampling
    n_down: int = 2
    n_res_content: int = 4
    n_res_adain: int = 2  # two AdaIN layers per block: 2 blocks -> 4 layers -> 8c parameters (the paper's w in R^{8c})
    mlp_dim: int = 256
    mlp_layers: int = 3
    z_dim: int = 8
    up_kernel: int = 5  # MUNIT's 5x5 upsampling convs; 3 is ~2x cheaper for CPU refinement


@dataclass(frozen=True)
class EncoderConfig:
    """BicycleGAN latent encoder E: image of stage i+1 -> (mu, logvar) of z."""

    dim: int = 64
    n_down: int = 4
    max_mult: int = 4


@dataclass(frozen=True)
class UNetConfig:
    """pix2pix U-Net for workflow inference (stage i+1 -> stage i)."""

    ngf: int = 64
    n_down: int = 7  # 128 px -> 1 px bottleneck with 7, 256 px with 8
    max_mult: int = 8


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-scale PatchGAN trained with the hinge loss."""

    ndf: int = 64
    n_layers: int = 3
    n_scales: int = 2


@dataclass(frozen=True)
class WorkflowConfig:
    name: str
    stages: tuple[StageSpec, ...]
    resolution: int = 256
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    # Filled in by training: whether the learned regulariser (Algorithm 1) was trained for each transition.
    regularizer_trained: tuple[bool, ...] = ()
    description: str = ""
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        problems = validate(self)
        if problems:
            raise BundleError("config.json: " + "; ".join(problems))

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def num_transitions(self) -> int:
        return len(self.stages) - 1

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage_index(self, name: str) -> int:
        """Index of a stage by name (or by its decimal index); BundleError lists the valid names."""
        for i, s in enumerate(self.stages):
            if s.name == name:
                return i
        if name.isdigit() and int(name) < len(self.stages):
            return int(name)
        raise BundleError(f"unknown stage {name!r}; this model's stages are: {', '.join(self.stage_names)}")

    def replace(self, **changes: Any) -> WorkflowConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field except the stages' `kind`: this is what bundle.config_hash hashes, and a kind shapes no
        network, so adding kinds to an older bundle changes no hash (its projects keep opening). to_json, what
        config.json holds, adds the kinds back."""
        d = dataclasses.asdict(self)
        for s in d["stages"]:
            s.pop("kind", None)
        return d

    def to_json(self) -> str:
        d = self.to_dict()
        for s, spec in zip(d["stages"], self.stages, strict=True):
            if spec.kind is not None:
                s["kind"] = spec.kind
        return json.dumps(d, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> WorkflowConfig:
        """Build from a parsed config.json; every problem becomes a BundleError naming the field."""
        if not isinstance(data, dict):
            raise BundleError("config.json: expected a JSON object at the top level")
        version = data.get("version", None)
        if not isinstance(version, int) or isinstance(version, bool):
            raise BundleError("config.json: missing integer field 'version'")
        if version < 1:
            raise BundleError(f"config.json: version must be 1..{CONFIG_VERSION} (got {version})")
        if version > CONFIG_VERSION:
            raise BundleError(
                f"config.json: format version {version} is newer than this Artflow understands ({CONFIG_VERSION}); "
                "update Artflow"
            )
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise BundleError(f"config.json: unknown top-level field(s) {', '.join(sorted(map(str, unknown)))}")
        if not isinstance(data.get("stages", []), list) or len(data.get("stages", [])) > MAX_STAGES:
            raise BundleError(f"config.json: stages must be a list of 2..{MAX_STAGES} stages")
        if not isinstance(data.get("regularizer_trained", []), list):
            raise BundleError("config.json: regularizer_trained must be a list of true/false")
        try:
            stages = tuple(_build(StageSpec, s, f"stages[{i}]") for i, s in enumerate(data["stages"]))
            kwargs: dict[str, Any] = {
                "name": data["name"],
                "stages": stages,
                "resolution": data.get("resolution", 256),
                "generator": _build(GeneratorConfig, data.get("generator", {}), "generator"),
                "encoder": _build(EncoderConfig, data.get("encoder", {}), "encoder"),
                "unet": _build(UNetConfig, data.get("unet", {}), "unet"),
                "discriminator": _build(DiscriminatorConfig, data.get("discriminator", {}), "discriminator"),
                "regularizer_trained": tuple(bool(x) for x in data.get("regularizer_trained", ())),
                "description": str(data.get("description", "")),
                "version": version,
            }
        except KeyError as exc:
            raise BundleError(f"config.json: missing field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise BundleError(f"config.json: malformed field ({exc})") from None
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkflowConfig:
        """Parse config.json text with the size and nesting limits of core.safe_io (never a RecursionError)."""
        from core.safe_io import MAX_JSON_BYTES, loads_json

        return cls.from_dict(loads_json(text, "config.json", BundleError, MAX_JSON_BYTES))


def _build(kind: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise BundleError(f"config.json: {where} must be an object")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(data) - names
    if unknown:
        raise BundleError(f"config.json: {where} has unknown field(s) {', '.join(sorted(unknown))}")
    return kind(**data)


def _bounded_ints(obj: Any, where: str, problems: list[str]) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        lo, hi = FIELD_BOUNDS[where][f.name]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            problems.append(f"{where}.{f.name} must be an integer in {lo}..{hi} (got {_short(value)})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        problems.append(f"{where} must be a string of at most {MAX_TEXT} characters")


def validate(cfg: WorkflowConfig) -> list[str]:
    problems: list[str] = []
    if not isinstance(cfg.name, str) or not cfg.name or len(cfg.name) > MAX_TEXT:
        problems.append(f"name must be a non-empty string of at most {MAX_TEXT} characters")
    _text(cfg.description, "description", problems)
    if not isinstance(cfg.version, int) or isinstance(cfg.version, bool) or not 1 <= cfg.version <= CONFIG_VERSION:
        problems.append(f"version must be 1..{CONFIG_VERSION} (got {_short(cfg.version)})")
    if len(cfg.stages) < 2:
        problems.append(f"a workflow needs at least 2 stages (got {len(cfg.stages)})")
    elif len(cfg.stages) > MAX_STAGES:
        problems.append(f"a workflow has at most {MAX_STAGES} stages (got {len(cfg.stages)})")
    seen: set[str] = set()
    for i, s in enumerate(cfg.stages):
        _text(s.label, f"stages[{i}].label", problems)
        if not isinstance(s.name, str) or len(s.name) > MAX_STAGE_NAME or not _NAME_RE.match(s.name):
            problems.append(f"stages[{i}].name {_short(s.name)} must be lower-case letters, digits, '-' or '_' "
                            f"(at most {MAX_STAGE_NAME})")
        if isinstance(s.name, str):
            if s.name in seen:
                problems.append(f"stage name {s.name!r} is used twice")
            seen.add(s.name)
        if s.channels not in (1, 3) or isinstance(s.channels, bool):
            problems.append(f"stages[{i}].channels must be 1 or 3 (got {_short(s.channels)})")
        if s.kind is not None and s.kind not in STAGE_KINDS:
            problems.append(f"stages[{i}].kind must be one of {', '.join(STAGE_KINDS)} or null "
                            f"(got {_short(s.kind)})")
    for sub, where in ((cfg.generator, "generator"), (cfg.encoder, "encoder"), (cfg.unet, "unet"),
                       (cfg.discriminator, "discriminator")):
        _bounded_ints(sub, where, problems)
    if not problems and cfg.generator.up_kernel % 2 == 0:
        problems.append(f"generator.up_kernel must be odd (got {cfg.generator.up_kernel})")
    r = cfg.resolution
    lo, hi = RESOLUTION_RANGE
    if not isinstance(r, int) or isinstance(r, bool) or r < lo or r > hi:
        problems.append(f"resolution must be an integer in {lo}..{hi} (got {_short(r)})")
    elif not problems:
        if r % (2 ** cfg.generator.n_down):
            problems.append(f"resolution {r} must be divisible by 2**generator.n_down")
        if r < 2 ** cfg.unet.n_down:
            problems.append(f"resolution {r} is too small for unet.n_down={cfg.unet.n_down}")
        if r % (2 ** cfg.unet.n_down):
            problems.append(f"resolution {r} must be divisible by 2**unet.n_down")
    if cfg.regularizer_trained and len(cfg.regularizer_trained) != len(cfg.stages) - 1:
        problems.append("regularizer_trained must have one entry per transition")
    if not problems:
        # Only once every field is in range: the estimate is arithmetic on them, before any network exists.
        from core.platform.footprint import footprint_problem

        too_big = footprint_problem(cfg)
        if too_big:
            problems.append(too_big)
    return problems


def default_stages() -> tuple[StageSpec, ...]:
    return (
        StageSpec("lineart", 1, "Line art", kind="line"),
        StageSpec("flat", 3, "Flat colours", kind="flat"),
        StageSpec("detail", 3, "Detail", kind="detail"),
    )


def paper(stages: tuple[StageSpec, ...] | None = None, name: str = "paper") -> WorkflowConfig:
    """The paper's configuration: 256 px, MUNIT generator with dim 64 and 8-d z, 8-down U-Net."""
    return WorkflowConfig(name=name, stages=stages or default_stages(), resolution=256, unet=UNetConfig(n_down=8))


def small(stages: tuple[StageSpec, ...] | None = None, name: str = "small", resolution: int = 128) -> WorkflowConfig:
    """A CPU-friendly configuration (the bundled model's shape) at 128 px: dim-24 generator with 3x3 upsampling
    convs so that the 150-step refinement of a 3-stage artwork stays near 15 s on a 2-core CPU."""
    return WorkflowConfig(
        name=name,
        stages=stages or default_stages(),
        resolution=resolution,
        generator=GeneratorConfig(dim=24, n_res_content=3, mlp_dim=128, up_kernel=3),
        encoder=EncoderConfig(dim=24, n_down=4),
        unet=UNetConfig(ngf=32, n_down=5, max_mult=8),
        discriminator=DiscriminatorConfig(ndf=32, n_layers=3, n_scales=2),
    )


def tiny(stages: tuple[StageSpec, ...] | None = None, name: str = "tiny", resolution: int = 32) -> WorkflowConfig:
    """A very small configuration for tests: runs in milliseconds on a CPU."""
    return WorkflowConfig(
        name=name,
        stages=stages or default_stages(),
        resolution=resolution,
        generator=GeneratorConfig(dim=8, n_down=2, n_res_content=1, n_res_adain=1, mlp_dim=16, mlp_layers=2),
        encoder=EncoderConfig(dim=8, n_down=3, max_mult=2),
        unet=UNetConfig(ngf=8, n_down=3, max_mult=2),
        discriminator=DiscriminatorConfig(ndf=8, n_layers=2, n_scales=2),
    )


PRESETS = {"paper": paper, "small": small, "tiny": tiny}
