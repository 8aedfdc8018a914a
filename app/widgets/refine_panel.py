"""The Refinement panel: the AdaIN optimisation that fits the model to an opened artwork (the paper's 150 steps),
run on the engine thread with progress (step, loss, a preview every few steps) and Cancel; "Stop once the fit
settles" runs core.editing.refine's "fast" schedule instead."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.document import Document
from app.engine_worker import RefineProgress
from app.layers import to_rgb
from app.qt_image import thumbnail
from core.editing.refine import EDIT_READY_STEPS

PREVIEW = 64
STOP_EARLY_TIP = ("The \"fast\" schedule: a decaying step size, each transition ended once its loss has "
                  "flattened. Measured on 12 of the default model's Fluent TEST drawings: the same mean PSNR as "
                  "the full steps in 0.74-0.80x the time (single drawings within about 0.7 dB); on another "
                  "artist's drawings 0.34 dB lower and hardly quicker, and with emoji-lines-128 0.25 dB lower in "
                  "0.79x the time.")


class RefinePanel(QWidget):
    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = document
        self.setObjectName("refinePanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 8)
        lay.setSpacing(6)
        self.intro = QLabel("Fits the workflow to an opened artwork (File › Open image, Ctrl+O).")
        self.intro.setWordWrap(True)
        self.intro.setObjectName("hint")
        lay.addWidget(self.intro)

        row = QHBoxLayout()
        row.addWidget(QLabel("Steps per stage"))
        self.steps = QSpinBox()
        self.steps.setRange(1, 5000)
        self.steps.setValue(document.settings.refine_steps)
        self.steps.setToolTip("AdaIN optimisation steps per transition (the paper uses 150)")
        self.steps.valueChanged.connect(self._on_steps)
        row.addWidget(self.steps)
        row.addStretch(1)
        lay.addLayout(row)
        self.auto = QCheckBox(f"Fit for editing right after opening ({EDIT_READY_STEPS} steps)")
        self.auto.setChecked(document.settings.refine_after_open)
        self.auto.setToolTip("A short fit, chosen for edits by the edit benchmark; Refine runs the steps above (the "
                             "paper's 150)")
        self.auto.toggled.connect(lambda on: setattr(document.settings, "refine_after_open", on))
        lay.addWidget(self.auto)
        self.stop_early = QCheckBox("Stop once the fit settles")
        self.stop_early.setChecked(document.settings.refine_stop_early)
        self.stop_early.setToolTip(STOP_EARLY_TIP)
        self.stop_early.toggled.connect(lambda on: setattr(document.settings, "refine_stop_early", on))
        lay.addWidget(self.stop_early)

        buttons = QHBoxLayout()
        self.refine_btn = QPushButton("Refine")
        self.refine_btn.setObjectName("primary")
        self.refine_btn.setToolTip("Fit the latent styles to the opened artwork (Ctrl+R)")
        self.refine_btn.clicked.connect(lambda: self.doc.refine(self.steps.value()))
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the refinement; the stages stay as they were (Esc)")
        self.cancel_btn.clicked.connect(self.doc.cancel_refine)
        buttons.addWidget(self.refine_btn)
        buttons.addWidget(self.cancel_btn)
        lay.addLayout(buttons)

        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.bar.setFormat("Idle")
        lay.addWidget(self.bar)
        info = QHBoxLayout()
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedSize(PREVIEW, PREVIEW)
        self.preview.setObjectName("refinePreview")
        self.preview.setToolTip("The stage being refined, every few steps")
        self.preview.hide()
        self.detail = QLabel("")
        self.detail.setObjectName("hint")
        self.detail.setWordWrap(True)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        info.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        info.addWidget(self.detail, 1)
        lay.addLayout(info)
        lay.addStretch(1)

        document.refineStateChanged.connect(self._sync)
        document.refineProgress.connect(self._on_progress)
        document.refineFinished.connect(self._on_finished)
        document.modelChanged.connect(self._sync)
        document.artworkOpened.connect(self._sync)
        document.stageChanged.connect(lambda _k: self._sync_buttons())
        self._sync()

    def _on_steps(self, v: int) -> None:
        self.doc.settings.refine_steps = int(v)

    def _sync_buttons(self) -> None:
        can = self.doc.has_model and self.doc.targets is not None and not self.doc.refining
        self.refine_btn.setEnabled(can)
        self.cancel_btn.setEnabled(self.doc.refining)

    def _sync(self, *_args) -> None:
        self._sync_buttons()
        if self.doc.refining:
            self.bar.setValue(0)
            self.bar.setFormat("Starting…")
            self.preview.clear()
            self.preview.hide()

    def _on_progress(self, p: RefineProgress) -> None:
        self.bar.setValue(round(p.fraction * 1000))
        names = self.doc.transition_title(p.transition)
        self.bar.setFormat(f"{p.fraction * 100:.0f}%  ·  transition {p.transition + 1}/{p.transitions}")
        self.detail.setText(f"{names}\nstep {p.step}/{p.steps}   loss {p.loss:.4f}")
        if p.preview is not None:
            self.preview.setPixmap(thumbnail(to_rgb(p.preview), PREVIEW))
            self.preview.show()

    def _on_finished(self, completed: bool, message: str) -> None:
        self._sync_buttons()
        self.bar.setValue(1000 if completed else 0)
        self.bar.setFormat("Done" if completed else "Cancelled")
        self.detail.setText(message)
