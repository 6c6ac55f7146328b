"""When the open image is *ready*: on screen with its prediction, or without one for good (no model, the
prediction failed). The vessel tools, compare mode and the measurements start their work then, not at the
image's opening: at launch their workers took the CPU the first prediction needed (issue 27)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class ImageReadiness(QObject):
    """``ready(key)`` once per opened image, at the first of: opened with a cached prediction, its prediction
    shown, its prediction failed, no model to predict it with."""

    ready = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._waiting: str | None = None  # the key opened and not yet ready
        self.ready_key: str | None = None  # the key last announced ready (None after a close)

    def opened(self, key: str, has_prediction: bool) -> None:
        self._waiting, self.ready_key = key, None
        if has_prediction:
            self.settle(key)

    def closed(self) -> None:
        self._waiting, self.ready_key = None, None

    def settle(self, key: str | None) -> None:
        """The prediction of ``key`` is on screen, or will not come; nothing when ``key`` is not the one waiting."""
        if key is not None and key == self._waiting:
            self._waiting, self.ready_key = None, key
            self.ready.emit(key)
