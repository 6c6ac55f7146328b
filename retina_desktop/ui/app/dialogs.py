"""The Export and Preferences dialogs (the questions the app asks are ``common.prompter.Prompter``'s)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...core.review.export import ExportOptions


class ExportDialog(QDialog):
    """Destination and options of an export. With ``settings`` it starts from the options last exported
    with, and with ``workspace_root`` too from the folder this workspace was last exported to; both are
    remembered when the grader clicks Export (not on Cancel)."""

    def __init__(
        self, parent: QWidget | None = None, start_folder: str = "", settings=None, workspace_root: str | None = None
    ):
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
        self.approved_only.setToolTip(
            "Unticked, the images nobody approved go out too: their masks may be the untouched reference or prediction"
        )
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
        return ExportOptions(
            destination=Path(self.destination.text().strip()).expanduser(),
            one_value=1 if self.format_1.isChecked() else 255,
            overlays=self.overlays.isChecked(),
            approved_only=self.approved_only.isChecked(),
            overwrite=self.overwrite.isChecked(),
        )


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
        # Model ▸ Keep learning's k: a fine-tune after every k approvals (each run costs CPU minutes in the background).
        self.keep_learning_every = QSpinBox(self)
        self.keep_learning_every.setRange(1, 1000)
        self.keep_learning_every.setSuffix(" approvals")
        self.keep_learning_every.setValue(settings.keep_learning_every)
        self.keep_learning_every.setToolTip("Model ▸ Keep learning fine-tunes the model after this many approvals")
        form = QFormLayout()
        form.addRow("Reviewer name (review log)", self.reviewer)
        form.addRow("Autosave every", self.autosave)
        form.addRow("Keep learning after every", self.keep_learning_every)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def apply(self) -> None:
        self.settings.reviewer = self.reviewer.text().strip() or self.settings.reviewer
        self.settings.autosave_seconds = self.autosave.value()
        self.settings.keep_learning_every = self.keep_learning_every.value()


def default_export_folder(workspace_root: Path) -> str:
    return str(workspace_root.parent / f"{workspace_root.name}-export")
