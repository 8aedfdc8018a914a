"""The Variations panel: the latent code of one transition as sliders over [-3, 3] standard deviations of the
model's latent prior (core/latent_prior.py; for N(0, I) these are the code's values), typed values too,
Randomize / Reset / seed (random codes come from that prior), and a history of the variations tried (thumbnails of the
final stage) to go back to. Moving a slider regenerates the later stages live (the engine drops superseded values)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.document import Document
from app.qt_image import thumbnail
from core.editing.session import Z_RANGE

TICKS = 100  # slider steps per unit: 0.01 resolution


class LatentPanel(QWidget):
    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.setObjectName("latentPanel")
        self.transition = 0
        self._seeds: dict[int, int] = {}  # the last seed used per transition
        self.sliders: list[QSlider] = []
        self.spins: list[QDoubleSpinBox] = []
        self._updating = False
        self._settle = QTimer(self)  # a typed value or a key press on a slider: one history entry when it settles
        self._settle.setSingleShot(True)
        self._settle.setInterval(700)
        self._settle.timeout.connect(lambda: self.doc.end_latent_edit(self.transition))

        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 8)
        lay.setSpacing(6)
        self.combo = QComboBox()
        self.combo.setToolTip("Which transition's latent code to edit (it follows the stage tab)")
        self.combo.currentIndexChanged.connect(self._on_combo)
        lay.addWidget(self.combo)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(2)
        lay.addWidget(self.grid_host)

        row = QHBoxLayout()
        self.randomize_btn = QPushButton("Randomize")
        self.randomize_btn.setToolTip("Draw a new latent code from the prior N(0, 1) (R)")
        self.randomize_btn.clicked.connect(self.randomize)
        self.reset_btn = QPushButton("Reset")
        self.reset_btn.setToolTip("Back to the code this artwork started with")
        self.reset_btn.clicked.connect(lambda: self.doc.reset_latent(self.transition))
        row.addWidget(self.randomize_btn)
        row.addWidget(self.reset_btn)
        lay.addLayout(row)

        seed_row = QHBoxLayout()
        seed_row.addWidget(QLabel("Seed"))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 2)
        self.seed.setToolTip("Type a seed and press Enter (or Apply) for a repeatable variation")
        self.seed.setKeyboardTracking(False)
        self.seed.lineEdit().returnPressed.connect(self.apply_seed)
        self.apply_btn = QPushButton("Apply")
        self.apply_btn.clicked.connect(self.apply_seed)
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.apply_btn)
        lay.addLayout(seed_row)

        hist_label = QLabel("History: click a variation to go back to it")
        hist_label.setObjectName("hint")
        lay.addWidget(hist_label)
        self.history = QListWidget()
        self.history.setViewMode(QListWidget.ViewMode.IconMode)
        self.history.setIconSize(QSize(56, 56))
        self.history.setGridSize(QSize(64, 64))
        self.history.setMovement(QListWidget.Movement.Static)
        self.history.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.history.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.history.setMinimumHeight(70)
        self.history.setMaximumHeight(150)
        self.history.itemClicked.connect(self._on_history_clicked)
        lay.addWidget(self.history, 1)
        lay.addStretch(0)

        document.modelChanged.connect(self.rebuild)
        document.latentChanged.connect(self._on_latent_changed)
        document.variationsChanged.connect(self._on_variations_changed)
        document.currentStageChanged.connect(self._follow_stage)
        self.rebuild()

    # ----- building -----
    def rebuild(self) -> None:
        doc = self.doc
        for w in self.sliders + self.spins:
            w.deleteLater()
        while self.grid.count():
            item = self.grid.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.sliders, self.spins = [], []
        self.combo.blockSignals(True)
        self.combo.clear()
        for i in range(doc.num_transitions):
            self.combo.addItem(doc.transition_title(i))
        self.combo.blockSignals(False)
        for d in range(doc.z_dim):
            label = QLabel(f"z{d + 1}")
            label.setObjectName("zLabel")
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(-int(Z_RANGE * TICKS), int(Z_RANGE * TICKS))
            s.setPageStep(TICKS // 2)
            s.setSingleStep(5)
            s.setToolTip(f"Latent dimension {d + 1}, in standard deviations of the model's latent prior "
                         f"(0 = its mean), within [-{Z_RANGE:g}, {Z_RANGE:g}]")
            s.valueChanged.connect(lambda v, d=d: self._on_slider(d, v))
            s.sliderReleased.connect(lambda: self.doc.end_latent_edit(self.transition))
            sp = QDoubleSpinBox()
            sp.setRange(-Z_RANGE, Z_RANGE)
            sp.setDecimals(2)
            sp.setSingleStep(0.1)
            sp.setKeyboardTracking(False)
            sp.setFixedWidth(64)
            sp.valueChanged.connect(lambda v, d=d: self._on_spin(d, v))
            self.grid.addWidget(label, d, 0)
            self.grid.addWidget(s, d, 1)
            self.grid.addWidget(sp, d, 2)
            self.sliders.append(s)
            self.spins.append(sp)
        enabled = doc.has_model and doc.num_transitions > 0
        for w in (self.combo, self.randomize_btn, self.reset_btn, self.seed, self.apply_btn, self.history):
            w.setEnabled(enabled)
        self.transition = 0
        self._seeds.clear()
        self._follow_stage(doc.current_stage)
        self._load_values()
        self._on_variations_changed(self.transition)

    def _follow_stage(self, k: int) -> None:
        if self.doc.num_transitions:
            self.combo.setCurrentIndex(max(0, min(k - 1, self.doc.num_transitions - 1)))

    def _on_combo(self, i: int) -> None:
        if i >= 0:
            if self._settle.isActive():
                self._settle.stop()
                self.doc.end_latent_edit(self.transition)
            self.transition = i
            self.seed.blockSignals(True)
            self.seed.setValue(self._seeds.get(i, 0))
            self.seed.blockSignals(False)
            self._load_values()
            self._on_variations_changed(i)

    def _load_values(self) -> None:
        if not self.doc.has_model or not self.doc.num_transitions:
            return
        u = self.doc.latent_coords(self.transition)
        self._updating = True
        try:
            for d, (s, sp) in enumerate(zip(self.sliders, self.spins)):
                v = float(u[d])
                if not s.isSliderDown():
                    s.setValue(round(v * TICKS))
                # Only a changed value: a spin box repaints on every setValue, and a slider drag reloads all
                # of them on every move.
                if round(v, sp.decimals()) != sp.value():
                    sp.setValue(v)
        finally:
            self._updating = False

    def current_values(self) -> list[float]:
        return [sp.value() for sp in self.spins]

    # ----- edits -----
    def _on_slider(self, d: int, v: int) -> None:
        if self._updating or not self.doc.has_model:
            return
        u = self.doc.latent_coords(self.transition)
        u[d] = v / TICKS
        self._updating = True
        self.spins[d].setValue(v / TICKS)
        self._updating = False
        live = self.sliders[d].isSliderDown()
        self.doc.set_latent_coords(self.transition, u, live=live)
        if not live:
            self._settle.start()

    def _on_spin(self, d: int, v: float) -> None:
        if self._updating or not self.doc.has_model:
            return
        u = self.doc.latent_coords(self.transition)
        u[d] = v
        self._updating = True
        self.sliders[d].setValue(round(v * TICKS))
        self._updating = False
        self.doc.set_latent_coords(self.transition, u)
        self._settle.start()

    def randomize(self) -> None:
        if self.doc.has_model:
            seed = self.doc.randomize(self.transition)
            self._seeds[self.transition] = seed
            self.seed.blockSignals(True)
            self.seed.setValue(seed)
            self.seed.blockSignals(False)

    def apply_seed(self) -> None:
        if self.doc.has_model:
            self._seeds[self.transition] = self.seed.value()
            self.doc.apply_seed(self.transition, self.seed.value())

    def _on_latent_changed(self, i: int) -> None:
        if i == self.transition and not self._updating:
            self._load_values()

    def _on_variations_changed(self, i: int) -> None:
        if i != self.transition or not self.doc.has_model or i >= len(self.doc.variations):
            self.history.clear() if not self.doc.has_model else None
            return
        self.history.clear()
        for idx, var in enumerate(self.doc.variations[i]):
            item = QListWidgetItem()
            if var.thumb is not None:
                item.setIcon(QIcon(thumbnail(var.thumb, 56)))
                item.setText("")
            else:
                item.setText(var.label if var.z is not None else "…")
            tip = var.label + (f"\nz = [{', '.join(f'{v:+.2f}' for v in var.z.tolist())}]" if var.z is not None
                               else "\n(computing…)")
            item.setToolTip(tip)
            item.setData(Qt.ItemDataRole.UserRole, idx)
            self.history.addItem(item)
        self.history.scrollToBottom()

    def _on_history_clicked(self, item: QListWidgetItem) -> None:
        self.doc.restore_variation(self.transition, int(item.data(Qt.ItemDataRole.UserRole)))
