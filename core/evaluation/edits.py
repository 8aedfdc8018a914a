"""The edit benchmark (`artflow eval --edits SET`): Artflow's learned edit propagation against no-model baselines on
exact recolour edits with artist-drawn truth. No Qt here.

An edit set (tools/make_edit_set.py) holds, per size folder <W>x<H>/ and drawing, the artist's base flat and detail
(flat.png, detail.png) and the artist's recoloured flat and detail (flat-edited.png, detail-truth.png). For each
drawing:

1. the base detail is opened as a finished artwork (core.fullres.pipeline.reconstruct_fullres: workflow inference,
   encoding, refinement, full-res stages), and the session's state is kept;
2. two edits of the flat stage, each applied as an artist's fill would be: the project's own flat with the pixels
   where the artist's base and edited flats differ (any channel by more than 8/255; "the edit region") replaced by
   the edited flat's pixels:
   - recolour: the whole edit region; truth: detail-truth.png;
   - local:    only the edit region's pixels left of its median x; truth: the base detail with detail-truth.png
               pasted in the left part (x below that median) of the edit region dilated by 2 px;
3. the methods, each giving a new detail:
   - learned-regions, learned-global: apply_edit_fullres(..., propagation="regions" / "global") from the kept
     session state (restored before every call);
   - none:     the unedited artwork;
   - multiply: artwork * new / old per pixel and channel, where old is the project's flat and new the same flat
               after the edit (old clamped to >= 1/255; clipped to [0, 1]): the recolour a user gets with no model;
   - add:      artwork + new - old, clipped.
   The baselines see exactly what the learned methods see: the project's flat before and after the edit.
Structure edits (folders with lineart.png, lineart-edited.png, detail.png, detail-truth.png: a drawing and its
variant with one shape more or changed, a beard, other hair) change the line art instead: the project's inferred
line art with the pixels where the artist's two line arts differ replaced by the variant's; the truth is the
variant's detail; the methods are the two learned ones and "none" (no recolour baseline applies to a new shape).

4. measures on the [0, 1] scale, against the truth: PSNR of the whole image; PSNR over the truly changed pixels
   (|truth - base detail| > 16/255 in any channel); spill = the share of the pixels farther than 8 px from every
   truly changed pixel that moved by more than 16/255 (any channel) from the artwork; the method's seconds (the
   fit's seconds are reported per drawing).

The learned methods start from the project's detail stage: the artwork itself wherever reconstruct_fullres keeps it
(at every size since issue 27); where a pipeline gives the model's reconstruction instead (earlier ones did at the
model's own size), they carry its error everywhere, spill included. The set's flats and details are separate
drawings whose shapes differ slightly, so even a perfect recolour of the flat leaves the detail's edges to guess.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from core.editing.refine import DEFAULT_SCHEDULE, schedule_named
from core.editing.session import Session
from core.errors import ArtflowError, DatasetError
from core.evaluation.metrics import PSNR_CAP, psnr
from core.files.imageio import load_artwork, save_image
from core.fullres.pipeline import PROPAGATIONS, apply_edit_fullres, reconstruct_fullres
from core.fullres.proxy import MIN_SIDE

FORMAT = "artflow-edit-eval"
VERSION = 1
FILES = ("flat.png", "detail.png", "flat-edited.png", "detail-truth.png")
STRUCTURE_FILES = ("lineart.png", "detail.png", "lineart-edited.png", "detail-truth.png")
EDIT_KINDS = ("recolour", "local", "structure")
STRUCTURE_METHODS = ("learned-regions", "learned-global", "none")  # no recolour baseline applies to a new shape
LEARNED = tuple(f"learned-{p}" for p in PROPAGATIONS)
BASELINES = ("none", "multiply", "add")
METHODS = LEARNED + BASELINES
MEASURES = ("psnr", "psnr_changed", "spill", "seconds")
EDIT_TOLERANCE = 8 / 255  # artist's flats: a pixel is edited where they differ by more (any channel)
TRUTH_TOLERANCE = 16 / 255  # truth vs artwork: truly changed; a method's result vs artwork: moved
SPILL_DISTANCE = 8.0  # px: spill counts the pixels farther than this from every truly changed pixel
LOCAL_DILATION = 2  # px: the local edit's truth takes the tone detail in its region dilated by this much
MIN_OLD = 1 / 255  # multiply: the old flat is clamped to at least this
_SIZE_DIR = re.compile(r"^(\d+)x(\d+)$")


# ----- the set -----
def _is_drawing(folder: Path) -> bool:
    return folder.is_dir() and (all((folder / f).is_file() for f in FILES)
                                or all((folder / f).is_file() for f in STRUCTURE_FILES))


def find_drawings(set_dir: str | Path, sizes: Sequence[str] | None = None,
                  limit: int | None = None) -> dict[str, list[Path]]:
    """{size label: drawing folders} of an edit set: `set_dir` is the set (its <W>x<H>/ folders) or one size folder.
    Drawings come in set.json's family order when there is one, else sorted by the SHA-256 of their name; `limit`
    keeps the first N of each size. Raises DatasetError for a folder with no drawings or an unknown size."""
    root = Path(set_dir)
    if not root.is_dir():
        raise DatasetError(f"{root}: edit set folder not found")
    if any(_is_drawing(p) for p in root.iterdir()):
        size_dirs = {root.name: root}
        root_info = root.parent / "set.json"
    else:
        size_dirs = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and _SIZE_DIR.match(p.name)}
        root_info = root / "set.json"
    if sizes:
        unknown = [s for s in sizes if s not in size_dirs]
        if unknown:
            raise DatasetError(f"{root}: no size folder {', '.join(unknown)} (there are: "
                               f"{', '.join(size_dirs) or 'none'})")
        size_dirs = {s: size_dirs[s] for s in sizes}
    order: list[str] = []
    if root_info.is_file():
        try:
            order = list(json.loads(root_info.read_text()).get("families") or [])
        except (ValueError, OSError, AttributeError):
            order = []
    rank = {name: i for i, name in enumerate(order)}

    def key(p: Path) -> tuple[int, str]:
        return rank.get(p.name, len(rank)), hashlib.sha256(p.name.encode("utf-8")).hexdigest()

    out = {}
    for label, folder in size_dirs.items():
        drawings = sorted((p for p in folder.iterdir() if _is_drawing(p)), key=key)
        out[label] = drawings[:limit] if limit is not None else drawings
    if not any(out.values()):
        raise DatasetError(f"{root}: no drawings (folders with {', '.join(FILES)}) found")
    return out


def read_set_info(set_dir: str | Path) -> dict:
    root = Path(set_dir)
    for p in (root / "set.json", root.parent / "set.json"):
        if p.is_file():
            try:
                return json.loads(p.read_text())
            except (ValueError, OSError):
                return {}
    return {}


# ----- edits, baselines and measures (images (3, H, W) float32 on [0, 1]) -----
def _to01(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1, 1) + 1) / 2


def _from01(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1


def differs(a: torch.Tensor, b: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(H, W) bool: where any channel differs by more than `tolerance`."""
    return ((a - b).abs() > tolerance).any(dim=0)


