"""Evaluation of a workflow model on a test split of a stage dataset (`artflow eval`). No Qt here.

What is measured (all images on the [0, 1] scale; L1 = mean absolute difference; PSNR per image, then averaged):

1. inference      workflow inference from the TRUE final stage (the model's U-Net chain): L1 of each inferred
                  earlier stage against the true one; for single-channel (line-art) stages also the F-score of
                  the ink (pixels darker than 0.5) with a 1 px position tolerance (core.evaluation.metrics.ink_f1),
                  since L1 scores thin lines one pixel off as badly as no lines at all.
2. generation     stage i+1 generated from the TRUE stage i with z = mean of E_i(TRUE stage i+1): L1 and PSNR per
                  transition. `chain` does the same along the whole chain from the true first stage (each
                  generator fed the previous generated stage, z still encoded from the true stages).
3. reconstruction the editing pipeline on the finished artwork alone: Session.load_artwork (infer the earlier stages,
                  encode z) gives the encoder-only reconstruction; Session.refine for `steps` steps per transition
                  with plain AdaIN optimisation ("none") and with the learned regulariser ("learned"). PSNR/L1 of the
                  final stage against the artwork, and the wall time of the whole refinement per artwork.
4. diversity      K random codes from the model's latent prior (N(0, 1) unless fitted; clipped to +-3 of its
                  standard deviations like the app's Randomize, seeded) from the same TRUE first stage, the whole chain
                  generated: mean pairwise L1 between the K results, per generated stage. `consistency` says
                  whether the samples still show the drawing they came from: the L1 between each random result's
                  previous stage as inferred by the model's own U-Net and the stage it was generated from (low =
                  structure kept; broken or off-drawing samples score high).
5. editing        after each reconstruction (encoder / none / learned) the first stage is edited and the later
                  stages regenerated with the fitted latents and AdaIN deltas (Session.set_stage), as in the paper's
                  editing scenario (Sec. 4.3; Algorithm 1 trains the regulariser so that such edits stay good):
                  - flip:   the inferred first stage mirrored left-right. The ideal result is the artwork mirrored,
                            so PSNR against it is measurable; a fit that overfits the one image drops more.
                  - shrink: the inferred first stage scaled to 75 % and centred on white (thinner strokes, smaller
                            shapes: a real change of the drawing, not a symmetry of the convolutions). Ideal: the
                            artwork scaled the same way.
                  - swap:   the TRUE first stage of another test drawing B (Algorithm 1's x'_i). No ground truth
                            exists, so the final stage's realism is scored by the model's own last discriminator
                            (mean logit over scales, higher = more real; `real` is the same score of the true
                            artworks of the B drawings, for calibration). The discriminator took part in training,
                            so this number is only a relative, model-internal indication.

Samples are taken in a fixed pseudo-random order (sorted by the SHA-1 of the drawing's name): `limit` keeps the
first N, reconstruction/editing the first `refine_limit` of those, so a subset is spread over the whole alphabet
and is the same for every run, seed and model. Random z come from a CPU torch.Generator seeded with `seed`, so on
a CPU the whole evaluation is reproducible (on CUDA up to cuDNN's own non-determinism).

Outputs in the OUT folder: metrics.json, samples.png (rows of test drawings: true stages | inferred first stage |
encoder-only reconstruction | refined reconstruction (learned) | random-z final stages) and diversity.png (for each
of the same drawings, one row per later stage: the true first stage and the K random-z chains' results).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm import tqdm

from core.data.stage_dataset import StageDataset, scan_stage_folders
from core.editing.refine import DEFAULT_SCHEDULE, STEPS, schedule_named
from core.editing.session import Session
from core.errors import ArtflowError, DatasetError
from core.evaluation.measures import (
    EDITS,
    METHODS,
    SHRINK,
    RunningMeans,
    measure_diversity,
    measure_editing,
    measure_generation,
    measure_inference,
    measure_reconstruction,
    measure_reconstruction_quality,
    realism,
)
from core.evaluation.metrics import LINE_TOLERANCE
from core.evaluation.report import contact_sheet
from core.files import bundle
from core.files.atomic import atomic_write, ensure_folder
from core.files.bundle import config_hash
from core.files.imageio import save_image
from core.model import WorkflowModel
from core.platform.device import device_label, resolve_device

FORMAT = "artflow-eval"
VERSION = 1
REFINE_LIMIT = 24
DIVERSITY_SAMPLES = 8
SHEET_ROWS = 8
SHEET_RANDOM = 3  # random-z final stages per row of samples.png
BATCH_SIZE = 16


@dataclass(frozen=True)
class EvalOptions:
    limit: int | None = None  # at most this many test drawings (None: all)
    refine_limit: int = REFINE_LIMIT  # reconstruction + editing on the first this many of them (0: skip)
    steps: int = STEPS  # refinement steps per transition
    schedule: str = DEFAULT_SCHEDULE  # the refinement's schedule (core.editing.refine.SCHEDULES), e.g. "fast"
    diversity_samples: int = DIVERSITY_SAMPLES  # random z per drawing
    rows: int = SHEET_ROWS  # rows of samples.png
    seed: int = 0
    batch_size: int = BATCH_SIZE

    def check(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ArtflowError(f"--limit must be 1 or more, got {self.limit}")
        if self.refine_limit < 0:
            raise ArtflowError(f"--refine-limit must be 0 or more, got {self.refine_limit}")
        if self.steps < 0:
            raise ArtflowError(f"--steps must be 0 or more, got {self.steps}")
        schedule_named(self.schedule)  # an unknown name is an ArtflowError listing the known ones
        if self.diversity_samples < 2:
            raise ArtflowError(f"--diversity-samples must be 2 or more (pairs are compared), "
                               f"got {self.diversity_samples}")
        if self.rows < 1:
            raise ArtflowError(f"--rows must be 1 or more, got {self.rows}")
        if self.batch_size < 1:
            raise ArtflowError(f"--batch-size must be 1 or more, got {self.batch_size}")


# ----- the test set -----
def open_test_set(data_dir: str | Path, model: WorkflowModel) -> StageDataset:
    """The stage dataset at `data_dir`, checked against the model's stages (count, names, channels).
    Raises DatasetError (an ArtflowError) naming the folder and what differs."""
    cfg = model.config
    root = Path(data_dir)
    folders = scan_stage_folders(root)  # missing folder, no stage folders, gaps in the numbering
    names = [name for _, name, _ in folders]
    want = ", ".join(f"{k}-{s.name}" for k, s in enumerate(cfg.stages))
    if len(folders) != cfg.num_stages or names != cfg.stage_names:
        have = ", ".join(p.name for _, _, p in folders)
        raise DatasetError(f"{root}: the dataset's stages ({have}) do not match the model '{cfg.name}', whose "
                           f"stages are {want}; give a test folder made for this model")
    data = StageDataset(root, size=cfg.resolution)  # channels inferred from the files
    for spec, have_c, folder in zip(cfg.stages, data.channels, data.stage_dirs):
        if have_c != spec.channels:
            kind = {1: "grayscale", 3: "RGB"}
            raise DatasetError(f"{folder}: holds {kind[have_c]} images but the model's stage '{spec.name}' takes "
                               f"{kind[spec.channels]} ({spec.channels} channel{'s' if spec.channels > 1 else ''})")
    return data


def eval_order(names: Sequence[str]) -> list[int]:
    """Indices of `names` in the evaluation order: sorted by the SHA-1 of the name (ties by name)."""
    return sorted(range(len(names)), key=lambda i: (hashlib.sha1(names[i].encode("utf-8")).hexdigest(), names[i]))

def _bar(total: int, desc: str, enabled: bool, unit: str = "step"):
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=True,
                disable=not enabled)


def _load(data: StageDataset, idx: Sequence[int]) -> list[torch.Tensor]:
    """Per stage a (B, C, H, W) batch of the samples `idx`."""
    items = [data.load(i) for i in idx]
    return [torch.stack([it[k] for it in items]) for k in range(data.num_stages)]

@dataclass
class _Sheets:
    """What samples.png and diversity.png show, per sheet drawing (sample index)."""

    true: dict[int, list[torch.Tensor]] = field(default_factory=dict)
    inferred: dict[int, torch.Tensor] = field(default_factory=dict)  # the inferred first stage
    recon: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # method -> final stage
    random: dict[int, list[torch.Tensor]] = field(default_factory=dict)  # random-z final stages
    diversity: dict[int, list[torch.Tensor]] = field(default_factory=dict)  # [first stage] + per stage (K, C, H, W)


# ----- the evaluation -----
def _batched_passes(model: WorkflowModel, data: StageDataset, order: list[int], opt: EvalOptions,
                    rows_idx: list[int], sheets: _Sheets, acc: RunningMeans, progress: bool) -> None:
    """1, 2, 4: batched passes over the evaluated drawings; diversity's random z drawn in the evaluation order."""
    dev, names, k = model.device, model.config.stage_names, opt.diversity_samples
    gen = torch.Generator().manual_seed(opt.seed)
    batches = [order[s:s + opt.batch_size] for s in range(0, len(order), opt.batch_size)]
    with _bar(len(order), "inference/generation/diversity", progress, "drawing") as bar:
        for batch in batches:
            true = [t.to(dev) for t in _load(data, batch)]
            measure_inference(model, true, names, acc)
            measure_generation(model, true, names, acc)
            for b, j in enumerate(batch):
                produced = measure_diversity(model, true[0][b:b + 1], k, gen, names, acc)
                if j in rows_idx:
                    sheets.random[j] = [produced[-1][r] for r in range(min(SHEET_RANDOM, k))]
                    sheets.diversity[j] = [true[0][b:b + 1].float().cpu()] + produced
                bar.update(1)


