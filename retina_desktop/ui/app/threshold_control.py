"""The threshold slider: a move is applied 250 ms after the slider stops, and asks first when re-deriving the mask
would discard the grader's edits."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from ...core.review.review_session import ReviewSession
from ..common.prompter import Prompter
from ..review.review_panel import ReviewPanel

APPLY_AFTER_MS = 250


class ThresholdControl:
    def __init__(
        self,
        review: ReviewSession,
        panel: ReviewPanel,
        prompter: Callable[[], Prompter],
        remeasure: Callable[[], None],
        update_actions: Callable[[], None],
        parent: QObject,
    ) -> None:
        """``prompter``: read at each question (tests and the self-test put their own prompter on the window)."""
        self.review, self.panel, self._prompter = review, panel, prompter
        self.remeasure, self.update_actions = remeasure, update_actions
        self.timer = QTimer(parent, singleShot=True, interval=APPLY_AFTER_MS)
        self.timer.timeout.connect(lambda: self.apply(panel.threshold_slider.value() / 100.0))
        panel.threshold_slider.valueChanged.connect(self._slider_moved)
        review.threshold_changed.connect(lambda _t: self.show())

    def show(self) -> None:
        self.panel.show_threshold(self.review.threshold, self.review.threshold_overridden)

    def _slider_moved(self, value: int) -> None:
        self.panel.threshold_label.setText(f"{value / 100:.2f}")
        self.timer.start()

    def apply(self, t: float) -> bool:
        """Re-derive the open mask from the probabilities at ``t``; asks first if that discards edits."""
        question = self.review.threshold_question(t)
        if question is not None and not self._prompter().confirm(
            "Re-derive the mask?", question, ok_text="Replace mask", object_name="threshold_prompt"
        ):
            self.show()  # the slider goes back to the threshold the mask was cut at
            return False
        self.review.apply_threshold(t)
        self.show()
        self.remeasure()
        self.update_actions()
        return True
