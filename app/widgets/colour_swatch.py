"""Foreground / background colour swatches (Krita's pair): click to choose, X swaps. On a grey stage (line art)
the colours are grey levels."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QColorDialog, QWidget

from app.canvas.tools import ToolState


class ColourSwatch(QWidget):
    def __init__(self, tools: ToolState, channels_of_current, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tools = tools
        self.channels_of_current = channels_of_current  # () -> 1 or 3
        self.setFixedSize(QSize(44, 36))
        self.setToolTip("Foreground / background colour: click to choose, X to swap, I or Ctrl+click to pick "
                        "from the canvas")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        tools.colourChanged.connect(self.update)

    def _fg_rect(self) -> QRect:
        return QRect(2, 2, 24, 22)

    def _bg_rect(self) -> QRect:
        return QRect(16, 12, 24, 22)

    def paintEvent(self, _e) -> None:  # noqa: N802
        ch = self.channels_of_current()
        p = QPainter(self)
        for rect, colour in ((self._bg_rect(), self.tools.bg(ch)), (self._fg_rect(), self.tools.fg(ch))):
            p.setPen(QPen(QColor(20, 20, 20), 1))
            p.setBrush(colour)
            p.drawRect(rect)
            p.setPen(QPen(QColor(200, 200, 200), 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(rect.adjusted(1, 1, -1, -1))

    def mousePressEvent(self, e) -> None:  # noqa: N802
        ch = self.channels_of_current()
        fg = self._fg_rect().contains(e.position().toPoint())
        current = self.tools.fg(ch) if fg else self.tools.bg(ch)
        colour = QColorDialog.getColor(current, self, "Foreground colour" if fg else "Background colour")
        if colour.isValid():
            (self.tools.set_fg if fg else self.tools.set_bg)(ch, colour)

    def refresh(self) -> None:
        self.update()
