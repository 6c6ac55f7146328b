"""``Prompter`` gathers every question the app asks, so there is one place that decides wording and buttons
(and tests can answer through the real message boxes)."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


class Prompter:
    def __init__(self, parent: QWidget | None) -> None:
        """``parent``: of the dialogs (None: top-level ones)."""
        self.parent = parent

    def ask_unsaved(self, image_name: str, can_save: bool = True) -> str:
        """'save', 'discard' or 'cancel'."""
        box = QMessageBox(self.parent)
        box.setObjectName("unsaved_edits_prompt")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Unsaved edits")
        box.setText(f"The mask of {image_name} has unsaved edits.")
        box.setInformativeText(
            "Save them as ground truth before closing?"
            if can_save
            else "This workspace is read-only, so they cannot be saved here."
        )
        buttons = QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
        if can_save:
            buttons |= QMessageBox.StandardButton.Save
        box.setStandardButtons(buttons)
        box.setDefaultButton(QMessageBox.StandardButton.Save if can_save else QMessageBox.StandardButton.Cancel)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save", QMessageBox.StandardButton.Discard: "discard"}.get(
            QMessageBox.StandardButton(answer), "cancel"
        )

    def confirm(self, title: str, text: str, ok_text: str = "OK", object_name: str = "confirm_prompt") -> bool:
        box = QMessageBox(self.parent)
        box.setObjectName(object_name)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(title)
        box.setText(text)
        ok = box.addButton(ok_text, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(ok)
        box.exec()
        return box.clickedButton() is ok

    def error(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self.parent)
        box.setObjectName("error_message")
        box.exec()

    def info(self, title: str, text: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self.parent)
        box.setObjectName("info_message")
        box.exec()

    def choose_folder(self, title: str, start: str = "") -> str:
        return QFileDialog.getExistingDirectory(self.parent, title, start)

    def _choice(
        self,
        object_name: str,
        icon,
        title: str,
        text: str,
        informative: str,
        buttons: list[tuple[str, str, QMessageBox.ButtonRole]],
        default: str,
    ) -> str:
        """A message box with named buttons; returns the name of the one clicked ("cancel" when closed)."""
        box = QMessageBox(self.parent)
        box.setObjectName(object_name)
        box.setIcon(icon)
        box.setWindowTitle(title)
        box.setText(text)
        box.setInformativeText(informative)
        made = {}
        for name, label, role in buttons:
            made[name] = box.addButton(label, role)
        if default in made:
            box.setDefaultButton(made[default])
        box.exec()
        return next((n for n, b in made.items() if box.clickedButton() is b), "cancel")

    def ask_conflict(self, image_name: str, message: str) -> str:
        """Another window or grader saved this image since it was opened: 'mine', 'theirs', 'both' (show
        their version over mine, nothing saved; the next save asks again) or 'cancel' (nothing saved; both stay
        in the history)."""
        R = QMessageBox.ButtonRole
        return self._choice(
            "conflict_prompt",
            QMessageBox.Icon.Warning,
            "Saved elsewhere meanwhile",
            f"{image_name} was saved by another window or grader since you opened it.",
            f"{message}.\n\nKeep mine: your mask becomes the newest version. Take theirs: their "
            "mask replaces yours on screen (Ctrl+Z brings yours back). View both: their version "
            "is drawn over yours and nothing is saved yet; save again when you have decided. "
            "Nothing is lost either way: both are in the History.",
            [
                ("mine", "Keep mine", R.AcceptRole),
                ("theirs", "Take theirs", R.AcceptRole),
                ("both", "View both", R.ActionRole),
                ("cancel", "Cancel", R.RejectRole),
            ],
            "mine",
        )

    def ask_dataset_masks(self, workspace_name: str) -> str:
        """The first save over a mask the workspace came with: 'overwrite', 'corrected' or 'cancel'. Asked once per
        workspace; the choice is remembered there."""
        R = QMessageBox.ButtonRole
        return self._choice(
            "dataset_masks_prompt",
            QMessageBox.Icon.Question,
            "Where do your corrections go?",
            f"{workspace_name} came with its own masks. This save would replace one.",
            "Save over the data set's masks: the file other tools read becomes your correction; the "
            "original stays in History. Into corrected/: the data set's masks stay as they are and "
            "your corrections go to a separate folder beside them. Asked once for this workspace.",
            [
                ("overwrite", "Save over the data set's masks", R.AcceptRole),
                ("corrected", "Into a separate folder corrected/", R.AcceptRole),
                ("cancel", "Cancel", R.RejectRole),
            ],
            "corrected",
        )

    def ask_save_failed(
        self,
        image_name: str,
        message: str,
        disk_full: bool = False,
        can_discard: bool = False,
        can_export: bool | None = None,
    ) -> str:
        """A save failed: 'retry', 'export' (write the mask elsewhere; offered for a full disk, or when
        ``can_export``), 'discard' (only when leaving the image) or 'cancel'."""
        R = QMessageBox.ButtonRole
        buttons = [("retry", "Retry", R.AcceptRole)]
        if disk_full if can_export is None else can_export:
            buttons.append(("export", "Export elsewhere…", R.ActionRole))
        if can_discard:
            buttons.append(("discard", "Discard edits", R.DestructiveRole))
        buttons.append(("cancel", "Stay on this image" if can_discard else "Cancel", R.RejectRole))
        title = "Disk full" if disk_full else "Not saved"
        text = (
            f"The mask of {image_name} could not be saved: disk full."
            if disk_full
            else f"The mask of {image_name} could not be saved."
        )
        return self._choice("save_failed_prompt", QMessageBox.Icon.Warning, title, text, message, buttons, "retry")

    def choose_item(self, title: str, label: str, items: list[str]) -> int | None:
        """Index of the item chosen, or None."""
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getItem(self.parent, title, label, items, max(0, len(items) - 1), False)
        return items.index(text) if ok and text in items else None
