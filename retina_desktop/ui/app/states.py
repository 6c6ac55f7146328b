"""What the window's actions, buttons and title say about the open image: enabled or not, its status line, the
workspace and image in the title, its unsaved edits as the title's modified mark."""

from __future__ import annotations

from PySide6.QtWidgets import QMainWindow

from ... import APP_NAME
from ...core.review.review_session import ReviewSession
from ..prediction.prediction_controller import PredictionController
from ..review.review_panel import ReviewPanel
from .actions import Actions
from .export_controller import ExportController


class ActionStates:
    def __init__(
        self,
        window: QMainWindow,
        review: ReviewSession,
        actions: Actions,
        panel: ReviewPanel,
        export: ExportController,
        prediction: PredictionController,
    ) -> None:
        self.window, self.review, self.actions, self.panel = window, review, actions, panel
        self.export, self.prediction = export, prediction

    def update(self) -> None:
        a, p, ws, image = self.actions, self.panel, self.review.workspace, self.review.image
        doc = image.document if image is not None else None
        has = image is not None
        a.undo.setEnabled(bool(doc and doc.can_undo))
        a.redo.setEnabled(bool(doc and doc.can_redo))
        writable = bool(ws and ws.gt_writable)
        for w in (a.save, a.approve, p.save_button, p.approve_button):
            w.setEnabled(has and writable)
        a.remove_small.setEnabled(has)
        p.remove_small_button.setEnabled(has)
        a.export.setEnabled(ws is not None and not self.export.running)
        a.predict_all.setEnabled(ws is not None and not self.prediction.batch_running)
        a.predict.setEnabled(has)
        if image is not None and doc is not None and ws is not None:
            p.image_status_label.setText(ws.status(image.key) + (" (unsaved edits)" if doc.unsaved else ""))
            p.mask_source_label.setText(doc.source)
        self._update_title()

    def _update_title(self) -> None:
        parts = [APP_NAME]
        ws, image = self.review.workspace, self.review.image
        if ws is not None:
            parts.append(ws.title)
        if image is not None:
            parts.append(image.entry.name + "[*]")
        self.window.setWindowTitle(" — ".join(parts))
        self.window.setWindowModified(image is not None and image.document.unsaved)
