"""Qt's own console messages: platform-plugin chatter is dropped, real warnings go to the `qt` logger.

Qt prints from its plugins whatever they cannot do ("This plugin does not support propagateSizeHints()" from the
offscreen and Wayland plugins, font and xcb notes under `qt.qpa.*`); none of it is the artist's business and it
buries Artflow's own one-line errors. With ARTFLOW_DEBUG set every message is kept.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QtMsgType, qInstallMessageHandler

log = logging.getLogger("qt")

# Categories whose messages are plugin chatter, and messages known to be harmless whatever their category.
NOISE_CATEGORIES = ("qt.qpa.", "qt.text.font.", "qt.svg", "qt.accessibility.", "qt.pointer.", "qt.xkb.")
NOISE_MESSAGES = ("propagateSizeHints", "QStandardPaths: XDG_RUNTIME_DIR", "Populating font family aliases",
                  "This plugin does not support")

_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


def is_noise(category: str, message: str) -> bool:
    return category.startswith(NOISE_CATEGORIES) or any(m in message for m in NOISE_MESSAGES)


def _handle(msg_type: QtMsgType, context, message: str) -> None:
    category = (getattr(context, "category", None) or "default") if context is not None else "default"
    debug = bool(os.environ.get("ARTFLOW_DEBUG"))
    if is_noise(category, message) and not debug:
        return
    level = _LEVELS.get(msg_type, logging.WARNING)
    if level < logging.WARNING and not debug:
        return
    log.log(level, "%s%s", "" if category == "default" else f"[{category}] ", message)


def install() -> None:
    """Route Qt's messages through `_handle` (call before the QApplication exists: plugins speak as they load)."""
    qInstallMessageHandler(_handle)
