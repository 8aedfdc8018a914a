"""File > New drawing: the sheet's size and the model to draw with, in Krita's way (issue 28).

Presets and width / height fields within the sizes Artflow works with (64-4096 px on the long side); the last choice
is remembered in the settings. The model list holds the bundled models and the one open now; for a blank sheet the
bundle made for drawn line art (core.files.bundle.DRAWING_BUNDLE) is chosen until the artist picks another.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from app.settings import Settings
from core.files import bundle
from core.fullres.proxy import MAX_SIDE, MIN_SIDE

# (label, (width, height)); None: the model's own size. A4 at 150 dpi is 210 x 297 mm.
PRESETS: tuple[tuple[str, tuple[int, int] | None], ...] = (
    ("1024 x 1024", (1024, 1024)),
    ("2048 x 2048", (2048, 2048)),
    ("2048 x 1536 (4:3)", (2048, 1536)),
    ("1920 x 1080 (HD)", (1920, 1080)),
    ("A4 portrait at 150 dpi (1240 x 1754)", (1240, 1754)),
    ("A4 landscape at 150 dpi (1754 x 1240)", (1754, 1240)),
    ("The model's own size", None),
)
CUSTOM = "Custom"


class NewDrawingDialog(QDialog):
    """Asks for the new sheet's size and model; choice() gives (width, height, model folder)."""

    def __init__(self, parent: QWidget | None, settings: Settings, model_resolution: int,
                 current_model: str | None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New drawing")
        self.settings = settings
        self.model_resolution = model_resolution
        form = QFormLayout(self)
        self.preset = QComboBox()
        for label, _ in PRESETS:
            self.preset.addItem(label)
        self.preset.addItem(CUSTOM)
        form.addRow("Size", self.preset)
        row = QHBoxLayout()
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(1, MAX_SIDE)
            box.setSuffix(" px")
        row.addWidget(self.width_box)
        row.addWidget(QLabel("×"))
        row.addWidget(self.height_box)
        holder = QWidget()
        holder.setLayout(row)
        form.addRow("Width × height", holder)
        self.hint = QLabel(f"{MIN_SIDE} to {MAX_SIDE} px on the long side")
        self.hint.setObjectName("hint")
        form.addRow("", self.hint)
        self.model = QComboBox()
        self._models: list[str] = []
        for shipped in bundle.bundled_models():
            self.model.addItem(shipped.name)
            self.model.setItemData(self.model.count() - 1, shipped.description, 3)  # Qt.ToolTipRole
            self._models.append(str(shipped.path.resolve()))
        if current_model and str(Path(current_model).resolve()) not in self._models:
            self.model.addItem(f"{Path(current_model).name} (open now)")
            self._models.append(str(Path(current_model).resolve()))
        form.addRow("Draw with", self.model)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

        self.preset.currentIndexChanged.connect(self._on_preset)
        self.width_box.valueChanged.connect(self._on_size)
        self.height_box.valueChanged.connect(self._on_size)
        self._set_size(settings.new_width or 2048, settings.new_height or 2048)
        self._select_model(settings.new_model or self._drawing_bundle() or current_model)

    # ----- state -----
    def _drawing_bundle(self) -> str | None:
        return next((m for m in self._models if Path(m).name == bundle.DRAWING_BUNDLE), None)

    def _select_model(self, path: str | None) -> None:
        if path is None:
            return
        key = str(Path(path).resolve())
        if key in self._models:
            self.model.setCurrentIndex(self._models.index(key))

    def _set_size(self, width: int, height: int) -> None:
        for box, v in ((self.width_box, width), (self.height_box, height)):
            box.blockSignals(True)
            box.setValue(v)
            box.blockSignals(False)
        self._sync_preset()
        self._on_size()

    def _sync_preset(self) -> None:
        size = (self.width_box.value(), self.height_box.value())
        index = next((i for i, (_, s) in enumerate(PRESETS)
                      if (s or (self.model_resolution, self.model_resolution)) == size), len(PRESETS))
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(index)
        self.preset.blockSignals(False)

    def _on_preset(self, index: int) -> None:
        if index < len(PRESETS):
            size = PRESETS[index][1] or (self.model_resolution, self.model_resolution)
            self._set_size(*size)

    def _on_size(self) -> None:
        self._sync_preset()
        long_side = max(self.width_box.value(), self.height_box.value())
        ok = MIN_SIDE <= long_side <= MAX_SIDE
        self.hint.setText(f"{MIN_SIDE} to {MAX_SIDE} px on the long side" if ok
                          else f"The long side must be {MIN_SIDE} to {MAX_SIDE} px")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def choice(self) -> tuple[int, int, str | None]:
        """(width, height, the chosen model's folder or None)."""
        i = self.model.currentIndex()
        return self.width_box.value(), self.height_box.value(), self._models[i] if 0 <= i < len(self._models) else None

    def remember(self) -> None:
        """The choice becomes the next dialog's start."""
        w, h, m = self.choice()
        self.settings.new_width, self.settings.new_height, self.settings.new_model = w, h, m
