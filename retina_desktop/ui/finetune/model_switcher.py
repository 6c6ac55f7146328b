"""Switching the app's model: activating a store version (after a fine-tune run that passed the gate, or from
*Models…*), and re-predicting the images nobody reviewed yet with it (a run of the prediction controller)."""

from __future__ import annotations

from ..common.words import count
from ..common.workers import Worker
from .models_dialog import ModelsDialog


def switch_words(versions: list, before, after) -> str:
    """What a switch in the Models dialog did, naming both versions: "Rolled back from v005 to v003" when the
    chosen one is older than the one in use (the store lists them oldest first)."""
    ids = [v.id for v in versions]
    if before is None or before.id == after.id or before.id not in ids or after.id not in ids:
        return f"Now using model {after.name}"
    verb = "Rolled back" if ids.index(after.id) < ids.index(before.id) else "Switched"
    return f"{verb} from model {before.name} to {after.name}"


class ModelSwitcher:
    def __init__(self, ctl):
        self.ctl = ctl  # the FinetuneController: its panel, dock, store and model_switched signal
        self.window = ctl.window
        self.models_dialog: ModelsDialog | None = None

    def activate_version(self, version_id: str) -> None:
        """Make a store version active and have the app use it (drops the loaded model, reloads)."""
        version = self.ctl.store.activate(version_id)
        self.window.model.switch_to(None)  # follow the store from now on (also after --weights)
        self.window.switch_model()
        unreviewed = len(self.window.review.unreviewed())
        self.ctl.panel.repredict_button.setText(
            f"Re-predict {count(unreviewed, 'image')} not yet reviewed with {version.name}"
        )
        self.ctl.panel.repredict_button.setVisible(unreviewed > 0)
        self.ctl.model_switched.emit(str(version.path))

    def repredict_unreviewed(self) -> Worker | None:
        """Predict the images not yet edited or approved with the model now active (the prediction controller's run)."""
        w = self.window
        if w.workspace is None:
            return None
        worker = w.prediction.repredict(w.workspace, w.review.unreviewed())
        if worker is not None:
            self.ctl.panel.repredict_button.hide()
        return worker

    def open_models_dialog(self) -> ModelsDialog:
        holder = self.window.model
        active = holder.active_version()
        explicit = holder.checkpoint_path() if holder.explicit else None
        dlg = ModelsDialog(self.ctl.store, active.id if active else None, explicit, self.window)
        dlg.version_chosen.connect(lambda vid, d=dlg: self._choose_version(d, vid))
        # Ticked "then re-predict" in the dialog: the same run as the banner's Re-predict button.
        dlg.repredict_requested.connect(lambda _vid: self.repredict_unreviewed())
        dlg.finished.connect(lambda _r: setattr(self, "models_dialog", None))
        self.models_dialog = dlg
        dlg.open()
        return dlg

    def _choose_version(self, dlg: ModelsDialog, version_id: str) -> None:
        if self.ctl.running:
            self.window.show_message(
                "Wait for the fine-tune run to finish (or cancel it) before switching models.", "info"
            )
            return
        before = self.window.model.active_version()
        try:
            self.activate_version(version_id)
        except (OSError, KeyError) as exc:
            self.window.show_message(f"Could not switch to {version_id}: {exc}")
            return
        dlg.fill(version_id)
        # The fine-tune panel is not reopened: switching versions is no fine-tune run (issue 13's review window).
        self.window.statusBar().showMessage(
            switch_words(self.ctl.store.versions(), before, self.ctl.store.get(version_id)), 5000
        )
