"""Small vector icons drawn with QPainter (no image files to ship or lose)."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

FG = QColor(222, 224, 230)
ACCENT = QColor(90, 150, 230)


def _canvas(size: int = 64) -> tuple[QPixmap, QPainter]:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 32, size / 32)
    return pm, p


def _done(pm: QPixmap, p: QPainter) -> QIcon:
    p.end()
    return QIcon(pm)


@cache
def brush() -> QIcon:
    pm, p = _canvas()
    p.setPen(QPen(FG, 3, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    p.drawLine(QPointF(26, 5), QPointF(15, 17))  # handle
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(ACCENT)
    path = QPainterPath(QPointF(14, 15))
    path.cubicTo(QPointF(8, 14), QPointF(7, 22), QPointF(4, 27))
    path.cubicTo(QPointF(11, 27), QPointF(18, 24), QPointF(17, 18))
    path.closeSubpath()
    p.drawPath(path)
    return _done(pm, p)


@cache
def eraser() -> QIcon:
    pm, p = _canvas()
    p.translate(16, 16)
    p.rotate(-40)
    p.setPen(QPen(FG, 1.6))
    p.setBrush(QColor(235, 130, 150))
    p.drawRoundedRect(QRectF(-4, -10, 8, 12), 1.5, 1.5)
    p.setBrush(QColor(240, 240, 240))
    p.drawRoundedRect(QRectF(-4, 2, 8, 8), 1.5, 1.5)
    p.resetTransform()
    p.scale(2, 2)
    p.setPen(QPen(FG, 1.4))
    p.drawLine(QPointF(4, 28), QPointF(28, 28))
    return _done(pm, p)


@cache
def fill() -> QIcon:
    pm, p = _canvas()
    p.setPen(QPen(FG, 1.8))
    p.setBrush(QColor(70, 72, 80))
    p.translate(14, 16)
    p.rotate(-35)
    p.drawRect(QRectF(-7, -7, 14, 14))
    p.resetTransform()
    p.scale(2, 2)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(ACCENT)
    drop = QPainterPath(QPointF(25, 14))
    drop.cubicTo(QPointF(29, 20), QPointF(29, 25), QPointF(25, 25))
    drop.cubicTo(QPointF(21, 25), QPointF(21, 20), QPointF(25, 14))
    p.drawPath(drop)
    return _done(pm, p)


@cache
def picker() -> QIcon:
    pm, p = _canvas()
    p.setPen(QPen(FG, 3.2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    p.drawLine(QPointF(7, 25), QPointF(19, 13))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(FG)
    p.drawEllipse(QPointF(23, 9), 5, 5)
    p.setBrush(ACCENT)
    p.drawEllipse(QPointF(6, 26), 2.4, 2.4)
    return _done(pm, p)


@cache
def dice() -> QIcon:
    pm, p = _canvas()
    p.setPen(QPen(FG, 2))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRoundedRect(QRectF(5, 5, 22, 22), 4, 4)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(FG)
    for x, y in ((11, 11), (21, 21), (16, 16), (21, 11), (11, 21)):
        p.drawEllipse(QPointF(x, y), 2, 2)
    return _done(pm, p)


@cache
def compare() -> QIcon:
    pm, p = _canvas()
    p.setPen(QPen(FG, 2))
    p.setBrush(QColor(70, 72, 80))
    p.drawRect(QRectF(4, 6, 24, 20))
    p.setBrush(ACCENT)
    p.drawRect(QRectF(16, 6, 12, 20))
    p.setPen(QPen(QColor(255, 255, 255), 2))
    p.drawLine(QPointF(16, 3), QPointF(16, 29))
    return _done(pm, p)


@cache
def regenerate() -> QIcon:
    pm, p = _canvas()
    p.setPen(QPen(FG, 2.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawArc(QRectF(6, 6, 20, 20), 60 * 16, 280 * 16)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(FG)
    p.drawPolygon(QPolygonF([QPointF(19, 2), QPointF(26, 8), QPointF(18, 11)]))
    return _done(pm, p)


@cache
def app_icon() -> QIcon:
    pm, p = _canvas(128)
    p.setPen(Qt.PenStyle.NoPen)
    colours = (QColor(230, 230, 230), QColor(240, 180, 70), QColor(90, 150, 230))
    for i, c in enumerate(colours):
        p.setBrush(c)
        p.drawRoundedRect(QRectF(3 + i * 7, 3 + i * 7, 15, 15), 3, 3)
    return _done(pm, p)
