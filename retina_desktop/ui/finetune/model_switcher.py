"""Switching the app's model: activating a store version (after a fine-tune run that passed the gate, or from
*Models…*), and re-predicting the images nobody reviewed yet with it (a run of the prediction controller)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QPushButton, QWidget

from ...core.model.model_service import ModelHolder
from ...core.review.review_session import ReviewSession
from ...core.workspace import ImageEntry, Workspace
from ..common.words import count
from ..common.workers import Worker
from .models_dialog import ModelsDialog

if TYPE_CHECKING:
    from model_core.model_store import ModelVersion

# The prediction controller's run of the images not yet reviewed: (workspace, entries) -> its worker, or None.
Repredict = Callable[[Workspace, list[ImageEntry]], Worker | None]


def switch_words(versions: Sequence[ModelVersion], before: ModelVersion | None, after: ModelVersion) -> str:
    """What a switch in the Models dialog did, naming both versions: "Rolled back from v005 to v003" when the
    chosen one is older than the one in use (the store lists them oldest first)."""
    ids = [v.id for v in versions]
    if before is None or before.id == after.id or before.id not in ids or after.id not in ids:
        return f"Now using model {after.name}"
    verb = "Rolled back" if ids.index(after.id) < ids.index(before.id) else "Switched"
    return f"{verb} from model {before.name} to {after.name}"


class ModelSwitcher(QObject):
    """``model_switched(path)`` after every switch: the root has the prediction feature load the new model."""

    model_switched = Signal(str)  # the checkpoint path now used

    def __init__(
        self,
        model: ModelHolder,
        review: ReviewSession,
        repredict: Repredict,
        repredict_button: QPushButton,
        busy: Callable[[], bool],
        show_message: Callable[[str, str], None],
        show_status: Callable[[str, int], None],
        dialog_parent: QWidget,
    ) -> None:
        super().__init__(dialog_parent)
        self.model, self.review, self._repredict = model, review, repredict
        self.repredict_button = repredict_button  # offers the re-predict run after a switch
        self.busy = busy  # a fine-tune run is going on: no switching meanwhile
        self.show_message, self.show_status = show_message, show_status
        self.dialog_parent = dialog_parent
        self.models_dialog: ModelsDialog | None = None

    def activate_version(self, version_id: str) -> None:
        """Make a store version active and have the app use it (drops the loaded model; the root reloads)."""
        version = self.model.store.activate(version_id)
        self.model.switch_to(None)  # follow the store from now on (also after --weights)
        unreviewed = len(self.review.unreviewed())
        self.repredict_button.setText(f"Re-predict {count(unreviewed, 'image')} not yet reviewed with {version.name}")
        self.repredict_button.setVisible(unreviewed > 0)
        self.model_switched.emit(str(version.path))

    def repredict_unreviewed(self) -> Worker | None:
        """Predict the images not yet edited or approved with the model now active (the prediction controller's run)."""
        workspace = self.review.workspace
        if workspace is None:
            return None
        worker = self._repredict(workspace, self.review.unreviewed())
        if worker is not None:
            self.repredict_button.hide()
        return worker

    def open_models_dialog(self) -> ModelsDialog:
        active = self.model.active_version()
        explicit = self.model.checkpoint_path() if self.model.explicit else None
        dlg = ModelsDialog(self.model.store, active.id if active else None, explicit, self.dialog_parent)
        dlg.version_chosen.connect(lambda vid, d=dlg: self._choose_version(d, vid))
        # Ticked "then re-predict" in the dialog: the same run as the banner's Re-predict button.
        dlg.repredict_requested.connect(lambda _vid: self.repredict_unreviewed())
        dlg.finished.connect(lambda _r: setattr(self, "models_dialog", None))
        self.models_dialog = dlg
        dlg.open()
        return dlg

    def _choose_version(self, dlg: ModelsDialog, version_id: str) -> None:
        if self.busy():
            self.show_message("Wait for the fine-tune run to finish (or cancel it) before switching models.", "info")
            return
        before = self.model.active_version()
        try:
            self.activate_version(version_id)
        except (OSError, KeyError) as exc:
            self.show_message(f"Could not switch to {version_id}: {exc}", "error")
            return
        dlg.fill(version_id)
        # The fine-tune panel is not reopened: switching versions is no fine-tune run (issue 13's review window).
        store = self.model.store
        self.show_status(switch_words(store.versions(), before, store.get(version_id)), 5000)
