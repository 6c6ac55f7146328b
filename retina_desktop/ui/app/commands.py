"""The menu commands that are no single part's: approve and move on, the autosave timer, export, preferences,
starting over from the prediction."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QStatusBar, QWidget

from ...core.review.export import ExportOptions, ExportSummary
from ...core.review.review_session import ReviewSession
from ..common.settings import AppSettings
from ..common.workers import Worker
from .banner import MessageBanner
from .dialogs import PreferencesDialog
from .export_controller import ExportController
from .save_flow import SaveFlow


class Commands:
    def __init__(
        self,
        review: ReviewSession,
        saving: SaveFlow,
        export: ExportController,
        settings: AppSettings,
        banner: MessageBanner,
        status_bar: QStatusBar,
        show_message: Callable[[str, str], None],
        step_image: Callable[[int], None],
        parent: QWidget,
    ) -> None:
        """``parent``: of the dialogs and the autosave timer."""
        self.review, self.saving, self.export, self.settings = review, saving, export, settings
        self.banner, self.status_bar, self.show_message, self.step_image = banner, status_bar, show_message, step_image
        self.parent = parent
        self.autosave_timer = QTimer(parent)
        self.autosave_timer.setInterval(settings.autosave_seconds * 1000)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        export.finished.connect(self._export_finished)

    def autosave(self) -> None:
        s, ws = self.review.image, self.review.workspace
        if s is None or not s.document.unsaved or not (ws and ws.gt_writable):
            return
        if QApplication.mouseButtons() != Qt.MouseButton.NoButton:
            return  # never in the middle of a stroke
        self.saving.autosave_in_background()

    def approve_current(self) -> None:
        s = self.review.image
        if s is None or self.review.workspace is None:
            return
        if self.review.needs_save_before_approve() and not self.saving.save_current(auto=False):
            return
        if not self.saving.approve():
            return
        self.status_bar.showMessage(f"Approved {s.entry.name}", 3000)
        if self.banner.level in ("warning", "info"):
            self.banner.dismiss()
        if self.settings.advance_after_approve:
            self.step_image(+1)

    def start_from_prediction(self) -> None:
        if self.review.start_from_prediction():
            self.show_message(
                "The mask on screen is the model's prediction now (Undo goes back); the mask on disk "
                "is replaced only when you save.",
                "info",
            )
        else:
            self.show_message("There is no prediction of this image yet: predict it first (Ctrl+R).", "warning")

    def export_dialog(self) -> None:
        ws = self.review.workspace
        if ws is None:
            return
        self.saving.save_current(auto=True)
        options = self.export.ask(self.parent, ws, self.settings)
        if options is not None:
            self.export_to(options)

    def export_to(self, options: ExportOptions) -> Worker | None:
        ws = self.review.workspace
        return self.export.start(ws, options) if ws is not None else None

    def _export_finished(self, result: ExportSummary | str) -> None:
        if isinstance(result, str):
            self.show_message(f"Export failed: {result}", "error")
        else:
            self.show_message(result.text().replace("\n", " · "), "info")

    def preferences(self) -> None:
        dlg = PreferencesDialog(self.settings, self.parent)
        if dlg.exec():
            dlg.apply()
            self.autosave_timer.setInterval(self.settings.autosave_seconds * 1000)