def _refined_passes(session: Session, data: StageDataset, order: list[int], refine_idx: list[int],
                    opt: EvalOptions, rows_idx: list[int], sheets: _Sheets, acc: RunningMeans,
                    progress: bool) -> list[dict]:
    """3, 5: reconstruction and editing, one artwork at a time; returns the per-drawing rows of metrics.json."""
    n, T = len(order), session.config.num_transitions
    recon_rows: list[dict] = []
    per_drawing = 1 + 2 * opt.steps * T if opt.steps else 1
    with _bar(len(refine_idx) * per_drawing, "reconstruction/editing", progress) as bar:
        for a_pos, a in enumerate(refine_idx):
            true = list(data.load(a))
            art = true[-1]
            b = order[(a_pos + 1) % n]  # the swap edit's other drawing (itself only when a single one is evaluated)
            b_stages = data.load(b)
            done = bar.n
            rec = measure_reconstruction(session, art, opt.steps, acc, lambda _s: bar.update(1),
                                         opt.schedule)
            bar.update(done + per_drawing - bar.n)  # the steps an early-stopping schedule did not need
            row: dict = {"name": data.sample_names[a], "swap_with": data.sample_names[b], **rec.seconds}
            for meth in METHODS:
                row[f"psnr_{meth}"] = round(measure_reconstruction_quality(rec.finals[meth], art, meth, acc), 4)
                row.update(measure_editing(session, rec.states[meth], meth, rec.inferred_first, art, b_stages[0],
                                           acc))
            acc.add("editing.swap.realism.real", realism(session.model.discriminators[-1],
                                                         b_stages[-1][None].to(session.device)))
            recon_rows.append(row)
            if a in rows_idx:
                sheets.recon[a], sheets.inferred[a], sheets.true[a] = rec.finals, rec.inferred_first, true
        # Rows of samples.png that were not refined: encoder-only reconstruction (cheap), refined column left blank.
        for j in rows_idx:
            if j in sheets.recon:
                continue
            true = list(data.load(j))
            session.load_artwork(true[-1])
            sheets.recon[j] = {"encoder": session.stages[-1].clone()}
            sheets.inferred[j] = session.stages[0].clone()
            sheets.true[j] = true
    return recon_rows


