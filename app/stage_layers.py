"""The artist's layer of every stage and its per-stage undo history. No Qt here.

A layer is an RGBA uint8 array (see app/layers.py) or None (nothing painted). The document owns one StageLayers
and tells the engine about changes; this module only keeps the pictures and their history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from app.layers import RGBA, is_empty

UNDO_LIMIT = 100  # steps per stage (the brief asks for at least 50)


class UndoStack:
    """Layer states of one stage. Entries are (label, layer before the change)."""

    def __init__(self, limit: int = UNDO_LIMIT) -> None:
        self.limit = limit
        self._undo: list[tuple[str, RGBA | None]] = []
        self._redo: list[tuple[str, RGBA | None]] = []

    def push(self, before: RGBA | None, label: str) -> None:
        self._undo.append((label, before))
        del self._undo[:-self.limit]
        self._redo.clear()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_label(self) -> str:
        return self._undo[-1][0] if self._undo else ""

    def redo_label(self) -> str:
        return self._redo[-1][0] if self._redo else ""

    def undo(self, current: RGBA | None) -> RGBA | None:
        label, before = self._undo.pop()
        self._redo.append((label, current))
        return before

    def redo(self, current: RGBA | None) -> RGBA | None:
        label, after = self._redo.pop()
        self._undo.append((label, current))
        return after

    def __len__(self) -> int:
        return len(self._undo)


class StageLayers:
    """`layers[k]` is stage k's artist layer (None: nothing painted); each stage has its own undo history."""

    def __init__(self, num_stages: int = 0) -> None:
        self._layers: list[RGBA | None] = [None] * num_stages
        self._history = [UndoStack() for _ in range(num_stages)]

    def __getitem__(self, k: int) -> RGBA | None:
        return self._layers[k]

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[RGBA | None]:
        return iter(self._layers)

    def set(self, k: int, layer: RGBA | None) -> None:
        """Replace stage k's layer without touching its history (a layer that came back from the engine)."""
        self._layers[k] = None if is_empty(layer) else np.ascontiguousarray(layer)

    def commit(self, k: int, layer: RGBA | None, label: str) -> bool:
        """An undoable change of stage k's layer. False (nothing recorded) when it changes nothing: an empty layer
        over no layer."""
        before = self._layers[k]
        if before is None and is_empty(layer):
            return False
        self._history[k].push(None if before is None else before.copy(), label)
        self.set(k, layer)
        return True

    def undo(self, k: int) -> None:
        self.set(k, self._history[k].undo(self._layers[k]))

    def redo(self, k: int) -> None:
        self.set(k, self._history[k].redo(self._layers[k]))

    def can_undo(self, k: int) -> bool:
        return self._history[k].can_undo()

    def can_redo(self, k: int) -> bool:
        return self._history[k].can_redo()

    def undo_label(self, k: int) -> str:
        return self._history[k].undo_label()

    def redo_label(self, k: int) -> str:
        return self._history[k].redo_label()

    def undo_depth(self, k: int) -> int:
        return len(self._history[k])

    def restart_history(self, keep: Iterable[bool]) -> None:
        """A new artwork: stages whose `keep` is False start a fresh undo history."""
        self._history = [h if kept else UndoStack() for h, kept in zip(self._history, keep, strict=True)]
