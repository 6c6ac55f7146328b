"""The status bar's permanent parts: the pixel under the cursor, the progress of a long run with its Cancel,
and the model in use."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QLabel, QProgressBar, QStatusBar, QToolButton

from ..prediction.prediction_controller import PredictionController
from .export_controller import ExportController


class StatusPanel:
    def __init__(self, bar: QStatusBar):
        self.bar = bar
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(320)
        bar.addWidget(self.cursor_label, 1)
        self.progress_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        for w in self._progress_widgets:
            w.hide()
            bar.addPermanentWidget(w)
        self.model_label = QLabel("Model: loading…")
        self.model_label.setObjectName("model_label")
        self.device_label = QLabel("")
        self.device_label.setObjectName("device_label")
        # A rule before it: a long message to its left would otherwise read on into "Model: …" as one sentence.
        self.model_rule = QFrame()
        self.model_rule.setFrameShape(QFrame.Shape.VLine)
        self.model_rule.setFrameShadow(QFrame.Shadow.Sunken)
        bar.addPermanentWidget(self.model_rule)
        bar.addPermanentWidget(self.model_label)
        bar.addPermanentWidget(self.device_label)

    @property
    def _progress_widgets(self):
        return self.progress_label, self.progress_bar, self.cancel_button

    def show_progress(self, label: str, done: int, total: int, text: str = "") -> None:
        self.progress_label.setText(f"{label} {text}".strip())
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{done}/{total}")
        for w in self._progress_widgets:
            w.show()

    def hide_progress(self) -> None:
        for w in self._progress_widgets:
            w.hide()

    def show_model(self, description: str | None, tooltip: str = "", device: str = "") -> None:
        """``description`` None: no model (the tooltip says why)."""
        self.model_label.setText(f"Model: {description}" if description else "Model: none")
        self.model_label.setToolTip(tooltip)
        self.device_label.setText(device)

    def show_loading(self) -> None:
        self.model_label.setText("Model: loading…")


class LongRuns:
    """The long runs that show their progress in the status bar (Predict all, Re-predict, export): the bar hides
    when the last one ends, and Cancel stops them all."""

    def __init__(self, panel: StatusPanel, prediction: PredictionController, export: ExportController) -> None:
        self.panel, self.prediction, self.export = panel, prediction, export
        panel.cancel_button.clicked.connect(self.cancel)
        export.progress.connect(panel.show_progress)

    def hide_progress(self) -> None:
        if not self.prediction.batch_running and not self.export.running:
            self.panel.hide_progress()

    def cancel(self) -> None:
        self.prediction.cancel()
        self.export.cancel()
        self.panel.progress_label.setText("Cancelling…")
