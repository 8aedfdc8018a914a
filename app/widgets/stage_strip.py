"""The stage strip: every stage of the workflow as a thumbnail, first to last, always in view. Click one to edit it.
Each card shows the stage's status (generated, hand-edited, stale, ...). A stage showing quick previews (a slider
drag's, 30 a second, or a refinement's) gets a new thumbnail at most every PREVIEW_THUMB_MS."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMenu, QSizePolicy, QVBoxLayout, QWidget

from app.document import Document
from app.qt_image import thumbnail
from app.stage_status import StageStatus

STATUS_COLOURS = {
    StageStatus.BLANK: QColor(140, 140, 150),
    StageStatus.GENERATED: QColor(92, 184, 120),
    StageStatus.INFERRED: QColor(80, 180, 200),
    StageStatus.REFINED: QColor(90, 150, 230),
    StageStatus.EDITED: QColor(235, 170, 60),
    StageStatus.STALE: QColor(225, 95, 85),
}
STATUS_SHORT = {StageStatus.INFERRED: "Inferred", StageStatus.REFINED: "Refined"}  # else the status's own text
# A thumbnail is a copy and a smooth reduction of the whole stage: 4 ms a card at 2048 x 1536, every frame of a drag.
PREVIEW_THUMB_MS = 100


def status_icon(status: StageStatus, size: int = 12) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(STATUS_COLOURS.get(status, QColor(128, 128, 128)))
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.end()
    return QIcon(pm)


class StageCard(QFrame):
    clicked = Signal(int)

    def __init__(self, index: int, title: str, thumb_size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.thumb_size = thumb_size
        self.setObjectName("stageCard")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 5, 6, 5)
        lay.setSpacing(3)
        self.title = QLabel(f"{index + 1}  {title}")
        self.title.setObjectName("stageCardTitle")
        self.image = QLabel()
        self.image.setFixedSize(thumb_size, thumb_size)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setObjectName("stageCardImage")
        self.status = QLabel()
        self.status.setObjectName("stageCardStatus")
        lay.addWidget(self.title)
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addWidget(self.status)
        self.set_current(False)

    def set_image(self, rgb) -> None:
        self.image.setPixmap(thumbnail(rgb, self.thumb_size))

    def set_status(self, status: StageStatus, text: str, refining: bool = False) -> None:
        c = STATUS_COLOURS.get(status, QColor(128, 128, 128))
        short = ("Stale · refining" if refining and status == StageStatus.STALE
                 else STATUS_SHORT.get(status, status.text))
        self.status.setText(f"<span style='color:{c.name()}'>●</span> {short}")
        self.setToolTip(text)

    def set_current(self, on: bool) -> None:
        self.setProperty("current", on)
        self.style().unpolish(self)
        self.style().polish(self)

    def mousePressEvent(self, e) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.index)

    def contextMenuEvent(self, e) -> None:  # noqa: N802
        strip = self.parent()
        while strip is not None and not isinstance(strip, StageStrip):
            strip = strip.parent()
        if strip is None or not strip.doc.has_model:
            return
        doc = strip.doc
        menu = QMenu(self)
        remove = menu.addAction("Remove my paint from this stage")
        remove.setEnabled(doc.layers[self.index] is not None)
        remove.triggered.connect(lambda: doc.clear_layer(self.index))
        go = menu.addAction("Edit this stage")
        go.triggered.connect(lambda: doc.set_current_stage(self.index))
        menu.exec(e.globalPos())


class StageStrip(QWidget):
    def __init__(self, document: Document, thumb_size: int = 104, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.thumb_size = thumb_size
        self.setObjectName("stageStrip")
        self.cards: list[StageCard] = []
        self._pending: set[int] = set()  # previews whose thumbnail waits for the timer
        self._thumb_timer = QTimer(self)
        self._thumb_timer.setSingleShot(True)
        self._thumb_timer.setInterval(PREVIEW_THUMB_MS)
        self._thumb_timer.timeout.connect(self._show_pending)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 10, 6)
        self._layout.setSpacing(6)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        document.modelChanged.connect(self.rebuild)
        document.stageChanged.connect(self._update_image)
        document.statusChanged.connect(self._update_status)
        document.currentStageChanged.connect(self._update_current)
        self.rebuild()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(600, self.thumb_size + 62)

    def rebuild(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.cards = []
        self._pending.clear()
        doc = self.doc
        self._layout.addStretch(1)
        if not doc.has_model:
            hint = QLabel("The workflow's stages appear here once a model is loaded.")
            hint.setObjectName("hint")
            self._layout.addWidget(hint)
        for k in range(doc.num_stages):
            if k:
                arrow = QLabel("→")
                arrow.setObjectName("stageArrow")
                arrow.setToolTip(f"{doc.transition_title(k - 1)}: generated with the latent code in the "
                                 "Variations panel")
                self._layout.addWidget(arrow)
            card = StageCard(k, doc.stage_title(k), self.thumb_size)
            card.clicked.connect(doc.set_current_stage)
            self._layout.addWidget(card)
            self.cards.append(card)
            self._update_image(k)
            self._update_status(k)
        self._layout.addStretch(1)
        self._update_current(doc.current_stage)

    def _update_image(self, k: int) -> None:
        if not (0 <= k < len(self.cards) and self.doc.has_model):
            return
        if k in self.doc.previews:
            self._pending.add(k)
            if not self._thumb_timer.isActive():
                self._thumb_timer.start()
            return
        self._pending.discard(k)
        self.cards[k].set_image(self.doc.stage_rgb(k))

    def _show_pending(self) -> None:
        pending, self._pending = self._pending, set()
        for k in sorted(pending):
            if 0 <= k < len(self.cards) and self.doc.has_model:
                self.cards[k].set_image(self.doc.stage_rgb(k))

    def _update_status(self, k: int) -> None:
        if 0 <= k < len(self.cards) and self.doc.has_model:
            self.cards[k].set_status(self.doc.status(k), self.doc.status_text(k), self.doc.refining)

    def _update_current(self, k: int) -> None:
        for i, card in enumerate(self.cards):
            card.set_current(i == k)
