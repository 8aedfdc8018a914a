"""What a stage is: "line" (line art), "flat" (flat colours), "detail" (shading, the finished look) or None.

The kind decides how a stage is brought to full resolution (clean flats for "flat"). Bundles say it in their
config (StageSpec.kind); bundles written before that field existed get it inferred from the stage's name.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.config import STAGE_KINDS

# Words in a stage name that give its kind away, checked in this order (a name like "flat-lines" is flat).
_NAME_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("flat", ("flat",)),
    ("line", ("line", "sketch", "ink", "outline", "contour", "pencil")),
    ("detail", ("detail", "shad", "final", "render", "paint", "finish")),
)


def infer_stage_kind(name: str) -> str | None:
    """The kind of a stage from its name ("lineart" -> "line", "flat" -> "flat", "detail" -> "detail");
    None when the name says nothing (such a stage is upsampled like any image, never made flat)."""
    low = name.lower()
    for kind, words in _NAME_HINTS:
        if any(w in low for w in words):
            return kind
    return None


def stage_kinds(stages: Sequence[object]) -> list[str | None]:
    """The kind of every stage of a config's `stages`: its own `kind` field when set, else inferred."""
    kinds = []
    for spec in stages:
        kind = getattr(spec, "kind", None)
        kinds.append(kind if kind in STAGE_KINDS else infer_stage_kind(str(getattr(spec, "name", ""))))
    return kinds


def line_before(kinds: list[str | None], k: int, since: int = 0) -> int | None:
    """The latest "line" stage in since..k-1 when stage k is "flat" (the line art its regions come from)."""
    if kinds[k] != "flat":
        return None
    for i in range(k - 1, since - 1, -1):
        if kinds[i] == "line":
            return i
    return None