def edit_regions(base_flat: torch.Tensor, edited_flat: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{kind: (edited pixels (H, W) bool, truth region (H, W) bool)} for the artist's flats: recolour edits every
    pixel where they differ (truth: the tone detail everywhere); local edits those left of their median x (truth:
    the tone detail in the left part of the edit region dilated by LOCAL_DILATION px)."""
    region = differs(base_flat, edited_flat, EDIT_TOLERANCE)
    h, w = region.shape
    left = torch.zeros_like(region)
    if region.any():
        median = float(np.median(region.nonzero()[:, 1].numpy()))  # 4.5 for columns 2..7: halves
        left = torch.arange(w).expand(h, w) < median
    grown = region
    if region.any():
        grown = ~far_from(region, LOCAL_DILATION)  # a Euclidean dilation
    return {"recolour": (region, torch.ones_like(region)), "local": (region & left, grown & left)}


def baseline(method: str, artwork: torch.Tensor, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """A no-model edit of `artwork` for the flat going from `old` to `new` (all [0, 1])."""
    if method == "none":
        return artwork.clone()
    if method == "multiply":
        return (artwork * new / old.clamp_min(MIN_OLD)).clamp_(0, 1)
    if method == "add":
        return (artwork + new - old).clamp_(0, 1)
    raise ArtflowError(f"unknown baseline {method!r}; baselines: {', '.join(BASELINES)}")


def far_from(changed: torch.Tensor, distance: float = SPILL_DISTANCE) -> torch.Tensor:
    """(H, W) bool: the pixels farther than `distance` px from every pixel of `changed`."""
    if not changed.any():
        return torch.ones_like(changed)
    return torch.from_numpy(ndimage.distance_transform_edt(~changed.numpy()) > distance)


def _psnr_over(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> float | None:
    if not where.any():
        return None
    mse = float(((a - b)[:, where] ** 2).double().mean())
    return PSNR_CAP if mse <= 1e-10 else 10 * math.log10(1 / mse)


def measure(result: torch.Tensor, truth: torch.Tensor, artwork: torch.Tensor,
            changed: torch.Tensor, far: torch.Tensor) -> dict:
    """PSNR (whole image), PSNR over `changed` (None when it is empty) and spill (the share of `far` pixels that
    moved by more than TRUTH_TOLERANCE from `artwork`), all on [0, 1]."""
    moved = differs(result, artwork, TRUTH_TOLERANCE)
    n_far = int(far.sum())
    return {"psnr": psnr(_from01(result), _from01(truth)),
            "psnr_changed": _psnr_over(result, truth, changed),
            "spill": float((moved & far).sum()) / n_far if n_far else 0.0}


# ----- the benchmark -----
def _load(folder: Path, name: str, minimum: int) -> torch.Tensor:
    return load_artwork(folder / name, 3, minimum)


def _learned(session: Session, state, full, pm, image: torch.Tensor, propagation: str, stage: int = 1
             ) -> torch.Tensor:
    session.restore(state)  # apply_edit_fullres changes the session: every edit starts from the fitted project
    new_full, _ = apply_edit_fullres(session, full, pm, stage, image, propagation=propagation)
    return new_full[-1]


def evaluate_structure(session: Session, folder: Path, steps: int | None, methods: Sequence[str], schedule: str,
                       images_dir: Path | None = None) -> list[dict]:
    """A structure edit: the base detail opened as an artwork; the project's line art with the pixels where the
    artist's base and variant line arts differ (by more than EDIT_TOLERANCE) replaced by the variant's; the truth
    is the variant's detail. Rows as evaluate_drawing's, edit "structure"."""
    minimum = min(MIN_SIDE, session.config.resolution)
    line = load_artwork(folder / "lineart.png", 1, minimum)
    line_edited = load_artwork(folder / "lineart-edited.png", 1, minimum)
    artwork = _to01(_load(folder, "detail.png", minimum))
    truth = _to01(_load(folder, "detail-truth.png", minimum))
    if len({tuple(x.shape[-2:]) for x in (line, line_edited, artwork, truth)}) != 1:
        raise DatasetError(f"{folder}: the four images differ in size")
    pm, full, report, inferred = reconstruct_fullres(session, _from01(artwork), steps=steps, schedule=schedule)
    fit_psnr = psnr(session.stages[-1], inferred[-1])
    state = session.snapshot()
    edited = differs(_to01(line), _to01(line_edited), EDIT_TOLERANCE)
    project_edit = torch.where(edited, line_edited, full[0])
    changed = differs(truth, artwork, TRUTH_TOLERANCE)
    far = far_from(changed)
    rows = []
    for method in (m for m in methods if m in STRUCTURE_METHODS):
        t0 = time.perf_counter()
        if method in LEARNED:
            out = _to01(_learned(session, state, full, pm, project_edit, method.removeprefix("learned-"), stage=0))
        else:
            out = artwork.clone()
        rows.append({"drawing": folder.name, "edit": "structure", "method": method,
                     **measure(out, truth, artwork, changed, far), "seconds": time.perf_counter() - t0,
                     "fit_seconds": report.seconds, "fullres_seconds": report.extra.get("fullres_seconds", 0.0),
                     "fit_psnr": fit_psnr, "edited_share": float(edited.float().mean()),
                     "changed_share": float(changed.float().mean())})
        if images_dir is not None:
            dest = images_dir / folder.parent.name / folder.name
            dest.mkdir(parents=True, exist_ok=True)
            save_image(_from01(out), dest / f"structure-{method}.png")
    session.restore(state)
    return rows


def evaluate_drawing(session: Session, folder: Path, steps: int | None, methods: Sequence[str], schedule: str,
                     images_dir: Path | None = None) -> list[dict]:
    """The benchmark's rows (one per edit kind and method) for one drawing folder."""
    minimum = min(MIN_SIDE, session.config.resolution)
    base_flat, artwork, tone_flat, tone_detail = (_to01(_load(folder, f, minimum)) for f in FILES)
    if len({tuple(x.shape) for x in (base_flat, artwork, tone_flat, tone_detail)}) != 1:
        raise DatasetError(f"{folder}: the four images differ in size")
    art = _from01(artwork)
    pm, full, report, inferred = reconstruct_fullres(session, art, steps=steps, schedule=schedule)
    fit_seconds, fullres_seconds = report.seconds, report.extra.get("fullres_seconds", 0.0)
    fit_psnr = psnr(session.stages[-1], inferred[-1])
    state = session.snapshot()
    project_flat = full[1]
    rows = []
    for kind, (edited, truth_region) in edit_regions(base_flat, tone_flat).items():
        truth = torch.where(truth_region, tone_detail, artwork)
        changed = differs(truth, artwork, TRUTH_TOLERANCE)
        far = far_from(changed)
        project_edit = torch.where(edited, _from01(tone_flat), project_flat)
        for method in methods:
            t0 = time.perf_counter()
            if method in LEARNED:
                out = _to01(_learned(session, state, full, pm, project_edit, method.removeprefix("learned-")))
            else:
                out = baseline(method, artwork, _to01(project_flat), _to01(project_edit))
            seconds = time.perf_counter() - t0
            row = {"drawing": folder.name, "edit": kind, "method": method,
                   **measure(out, truth, artwork, changed, far), "seconds": seconds,
                   "fit_seconds": fit_seconds, "fullres_seconds": fullres_seconds, "fit_psnr": fit_psnr,
                   "edited_share": float(edited.float().mean()), "changed_share": float(changed.float().mean())}
            rows.append(row)
            if images_dir is not None:
                dest = images_dir / folder.parent.name / folder.name
                dest.mkdir(parents=True, exist_ok=True)
                save_image(_from01(out), dest / f"{kind}-{method}.png")
        if images_dir is not None:
            dest = images_dir / folder.parent.name / folder.name
            save_image(_from01(truth), dest / f"{kind}-truth.png")
            save_image(project_edit, dest / f"{kind}-flat-edited.png")
    session.restore(state)
    return rows


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def summarise(rows: Sequence[dict], methods: Sequence[str]) -> dict:
    """{edit kind: {method: {measure: mean over the drawings}}} (None where no drawing had a value)."""
    out: dict = {}
    for kind in EDIT_KINDS:
        out[kind] = {}
        for method in methods:
            sel = [r for r in rows if r["edit"] == kind and r["method"] == method]
            if sel:
                out[kind][method] = {m: _mean([r[m] for r in sel]) for m in MEASURES}
    return out


def evaluate_edits(session: Session, set_dir: str | Path, steps: int | None = None,
                   methods: Sequence[str] = METHODS, schedule: str = DEFAULT_SCHEDULE, *,
                   sizes: Sequence[str] | None = None, limit: int | None = None,
                   images_dir: str | Path | None = None,
                   on_drawing: Callable[[str, str], None] | None = None) -> dict:
    """Run the edit benchmark on the edit set `set_dir` (or one of its size folders) with `session`'s model.
    `steps`: refinement steps per transition (None: the schedule's). `limit`: the first N drawings per size.
    `images_dir`: also write every result, truth and edited flat as PNGs there. `on_drawing(size, name)` is called
    before each drawing. Returns {"sizes": {size: {"drawings", "fit_seconds", "fit_psnr", "edits": {kind: {method:
    {measure: mean}}}, "rows": [...]}}, "methods", ...}."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ArtflowError(f"unknown method(s) {', '.join(unknown)}; methods: {', '.join(METHODS)}")
    if steps is not None and steps < 0:
        raise ArtflowError(f"steps must be 0 or more, got {steps}")
    if limit is not None and limit < 1:
        raise ArtflowError(f"limit must be 1 or more, got {limit}")
    plan = schedule_named(schedule)
    if session.num_stages != 3 or session.config.stages[1].channels != 3 or session.config.stages[2].channels != 3:
        raise ArtflowError("the edit benchmark needs a 3-stage model (line art, flat, detail) with colour flat and "
                           "detail stages")
    drawings = find_drawings(set_dir, sizes, limit)
    run = list(methods)
    images = Path(images_dir) if images_dir is not None else None
    t_start = time.perf_counter()
    out_sizes = {}
    for label, folders in drawings.items():
        rows = []
        for folder in folders:
            if on_drawing is not None:
                on_drawing(label, folder.name)
            judge = evaluate_structure if (folder / STRUCTURE_FILES[0]).is_file() else evaluate_drawing
            rows.extend(judge(session, folder, steps, run, schedule, images))
        firsts = [r for r in rows if r["method"] == run[0] and r["edit"] in ("recolour", "structure")]
        out_sizes[label] = {"drawings": [f.name for f in folders],
                            "fit_seconds": _mean([r["fit_seconds"] for r in firsts]),
                            "fullres_seconds": _mean([r["fullres_seconds"] for r in firsts]),
                            "fit_psnr": _mean([r["fit_psnr"] for r in firsts]),
                            "edits": summarise(rows, run), "rows": rows}
    return {
        "format": FORMAT, "version": VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "set": {"path": str(set_dir), **{k: v for k, v in read_set_info(set_dir).items()
                                         if k in ("sources", "tone", "sizes", "families", "rule")}},
        "model": {"name": session.config.name, "resolution": session.config.resolution,
                  "stages": session.config.stage_names},
        "steps": plan.steps if steps is None else steps, "schedule": plan.name,
        "methods": run, "edit_kinds": list(EDIT_KINDS),
        "thresholds": {"edit": "8/255", "truth": "16/255", "spill_distance_px": SPILL_DISTANCE,
                       "local_dilation_px": LOCAL_DILATION},
        "scale": "images on [0, 1]; PSNR in dB per image, averaged; spill = share of the pixels farther than 8 px "
                 "from every truly changed pixel that moved by more than 16/255; seconds: the method's own",
        "sizes": out_sizes,
        "seconds": time.perf_counter() - t_start,
    }


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_edit_table(result: dict) -> str:
    """A markdown table of evaluate_edits' means: one row per size, edit kind and method."""
    lines = ["| size | edit | method | PSNR dB | PSNR changed dB | spill % | seconds |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for label, s in result["sizes"].items():
        for kind, by_method in s["edits"].items():
            for method, m in by_method.items():
                spill = None if m["spill"] is None else 100 * m["spill"]
                lines.append(f"| {label} | {kind} | {method} | {_fmt(m['psnr'], 2)} | {_fmt(m['psnr_changed'], 2)} | "
                             f"{_fmt(spill, 2)} | {_fmt(m['seconds'], 3)} |")
    notes = [f"{label}: {len(s['drawings'])} drawings; per drawing the fit took {_fmt(s['fit_seconds'], 2)} s "
             f"(+ {_fmt(s['fullres_seconds'], 2)} s full-res stages) to {_fmt(s['fit_psnr'], 2)} dB (proxy)"
             for label, s in result["sizes"].items()]
    notes.append(f"steps {result['steps']} ({result['schedule']}); model {result['model']['name']}")
    return "\n".join(lines) + "\n\n" + "\n".join(notes)
