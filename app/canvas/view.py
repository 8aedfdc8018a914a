"""CanvasView: the current stage, enlarged (smoothly) with zoom and pan, and the painting tools; this module owns the
widget, its wiring to the document and the view geometry (fit, zoom, the image <-> widget transform).

Painting happens on the GUI thread into a copy of the stage's artist layer at the artwork's own size (up to
4096 px): each stroke segment touches only the rectangle its dabs cover (the layer, the shown picture and the
repainted area), never the whole image. The finished stroke goes to the document as one undoable change (with
its rectangle), which then asks the engine thread to regenerate the later stages. At 100 % zoom one image pixel
is one screen pixel. Tablet events carry pressure; the mouse paints at full pressure.

Navigation follows Krita: Space-drag or middle-drag pans, Ctrl+wheel zooms about the cursor (the wheel alone
scrolls), Ctrl+click picks a colour.

Fill: a click is queued and computed on a worker thread (app/canvas/fill.py, fill_worker.py); its answer is swapped
into the document and the shown picture here, after any stroke in progress (the stroke's layer would overwrite it).

The widget is three parts sharing one state (the document, the tools, the transform): its input handling
(app/canvas/input.py: events, strokes, fill clicks), its painting (app/canvas/painting.py: the shown picture,
paintEvent) and, here, the geometry both use. The pixel work is elsewhere (app/canvas/brush.py, fill.py, tools.py).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QWidget

from app.canvas.fill import Rect
from app.canvas.input import CanvasInput
from app.canvas.painting import CanvasPainting
from app.canvas.tools import ToolState
from app.document import Document

MIN_ZOOM, MAX_ZOOM = 0.25, 64.0


class CanvasView(CanvasInput, CanvasPainting, QWidget):
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
        self.compare = False
        self.split = 0.5  # divider position across the image, 0..1
        self._init_painting()
        self._init_input()
        document.stageChanged.connect(self._on_stage_changed)
        document.linesOverChanged.connect(self.update)
        document.currentStageChanged.connect(lambda _k: self.refresh())
        document.modelChanged.connect(self._on_model_changed)
        document.compareChanged.connect(self.update)
        document.modelLoading.connect(lambda _p: self.update())

    # ----- document -----
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
