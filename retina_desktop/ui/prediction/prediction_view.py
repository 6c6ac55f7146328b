"""What the window shows of the model and of prediction runs: the status bar's model, the open image's new
prediction, a run's progress and its outcome in the banner. The runs themselves are the
``PredictionController``'s; the mask and threshold are the ``ReviewSession``'s.

The composition root (``ui.app``) builds the view from the parts it shows things in, and connects its events:
``prediction_shown(key)`` (the open image's new prediction is on screen), ``batch_finished(summary)`` and
``model_activated()`` (a model switch is loaded: every score of the previous model is out of date)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from PySide6.QtCore import QObject, Signal

from ...core.model.model_service import ModelInfo
from ...core.model.tasks import PredictionFailure, PredictionResult
from ...core.review.review_session import ReviewSession
from ..common.context import Progress
from .prediction_controller import BatchSummary, PredictionController


class ModelStatus(Protocol):
    """The status bar's read-out of the model in use."""

    def show_model(self, description: str | None, tooltip: str = "", device: str = "") -> None: ...
    def show_loading(self) -> None: ...


class ImageRows(Protocol):
    """The image list's rows: a row's prediction error, and its status read again."""

    def set_error(self, key: str, message: str | None) -> None: ...
    def refresh(self, key: str) -> None: ...


class PredictionView(QObject):
    prediction_shown = Signal(str)  # key
    batch_finished = Signal(object)  # BatchSummary, after the banner and the status bar said it
    model_activated = Signal()

    def __init__(
        self,
        prediction: PredictionController,
        review: ReviewSession,
        rows: ImageRows,
        model_status: ModelStatus,
        show_probability: Callable[[np.ndarray | None], None],
        show_message: Callable[[str, str], None],
        show_status: Callable[[str, int], None],
        progress: Progress,
        report_error: Callable[[str, str], None],
        showing_error: Callable[[], bool],
        refresh_controls: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        """``show_probability``: the canvas's heat map of the open image; ``showing_error()``: the banner shows an
        error (a batch's "done" does not supersede it); ``report_error(title, text)``: an error the grader must
        acknowledge (the prompter's); ``refresh_controls()``: the window's actions and title."""
        super().__init__(parent)
        self.prediction, self.review, self.rows, self.model_status = prediction, review, rows, model_status
        self.show_probability, self.show_message, self.show_status = show_probability, show_message, show_status
        self.progress, self.report_error = progress, report_error
        self.showing_error, self.refresh_controls = showing_error, refresh_controls
        p = prediction
        p.model_loaded.connect(self.model_loaded)
        p.model_failed.connect(self.model_failed)
        p.result.connect(self.prediction_arrived)
        p.failure.connect(self.prediction_failed)
        p.error.connect(lambda text: show_message(text, "error"))
        p.batch_progress.connect(progress.show)
        p.batch_finished.connect(self._batch_finished)
        p.busy_changed.connect(refresh_controls)

    def model_loaded(self, info: ModelInfo, activated: bool) -> None:
        self.model_status.show_model(info.description, str(info.path), info.device)
        self.review.model_loaded(info.threshold, activated, self.model_name(info) if activated else None)
        if activated and self.review.image is not None:
            # The open image is predicted again with this model, edited or not (an edited mask stays on
            # screen): its scores, measures and Dice were the previous model's until a restart (issue 27).
            self.predict_current()
        if activated:
            self.model_activated.emit()  # every image's Dice in the list was against the previous model

    def model_name(self, info: ModelInfo) -> str:
        """What the grader chose the model as: the store version's name ("v003"), else the checkpoint's."""
        try:
            version = self.prediction.model.active_version()
        except (OSError, ValueError, KeyError):
            version = None
        return f"model {version.name}" if version is not None else info.description

    def model_failed(self, message: str) -> None:
        self.model_status.show_model(None, message)
        self.show_message(f"No model: {message}. You can still view, paint and save masks.", "warning")

    def switch_model(self) -> None:
        """The active model changed (``model.switch_to`` was called): load it; its threshold applies (README)."""
        self.model_status.show_loading()
        self.prediction.load_model(activated=True)

    def predict_current(self) -> None:
        s, ws = self.review.image, self.review.workspace
        if s is None or ws is None:
            return
        error = self.prediction.model_error
        if error is not None:
            self.show_message(f"No model: {error}. You can still view, paint and save masks.", "warning")
            return
        if self.prediction.predict_one(ws, s.entry) is not None:
            self.show_status(f"Predicting {s.entry.name}…", 0)

    def predict_all(self) -> None:
        ws = self.review.workspace
        if ws is None or self.prediction.batch_running:
            return
        error = self.prediction.model_error
        if error is not None:
            self.report_error("Predict all", f"No model is available: {error}")
            return
        self.prediction.predict_all(ws)

    def _batch_finished(self, summary: BatchSummary) -> None:
        if self.review.workspace is not None:
            self.review.workspace.flush()
        self.progress.hide()
        text = summary.text()
        if summary.failed:
            self.show_message(text, "warning")
        elif not self.showing_error():
            self.show_message(text, "info")  # says it is done, and supersedes an older batch's message
        self.show_status(text.split(" (")[0], 8000)
        self.refresh_controls()
        self.batch_finished.emit(summary)

    def prediction_failed(self, item: PredictionFailure) -> None:
        if not self.review.has_key(item.key):
            return
        self.rows.set_error(item.key, item.message)
        s = self.review.image
        if s is not None and s.key == item.key:
            self.show_message(item.message, "error")

    def prediction_arrived(self, result: PredictionResult) -> None:
        if self.review.has_key(result.key):
            self.rows.set_error(result.key, None)
            self.rows.refresh(result.key)
        if self.review.prediction_arrived(result) == "other":
            return
        self.show_probability(result.probability)
        s = self.review.image
        if s is not None and s.document.source == "prediction":
            self.show_status(f"Prediction shown ({result.model})", 3000)
        else:  # a reference or edited mask stays on screen: say where the new prediction can be seen
            self.show_status(
                f"Prediction updated ({result.model}); your mask on screen is unchanged. "
                "H shows it as a heat map, K switches the shown mask to it",
                8000,
            )
        self.prediction_shown.emit(result.key)  # the root refreshes the threshold, actions and measurements first
