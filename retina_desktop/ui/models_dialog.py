"""The Models dialog: every version in the user's model store with its metrics; switch to any of them
(which is also how a fine-tuned model is rolled back)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout)

COLUMNS = ("", "Version", "Created", "Parent", "Images (train / val)", "Val. Dice before", "Val. Dice after",
           "Gate", "Why")


def _dice(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "–"


class ModelsDialog(QDialog):
    """Lists ``store.versions()``; ``version_chosen(id)`` asks the app to switch to one."""

    version_chosen = Signal(str)

    def __init__(self, store, active_id: str | None, explicit_path=None, parent=None):
        super().__init__(parent)
        self.setObjectName("models_dialog")
        self.setWindowTitle("Models")
        self.resize(980, 360)
        self.store = store
        lay = QVBoxLayout(self)
        head = QLabel(self)
        head.setWordWrap(True)
        if explicit_path is not None:
            head.setText(f"The app uses the checkpoint given on the command line ({explicit_path}). "
                         "Choosing a version below switches to the model store.")
        else:
            head.setText(f"Model versions in {store.root}. The active one (●) predicts new images; any version "
                         "can be made active again, which is how a fine-tune is rolled back.")
        lay.addWidget(head)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("models_table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemDoubleClicked.connect(lambda _item: self.use_selected())
        lay.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.use_button = QPushButton("Use this version", self)
        self.use_button.setObjectName("use_version_button")
        buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.use_button.clicked.connect(self.use_selected)
        lay.addWidget(buttons)
        self.fill(active_id)

    def fill(self, active_id: str | None) -> None:
        self.versions = self.store.versions()
        self.table.setRowCount(len(self.versions))
        for row, v in enumerate(self.versions):
            info = v.info
            images = info.get("images") or {}
            metrics = info.get("metrics") or {}
            accepted = info.get("accepted")
            cells = ("●" if v.id == active_id else "", v.id, str(info.get("created", "")).replace("T", " "),
                     str(info.get("parent") or "–"),
                     f"{len(images.get('train', []))} / {len(images.get('val', []))}" if images else "–",
                     _dice(metrics.get("val_dice_before")), _dice(metrics.get("val_dice_after")),
                     "–" if accepted is None else ("passed" if accepted else "not passed"),
                     str(info.get("reason") or info.get("label", "")))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, v.id)
                if col == 8:
                    item.setToolTip(f"{info.get('split_note', '')}\n{info.get('stop_reason', '')}".strip())
                self.table.setItem(row, col, item)
            if v.id == active_id:
                self.table.selectRow(row)
        self.use_button.setEnabled(bool(self.versions))

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.versions[rows[0].row()].id

    def select_version(self, version_id: str) -> None:
        for row, v in enumerate(self.versions):
            if v.id == version_id:
                self.table.selectRow(row)

    def use_selected(self) -> None:
        vid = self.selected_id()
        if vid is not None:
            self.version_chosen.emit(vid)
