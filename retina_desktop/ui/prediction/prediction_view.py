"""What the window shows of the model and of prediction runs: the status bar's model, the open image's new
prediction, a run's progress and its outcome in the banner. The runs themselves are the
``PredictionController``'s; the mask and threshold are the ``ReviewSession``'s."""

from __future__ import annotations

from ...core.model.model_service import ModelInfo
from ...core.model.tasks import PredictionFailure, PredictionResult
from .prediction_controller import BatchSummary


class PredictionView:
    def __init__(self, window):
        self.w = window
        p = window.prediction
        p.model_loaded.connect(self.model_loaded)
        p.model_failed.connect(self.model_failed)
        p.result.connect(self.prediction_arrived)
        p.failure.connect(self.prediction_failed)
        p.error.connect(window.show_message)
        p.batch_progress.connect(window.status_panel.show_progress)
        p.batch_finished.connect(self.batch_finished)
        p.busy_changed.connect(window.update_actions)

    def model_loaded(self, info: ModelInfo, activated: bool) -> None:
        w = self.w
        w.status_panel.show_model(info.description, str(info.path), info.device)
        w.review.model_loaded(info.threshold, activated, self.model_name(info) if activated else None)
        if activated and w.session is not None:
            # The open image is predicted again with this model, edited or not (an edited mask stays on
            # screen): its scores, measures and Dice were the previous model's until a restart (issue 27).
            self.predict_current()
        if activated:
            compare = getattr(w, "compare", None)
            if compare is not None:
                compare.refresh_dice()  # every image's Dice in the list was against the previous model

    def model_name(self, info: ModelInfo) -> str:
        """What the grader chose the model as: the store version's name ("v003"), else the checkpoint's."""
        try:
            version = self.w.model.active_version()
        except (OSError, ValueError, KeyError):
            version = None
        return f"model {version.name}" if version is not None else info.description

    def model_failed(self, message: str) -> None:
        self.w.status_panel.show_model(None, message)
        self.w.show_message(f"No model: {message}. You can still view, paint and save masks.", "warning")

    def switch_model(self) -> None:
        """The active model changed (``model.switch_to`` was called): load it; its threshold applies (README)."""
        self.w.status_panel.show_loading()
        self.w.prediction.load_model(activated=True)

    def predict_current(self) -> None:
        w, s = self.w, self.w.session
        if s is None or w.workspace is None:
            return
        if w.model_error is not None:
            w.show_message(f"No model: {w.model_error}. You can still view, paint and save masks.", "warning")
            return
        if w.prediction.predict_one(w.workspace, s.entry) is not None:
            w.statusBar().showMessage(f"Predicting {s.entry.name}…")

    def predict_all(self) -> None:
        w = self.w
        if w.workspace is None or w.prediction.batch_running:
            return
        if w.model_error is not None:
            w.prompter.error("Predict all", f"No model is available: {w.model_error}")
            return
        w.prediction.predict_all(w.workspace)

    def batch_finished(self, summary: BatchSummary) -> None:
        w = self.w
        if w.workspace is not None:
            w.workspace.flush()
        w.hide_progress()
        text = summary.text()
        if summary.failed:
            w.show_message(text, "warning")
        elif w.banner.level != "error":
            w.show_message(text, "info")  # says it is done, and supersedes an older batch's message
        w.statusBar().showMessage(text.split(" (")[0], 8000)
        w.update_actions()
        w.batch_finished.emit(summary)

    def prediction_failed(self, item: PredictionFailure) -> None:
        w = self.w
        if not w.review.has_key(item.key):
            return
        w.image_list.model.set_error(item.key, item.message)
        if w.session is not None and w.session.key == item.key:
            w.show_message(item.message)

    def prediction_arrived(self, result: PredictionResult) -> None:
        w = self.w
        if w.review.has_key(result.key):
            w.image_list.model.set_error(result.key, None)
            w.image_list.model.refresh(result.key)
        if w.review.prediction_arrived(result) == "other":
            return
        w.canvas.set_probability(result.probability)
        if w.session is not None and w.session.document.source == "prediction":
            w.statusBar().showMessage(f"Prediction shown ({result.model})", 3000)
        else:  # a reference or edited mask stays on screen: say where the new prediction can be seen
            w.statusBar().showMessage(
                f"Prediction updated ({result.model}); your mask on screen is unchanged. "
                "H shows it as a heat map, K switches the shown mask to it",
                8000,
            )
        w.show_threshold()
        w.update_actions()
        w.measure.schedule()
        w.prediction_shown.emit(result.key)
