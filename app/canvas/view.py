"""CanvasView: the current stage, enlarged (smoothly) with zoom and pan, and the painting tools.

Painting happens on the GUI thread into a copy of the stage's artist layer at the artwork's own size (up to
4096 px): each stroke segment touches only the rectangle its dabs cover (the layer, the shown picture and the
repainted area), never the whole image. The finished stroke goes to the document as one undoable change (with
its rectangle), which then asks the engine thread to regenerate the later stages. At 100 % zoom one image pixel
is one screen pixel. Tablet events carry pressure; the mouse paints at full pressure.

Navigation follows Krita: Space-drag or middle-drag pans, Ctrl+wheel zooms about the cursor (the wheel alone
scrolls), Ctrl+click picks a colour.

Fill: a click is queued and computed on a worker thread (app/canvas/fill.py, fill_worker.py); its answer is swapped
into the document and the shown picture here, after any stroke in progress (the stroke's layer would overwrite it).

Why one module of about 620 lines: it is one widget's event handling (paint, mouse, tablet, keys, wheel, compare
divider, the fill's hand-over), and those handlers share the view's transform and stroke state; the pixel work is
already elsewhere (app/canvas/brush.py, fill.py, tools.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QCursor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPointingDevice,
    QTabletEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLineEdit, QWidget

from app.canvas.brush import PAINT, Stroke, apply_mask
from app.canvas.fill import FillJob, FillResult
from app.canvas.fill_worker import FillWorker
from app.canvas.tools import Tool, ToolState
from app.document import Document
from app.layers import composite, empty_layer
from app.qt_image import rgb_to_qimage
from app.stage_status import StageStatus

Rect = tuple[int, int, int, int]

MIN_ZOOM, MAX_ZOOM = 0.25, 64.0
BACKGROUND = QColor(43, 44, 48)


@dataclass(frozen=True)
class FillClick:
    """A fill the artist clicked: what it fills with, on which stage of which artwork (`owner`: the document's
    layers then; a click for an artwork that was closed is dropped)."""

    stage: int
    x: int
    y: int
    tolerance: int
    colour: tuple[int, int, int]
    opacity: float
    owner: object


class CanvasView(QWidget):
    zoomChanged = Signal(float)
    cursorMoved = Signal(int, int)  # model pixel under the cursor (-1, -1 outside)

    def __init__(self, document: Document, tools: ToolState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.tools = tools
        self.setObjectName("canvas")
        self.setMouseTracking(True)
        self.setTabletTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(320, 240)
        self.scale = 1.0
        self.offset = QPointF(0, 0)  # widget position of the image's top-left corner
        self._fit = True  # keep fitting the image to the window until the artist zooms
        self.smooth = True
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # (H, W, 4) uint8 B, G, R, 255: the memory _image shows
        self._stroke: Stroke | None = None
        self._stroke_stage = 0
        self._stroke_before: np.ndarray | None = None  # the layer before the stroke (read-only), or None
        self._stroke_layer: np.ndarray | None = None
        self._stroke_colour = (0, 0, 0)
        self._stroke_mode = PAINT
        self._stroke_label = "Brush stroke"
        self._tablet_stroke = False
        self._committing = False
        self._pan_from: QPointF | None = None
        self._space = False
        self._hover: QPointF | None = None
        self._hover_pressure = 1.0
        self.compare = False
        self.split = 0.5  # divider position across the image, 0..1
        self._dragging_split = False
        self.fill_worker = FillWorker(self)
        self.fill_worker.finished.connect(self._fill_done)
        self.fill_worker.failed.connect(self._fill_failed)
        self._fill_clicks: list[FillClick] = []  # waiting for the worker, oldest first
        self._fill_job: FillJob | None = None  # with the worker now
        self._fill_click: FillClick | None = None  # the click it came from
        self._line_image: QImage | None = None  # the line art, for "Line art over colours" (made when needed)
        document.stageChanged.connect(self._on_stage_changed)
        document.linesOverChanged.connect(self.update)
        document.currentStageChanged.connect(lambda _k: self.refresh())
        document.modelChanged.connect(self._on_model_changed)
        document.compareChanged.connect(self.update)
        document.modelLoading.connect(lambda _p: self.update())
        tools.changed.connect(self._update_cursor)

    # ----- image -----
    def _on_model_changed(self) -> None:
        self.cancel_stroke()
        self._fit = True
        self.refresh()
        self.fit()  # (refresh fits a new size only)

    def _on_stage_changed(self, k: int) -> None:
        if k == 0:
            self._line_image = None  # the overlay is made again when next painted
        if self._committing:
            return  # our own stroke: already on screen
        if self.doc.has_model and k == self.doc.current_stage and self._stroke is None:
            self.refresh()
        elif self.compare and self.doc.has_model and k == self.doc.num_stages - 1:
            self.update()

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

    def image_size(self) -> tuple[int, int]:
        """(width, height) of the artwork in image pixels ((0, 0): nothing to show)."""
        return self.doc.artwork_size if self.doc.has_model else (0, 0)

    # ----- view transform -----
    def fit(self) -> None:
        w, h = self.image_size()
        if w <= 0 or h <= 0:
            return
        margin = 24
        s = min((self.width() - 2 * margin) / w, (self.height() - 2 * margin) / h)
        self._set_view(max(MIN_ZOOM, min(MAX_ZOOM, s)), None)
        self._fit = True

    def reset_zoom(self) -> None:
        self._fit = False
        self._set_view(1.0, None)

    def zoom_to(self, scale: float) -> None:
        """A given zoom (1.0: 100 %, one image pixel per screen pixel), the image centred."""
        self._fit = False
        self._set_view(max(MIN_ZOOM, min(MAX_ZOOM, scale)), None)

    def _set_view(self, scale: float, anchor: QPointF | None) -> None:
        w, h = self.image_size()
        if anchor is None:
            self.scale = scale
            self.offset = self._centred(scale)
        else:
            img = self.to_image(anchor)
            self.scale = scale
            self.offset = QPointF(anchor.x() - img.x() * scale, anchor.y() - img.y() * scale)
        self.zoomChanged.emit(self.scale)
        self._update_cursor()
        self.update()

    def _centred(self, scale: float) -> QPointF:
        """The image's offset that centres it at `scale` (whole pixels: at 100 % an image pixel falls exactly on a
        screen pixel)."""
        w, h = self.image_size()
        return QPointF(round((self.width() - w * scale) / 2), round((self.height() - h * scale) / 2))

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        if min(self.image_size()) <= 0:
            return
        self._fit = False
        scale = max(MIN_ZOOM, min(MAX_ZOOM, self.scale * factor))
        self._set_view(scale, anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2))

    def zoom_in(self) -> None:
        self.zoom_by(1.25)

    def zoom_out(self) -> None:
        self.zoom_by(0.8)

    def to_image(self, p: QPointF) -> QPointF:
        return QPointF((p.x() - self.offset.x()) / self.scale, (p.y() - self.offset.y()) / self.scale)

    def to_widget(self, p: QPointF) -> QPointF:
        return QPointF(p.x() * self.scale + self.offset.x(), p.y() * self.scale + self.offset.y())

    def image_rect(self) -> QRectF:
        w, h = self.image_size()
        return QRectF(self.offset.x(), self.offset.y(), w * self.scale, h * self.scale)

    def to_widget_rect(self, rect: Rect):
        """The widget area (a QRect, grown by a pixel for smoothing) that shows image pixels `rect`."""
        x0, y0, x1, y1 = rect
        a, b = self.to_widget(QPointF(x0, y0)), self.to_widget(QPointF(x1, y1))
        return QRectF(a, b).toAlignedRect().adjusted(-2, -2, 2, 2)

    def resizeEvent(self, event) -> None:  # noqa: N802
        if self._fit:
            self.fit()
        super().resizeEvent(event)

    # ----- compare -----
    def compare_active(self) -> bool:
        return (self.compare and self.doc.has_model and self.doc.current_stage == self.doc.num_stages - 1
                and self.doc.compare_reference() is not None)

    def set_compare(self, on: bool) -> None:
        self.compare = bool(on)
        self.cancel_stroke()
        self._update_cursor()
        self.update()

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

    # ----- input: helpers -----
    def _paint_tool_active(self) -> bool:
        return (self.doc.editable and not self._space and self._pan_from is None and not self.compare_active())

    def _update_cursor(self) -> None:
        if self._space or self._pan_from is not None:
            shape = Qt.CursorShape.ClosedHandCursor if self._pan_from is not None else Qt.CursorShape.OpenHandCursor
        elif self.compare_active():
            shape = Qt.CursorShape.SplitHCursor
        elif not self.doc.has_model:
            shape = Qt.CursorShape.ArrowCursor
        elif self.tools.tool in (Tool.BRUSH, Tool.ERASER):
            shape = Qt.CursorShape.BlankCursor if self.underMouse() else Qt.CursorShape.CrossCursor
        else:
            shape = Qt.CursorShape.CrossCursor
        self.setCursor(QCursor(shape))
        self.update()

    def _pixel(self, pos: QPointF) -> tuple[int, int] | None:
        q = self.to_image(pos)
        x, y = int(math.floor(q.x())), int(math.floor(q.y()))
        w, h = self.image_size()
        return (x, y) if 0 <= x < w and 0 <= y < h else None

    def pick_colour(self, pos: QPointF) -> bool:
        """Eyedropper: the colour under `pos` on the current stage becomes the foreground colour."""
        px = self._pixel(pos)
        if px is None or not self.doc.has_model:
            return False
        k = self.doc.current_stage
        r, g, b = (int(v) for v in self.doc.stage_rgb(k)[px[1], px[0]])
        self.tools.set_fg(self.doc.stage_channels(k), QColor(r, g, b))
        return True

    # ----- fill (computed on a worker thread: app/canvas/fill.py, fill_worker.py) -----
    def fill_at(self, pos: QPointF) -> bool:
        """A fill click: queued, and computed off the GUI thread; its result is swapped in when it comes
        (fill_pending() until then). Fills apply in the order clicked, each to the stage as it is then."""
        px = self._pixel(pos)
        if px is None or not self.doc.editable:
            return False
        k = self.doc.current_stage
        c = self.tools.fg(self.doc.stage_channels(k))
        self._fill_clicks.append(FillClick(k, px[0], px[1], self.tools.fill_tolerance, (c.red(), c.green(), c.blue()),
                                           self.tools.opacity, self.doc.layers))
        self._next_fill()
        return True

    def fill_pending(self) -> bool:
        return self._fill_job is not None or bool(self._fill_clicks)

    def _next_fill(self) -> None:
        """Send the oldest waiting click to the worker (one at a time; none while a stroke is being painted: its
        layer would overwrite the fill's)."""
        if self._fill_job is not None or self._stroke is not None:
            return
        while self._fill_clicks:
            click = self._fill_clicks.pop(0)
            if click.owner is not self.doc.layers or not self.doc.editable:
                continue  # made for an artwork that is gone
            k = click.stage
            self._fill_job = FillJob(k, click.x, click.y, click.tolerance, click.colour, click.opacity,
                                     self.doc.picture_for_fill(k), self.doc.layers[k], self.doc.base_rgb(k))
            self._fill_click = click
            self.fill_worker.submit(self._fill_job)
            return

    def _fill_done(self, result: FillResult) -> None:
        job, click = result.job, self._fill_click
        self._fill_job = self._fill_click = None
        doc, k = self.doc, job.stage
        if click.owner is doc.layers and doc.editable:
            if (doc.layers[k] is not job.layer or doc.cached_picture(k) is not job.picture
                    or doc.base_rgb(k) is not job.base or (self._stroke is not None and self._stroke_stage == k)):
                self._fill_clicks.insert(0, click)  # the stage changed meanwhile: fill it as it is now
            elif result.layer is not None:
                self._committing = True  # shown below, not by a refresh of the whole picture
                try:
                    doc.commit_fill(k, result.layer, result.rect, result.before, result.picture)
                finally:
                    self._committing = False
                self.show_fill(result)
        self._next_fill()

    def _fill_failed(self, job: FillJob, message: str) -> None:
        self._fill_job = self._fill_click = None
        self.doc.message.emit(message)
        self._next_fill()

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

    # ----- strokes -----
    def begin_stroke(self, pos: QPointF, pressure: float = 1.0, eraser: bool = False) -> None:
        if not self.doc.editable:
            return
        k = self.doc.current_stage
        self._stroke_stage = k
        w, h = self.image_size()
        self._stroke = Stroke(h, w, self.tools.brush())
        layer = self.doc.layers[k]
        self._stroke_before = layer
        # The stroke paints into its own copy; the document's layer (read-only) is what each segment starts from.
        self._stroke_layer = layer.copy() if layer is not None else empty_layer(w, h)
        c = self.tools.fg(self.doc.stage_channels(k))
        self._stroke_colour = (c.red(), c.green(), c.blue())
        if eraser or self.tools.tool == Tool.ERASER:
            self._stroke_mode = self.tools.eraser_mode(k)
            self._stroke_label = "Eraser stroke"
        else:
            self._stroke_mode = PAINT
            self._stroke_label = "Brush stroke"
        self._extend(pos, pressure)

    def _extend(self, pos: QPointF, pressure: float) -> None:
        q = self.to_image(pos)
        rect = self._stroke.add_point(q.x(), q.y(), pressure)
        if rect is None:
            return
        x0, y0, x1, y1 = rect
        before = (self._stroke_before[y0:y1, x0:x1] if self._stroke_before is not None
                  else np.zeros((y1 - y0, x1 - x0, 4), np.uint8))
        self._stroke_layer[y0:y1, x0:x1] = apply_mask(before, self._stroke.mask[y0:y1, x0:x1], self._stroke_colour,
                                                      self._stroke_mode)
        if self._stroke_stage == self.doc.current_stage:
            self._show_stroke(rect)

    def continue_stroke(self, pos: QPointF, pressure: float = 1.0) -> None:
        if self._stroke is not None:
            self._extend(pos, pressure)

    def end_stroke(self) -> None:
        if self._stroke is None:
            return
        stroke, layer, k = self._stroke, self._stroke_layer, self._stroke_stage
        self._stroke = None
        self._stroke_layer = self._stroke_before = None
        self._tablet_stroke = False
        if stroke.bbox is not None:
            # The picture shown is already the result: the document mends its own copy in the same rectangle.
            self._committing = True
            try:
                self.doc.commit_layer(k, layer, self._stroke_label, stroke.bbox)
            finally:
                self._committing = False
        self._next_fill()  # a fill clicked during the stroke

    def cancel_stroke(self) -> None:
        if self._stroke is not None:
            self._stroke = None
            self._stroke_layer = self._stroke_before = None
            self._tablet_stroke = False
            self.refresh()
            self._next_fill()

    def _press(self, pos: QPointF, button: Qt.MouseButton, modifiers, pressure: float, eraser: bool) -> bool:
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = pos
            self._update_cursor()
            return True
        if button != Qt.MouseButton.LeftButton or not self.doc.has_model:
            return False
        if self.compare_active():
            self._dragging_split = True
            self._move_split(pos)
            return True
        if modifiers & Qt.KeyboardModifier.ControlModifier or self.tools.tool == Tool.PICKER:
            self.pick_colour(pos)
            return True
        if self.tools.tool == Tool.FILL and not eraser:
            self.fill_at(pos)
            return True
        self.begin_stroke(pos, pressure, eraser)
        return True

    def _move(self, pos: QPointF, buttons, pressure: float) -> None:
        self._hover = pos
        self._hover_pressure = pressure
        px = self._pixel(pos)
        self.cursorMoved.emit(*(px if px else (-1, -1)))
        if self._pan_from is not None:
            d = pos - self._pan_from
            self._pan_from = pos
            self.offset += d
            self._fit = False
            self.update()
        elif self._dragging_split:
            self._move_split(pos)
        elif self._stroke is not None:
            self.continue_stroke(pos, pressure)
        elif buttons & Qt.MouseButton.LeftButton and self.tools.tool == Tool.PICKER:
            self.pick_colour(pos)
        else:
            self.update()

    def _release(self) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self._update_cursor()
        self._dragging_split = False
        self.end_stroke()

    def _move_split(self, pos: QPointF) -> None:
        r = self.image_rect()
        if r.width() > 0:
            self.split = min(1.0, max(0.0, (pos.x() - r.left()) / r.width()))
            self.update()

    # ----- Qt events -----
    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if not self._press(e.position(), e.button(), e.modifiers(), 1.0, False):
            super().mousePressEvent(e)

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self._move(e.position(), e.buttons(), 1.0)

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self._release()

    def tabletEvent(self, e: QTabletEvent) -> None:  # noqa: N802
        t = e.type()
        pressure = float(e.pressure())
        eraser = e.pointerType() == QPointingDevice.PointerType.Eraser
        if t == QTabletEvent.Type.TabletPress:
            self._tablet_stroke = True
            self._press(e.position(), e.button(), e.modifiers(), pressure, eraser)
        elif t == QTabletEvent.Type.TabletMove:
            self._move(e.position(), e.buttons(), pressure)
        elif t == QTabletEvent.Type.TabletRelease:
            self._release()
        e.accept()  # no synthesized mouse events for what the pen already did

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        delta = e.angleDelta()
        if e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            if delta.y():
                self.zoom_by(1.25 ** (delta.y() / 120), e.position())
        else:
            self._fit = False
            self.offset += QPointF(delta.x(), delta.y()) / 2
            self.update()
        e.accept()

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self._space = True
            self._update_cursor()
            return
        if e.key() == Qt.Key.Key_Escape and self._stroke is not None:
            self.cancel_stroke()
            return
        super().keyPressEvent(e)

    def keyReleaseEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self._space = False
            self._update_cursor()
            return
        super().keyReleaseEvent(e)

    def enterEvent(self, e) -> None:  # noqa: N802
        # Take the keyboard (Space to pan, Esc) unless the artist is typing a value somewhere.
        focus = QApplication.focusWidget()
        if not isinstance(focus, (QLineEdit, QAbstractSpinBox)):
            self.setFocus(Qt.FocusReason.MouseFocusReason)
        self._update_cursor()
        super().enterEvent(e)

    def leaveEvent(self, e) -> None:  # noqa: N802
        self._hover = None
        self.cursorMoved.emit(-1, -1)
        self.update()
        super().leaveEvent(e)

    def focusOutEvent(self, e) -> None:  # noqa: N802
        self._space = False
        super().focusOutEvent(e)
