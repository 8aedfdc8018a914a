"""Full resolution: the model works on a square proxy, the artist at the artwork's own size (issue 12).

proxy     artwork <-> proxy mapping (pad with the paper colour, resize; crop, upsample), size limits
guided    edge-aware transfer of a proxy change onto a full-res image (fast guided filter)
flats     clean flats: one colour per closed line-art region
masks     "keep unedited areas" at full resolution
kinds     a stage's kind (line / flat / detail), inferred from its name for older bundles
pipeline  full-res stages kept in step with a Session (generate, reconstruct, edit)
"""

from __future__ import annotations

from core.fullres.flats import Regions, clean_flat, find_regions, region_medians, region_spread
from core.fullres.guided import transfer_change, upsample_guided
from core.fullres.kinds import STAGE_KINDS, infer_stage_kind, stage_kinds
from core.fullres.masks import keep_mask_fullres
from core.fullres.proxy import MAX_PIXELS, MAX_SIDE, MIN_SIDE, ProxyMap, check_artwork_size, from_proxy, to_proxy

__all__ = [
    "MAX_PIXELS", "MAX_SIDE", "MIN_SIDE", "STAGE_KINDS", "ProxyMap", "Regions", "check_artwork_size", "clean_flat",
    "find_regions", "from_proxy", "infer_stage_kind", "keep_mask_fullres", "region_medians", "region_spread",
    "stage_kinds", "to_proxy", "transfer_change", "upsample_guided",
]
