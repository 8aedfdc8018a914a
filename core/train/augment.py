"""Training-time augmentations beyond the paired flip/crop: hand-drawn line art and region-wise recolouring.

* `hand_drawn_lines`: the dataset's line art is clean, machine-made outlines of the flat's regions; an artist's
  strokes vary in width along the line (pen pressure), leave small gaps, wobble and are not always pure black.
  This moves the first stage towards that, so drawn line art is inside the training distribution.
* `recolour_regions`: one drawing gets several true colourings. The flat's regions (its distinct colours) each get
  one random colour change (hue rotation, saturation and value scaling), and the same change is applied to the
  detail through the flat's region masks, so flat and detail stay a consistent pair.

Both take tensors in [-1, 1] on any device and a CPU torch.Generator (all randomness is drawn from it, in
amounts that do not depend on the images, so a batch is a function of the generator's seed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_PALETTE = 48  # colours of a flat that get their own change; rarer ones go with the nearest of these


# ----------------------------------------------------------------------------------------- hand-drawn lines


def _thinner(x: torch.Tensor) -> torch.Tensor:
    """Paper grows by one px (2x2 max filter of the light values): a 2 px line becomes 1 px."""
    return F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=1.0), 2, stride=1)


def _thicker(x: torch.Tensor) -> torch.Tensor:
    """Ink grows by one px: a 2 px line becomes 3 px."""
    return -F.max_pool2d(F.pad(-x, (0, 1, 0, 1), value=-1.0), 2, stride=1)


def _smooth_noise(gen: torch.Generator, b: int, c: int, cells: int, size: tuple[int, int]) -> torch.Tensor:
    """Low-frequency noise (b, c, *size), mostly in [-2, 2]: `cells` x `cells` normal values, bicubic."""
    coarse = torch.randn(b, c, cells, cells, generator=gen)
    return F.interpolate(coarse, size=size, mode="bicubic", align_corners=True)


def hand_drawn_lines(lines: torch.Tensor, gen: torch.Generator, p: float = 1.0, max_wobble_px: float = 1.2,
                     max_gaps: int = 24) -> torch.Tensor:
    """Line art (B, 1, H, W) in [-1, 1] (ink -1 on paper +1, lines about 2 px wide) -> the same, hand-drawn.

    Each sample, with probability `p`: a width change that varies along the lines (thinner to thicker, from a
    smooth random field: pen pressure), up to `max_gaps` random 2-3 px spots turned to paper (those that hit a
    line make small gaps), a smooth displacement of up to `max_wobble_px`, and an ink darkness in [0.75, 1].
    """
    b, c, h, w = lines.shape
    if c != 1:
        raise ValueError(f"line art must have one channel, got {c}")
    dev = lines.device
    # All random numbers first, in fixed amounts (determinism does not depend on the images).
    chosen = torch.rand(b, generator=gen) < p
    width_offset = torch.rand(b, generator=gen) * 2 - 1  # -1 thinner, +1 thicker
    pressure = torch.rand(b, generator=gen)  # how much the width varies along the line
    field = _smooth_noise(gen, b, 1, 5, (h, w))
    gap_count = torch.randint(0, max_gaps + 1, (b,), generator=gen)
    gap_xy = torch.rand(b, max_gaps, 2, generator=gen)
    gap_big = torch.rand(b, max_gaps, generator=gen) < 0.5
    wobble = _smooth_noise(gen, b, 2, 4, (h, w)) * (torch.rand(b, 1, 1, 1, generator=gen) * max_wobble_px)
    darkness = 0.75 + 0.25 * torch.rand(b, generator=gen)
    if not chosen.any():
        return lines

    x = lines
    m = (width_offset.view(b, 1, 1, 1) + pressure.view(b, 1, 1, 1) * field).clamp(-1, 1).to(dev)
    thin, thick = _thinner(x), _thicker(x)
    y = x + m.clamp(min=0) * (thick - x) + (-m).clamp(min=0) * (thin - x)

    gaps = torch.zeros(b, 1, h, w)
    for i in range(b):
        for j in range(int(gap_count[i])):
            r = 1 + int(gap_big[i, j])  # a 2x2 or 3x3 spot
            top, left = int(gap_xy[i, j, 0] * (h - r)), int(gap_xy[i, j, 1] * (w - r))
            gaps[i, 0, top:top + r, left:left + r] = 1.0
    y = torch.maximum(y, gaps.to(dev) * 2 - 1)

    # Displacement field in normalised coordinates (one px = 2 / size).
    base = F.affine_grid(torch.eye(2, 3).expand(b, 2, 3), [b, 1, h, w], align_corners=False)
    offset = wobble.permute(0, 2, 3, 1) * torch.tensor([2.0 / w, 2.0 / h])
    y = F.grid_sample(y, (base + offset).to(dev, y.dtype), mode="bilinear", padding_mode="border",
                      align_corners=False)
    # Lighter ink: paper stays 1, full ink becomes 1 - 2 * darkness.
    y = 1 - (1 - y) * darkness.view(b, 1, 1, 1).to(dev)
    return torch.where(chosen.view(b, 1, 1, 1).to(dev), y.clamp(-1, 1), lines)


# ----------------------------------------------------------------------------------------- recolouring


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> HSV in [0, 1] (hue as a fraction of the circle)."""
    r, g, b = rgb.unbind(-3)
    mx, _ = rgb.max(-3)
    mn, _ = rgb.min(-3)
    d = mx - mn
    safe = torch.where(d > 0, d, torch.ones_like(d))
    h = torch.where(mx == r, ((g - b) / safe) % 6, torch.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(d > 0, h / 6, torch.zeros_like(h))
    s = torch.where(mx > 0, d / torch.where(mx > 0, mx, torch.ones_like(mx)), torch.zeros_like(mx))
    return torch.stack([h, s, mx], -3)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """Inverse of rgb_to_hsv."""
    h, s, v = hsv.unbind(-3)
    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], -3)
    return v.unsqueeze(-3) - (v * s).unsqueeze(-3) * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def batch_flat_regions(flats: torch.Tensor, max_palette: int = MAX_PALETTE
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The colour regions of a batch of flats (S, 3, H, W) in [-1, 1], all samples at once (on a GPU a per-sample
    loop waits for the device at every step): (region index per pixel (S, H, W) long, palette (S, K, 3) in [0, 1],
    valid (S, K) bool), K = max_palette. A sample's palette is its most frequent colours (ties: the lower packed
    RGB value first), slots past its number of colours are invalid; every pixel (antialiased edges included)
    belongs to the nearest valid entry."""
    s, _, h, w = flats.shape
    dev = flats.device
    q = ((flats.float() + 1) * 127.5).round().clamp(0, 255).long()
    packed = (q[:, 0] << 16) | (q[:, 1] << 8) | q[:, 2]
    key = packed + (torch.arange(s, device=dev).view(s, 1, 1) << 24)  # distinct colours per sample
    uniq, inverse, counts = torch.unique(key.flatten(), return_inverse=True, return_counts=True)
    owner, colour = uniq >> 24, uniq & 0xFFFFFF
    # Rank of each distinct colour within its sample, by descending count: sort by (owner, -count), stable.
    span = h * w + 1
    _, order = torch.sort(owner * span + (span - 1 - counts), stable=True)
    per_owner = torch.bincount(owner, minlength=s)
    starts = torch.cumsum(per_owner, 0) - per_owner
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=dev) - starts[owner[order]]
    rgb = torch.stack([(colour >> 16) & 255, (colour >> 8) & 255, colour & 255], -1).float() / 255  # (U, 3)
    top = rank < max_palette
    palette = torch.zeros(s, max_palette, 3, device=dev)
    valid = torch.zeros(s, max_palette, dtype=torch.bool, device=dev)
    palette[owner[top], rank[top]] = rgb[top]
    valid[owner[top], rank[top]] = True
    # Nearest valid palette entry of the colour's own sample, per distinct colour, then per pixel.
    dist = ((rgb[:, None, :] - palette[owner]) ** 2).sum(-1).masked_fill(~valid[owner], float("inf"))
    return dist.argmin(1)[inverse].view(s, h, w), palette, valid


def flat_regions(flat: torch.Tensor, max_palette: int = MAX_PALETTE) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour regions of one flat (3, H, W) in [-1, 1]: (region index per pixel (H, W) long, palette
    (K, 3) in [0, 1]). The palette is the flat's most frequent colours; every pixel (antialiased edges included)
    belongs to the nearest one."""
    region, palette, valid = batch_flat_regions(flat[None], max_palette)
    return region[0], palette[0, valid[0]]


