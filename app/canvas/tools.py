"""Tool state shared by the canvas and the tool options bar: which tool, brush size, colours, pressure options."""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor

from app.canvas.brush import ERASE_TO_LAYER, ERASE_TO_PAPER, BrushSettings

MIN_SIZE, MAX_SIZE = 1.0, 128.0


class Tool(str, Enum):
    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"
    PICKER = "picker"

    @property
    def title(self) -> str:
        return {"brush": "Brush", "eraser": "Eraser", "fill": "Fill", "picker": "Eyedropper"}[self.value]


class ToolState(QObject):
    """Observable tool settings. Colours are kept apart for grey (1-channel, e.g. line art) and colour stages, so
    switching tabs never paints colour into line art or grey into a colour stage."""

    changed = Signal()
    colourChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tool = Tool.BRUSH
        self.size = 3.0  # brush diameter in model pixels
        self.opacity = 1.0
        self.hardness = 0.85
        self.pressure_size = True
        self.pressure_opacity = False
        self.fill_tolerance = 48  # 0..765, sum of channel differences
        self._fg = {1: QColor(0, 0, 0), 3: QColor(38, 110, 200)}
        self._bg = {1: QColor(255, 255, 255), 3: QColor(255, 255, 255)}
        self._eraser_reveals: dict[int, bool] = {}

    def set_tool(self, tool: Tool) -> None:
        if tool != self.tool:
            self.tool = Tool(tool)
            self.changed.emit()

    def set_size(self, size: float) -> None:
        size = float(min(MAX_SIZE, max(MIN_SIZE, size)))
        if abs(size - self.size) > 1e-6:
            self.size = size
            self.changed.emit()

    def grow(self) -> None:  # ]
        self.set_size(max(self.size + 1, self.size * 1.25))

    def shrink(self) -> None:  # [
        self.set_size(min(self.size - 1, self.size / 1.25))

    def set_opacity(self, opacity: float) -> None:
        self.opacity = float(min(1.0, max(0.01, opacity)))
        self.changed.emit()

    def set_option(self, name: str, value) -> None:
        setattr(self, name, value)
        self.changed.emit()

    # colours
    @staticmethod
    def _kind(channels: int) -> int:
        return 1 if channels == 1 else 3

    def fg(self, channels: int) -> QColor:
        return QColor(self._fg[self._kind(channels)])

    def bg(self, channels: int) -> QColor:
        return QColor(self._bg[self._kind(channels)])

    def set_fg(self, channels: int, colour: QColor) -> None:
        c = QColor(colour)
        if self._kind(channels) == 1:
            v = round((c.red() + c.green() + c.blue()) / 3)
            c = QColor(v, v, v)
        self._fg[self._kind(channels)] = c
        self.colourChanged.emit()

    def set_bg(self, channels: int, colour: QColor) -> None:
        c = QColor(colour)
        if self._kind(channels) == 1:
            v = round((c.red() + c.green() + c.blue()) / 3)
            c = QColor(v, v, v)
        self._bg[self._kind(channels)] = c
        self.colourChanged.emit()

    def swap(self, channels: int) -> None:
        k = self._kind(channels)
        self._fg[k], self._bg[k] = self._bg[k], self._fg[k]
        self.colourChanged.emit()

    # eraser
    def eraser_reveals(self, stage: int) -> bool:
        """True: the eraser removes the artist's paint (the generated picture shows). False: it paints paper white.
        Default: paper on the first stage (erasing a line makes paper), reveal on later, generated ones."""
        return self._eraser_reveals.get(stage, stage > 0)

    def set_eraser_reveals(self, stage: int, on: bool) -> None:
        self._eraser_reveals[stage] = bool(on)
        self.changed.emit()

    def eraser_mode(self, stage: int) -> str:
        return ERASE_TO_LAYER if self.eraser_reveals(stage) else ERASE_TO_PAPER

    def brush(self) -> BrushSettings:
        return BrushSettings(radius=self.size / 2, opacity=self.opacity, hardness=self.hardness,
                             pressure_size=self.pressure_size, pressure_opacity=self.pressure_opacity)
