"""Dialogs and questions. ``Prompter`` gathers every question the app asks, so there is one place
that decides wording and buttons (and tests can answer through the real message boxes)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLineEdit, QMessageBox, QPushButton, QRadioButton, QSpinBox,
                               QVBoxLayout, QWidget)

from ...core.export import ExportOptions


class Prompter:
    def __init__(self, parent: QWidget):
        self.parent = parent

    def ask_unsaved(self, image_name: str, can_save: bool = True) -> str:
        """'save', 'discard' or 'cancel'."""
        box = QMessageBox(self.parent)
        box.setObjectName("unsaved_edits_prompt")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Unsaved edits")
        box.setText(f"The mask of {image_name} has unsaved edits.")
        box.setInformativeText("Save them as ground truth before closing?" if can_save else
                               "This workspace is read-only, so they cannot be saved here.")
        buttons = QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
        if can_save:
            buttons |= QMessageBox.StandardButton.Save
        box.setStandardButtons(buttons)
        box.setDefaultButton(QMessageBox.StandardButton.Save if can_save else QMessageBox.StandardButton.Cancel)
        answer = box.exec()
        return {QMessageBox.StandardButton.Save: "save",
                QMessageBox.StandardButton.Discard: "discard"}.get(QMessageBox.StandardButton(answer), "cancel")

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

    def _choice(self, object_name: str, icon, title: str, text: str, informative: str,
                buttons: list[tuple[str, str, QMessageBox.ButtonRole]], default: str) -> str:
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
        return self._choice("conflict_prompt", QMessageBox.Icon.Warning, "Saved elsewhere meanwhile",
                            f"{image_name} was saved by another window or grader since you opened it.",
                            f"{message}.\n\nKeep mine: your mask becomes the newest version. Take theirs: their "
                            "mask replaces yours on screen (Ctrl+Z brings yours back). View both: their version "
                            "is drawn over yours and nothing is saved yet; save again when you have decided. "
                            "Nothing is lost either way: both are in the History.",
                            [("mine", "Keep mine", R.AcceptRole), ("theirs", "Take theirs", R.AcceptRole),
                             ("both", "View both", R.ActionRole), ("cancel", "Cancel", R.RejectRole)], "mine")

    def ask_dataset_masks(self, workspace_name: str) -> str:
        """The first save over a mask the workspace came with: 'overwrite', 'corrected' or 'cancel'. Asked once per
        workspace; the choice is remembered there."""
        R = QMessageBox.ButtonRole
        return self._choice("dataset_masks_prompt", QMessageBox.Icon.Question, "Where do your corrections go?",
                            f"{workspace_name} came with its own masks. This save would replace one.",
                            "Save over the data set's masks: the file other tools read becomes your correction; the "
                            "original stays in History. Into corrected/: the data set's masks stay as they are and "
                            "your corrections go to a separate folder beside them. Asked once for this workspace.",
                            [("overwrite", "Save over the data set's masks", R.AcceptRole),
                             ("corrected", "Into a separate folder corrected/", R.AcceptRole),
                             ("cancel", "Cancel", R.RejectRole)], "corrected")

    def ask_save_failed(self, image_name: str, message: str, disk_full: bool = False,
                        can_discard: bool = False, can_export: bool | None = None) -> str:
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
        text = (f"The mask of {image_name} could not be saved: disk full." if disk_full else
                f"The mask of {image_name} could not be saved.")
        return self._choice("save_failed_prompt", QMessageBox.Icon.Warning, title, text, message, buttons, "retry")

    def choose_item(self, title: str, label: str, items: list[str]) -> int | None:
        """Index of the item chosen, or None."""
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getItem(self.parent, title, label, items, max(0, len(items) - 1), False)
        return items.index(text) if ok and text in items else None


class ExportDialog(QDialog):
    """Destination and options of an export. With ``settings`` it starts from the options last exported
    with, and with ``workspace_root`` too from the folder this workspace was last exported to; both are
    remembered when the grader clicks Export (not on Cancel)."""

    def __init__(self, parent: QWidget | None = None, start_folder: str = "", settings=None,
                 workspace_root: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export corrected masks")
        self.setObjectName("export_dialog")
        self.settings = settings
        self.workspace_root = str(workspace_root) if workspace_root is not None else None
        if settings is not None and self.workspace_root is not None:
            start_folder = settings.export_destination(self.workspace_root) or start_folder
        self.destination = QLineEdit(start_folder, self)
        # Wide enough to show a whole path of up to ~80 characters, so the grader sees where the masks go;
        # the tooltip holds a longer one.
        fm = self.destination.fontMetrics()
        char = fm.averageCharWidth()
        self.destination.setMinimumWidth(max(40 * char, min(fm.horizontalAdvance(start_folder) + 24, 80 * char)))
        self.destination.setToolTip(start_folder)
        self.destination.textChanged.connect(self.destination.setToolTip)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.destination, 1)
        row.addWidget(browse)
        self.format_255 = QRadioButton("0 / 255 (PNG, 8-bit)", self)
        self.format_1 = QRadioButton("0 / 1 (PNG, 8-bit)", self)
        self.format_255.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.format_255)
        group.addButton(self.format_1)
        self.overlays = QCheckBox("Also write overlay pictures (overlays/)", self)
        self.approved_only = QCheckBox("Approved images only", self)
        self.approved_only.setToolTip("Unticked, the images nobody approved go out too: their masks may be the "
                                      "untouched reference or prediction")
        self.approved_only.setChecked(True)  # "corrected masks": the approved ones, unless the grader says otherwise
        self.overwrite = QCheckBox("Replace files already in the destination", self)
        form = QFormLayout()
        form.addRow("Destination", row)
        form.addRow("Mask values", self.format_255)
        form.addRow("", self.format_1)
        form.addRow("", self.overlays)
        form.addRow("", self.approved_only)
        form.addRow("", self.overwrite)
        if settings is not None:
            (self.format_1 if settings.export_one_value == 1 else self.format_255).setChecked(True)
            self.overlays.setChecked(settings.export_overlays)
            self.approved_only.setChecked(settings.export_approved_only)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Export to folder", self.destination.text())
        if d:
            self.destination.setText(d)

    def _accept(self) -> None:
        if not self.destination.text().strip():
            QMessageBox.warning(self, "Export", "Choose a destination folder.")
            return
        if self.settings is not None:
            options = self.options()
            if self.workspace_root is not None:
                self.settings.set_export_destination(self.workspace_root, str(options.destination))
            self.settings.export_one_value = options.one_value
            self.settings.export_overlays = options.overlays
            self.settings.export_approved_only = options.approved_only
        self.accept()

    def options(self) -> ExportOptions:
        return ExportOptions(destination=Path(self.destination.text().strip()).expanduser(),
                             one_value=1 if self.format_1.isChecked() else 255,
                             overlays=self.overlays.isChecked(), approved_only=self.approved_only.isChecked(),
                             overwrite=self.overwrite.isChecked())


class PreferencesDialog(QDialog):
    def __init__(self, settings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.reviewer = QLineEdit(settings.reviewer, self)
        self.autosave = QSpinBox(self)
        self.autosave.setRange(5, 3600)
        self.autosave.setSuffix(" s")
        self.autosave.setValue(settings.autosave_seconds)
        form = QFormLayout()
        form.addRow("Reviewer name (review log)", self.reviewer)
        form.addRow("Autosave every", self.autosave)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def apply(self) -> None:
        self.settings.reviewer = self.reviewer.text().strip() or self.settings.reviewer
        self.settings.autosave_seconds = self.autosave.value()


def default_export_folder(workspace_root: Path) -> str:
    return str(workspace_root.parent / f"{workspace_root.name}-export")
