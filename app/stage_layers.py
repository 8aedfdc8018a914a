"""The artist's layer of every stage and its per-stage undo history. No Qt here.

A layer is an RGBA uint8 array at the artwork's size (see app/layers.py) or None (nothing painted). Undo keeps
the rectangle a change touched, not the whole layer (a 4096 x 3072 layer is 48 MiB). The document owns one StageLayers
and tells the engine about changes; this module only keeps the pictures and their history.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from app.layers import RGBA, is_empty
from core.fullres.artwork import frozen

UNDO_LIMIT = 100  # steps per stage (the brief asks for at least 50)


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) in artwork pixels


@dataclass(frozen=True)
class Step:
    """One undo (or redo) step: the pixels of `rect` before the change (a patch), or with rect None the whole
    layer before it (None: no layer). A stroke on a 4096 px artwork keeps only the rectangle it touched."""

    label: str
    rect: Rect | None
    pixels: RGBA | None
    shape: tuple[int, ...] = ()

    def restore(self, current: RGBA | None) -> tuple[RGBA | None, Step]:
        """The layer with this step's pixels put back, and the step that takes them out again."""
        if self.rect is None:
            return self.pixels, Step(self.label, None, current, self.shape)
        x0, y0, x1, y1 = self.rect
        layer = np.zeros(self.shape, np.uint8) if current is None else current.copy()
        back = Step(self.label, self.rect, layer[y0:y1, x0:x1].copy(), self.shape)
        layer[y0:y1, x0:x1] = self.pixels
        return layer, back


class UndoStack:
    """Layer states of one stage: Steps."""

    def __init__(self, limit: int = UNDO_LIMIT) -> None:
        self.limit = limit
        self._undo: list[Step] = []
        self._redo: list[Step] = []

    def push(self, step: Step) -> None:
        self._undo.append(step)
        del self._undo[:-self.limit]
        self._redo.clear()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def undo(self, current: RGBA | None) -> RGBA | None:
        layer, back = self._undo.pop().restore(current)
        self._redo.append(back)
        return layer

    def redo(self, current: RGBA | None) -> RGBA | None:
        layer, back = self._redo.pop().restore(current)
        self._undo.append(back)
        return layer

    def __len__(self) -> int:
        return len(self._undo)


class StageLayers:
    """`layers[k]` is stage k's artist layer (None: nothing painted; else a read-only array); each stage has its
    own undo history."""

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
        self._layers[k] = None if is_empty(layer) else frozen(layer)

    def commit(self, k: int, layer: RGBA | None, label: str, rect: Rect | None = None,
               before: np.ndarray | None = None) -> bool:
        """An undoable change of stage k's layer; `rect`: the only pixels it changed (the undo step keeps just
        those; `before`: those pixels of the old layer, when already copied). False (nothing recorded) when it
        changes nothing: an empty layer over no layer."""
        old = self._layers[k]
        if old is None and is_empty(layer):
            return False
        if rect is not None and layer is not None:
            x0, y0, x1, y1 = rect
            if before is not None:
                pixels = before
            else:
                pixels = (np.zeros((y1 - y0, x1 - x0, 4), np.uint8) if old is None else old[y0:y1, x0:x1].copy())
            self._history[k].push(Step(label, rect, pixels, layer.shape))
        else:
            self._history[k].push(Step(label, None, old, () if layer is None else layer.shape))
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
