"""numpy uint8 images <-> QImage/QPixmap (copies, so Qt never points into numpy memory)."""

from __future__ import annotations

import numpy as np
import qimage2ndarray
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

from app.layers import reduced


def rgb_to_qimage(a: np.ndarray) -> QImage:
    """(H, W, 3) uint8 -> QImage RGB888 (a deep copy)."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h, w = a.shape[:2]
    if a.ndim == 2:
        return QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def qimage_to_rgb(img: QImage) -> np.ndarray:
    """QImage (any format) -> (H, W, 3) uint8."""
    # qimage2ndarray's view handles the row padding and byte order of Qt's 32-bit formats.
    # The converted image must outlive the view (the view does not keep it alive).
    rgb32 = img.convertToFormat(QImage.Format.Format_RGB32)
    return qimage2ndarray.rgb_view(rgb32).copy()


def thumbnail(a: np.ndarray, size: int) -> QPixmap:
    """A smooth thumbnail of an (H, W, 3) image, `size` px on its longest side."""
    img = rgb_to_qimage(reduced(a, size))
    return QPixmap.fromImage(img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation))