def _write_sheets(sheets: _Sheets, rows_idx: list[int], names: Sequence[str], k: int, out: Path) -> tuple[Path, Path]:
    """samples.png and diversity.png in `out`; returns their paths."""
    sheet_rows = [sheets.true[j] + [sheets.inferred[j], sheets.recon[j]["encoder"], sheets.recon[j].get("learned")]
                  + sheets.random[j] for j in rows_idx]
    labels = ([f"true {s}" for s in names] + [f"inferred {names[0]}", "encoder recon", "refined (learned)"]
              + [f"random z {r + 1}" for r in range(min(SHEET_RANDOM, k))])
    samples_png = out / "samples.png"
    save_image(contact_sheet(sheet_rows, labels), samples_png)
    T = len(names) - 1
    div_rows = [[sheet[0][0]] + [sheet[i + 1][r] for r in range(k)] for j in rows_idx
                for sheet in [sheets.diversity[j]] for i in range(T)]
    div_labels = [f"true {names[0]}"] + [f"z {r + 1}" for r in range(k)]
    diversity_png = out / "diversity.png"
    save_image(contact_sheet(div_rows, div_labels, row_labels=list(names[1:]) * len(rows_idx)), diversity_png)
    return samples_png, diversity_png


@torch.no_grad()
def evaluate(model: WorkflowModel, data_dir: str | Path, out_dir: str | Path, options: EvalOptions | None = None,
             *, device: str | torch.device = "auto", model_info: dict | None = None, progress: bool = True,
             vgg_weights: str | None = None) -> dict:
    """Evaluate `model` on the stage dataset `data_dir`; write OUT/metrics.json, OUT/samples.png and
    OUT/diversity.png; return the metrics (the content of metrics.json). The model is moved to `device` and put in
    eval mode. Raises ArtflowError (DatasetError) for bad options or a dataset that does not fit the model."""
    opt = options or EvalOptions()
    opt.check()
    t_start = time.perf_counter()
    torch.manual_seed(opt.seed)
    data = open_test_set(data_dir, model)  # before any work: a dataset that does not fit is reported at once
    session = Session(model, device, vgg_weights=vgg_weights)
    out = ensure_folder(out_dir)
    order = eval_order(data.sample_names)
    if opt.limit is not None:
        order = order[:opt.limit]
    refine_idx = order[:min(opt.refine_limit, len(order))]
    rows_idx = order[:min(opt.rows, len(order))]
    acc, sheets = RunningMeans(), _Sheets()
    _batched_passes(session.model, data, order, opt, rows_idx, sheets, acc, progress)
    recon_rows = _refined_passes(session, data, order, refine_idx, opt, rows_idx, sheets, acc, progress)
    samples_png, diversity_png = _write_sheets(sheets, rows_idx, session.config.stage_names,
                                               opt.diversity_samples, out)
    metrics = _metrics_record(session, data, data_dir, order, refine_idx, rows_idx, opt, acc, model_info)
    metrics["per_drawing"] = recon_rows
    metrics["files"] = {"samples": str(samples_png), "diversity": str(diversity_png),
                        "metrics": str(out / "metrics.json")}
    metrics["sheet_rows"] = [data.sample_names[j] for j in rows_idx]
    metrics["seconds"] = round(time.perf_counter() - t_start, 3)
    with atomic_write(out / "metrics.json") as f:
        f.write((json.dumps(metrics, indent=2, allow_nan=False) + "\n").encode())
    return metrics


