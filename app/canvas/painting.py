"""The canvas's painting: the shown picture (an RGB32 image buffer, mended rectangle by rectangle) and paintEvent
(the image, the compare split, tags, the empty-stage hint, the placeholder, the brush outline).

A mixin of CanvasView (app/canvas/view.py), which owns the document, the tools and the view transform; the stroke
and hover state it draws comes from the input mixin (app/canvas/input.py).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen

from app.canvas.fill import FillResult, Rect
from app.canvas.tools import Tool, ToolState
from app.document import Document
from app.layers import composite
from app.qt_image import rgb_to_qimage
from app.stage_status import StageStatus

BACKGROUND = QColor(43, 44, 48)


class CanvasPainting:
    """The picture CanvasView shows and how it is drawn."""

    doc: Document
    tools: ToolState

    def _init_painting(self) -> None:
        self.smooth = True
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # (H, W, 4) uint8 B, G, R, 255: the memory _image shows
        self._line_image: QImage | None = None  # the line art, for "Line art over colours" (made when needed)

    # ----- the shown picture -----
    def refresh(self) -> None:
        """Show the current stage afresh (a new stage or picture: the whole image is converted once)."""
        same_size = False
        if not self.doc.has_model:
            self._image = self._pixels = None
        else:
            rgb = self.doc.stage_rgb(self.doc.current_stage)
            h, w = rgb.shape[:2]
            same_size = self._pixels is not None and self._pixels.shape[:2] == (h, w)
            if not same_size:
                self._pixels = np.full((h, w, 4), 255, np.uint8)
                # RGB32 (B, G, R, 255 in memory): the format Qt draws fastest; the QImage reads _pixels in place.
                self._image = QImage(self._pixels.data, w, h, 4 * w, QImage.Format.Format_RGB32)
            self._show_rect(rgb, (0, 0, w, h))
            if self._stroke is not None and self._stroke_stage == self.doc.current_stage:
                self._show_stroke(self._stroke.bbox)
        if same_size:
            # A new picture in the same place (a slider drag's 30 a second): the image's area is repainted, not
            # the desk and shadow around it, and the view stays (resizeEvent refits a fitted view).
            self.update(self.image_rect().toAlignedRect())
            return
        if self._fit:
            self.fit()
        self.update()

    def _show_rect(self, rgb: np.ndarray, rect: Rect) -> None:
        """Copy `rgb` (the whole image, or the rectangle's own pixels) into the shown picture at `rect`."""
        x0, y0, x1, y1 = rect
        sx, sy = (0, 0) if rgb.shape[:2] == (y1 - y0, x1 - x0) else (x0, y0)
        if rgb.ndim == 3 and rgb.dtype == np.uint8 and rgb.flags.c_contiguous:
            # Qt's own RGB -> RGB32 conversion: half the time of the numpy copies below (5.3 -> 2.7 ms at
            # 2048 x 1536, a slider preview's every frame). The QImage only reads rgb, and only here.
            h, w = rgb.shape[:2]
            src = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            p = QPainter(self._image)
            p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
            p.drawImage(QPoint(x0, y0), src, QRect(sx, sy, x1 - x0, y1 - y0))
            p.end()
            return
        rgb = rgb[sy:sy + y1 - y0, sx:sx + x1 - x0]
        dst = self._pixels[y0:y1, x0:x1]
        for c in range(3):  # channel by channel: ~6x quicker than one reversed copy (43 ms at 2048 x 1536)
            dst[..., c] = rgb[..., 2 - c]

    def _show_stroke(self, rect: Rect | None) -> None:
        """The stroke's layer over the base, shown inside `rect` only, and that part of the widget repainted."""
        if rect is None or self._pixels is None:
            return
        x0, y0, x1, y1 = rect
        base = self.doc.base_rgb(self._stroke_stage)[y0:y1, x0:x1]
        self._show_rect(composite(base, self._stroke_layer[y0:y1, x0:x1]), rect)
        self.update(self.to_widget_rect(rect))

    def show_fill(self, result: FillResult) -> None:
        """The filled picture on screen: a large fill's whole shown picture comes ready from the worker (swapped
        in), a small one is copied in its rectangle."""
        if result.job.stage != self.doc.current_stage or self._pixels is None or result.rect is None:
            return
        if result.shown is not None and result.shown.shape == self._pixels.shape:
            h, w = result.shown.shape[:2]
            self._pixels = result.shown
            self._image = QImage(self._pixels.data, w, h, 4 * w, QImage.Format.Format_RGB32)
            self.update()
        else:
            self._show_rect(result.picture, result.rect)
            self.update(self.to_widget_rect(result.rect))

    # ----- painting of the widget -----
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        if self._image is None:
            p.fillRect(self.rect(), BACKGROUND)
            self._paint_placeholder(p)
            return
        rect = self.image_rect()
        # The desk around the image: unless only the image's area (to the pixels its edges touch) is repainted.
        # (Every change of the view repaints the whole widget.)
        if not rect.adjusted(-1, -1, 1, 1).contains(QRectF(event.rect())):
            p.fillRect(self.rect(), BACKGROUND)
            # Drop shadow: the page floats above the desk.
            p.fillRect(rect.translated(3, 4), QColor(0, 0, 0, 70))
        # Smooth only when shrinking or enlarging: at 100 % the pixels are copied as they are.
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth and abs(self.scale - 1) > 1e-6)
        self._draw_image(p, rect, QRectF(event.rect()))
        if self.compare_active():
            ref, label = self.doc.compare_reference()
            ref_img = rgb_to_qimage(ref)
            x = rect.left() + rect.width() * self.split
            src_w = ref_img.width() * self.split
            p.drawImage(QRectF(rect.left(), rect.top(), rect.width() * self.split, rect.height()), ref_img,
                        QRectF(0, 0, src_w, ref_img.height()))
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(255, 255, 255), 2))
            p.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
            p.setBrush(QColor(255, 255, 255))
            p.drawEllipse(QPointF(x, rect.center().y()), 7, 7)
            self._tag(p, QPointF(rect.left() + 8, rect.top() + 8), label, left=True)
            self._tag(p, QPointF(rect.right() - 8, rect.top() + 8), "Now", left=False)
        hint = self.empty_hint()
        if hint is not None and not self.compare_active():
            self._paint_empty_hint(p, rect, *hint)
        if self.doc.refining and self.doc.current_stage > 0:
            self._tag(p, QPointF(rect.left() + 8, rect.bottom() - 30), "Refining…", left=True)
        elif self.doc.model_loading:
            self._tag(p, QPointF(rect.left() + 8, rect.bottom() - 30), "Loading another model…", left=True)
        self._paint_cursor(p)

    def _draw_image(self, p: QPainter, rect: QRectF, area: QRectF) -> None:
        """Draw the part of the image under `area` (the repainted widget region) only: a stroke segment repaints a
        few hundred pixels of a 4096 px image."""
        visible = rect.intersected(area.adjusted(-2, -2, 2, 2))
        if visible.isEmpty():
            return
        src = QRectF((visible.left() - rect.left()) / self.scale, (visible.top() - rect.top()) / self.scale,
                     visible.width() / self.scale, visible.height() / self.scale)
        p.drawImage(visible, self._image, src)
        if self.doc.lines_over and self.doc.current_stage > 0:
            # "Line art over colours": the line art multiplied over the later stages, as an inker's line layer
            # sits above the colours (compositing only: the stages themselves stay the model's and the artist's).
            if self._line_image is None:
                self._line_image = rgb_to_qimage(self.doc.stage_rgb(0))
            if self._line_image.size() == self._image.size():
                mode = p.compositionMode()
                p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Multiply)
                p.drawImage(visible, self._line_image, src)
                p.setCompositionMode(mode)

    def _tag(self, p: QPainter, at: QPointF, text: str, left: bool) -> None:
        f = QFont(self.font())
        f.setPointSizeF(max(8.0, f.pointSizeF()))
        f.setBold(True)
        p.setFont(f)
        w = p.fontMetrics().horizontalAdvance(text) + 14
        h = p.fontMetrics().height() + 6
        r = QRectF(at.x() if left else at.x() - w, at.y(), w, h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(20, 20, 24, 190))
        p.drawRoundedRect(r, 4, 4)
        p.setPen(QColor(240, 240, 240))
        p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)

    def empty_hint(self) -> tuple[str, str] | None:
        """(heading, details) shown on a blank first stage, where a new drawing starts: what to draw there and what
        the model learned (its own description, which says what kind of first stage it takes). None elsewhere."""
        doc = self.doc
        if self._stroke is not None:  # the first stroke is being drawn: out of its way (checked first: every paint)
            return None
        if not doc.has_model or doc.current_stage != 0 or doc.status(0) != StageStatus.BLANK:
            return None
        heading = f"Draw your {doc.stage_title(0).lower()} here"
        details = f"Model {doc.config.name}: {doc.config.description}" if doc.config.description else \
            f"Model {doc.config.name}."
        return heading, details + "\n\nFile › Bundled models lists the models that ship with Artflow."

    def _paint_empty_hint(self, p: QPainter, page: QRectF, heading: str, details: str) -> None:
        """The hint in grey on the blank page, centred, wrapped to the page's width."""
        box = page.adjusted(page.width() * 0.08, page.height() * 0.18, -page.width() * 0.08, -page.height() * 0.08)
        if box.width() < 120 or box.height() < 80:
            return  # zoomed far out: no room for words
        f = QFont(self.font())
        f.setPointSizeF(max(9.0, f.pointSizeF() * 1.4))
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor(120, 120, 128))
        head_h = p.fontMetrics().height() * 2
        p.drawText(QRectF(box.left(), box.top(), box.width(), head_h), Qt.AlignmentFlag.AlignCenter, heading)
        f.setBold(False)
        f.setPointSizeF(max(8.0, self.font().pointSizeF()))
        p.setFont(f)
        p.setPen(QColor(140, 140, 148))
        p.drawText(box.adjusted(0, head_h, 0, 0), Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
                   | Qt.TextFlag.TextWordWrap, details)

    def _paint_placeholder(self, p: QPainter) -> None:
        p.setPen(QColor(200, 200, 205))
        f = QFont(self.font())
        f.setPointSizeF(f.pointSizeF() * 1.3)
        p.setFont(f)
        if self.doc.model_loading:
            text = "Loading the model…"
        else:
            text = "No model is loaded.\n\nChoose one with File › Open model… (Ctrl+M)"
        p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, text)

    def _paint_cursor(self, p: QPainter) -> None:
        if self._hover is None or not self._paint_tool_active():
            return
        if self.tools.tool not in (Tool.BRUSH, Tool.ERASER):
            return
        r = max(1.0, self.tools.size / 2 * self.scale)
        if self._tablet_stroke and self.tools.pressure_size:
            r *= max(0.15, self._hover_pressure)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for colour, width in ((QColor(0, 0, 0, 160), 3.0), (QColor(255, 255, 255, 230), 1.2)):
            p.setPen(QPen(colour, width))
            p.drawEllipse(self._hover, r, r)
        p.setPen(QPen(QColor(255, 255, 255, 230), 1))
        p.drawPoint(self._hover)
