"""A one-line label that never widens its panel: a name longer than the room it gets is elided in the middle
("5490928a…c1.png"), and the whole text is in its tooltip.

A word-wrapped QLabel asks for the width of its longest word: a file name or a history hash without spaces
made the Review panel wider than the window, and Approve and the scores went off its edge (issue 27).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

PREFERRED_CHARS = 24  # what the label asks for at most; it takes more when the layout has it to give
MINIMUM_CHARS = 6  # "ab…yz" still says something


class ElidedLabel(QWidget):
    """Shows ``text()`` on one line, elided in the middle to the width it is given; the tooltip has all of it
    (plus ``detail``, e.g. the file's path)."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._text = ""
        self._detail = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def text(self) -> str:
        return self._text

    def setText(self, text: str, detail: str = "") -> None:
        self._text, self._detail = str(text), str(detail)
        self.setToolTip("\n".join(t for t in (self._text, self._detail) if t and t != "–"))
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.setText("")

    def displayed_text(self) -> str:
        """What is painted at the current width (the whole text when it fits)."""
        return self.fontMetrics().elidedText(self._text, Qt.TextElideMode.ElideMiddle, max(0, self.width()))

    def is_elided(self) -> bool:
        return self.displayed_text() != self._text

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(min(fm.horizontalAdvance(self._text), fm.averageCharWidth() * PREFERRED_CHARS) + 2, fm.height())

    def minimumSizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.averageCharWidth() * MINIMUM_CHARS, fm.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setPen(self.palette().windowText().color())
        p.drawText(self.rect(), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), self.displayed_text())
        p.end()
