"""What the composition root (``ui.app.main_window.MainWindow``) hands the window's features: the few shared
parts several of them use. A feature takes the parts it needs in its constructor, never the window."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from ...core.review.review_session import ReviewSession
from .image_ready import ImageReadiness
from .prompter import Prompter
from .settings import AppSettings
from .workers import TaskRunner

Shortcut = str | QKeySequence.StandardKey | Sequence[str] | None


class ActionRegistry:
    """Makes the window's actions: a window-wide shortcut, a tooltip that names it, the slot connected."""

    def __init__(self, owner: QWidget) -> None:
        self._owner = owner

    def add(
        self, text: str, slot: Callable[..., object], shortcut: Shortcut = None, checkable: bool = False, tip: str = ""
    ) -> QAction:
        a = QAction(text, self._owner)
        if shortcut is None:
            shortcuts = []
        elif isinstance(shortcut, (str, QKeySequence.StandardKey)):
            shortcuts = [_key(shortcut)]
        else:
            shortcuts = [_key(s) for s in shortcut]
        if shortcuts:
            a.setShortcuts(shortcuts)
            # Window-wide, so keys work whichever panel has focus.
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.setCheckable(checkable)
        if tip or shortcuts:
            keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in shortcuts)
            a.setToolTip(f"{tip or text}" + (f" ({keys})" if keys else ""))
        if checkable:
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda _checked=False: slot())
        self._owner.addAction(a)
        return a


def _key(shortcut: str | QKeySequence.StandardKey) -> QKeySequence:
    if isinstance(shortcut, str):  # one overload each: mypy takes neither for the union
        return QKeySequence(shortcut)
    return QKeySequence(shortcut)


@dataclass
class Progress:
    """The status bar's progress of a long run: ``show(label, done, total, text)``, ``hide()`` (when nothing
    else is running)."""

    show: Callable[[str, int, int, str], None]
    hide: Callable[[], None]


@dataclass
class AppContext:
    review: ReviewSession
    tasks: TaskRunner
    # The PredictionController (ui.prediction): typed loosely, as common/ knows no feature.
    prediction: Any
    settings: AppSettings
    prompter: Prompter
    show_message: Callable[[str, str], None]  # (text, level): the banner over the image and the status bar
    show_status: Callable[[str, int], None]  # (text, milliseconds): the status bar alone
    actions: ActionRegistry
    image_ready: ImageReadiness  # the open image's prediction is on screen (or will not come)
    progress: Progress
