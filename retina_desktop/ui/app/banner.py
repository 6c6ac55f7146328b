"""The one-line message banner, drawn over the top edge of the image view.

An overlay rather than a row of the layout: a message that appears or goes never moves the image or
changes its zoom. A message stays until something supersedes it (the next message, the next edit,
the next image) or the grader clicks it away.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QLabel, QWidget

COLOURS = {"error": ("#5c1f1f", "#ffd9d6"), "warning": ("#5a4a12", "#fff1c2"), "info": ("#1f3b5c", "#d6e9ff")}


class MessageBanner(QLabel):
    def __init__(self, host: QWidget):
        super().__init__(host)
        self.setObjectName("message_banner")
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setToolTip("Double-click to dismiss")
        self.level = ""
        self._host = host
        host.installEventFilter(self)
        self.hide()

    def show_text(self, text: str, level: str = "error") -> None:
        bg, fg = COLOURS.get(level, COLOURS["info"])
        self.setStyleSheet(f"QLabel {{ background: {bg}; color: {fg}; padding: 6px 10px; }}")
        self.level = level if text else ""
        self.setText(text)
        self._place()
        self.setVisible(bool(text))
        self.raise_()

    def dismiss(self) -> None:
        self.level = ""
        self.clear()
        self.hide()

    def mouseDoubleClickEvent(self, event) -> None:
        self.dismiss()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self._host and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        w = self._host.width()
        self.setGeometry(0, 0, w, self.heightForWidth(w) if self.text() else 0)
