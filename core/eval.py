"""Evaluation of a workflow model on a test split of a stage dataset (`artflow eval`). No Qt here.

What is measured (all images on the [0, 1] scale; L1 = mean absolute difference; PSNR per image, then averaged):

1. inference      workflow inference from the TRUE final stage (the model's U-Net chain): L1 of each inferred
                  earlier stage against the true one.
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
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from core.atomic import atomic_write, ensure_folder
from core.bundle import config_hash
from core.data.stage_dataset import StageDataset, scan_stage_folders
from core.device import device_label
from core.errors import ArtflowError, DatasetError
from core.imageio import save_image
from core.model import WorkflowModel
from core.refine import STEPS
from core.session import Z_RANGE, Session, SessionState, run_to_end

FORMAT = "artflow-eval"
VERSION = 1
REFINE_LIMIT = 24
DIVERSITY_SAMPLES = 8
SHEET_ROWS = 8
SHEET_RANDOM = 3  # random-z final stages per row of samples.png
BATCH_SIZE = 16
SHRINK = 0.75
PSNR_CAP = 100.0  # identical images
METHODS = ("encoder", "none", "learned")  # encoder-only, then Session.refine with each regularizer
EDITS = ("flip", "shrink")


@dataclass(frozen=True)
class EvalOptions:
    limit: int | None = None  # at most this many test drawings (None: all)
    refine_limit: int = REFINE_LIMIT  # reconstruction + editing on the first this many of them (0: skip)
    steps: int = STEPS  # refinement steps per transition
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


# ----- measures (batched; images (B, C, H, W) in [-1, 1]) -----
def l1_01(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference on the [0, 1] scale, (B,)."""
    return ((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)).abs() / 2).flatten(1).mean(1).cpu()


