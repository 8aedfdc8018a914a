"""What `artflow eval` shows besides metrics.json: contact sheets of images and a compact text table of the
metrics."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from core.files.imageio import tensor_to_pil


# ----- contact sheets -----
def _rgb(x: torch.Tensor) -> torch.Tensor:
    x = x.detach().float().cpu().clamp(-1, 1)
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def contact_sheet(rows: Sequence[Sequence[torch.Tensor | None]], labels: Sequence[str] | None = None,
                  row_labels: Sequence[str] | None = None, gap: int = 2) -> Image.Image:
    """A grid of (C, H, W) tiles in [-1, 1] (all the same size; None: a grey "not refined" tile), with a header
    of column labels (and a small row label in each row's first tile) when tiles are at least 64 px wide."""
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
    rec = metrics["reconstruction"]
    schedule = rec.get("schedule", "exact")  # metrics.json files written before schedules were recorded
    steps = f"{rec['steps']} steps" + ("" if schedule == "exact" else f" at most, schedule {schedule}")
    lines = [f"{metrics['model']['name']} on {d['path']}: {d['drawings']} drawings "
             f"(reconstruction/editing on {d['refined']}, {steps}, "
             f"perceptual: {metrics['perceptual']}), {metrics['device']}"]
    w0 = 34
    head = f"{'':<{w0}}" + "".join(f"{s[:10]:>11}" for s in names)
    lines += ["", head]

    def stage_row(label: str, values: dict, digits: int) -> str:
        return f"{label:<{w0}}" + "".join(f"{_fmt(values.get(s), digits):>11}" for s in names)

    lines.append(stage_row("inference L1 (from true last)", metrics["inference"]["l1"], 4))
    if metrics["inference"].get("ink_f1"):  # absent from files written before it was measured
        tol = metrics["inference"].get("ink_f1_tolerance_px", 1)
        lines.append(stage_row(f"inference ink F-score ({tol} px tol.)", metrics["inference"]["ink_f1"], 4))
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
