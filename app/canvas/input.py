"""The canvas's input: mouse, tablet, wheel and keys (strokes, pan, zoom, eyedropper, the compare divider's drag)
and fill clicks, queued to the fill worker (app/canvas/fill_worker.py) and handed over to the document.

A mixin of CanvasView (app/canvas/view.py), which owns the document, the tools and the view transform; what a stroke
or fill changes reaches the screen through the painting mixin (app/canvas/painting.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QKeyEvent, QMouseEvent, QPointingDevice, QTabletEvent, QWheelEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLineEdit

from app.canvas.brush import PAINT, Stroke, apply_mask
from app.canvas.fill import FillJob, FillResult
from app.canvas.fill_worker import FillWorker
from app.canvas.tools import Tool, ToolState
from app.document import Document
from app.layers import empty_layer


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


class CanvasInput:
    """CanvasView's event handlers, its stroke in progress and its queue of fill clicks."""

    doc: Document
    tools: ToolState

    def _init_input(self) -> None:
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
        self._dragging_split = False
        self.fill_worker = FillWorker(self)
        self.fill_worker.finished.connect(self._fill_done)
        self.fill_worker.failed.connect(self._fill_failed)
        self._fill_clicks: list[FillClick] = []  # waiting for the worker, oldest first
        self._fill_job: FillJob | None = None  # with the worker now
        self._fill_click: FillClick | None = None  # the click it came from
        self.tools.changed.connect(self._update_cursor)

    # ----- helpers -----
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