def _metrics_record(session: Session, data: StageDataset, data_dir: str | Path, order: list[int],
                    refine_idx: list[int], rows_idx: list[int], opt: EvalOptions, acc: RunningMeans,
                    model_info: dict | None) -> dict:
    """metrics.json up to the per-drawing rows: the averaged measures with what was measured, how and where."""
    model, cfg = session.model, session.config
    names, T = cfg.stage_names, cfg.num_transitions
    n, m, k = len(order), len(refine_idx), opt.diversity_samples

    def per_stage(prefix: str, stages: Sequence[str], digits: int = 6) -> dict:
        return {s: acc.get(f"{prefix}.{s}", digits) for s in stages}

    info = dict(model_info or {})
    info.setdefault("name", cfg.name)
    info.setdefault("config_hash", config_hash(cfg))
    info.update({"stages": names, "channels": [s.channels for s in cfg.stages], "resolution": cfg.resolution,
                 "regularizer_trained": [model.regularizer_trained(i) for i in range(T)]})
    later = names[1:]
    return {
        "format": FORMAT, "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": info,
        "data": {"path": str(data_dir), "drawings_in_folder": len(data), "drawings": n, "refined": m,
                 "order": "sha1 of the drawing name", "names": [data.sample_names[i] for i in order]},
        "options": asdict(opt),
        "device": device_label(session.device),
        "perceptual": session.perceptual_kind.value,
        "scale": "images on [0, 1]; L1 = mean absolute difference; PSNR in dB per image, averaged",
        "inference": {"l1": per_stage("inference.l1", names[:-1]),
                      "ink_f1": per_stage("inference.ink_f1", [s.name for s in cfg.stages[:-1] if s.channels == 1]),
                      "ink_f1_tolerance_px": LINE_TOLERANCE},
        "generation": {"l1": per_stage("generation.l1", later), "psnr": per_stage("generation.psnr", later, 4),
                       "chain_l1": per_stage("generation.chain_l1", later),
                       "chain_psnr": per_stage("generation.chain_psnr", later, 4)},
        "diversity": {"l1": per_stage("diversity.l1", later),
                      "consistency": per_stage("diversity.consistency", later),
                      "prior": ["standard" if p.is_standard else "fitted" for p in model.latent_priors],
                      "samples_per_drawing": k, "drawings": n},
        "reconstruction": {"drawings": m, "steps": opt.steps, "schedule": opt.schedule,
                           "psnr": per_stage("reconstruction.psnr", METHODS, 4),
                           "l1": per_stage("reconstruction.l1", METHODS),
                           "refine_seconds": per_stage("reconstruction.seconds", METHODS[1:], 3)},
        "editing": {
            "drawings": m,
            **{e: {"psnr": per_stage(f"editing.{e}.psnr", METHODS, 4)} for e in EDITS},
            "swap": {"realism": per_stage("editing.swap.realism", METHODS + ("real",), 4)},
            "notes": {"flip": "first stage mirrored; PSNR of the final stage against the mirrored artwork",
                      "shrink": f"first stage scaled to {SHRINK:.0%} on white; PSNR against the artwork scaled "
                                "the same way",
                      "swap": "first stage replaced by another test drawing's true one; mean logit of the model's "
                              "last discriminator on the final stage (higher = more real; 'real' = true artworks)"},
        },
    }


def default_out_folder(model_name: str, data_dir: str | Path) -> Path:
    """eval/<model>-<the data folder's last two parts>, e.g. eval/fluent128-fluent128-test."""
    parts = Path(data_dir).resolve().parts[-2:]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-") or "data"
    return Path("eval") / f"{model_name}-{slug}"


def evaluate_bundle(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path,
                    options: EvalOptions | None = None, *, device: str | torch.device = "auto",
                    progress: bool = True, vgg_weights: str | None = None) -> dict:
    """Load the bundle at `model_dir` (the device is resolved first, so a missing GPU is reported before any
    loading) and evaluate it; see evaluate()."""
    dev = resolve_device(device)
    model = bundle.load(model_dir)
    return evaluate(model, data_dir, out_dir, options, device=dev, progress=progress, vgg_weights=vgg_weights,
                    model_info={"name": model.config.name, "path": str(model_dir),
                                "config_hash": config_hash(model.config)})


