"""Train the learned recolour (core.nn.recolour) from the Fluent Emoji skin-tone families.

Each TRAIN family drawn in six skin tones (the yellow base and five tones), in the flat and the detail style, gives
30 ordered tone pairs: the flat of tone s recoloured to tone t, with the artist's detail of t as the truth. The
pixels where the two flats differ are the samples: (old detail, old flat, new flat) -> new detail.

Held out, never trained on:
- every TEST family (core.data.fluent_emoji.is_test_family);
- the first `skip` candidate families in the edit benchmark's order (tools/make_edit_set.py: the benchmark takes
  the first 8, the tuning set the next 24), so that `artflow eval --edits` measures drawings it never saw;
- every 8th remaining family, for the validation figures in the file's metadata.

The old flat is jittered in training (a shift common to its channels plus one per channel, up to `noise` on the
[0, 1] scale): at edit time the old flat is often the one the model inferred, some levels off the artist's.
CPU is enough: 3,000 steps of 4,096 pixels take ~15 s on 2 cores; rendering the drawings ~40 s.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.nn.recolour import DARK, LearnedRecolour, multiply_recolour

FLAT_TOLERANCE = 8  # 8-bit levels: a pixel whose two flats differ by more (any channel) is a sample
SEEN_QUANTUM = 16  # seen flat pairs are kept on this grid of 8-bit levels (each within 8 levels of those it stands for)
SEEN_MIN_PIXELS = 50  # a flat pair seen on fewer pixels (an antialiased rim) is not kept


@dataclass
class RecolourOptions:
    size: int = 256  # render size of the drawings
    skip: int = 32  # candidate families held out for the edit benchmark and its tuning set
    per_pair: int = 600  # samples per (family, tone pair)
    hidden: int = 64
    steps: int = 3000
    batch: int = 4096
    lr: float = 3e-3
    noise: float = 0.15
    seed: int = 0


class RecolourNet(nn.Module):
    """The torch twin of core.nn.recolour.LearnedRecolour, for training (same layer names)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(12, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                               nn.Linear(hidden, 3))
        nn.init.zeros_(self.f[-1].weight)  # starts as the multiply recolour
        nn.init.zeros_(self.f[-1].bias)

    def forward(self, x: torch.Tensor, o: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        dark = o < DARK  # as multiply_recolour
        m = torch.where(dark, x + n - o, x * n / o.clamp_min(1e-6)).clamp(0, 1)
        return (m + self.f(torch.cat([x, o, n, m], 1))).clamp(0, 1)


def render_tone_families(source: str | Path, size: int, skip: int) -> dict[str, np.ndarray]:
    """{family: (T, 2, size, size, 3) uint8}: the base and its tones (T <= 6), flat then detail, one viewBox per
    family. TRAIN families with a dark tone in both styles, past the first `skip` in the benchmark's order."""
    from core.data.fluent_emoji import (
        TONE_SUFFIXES,
        candidate_tone_families,
        family_of,
        find_sources,
        icon_box,
        icon_svg,
        is_test_family,
        render_svg,
        union_box,
        usable_icon,
    )

    found = find_sources(source)
    sets = {style: data for style, (_, data, _) in found.items()}
    out = {}
    for family in candidate_tone_families(sets, "dark")[skip:]:
        assert not is_test_family(family_of(family))  # the hard rule: no TEST family, ever
        names = [n for n in [family] + [family + t for t in TONE_SUFFIXES]
                 if all(usable_icon(sets[s], n) for s in ("flat", "detail"))]
        box = union_box([icon_box(sets[s], n) for s in ("flat", "detail") for n in names])
        out[family] = np.stack([np.stack([np.asarray(render_svg(icon_svg(sets[s], n, box), size).convert("RGB"))
                                          for s in ("flat", "detail")]) for n in names])
    return out


def tone_pair_samples(drawings: dict[str, np.ndarray], per_pair: int, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(samples (N, 12) float32 on [0, 1]: old detail, old flat, new flat, new detail; seen pairs (K, 6) uint8)."""
    rows, keys = [], []
    for family in sorted(drawings):
        a = drawings[family]
        flats = a[:, 0].astype(np.int16)
        for s in range(len(a)):
            for t in range(len(a)):
                if s == t:
                    continue
                idx = np.flatnonzero(np.abs(flats[s] - flats[t]).max(-1) > FLAT_TOLERANCE)
                if idx.size == 0:
                    continue
                o, n = a[s, 0].reshape(-1, 3)[idx], a[t, 0].reshape(-1, 3)[idx]
                q = (np.concatenate([o, n], 1) // SEEN_QUANTUM).astype(np.int64)
                keys.append(np.sum(q * (16 ** np.arange(6)), 1))
                pick = idx[rng.choice(idx.size, min(per_pair, idx.size), replace=False)]
                rows.append(np.concatenate([a[s, 1].reshape(-1, 3)[pick], a[s, 0].reshape(-1, 3)[pick],
                                            a[t, 0].reshape(-1, 3)[pick], a[t, 1].reshape(-1, 3)[pick]], 1))
    samples = np.concatenate(rows).astype(np.float32) / 255.0
    k, counts = np.unique(np.concatenate(keys), return_counts=True)
    k = k[counts >= SEEN_MIN_PIXELS]
    seen = ((k[:, None] // (16 ** np.arange(6))) % 16) * SEEN_QUANTUM + SEEN_QUANTUM // 2
    return samples, seen.astype(np.uint8)


def _psnr(mse: float) -> float:
    return float(-10 * np.log10(max(mse, 1e-12)))


def train_recolour(source: str | Path, out: str | Path, options: RecolourOptions | None = None,
                   log=print) -> dict:
    """Render the TRAIN tone families of the Fluent tarballs in `source`, fit, and write `out` (a
    recolour.safetensors). Returns the figures stored in its metadata."""
    opt = options or RecolourOptions()
    t0 = time.perf_counter()
    drawings = render_tone_families(source, opt.size, opt.skip)
    log(f"recolour: {len(drawings)} families rendered in {time.perf_counter() - t0:.0f} s")
    learned, figures = fit_recolour(drawings, opt, log)
    figures["held_out_first"] = opt.skip
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    learned.to_file(out, metadata={"artflow": json.dumps(figures)})
    return figures


def fit_recolour(drawings: dict[str, np.ndarray], options: RecolourOptions | None = None, log=print
                 ) -> tuple[LearnedRecolour, dict]:
    """Train on `drawings` ({family: (T, 2, H, W, 3) uint8}, as render_tone_families), every 8th family held out
    for validation. Returns the learned recolour and its figures (validation PSNR of multiply and of it, on the
    changed pixels of the held-out families)."""
    opt = options or RecolourOptions()
    torch.manual_seed(opt.seed)
    rng = np.random.default_rng(opt.seed)
    families = sorted(drawings)
    val_families = set(families[::8])
    train, seen = tone_pair_samples({f: drawings[f] for f in families if f not in val_families}, opt.per_pair, rng)
    val, _ = tone_pair_samples({f: drawings[f] for f in val_families}, opt.per_pair, rng)
    log(f"recolour: {len(families)} families ({len(val_families)} for validation), {len(train):,} samples, "
        f"{len(seen):,} seen flat pairs")
    tr = torch.from_numpy(train)
    net = RecolourNet(opt.hidden)
    adam = torch.optim.Adam(net.parameters(), opt.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(adam, opt.lr, total_steps=opt.steps)
    gen = torch.Generator().manual_seed(opt.seed)
    for step in range(opt.steps):
        b = tr[torch.randint(0, len(tr), (opt.batch,), generator=gen)]
        x, o, n, y = b[:, :3], b[:, 3:6], b[:, 6:9], b[:, 9:]
        shift = (torch.rand(len(b), 1, generator=gen) * 2 - 1) * opt.noise
        jitter = (torch.rand(len(b), 3, generator=gen) * 2 - 1) * opt.noise / 2
        loss = ((net(x, (o + shift + jitter).clamp(0, 1), n) - y) ** 2).mean()
        adam.zero_grad()
        loss.backward()
        adam.step()
        schedule.step()
        if step % 500 == 0 or step == opt.steps - 1:
            log(f"recolour: step {step}, train {_psnr(loss.item()):.2f} dB")
    learned = LearnedRecolour({k: v.detach().numpy() for k, v in net.state_dict().items()}, seen)
    x, o, n, y = val[:, :3], val[:, 3:6], val[:, 6:9], val[:, 9:]
    figures = {
        "families": len(families), "validation_families": len(val_families), "samples": len(train),
        "seen_pairs": len(seen),
        "validation_psnr_multiply": round(_psnr(float(np.mean((multiply_recolour(x, o, n) - y) ** 2))), 2),
        "validation_psnr_learned": round(_psnr(float(np.mean((learned.predict(x, o, n) - y) ** 2))), 2),
        "options": dict(opt.__dict__),
    }
    log(f"recolour: validation (changed pixels of held-out families): multiply "
        f"{figures['validation_psnr_multiply']} dB, learned {figures['validation_psnr_learned']} dB")
    return learned, figures
