"""Training data: stage datasets and the builders that make them.

`core.data.stage_dataset`, `core.data.recipes`, `core.data.line_art` and `core.data.svg_flatten` are Qt-free;
`core.data.fluent_emoji` is the one module under `core/` that imports PySide6 (it renders SVG with QtSvg) and is
therefore not imported here, nor is `core.data.iconify_emoji`, which renders through it.
"""

from __future__ import annotations

from core.data.stage_dataset import StageDataset, paired_augment, scan_stage_folders

__all__ = ["StageDataset", "paired_augment", "scan_stage_folders"]