def recolour_regions(flat: torch.Tensor, later: list[torch.Tensor], gen: torch.Generator, p: float = 1.0,
                     change_p: float = 0.75, max_palette: int = MAX_PALETTE
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Recolour a batch region by region: flat (B, 3, H, W) and each later stage (B, 3, H, W) in [-1, 1].

    Each sample, with probability `p`; each of its regions with probability `change_p`: hue rotated by up to
    half the circle, saturation scaled by e^[-0.6, 0.6], value by e^[-0.3, 0.3]. Near-white regions (the paper)
    keep their colour. The detail's pixels change with the region of the flat they lie in.
    """
    b = flat.shape[0]
    chosen = torch.rand(b, generator=gen) < p
    change = torch.rand(b, max_palette, generator=gen) < change_p
    hue = torch.rand(b, max_palette, generator=gen) - 0.5
    sat = torch.exp((torch.rand(b, max_palette, generator=gen) * 2 - 1) * 0.6)
    val = torch.exp((torch.rand(b, max_palette, generator=gen) * 2 - 1) * 0.3)
    if not chosen.any():
        return flat, later
    sel = torch.nonzero(chosen).flatten()
    sel_dev = sel.to(flat.device)
    region, palette, valid = batch_flat_regions(flat[sel_dev], max_palette)  # (S, H, W), (S, K, 3), (S, K)
    keep = ~change[sel].to(flat.device) | ~valid | (palette.min(-1).values > 0.94)  # paper stays paper
    params = torch.stack([torch.where(keep, 0.0, hue[sel].to(keep.device)),
                          torch.where(keep, 1.0, sat[sel].to(keep.device)),
                          torch.where(keep, 1.0, val[sel].to(keep.device))], 1)  # (S, 3, K)
    n, _, h, w = flat[sel_dev].shape
    shift = torch.gather(params, 2, region.view(n, 1, h * w).expand(n, 3, h * w)).view(n, 3, h, w)

    def apply(x: torch.Tensor) -> torch.Tensor:
        hsv = rgb_to_hsv((x[sel_dev].float() + 1) / 2)
        hsv = torch.stack([(hsv[:, 0] + shift[:, 0]) % 1.0, (hsv[:, 1] * shift[:, 1]).clamp(0, 1),
                           (hsv[:, 2] * shift[:, 2]).clamp(0, 1)], 1)
        out = x.clone()
        out[sel_dev] = (hsv_to_rgb(hsv) * 2 - 1).to(x.dtype)
        return out

    return apply(flat), [apply(x) for x in later]
