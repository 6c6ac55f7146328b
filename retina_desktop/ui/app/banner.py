"""The one-line message banner, drawn over the top edge of the image view.

An overlay rather than a row of the layout: a message that appears or goes never moves the image or
changes its zoom. A message stays until something supersedes it (the next message, the next edit,
the next image) or the grader clicks it away.

A *pinned* message (``pin``) is about something still going on, with buttons that act on it (Keep learning's
"…in the background [Stop]"): other messages show over it, and when they are dismissed it comes back, until its
owner ``unpin``s it. So the next brush stroke or image, which dismiss ordinary messages, never hide its Stop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

BannerButtons = Sequence[tuple[str, Callable[[], object]]]  # (label, what a click does)

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
        self._pinned: tuple[str, str, BannerButtons] | None = None
        self.showing_pinned = False
        self.button_row = QWidget(self)
        self._button_layout = QHBoxLayout(self.button_row)
        self._button_layout.setContentsMargins(0, 0, 6, 0)
        self.button_row.hide()
        self.buttons: dict[str, QPushButton] = {}  # by label, while shown (tests click them)
        host.installEventFilter(self)
        self.hide()

    def show_text(self, text: str, level: str = "error", buttons: BannerButtons = ()) -> None:
        """Show ``text`` (an empty one: dismiss), with a button for each of ``buttons``."""
        if not text:
            self.dismiss()
            return
        self._show(text, level, buttons)
        self.showing_pinned = False

    def pin(self, text: str, level: str, buttons: BannerButtons = ()) -> None:
        """Show ``text`` and come back to it whenever a later message is dismissed, until ``unpin``."""
        self._pinned = (text, level, tuple(buttons))
        self._show(text, level, buttons)
        self.showing_pinned = True

    def unpin(self) -> None:
        """The pinned message's matter is over: it goes (a message shown over it stays)."""
        showing, self._pinned = self.showing_pinned, None
        if showing:
            self.dismiss()

    def dismiss(self) -> None:
        if self._pinned is not None:
            self._show(*self._pinned)
            self.showing_pinned = True
            return
        self.showing_pinned = False
        self.level = ""
        self.clear()
        self._set_buttons(())
        self.hide()

    def _show(self, text: str, level: str, buttons: BannerButtons) -> None:
        bg, fg = COLOURS.get(level, COLOURS["info"])
        self.setStyleSheet(
            f"QLabel {{ background: {bg}; color: {fg}; padding: 6px 10px; }} "
            f"QPushButton {{ background: {fg}; color: {bg}; padding: 2px 10px; }}"
        )
        self.level = level
        self.setText(text)
        self._set_buttons(buttons)
        self._place()
        self.show()
        self.raise_()

    def _set_buttons(self, buttons: BannerButtons) -> None:
        layout = self._button_layout
        for old in self.buttons.values():
            layout.removeWidget(old)
            old.hide()
            old.deleteLater()  # later: this may run inside one of these buttons' own click
        self.buttons = {}
        for label, act in buttons:
            b = QPushButton(label, self.button_row)
            b.setObjectName("banner_button")
            b.setCursor(Qt.CursorShape.PointingHandCursor)
            b.clicked.connect(lambda _checked=False, act=act: act())
            layout.addWidget(b)
            b.show()  # not hidden, so the row's layout sizes it even while the banner itself is hidden
            self.buttons[label] = b
        self.button_row.setVisible(bool(self.buttons))
        self.button_row.adjustSize()
        # The text wraps before the buttons instead of running under them.
        self.setContentsMargins(0, 0, self.button_row.sizeHint().width() if self.buttons else 0, 0)

    def mouseDoubleClickEvent(self, event) -> None:
        self.dismiss()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self._host and event.type() == QEvent.Type.Resize:
            self._place()
        return False

    def _place(self) -> None:
        w = self._host.width()
        h = self.heightForWidth(w) if self.text() else 0
        if self.buttons:
            row = self.button_row.sizeHint()
            h = max(h, row.height() + 8)
            self.button_row.setGeometry(w - row.width(), (h - row.height()) // 2, row.width(), row.height())
        self.setGeometry(0, 0, w, h)
