"""What a stage's picture is: where its generated image came from, or that the artist painted it, or that it waits
for the engine. No Qt here."""

from __future__ import annotations

from enum import Enum


class StageStatus(str, Enum):
    """A str enum: the values are the words saved in a project's app record (see app/project_extra.py)."""

    BLANK = "blank"
    GENERATED = "generated"
    INFERRED = "inferred"
    REFINED = "refined"
    EDITED = "edited"
    STALE = "stale"

    @property
    def text(self) -> str:
        """How the status bar and tool tips say it."""
        return _TEXT[self]

    @property
    def is_origin(self) -> bool:
        """Where a generated picture can come from (what the app record stores per stage)."""
        return self in ORIGINS


_TEXT = {
    StageStatus.BLANK: "Blank",
    StageStatus.GENERATED: "Generated",
    StageStatus.INFERRED: "Inferred from the artwork",
    StageStatus.REFINED: "Generated (refined)",
    StageStatus.EDITED: "Hand-edited",
    StageStatus.STALE: "Stale",
}
ORIGINS = frozenset({StageStatus.BLANK, StageStatus.GENERATED, StageStatus.INFERRED, StageStatus.REFINED})