def psnr_01(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB on the [0, 1] scale, (B,); PSNR_CAP for identical images."""
    mse = (((a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) / 2) ** 2).flatten(1).mean(1).cpu().double()
    return torch.where(mse <= 1e-10, torch.full_like(mse, PSNR_CAP), 10 * torch.log10(1 / mse.clamp_min(1e-10)))


def pairwise_l1_01(samples: torch.Tensor) -> float:
    """Mean L1 ([0, 1] scale) over all unordered pairs of K samples (K, C, H, W)."""
    k = samples.shape[0]
    x = samples.float().clamp(-1, 1).flatten(1)
    d = ((x[:, None] - x[None]).abs().mean(-1) / 2).cpu()  # (K, K); plain ops, so any device runs it
    iu = torch.triu_indices(k, k, offset=1)
    return float(d[iu[0], iu[1]].mean())


def realism(discriminator: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-image discriminator score (mean logit over patches and scales; higher = judged more real), (B,)."""
    outs = discriminator(x)
    return (sum(o.flatten(1).mean(1).float() for o in outs) / len(outs)).cpu()


def flip_edit(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def shrink_edit(x: torch.Tensor, factor: float = SHRINK) -> torch.Tensor:
    """(C, H, W) scaled by `factor` (antialiased) and centred on white."""
    c, h, w = x.shape
    nh, nw = max(1, round(h * factor)), max(1, round(w * factor))
    small = F.interpolate(x[None].float(), size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)[0]
    out = torch.ones(c, h, w)
    top, left = (h - nh) // 2, (w - nw) // 2
    out[:, top:top + nh, left:left + nw] = small.clamp(-1, 1)
    return out


EDIT_FNS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"flip": flip_edit, "shrink": shrink_edit}


class _Mean:
    """Running means of named per-image values."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, key: str, values: torch.Tensor | float) -> None:
        v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
        self.sums[key] = self.sums.get(key, 0.0) + float(v.sum())
        self.counts[key] = self.counts.get(key, 0) + v.numel()

    def get(self, key: str, digits: int = 6) -> float | None:
        n = self.counts.get(key, 0)
        if not n:
            return None
        value = self.sums[key] / n
        return round(value, digits) if math.isfinite(value) else None


def _bar(total: int, desc: str, enabled: bool, unit: str = "step"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=True,
                disable=not enabled)


def _load(data: StageDataset, idx: Sequence[int]) -> list[torch.Tensor]:
    """Per stage a (B, C, H, W) batch of the samples `idx`."""
    items = [data.load(i) for i in idx]
    return [torch.stack([it[k] for it in items]) for k in range(data.num_stages)]


# ----- the evaluation -----
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
    model, dev, cfg = session.model, session.device, session.config
    names, n_st, T = cfg.stage_names, cfg.num_stages, cfg.num_transitions
    out = ensure_folder(out_dir)

    order = eval_order(data.sample_names)
    if opt.limit is not None:
        order = order[:opt.limit]
    n = len(order)
    refine_idx = order[:min(opt.refine_limit, n)]
    m = len(refine_idx)
    rows_idx = order[:min(opt.rows, n)]
    K = opt.diversity_samples
    acc = _Mean()

    # --- 1, 2, 4: batched passes over the evaluated drawings ---
    gen = torch.Generator().manual_seed(opt.seed)
    sheet_random: dict[int, list[torch.Tensor]] = {}  # sample index -> random-z final stages for samples.png
    diversity_sheet: dict[int, list[torch.Tensor]] = {}  # sheet drawing -> [first stage] + per stage (K, C, H, W)
    batches = [order[s:s + opt.batch_size] for s in range(0, n, opt.batch_size)]
    with _bar(n, "inference/generation/diversity", progress, "drawing") as bar:
        for batch in batches:
            true = [t.to(dev) for t in _load(data, batch)]
            inferred = model.infer_chain(true[-1])
            for k in range(n_st - 1):
                acc.add(f"inference.l1.{names[k]}", l1_01(inferred[k], true[k]))
            chain = true[0]
            for i in range(T):
                g = model.generators[i]
                mu, _ = model.encoders[i](true[i + 1])
                one = g(true[i], mu)
                acc.add(f"generation.l1.{names[i + 1]}", l1_01(one, true[i + 1]))
                acc.add(f"generation.psnr.{names[i + 1]}", psnr_01(one, true[i + 1]))
                chain = g(chain, mu)
                acc.add(f"generation.chain_l1.{names[i + 1]}", l1_01(chain, true[i + 1]))
                acc.add(f"generation.chain_psnr.{names[i + 1]}", psnr_01(chain, true[i + 1]))
            # diversity: K random-z chains per drawing, drawn in the evaluation order
            for b, j in enumerate(batch):
                x = true[0][b:b + 1].expand(K, -1, -1, -1)
                produced = []
                for i in range(T):
                    z = model.sample_latents(i, K, gen, clip=Z_RANGE).to(dev)
                    src, x = x, model.generators[i](x, z)
                    produced.append(x.float().cpu().clamp(-1, 1))
                    acc.add(f"diversity.l1.{names[i + 1]}", pairwise_l1_01(x))
                    acc.add(f"diversity.consistency.{names[i + 1]}", l1_01(model.inference[i](x), src))
                if j in rows_idx:
                    sheet_random[j] = [produced[-1][r] for r in range(min(SHEET_RANDOM, K))]
                if j in rows_idx:
                    diversity_sheet[j] = [true[0][b:b + 1].float().cpu()] + produced
                bar.update(1)

    # --- 3, 5: reconstruction and editing, one artwork at a time ---
    recon_rows: list[dict] = []
    sheet_recon: dict[int, dict[str, torch.Tensor]] = {}
    sheet_inferred: dict[int, torch.Tensor] = {}
    sheet_true: dict[int, list[torch.Tensor]] = {}
    disc = model.discriminators[-1]
    total = m * (1 + 2 * opt.steps * T) if opt.steps else m
    with _bar(total, "reconstruction/editing", progress) as bar:
        for a_pos, a in enumerate(refine_idx):
            true = list(data.load(a))
            art = true[-1]
            b = order[(a_pos + 1) % n]  # the swap edit's other drawing (itself only when a single one is evaluated)
            b_stages = data.load(b)
            b_first, b_final = b_stages[0], b_stages[-1]
            session.load_artwork(art)
            states: dict[str, SessionState] = {"encoder": session.snapshot()}
            finals = {"encoder": session.stages[-1].clone()}
            inferred_first = session.stages[0].clone()
            bar.update(1)
            row: dict = {"name": data.sample_names[a], "swap_with": data.sample_names[b]}
            for reg in METHODS[1:]:
                session.restore(states["encoder"])
                report = run_to_end(session.refine(steps=opt.steps, regularizer=reg, preview_every=0),
                                    lambda _s: bar.update(1))
                states[reg] = session.snapshot()
                finals[reg] = session.stages[-1].clone()
                acc.add(f"reconstruction.seconds.{reg}", report.seconds)
                row[f"seconds_{reg}"] = round(report.seconds, 3)
            for meth in METHODS:
                p = float(psnr_01(finals[meth][None], art[None])[0])
                acc.add(f"reconstruction.psnr.{meth}", p)
                acc.add(f"reconstruction.l1.{meth}", l1_01(finals[meth][None], art[None]))
                row[f"psnr_{meth}"] = round(p, 4)
                for edit in EDITS:
                    fn = EDIT_FNS[edit]
                    session.restore(states[meth])
                    session.set_stage(0, fn(inferred_first))
                    ep = float(psnr_01(session.stages[-1][None], fn(art)[None])[0])
                    acc.add(f"editing.{edit}.psnr.{meth}", ep)
                    row[f"{edit}_psnr_{meth}"] = round(ep, 4)
                session.restore(states[meth])
                session.set_stage(0, b_first)
                score = float(realism(disc, session.stages[-1][None].to(dev))[0])
                acc.add(f"editing.swap.realism.{meth}", score)
                row[f"swap_realism_{meth}"] = round(score, 4)
            acc.add("editing.swap.realism.real", realism(disc, b_final[None].to(dev)))
            recon_rows.append(row)
            if a in rows_idx:
                sheet_recon[a] = finals
                sheet_inferred[a] = inferred_first
                sheet_true[a] = true
        # Rows of samples.png that were not refined: encoder-only reconstruction (cheap), refined column left blank.
        for j in rows_idx:
            if j in sheet_recon:
                continue
            true = list(data.load(j))
            session.load_artwork(true[-1])
            sheet_recon[j] = {"encoder": session.stages[-1].clone()}
            sheet_inferred[j] = session.stages[0].clone()
            sheet_true[j] = true

    # --- contact sheets ---
    sheet_rows = []
    for j in rows_idx:
        rnd = sheet_random[j]
        sheet_rows.append(sheet_true[j] + [sheet_inferred[j], sheet_recon[j]["encoder"],
                                           sheet_recon[j].get("learned")] + rnd)
    labels = ([f"true {s}" for s in names] + [f"inferred {names[0]}", "encoder recon", "refined (learned)"]
              + [f"random z {r + 1}" for r in range(min(SHEET_RANDOM, K))])
    samples_png = out / "samples.png"
    save_image(contact_sheet(sheet_rows, labels), samples_png)
    div_rows = [[sheet[0][0]] + [sheet[i + 1][r] for r in range(K)] for j in rows_idx
                for sheet in [diversity_sheet[j]] for i in range(T)]
    div_labels = [f"true {names[0]}"] + [f"z {r + 1}" for r in range(K)]
    diversity_png = out / "diversity.png"
    save_image(contact_sheet(div_rows, div_labels, row_labels=names[1:] * len(rows_idx)), diversity_png)

    # --- metrics.json ---
    def per_stage(prefix: str, stages: Sequence[str], digits: int = 6) -> dict:
        return {s: acc.get(f"{prefix}.{s}", digits) for s in stages}

    info = dict(model_info or {})
    info.setdefault("name", cfg.name)
    info.setdefault("config_hash", config_hash(cfg))
    info.update({"stages": names, "channels": [s.channels for s in cfg.stages], "resolution": cfg.resolution,
                 "regularizer_trained": [model.regularizer_trained(i) for i in range(T)]})
    later = names[1:]
    metrics = {
        "format": FORMAT, "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": info,
        "data": {"path": str(data_dir), "drawings_in_folder": len(data), "drawings": n, "refined": m,
                 "order": "sha1 of the drawing name", "names": [data.sample_names[i] for i in order]},
        "options": asdict(opt),
        "device": device_label(dev),
        "perceptual": session.perceptual_kind,
        "scale": "images on [0, 1]; L1 = mean absolute difference; PSNR in dB per image, averaged",
        "inference": {"l1": per_stage("inference.l1", names[:-1])},
        "generation": {"l1": per_stage("generation.l1", later), "psnr": per_stage("generation.psnr", later, 4),
                       "chain_l1": per_stage("generation.chain_l1", later),
                       "chain_psnr": per_stage("generation.chain_psnr", later, 4)},
        "diversity": {"l1": per_stage("diversity.l1", later),
                      "consistency": per_stage("diversity.consistency", later),
                      "prior": ["standard" if p.is_standard else "fitted" for p in model.latent_priors],
                      "samples_per_drawing": K, "drawings": n},
        "reconstruction": {"drawings": m, "steps": opt.steps,
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
        "per_drawing": recon_rows,
        "files": {"samples": str(samples_png), "diversity": str(diversity_png),
                  "metrics": str(out / "metrics.json")},
        "sheet_rows": [data.sample_names[j] for j in rows_idx],
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    with atomic_write(out / "metrics.json") as f:
        f.write((json.dumps(metrics, indent=2, allow_nan=False) + "\n").encode())
    return metrics


def evaluate_bundle(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path,
                    options: EvalOptions | None = None, *, device: str | torch.device = "auto",
                    progress: bool = True, vgg_weights: str | None = None) -> dict:
    """Load the bundle at `model_dir` (the device is resolved first, so a missing GPU is reported before any
    loading) and evaluate it; see evaluate()."""
    from core import bundle
    from core.device import resolve_device

    dev = resolve_device(device)
    model = bundle.load(model_dir)
    return evaluate(model, data_dir, out_dir, options, device=dev, progress=progress, vgg_weights=vgg_weights,
                    model_info={"name": model.config.name, "path": str(model_dir),
                                "config_hash": config_hash(model.config)})


# ----- contact sheets -----
def _rgb(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().float().cpu().clamp(-1, 1)
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def contact_sheet(rows: Sequence[Sequence[torch.Tensor | None]], labels: Sequence[str] | None = None,
                  row_labels: Sequence[str] | None = None, gap: int = 2) -> Image.Image:
    """A grid of (C, H, W) tiles in [-1, 1] (all the same size; None: a grey "not refined" tile), with a header
    of column labels (and a small row label in each row's first tile) when tiles are at least 64 px wide."""
    from core.imageio import tensor_to_pil

    first = next((t for row in rows for t in row if t is not None), None)
    if first is None:
        raise ValueError("a contact sheet needs at least one tile")
    h, w = first.shape[-2:]
    cols = max(len(r) for r in rows)
    show_text = w >= 64
    header = 16 if (labels and show_text) else 0
    sheet = Image.new("RGB", (cols * w + (cols - 1) * gap, header + len(rows) * h + (len(rows) - 1) * gap),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font()
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            x, y = c * (w + gap), header + r * (h + gap)
            if tile is None:
                draw.rectangle((x, y, x + w - 1, y + h - 1), fill=(216, 216, 216))
                if show_text:
                    draw.text((x + 4, y + h // 2 - 6), "not refined", fill=(96, 96, 96), font=font)
                continue
            sheet.paste(tensor_to_pil(_rgb(tile)), (x, y))
        if row_labels and show_text and r < len(row_labels):
            draw.text((2, header + r * (h + gap) + 2), row_labels[r], fill=(200, 0, 0), font=font)
    if header:
        for c, text in enumerate(labels[:cols]):
            while text and draw.textlength(text, font=font) > w - 2:
                text = text[:-1]
            draw.text((c * (w + gap) + 1, 2), text, fill=(0, 0, 0), font=font)
    return sheet


def _font():
    try:
        return ImageFont.load_default(size=11)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


# ----- the table -----
def _fmt(v, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_table(metrics: dict) -> str:
    """A compact text summary of metrics.json."""
    names = metrics["model"]["stages"]
    d = metrics["data"]
    lines = [f"{metrics['model']['name']} on {d['path']}: {d['drawings']} drawings "
             f"(reconstruction/editing on {d['refined']}, {metrics['reconstruction']['steps']} steps, "
             f"perceptual: {metrics['perceptual']}), {metrics['device']}"]
    w0 = 34
    head = f"{'':<{w0}}" + "".join(f"{s[:10]:>11}" for s in names)
    lines += ["", head]

    def stage_row(label: str, values: dict, digits: int) -> str:
        return f"{label:<{w0}}" + "".join(f"{_fmt(values.get(s), digits):>11}" for s in names)

    lines.append(stage_row("inference L1 (from true last)", metrics["inference"]["l1"], 4))
    g = metrics["generation"]
    lines.append(stage_row("generation L1 (true src, enc z)", g["l1"], 4))
    lines.append(stage_row("generation PSNR dB", g["psnr"], 2))
    lines.append(stage_row("chain PSNR dB (enc z)", g["chain_psnr"], 2))
    lines.append(stage_row(f"diversity L1 ({metrics['diversity']['samples_per_drawing']} random z)",
                           metrics["diversity"]["l1"], 4))
    if "consistency" in metrics["diversity"]:
        lines.append(stage_row("random z: L1 to its source, U-Net", metrics["diversity"]["consistency"], 4))
    r, e = metrics["reconstruction"], metrics["editing"]
    methods = list(r["psnr"])
    lines += ["", f"{'':<{w0}}" + "".join(f"{mth:>11}" for mth in methods + ["real"])]

    def method_row(label: str, values: dict, digits: int, extra: bool = False) -> str:
        cells = [values.get(mth) for mth in methods] + ([values.get("real")] if extra else [])
        return f"{label:<{w0}}" + "".join(f"{_fmt(v, digits):>11}" for v in cells)

    lines.append(method_row("reconstruction PSNR dB", r["psnr"], 2))
    lines.append(method_row("refine seconds / artwork", r["refine_seconds"], 2))
    lines.append(method_row("edit: flip PSNR dB", e["flip"]["psnr"], 2))
    lines.append(method_row("edit: shrink PSNR dB", e["shrink"]["psnr"], 2))
    lines.append(method_row("edit: swap D score (higher=real)", e["swap"]["realism"], 3, extra=True))
    return "\n".join(lines)
