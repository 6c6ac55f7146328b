"""The mouse wheel over a panel scrolls the panel; it changes a combo box, slider or spin box only once the grader
has clicked (or tabbed) into it.

Scrolling the Review panel with the wheel passed over *Brush from* and silently changed it from "second
grader" to "model prediction" (issue 27). The controls take focus only by click or tab (Qt.StrongFocus),
and a wheel event over one without focus is ignored, so it goes on to the scroll area around it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QComboBox, QWidget

GUARDED = (QComboBox, QAbstractSlider, QAbstractSpinBox)


class WheelGuard(QObject):
    """An event filter: a wheel event over an unfocused control is handed to its parents instead."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(obj, QWidget) and not obj.hasFocus():
            event.ignore()  # ignored, not consumed: Qt offers it to the parent (the panel's scroll area)
            return True
        return False


def guard_wheel(root: QWidget, guard: WheelGuard) -> int:
    """Guard every combo box, slider and spin box under ``root`` (once each); returns how many were new."""
    count = 0
    for widget in root.findChildren(QWidget):
        if isinstance(widget, GUARDED) and not widget.property("wheel_guarded"):
            widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            widget.installEventFilter(guard)
            widget.setProperty("wheel_guarded", True)
            count += 1
    return count
