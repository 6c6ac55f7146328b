"""The Models dialog: every version in the user's model store with its metrics; switch to any of them
(which is also how a fine-tuned model is rolled back)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ...core.model.finetune_job import kept_model_words
from ...core.workspace import readable_time
from ..common.prompter import Prompter

COLUMNS = (
    "",
    "Version",
    "Created",
    "Parent",
    "Images (train / val)",
    "Val. Dice before",
    "Val. Dice after",
    "Blend α",
    "Changes elsewhere",
    "Threshold",
    "Gate",
    "Why",
)
# The gate's verdict as the table says it; versions from before the three verdicts only know passed or not.
VERDICT_WORDS = {"accept": "accepted", "ask": "asked you", "reject": "rejected"}
HEADERS = {
    "Images (train / val)": "Images\n(train / val)",
    "Val. Dice before": "Val. Dice\nbefore",
    "Val. Dice after": "Val. Dice\nafter",
    "Changes elsewhere": "Changes\nelsewhere",
}
WHY, GATE, ALPHA, DRIFT = (COLUMNS.index(c) for c in ("Why", "Gate", "Blend α", "Changes elsewhere"))


def _threshold(evidence) -> str:
    """The version's threshold, and its parent's where it moved ("0.50 → 0.75"), from the gate's evidence."""
    if not isinstance(evidence, dict) or not isinstance(evidence.get("threshold_after"), (int, float)):
        return "–"
    before, after = evidence.get("threshold_before"), evidence["threshold_after"]
    if isinstance(before, (int, float)) and abs(before - after) > 1e-9:
        return f"{before:.2f} → {after:.2f}"
    return f"{after:.2f}"


def _dice(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "–"


def _alpha(value) -> str:
    """The weight-space blend kept: 1.00 is the fine-tuned weights themselves, 0.50 halfway to the parent."""
    return f"{value:.2f}" if isinstance(value, (int, float)) else "–"


def _share(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"


def _kept_words(info: dict) -> list[str]:
    metrics = info.get("metrics") or {}
    return kept_model_words(
        {
            "alpha": (info.get("wise") or {}).get("alpha"),
            "drift": metrics.get("drift"),
            "drift_source": info.get("drift_source"),
        }
    )


class ModelsDialog(QDialog):
    """Lists ``store.versions()``; ``version_chosen(id)`` asks the app to switch to one, and then
    ``repredict_requested(id)`` to predict the images not yet reviewed with it (when that box is ticked).

    A version that did not pass the gate is used only after the grader says so; the question goes to
    ``prompter`` (by default the parent window's, so tests answer it as they answer the window's).
    """

    version_chosen = Signal(str)
    repredict_requested = Signal(str)

    def __init__(self, store, active_id: str | None, explicit_path=None, parent=None, prompter=None):
        super().__init__(parent)
        self._prompter = prompter
        self.setObjectName("models_dialog")
        self.setWindowTitle("Models")
        self.resize(1180, 380)
        self.store = store
        lay = QVBoxLayout(self)
        head = QLabel(self)
        head.setWordWrap(True)
        if explicit_path is not None:
            head.setText(
                f"The app uses the checkpoint given on the command line ({explicit_path}). "
                "Choosing a version below switches to the model store."
            )
        else:
            head.setText(
                f"Model versions in {store.root}. The active one (●) predicts new images; any version "
                "can be made active again, which is how a fine-tune is rolled back."
            )
        lay.addWidget(head)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("models_table")
        # Two-line headers: a column is as wide as its longest line, and "Why" needs the room.
        self.table.setHorizontalHeaderLabels([HEADERS.get(c, c) for c in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # "Why" takes the width that is left and wraps: sized to its text it pushed itself, and "Gate" with it,
        # behind a horizontal scroll bar.
        header.setSectionResizeMode(WHY, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.table.itemDoubleClicked.connect(lambda _item: self.use_selected())
        lay.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.use_button = QPushButton("Use this version", self)
        self.use_button.setObjectName("use_version_button")
        buttons.addButton(self.use_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.use_button.clicked.connect(self.use_selected)
        self.repredict_check = QCheckBox("Then re-predict the images not yet reviewed with it", self)
        self.repredict_check.setObjectName("repredict_check")
        self.repredict_check.setToolTip("Images you edited or approved are never re-predicted")
        self.repredict_check.setChecked(True)
        lay.addWidget(self.repredict_check)
        lay.addWidget(buttons)
        self.fill(active_id)

    def fill(self, active_id: str | None) -> None:
        self.versions = self.store.versions()
        names = {v.id: v.name for v in self.versions}
        self.table.setRowCount(len(self.versions))
        for row, v in enumerate(self.versions):
            info = v.info
            images = info.get("images") or {}
            metrics = info.get("metrics") or {}
            accepted = info.get("accepted")
            parent = info.get("parent")
            cells = (
                "●" if v.id == active_id else "",
                v.name,
                readable_time(info.get("created")) if info.get("created") else "–",
                names.get(parent, str(parent or "–")),
                f"{len(images.get('train', []))} / {len(images.get('val', []))}" if images else "–",
                _dice(metrics.get("val_dice_before")),
                _dice(metrics.get("val_dice_after")),
                _alpha((info.get("wise") or {}).get("alpha")),
                _share(metrics.get("drift")),
                _threshold(info.get("evidence")),
                VERDICT_WORDS.get(str(info.get("verdict")))
                or ("–" if accepted is None else ("passed" if accepted else "not passed")),
                str(info.get("reason") or info.get("label", "")),
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, v.id)
                if col == WHY:
                    # The column is narrow: the whole reason, then how the run went.
                    item.setToolTip(
                        "\n".join(
                            str(t)
                            for t in (text, info.get("split_note"), info.get("stop_reason"), *_kept_words(info))
                            if t
                        )
                    )
                self.table.setItem(row, col, item)
            if v.id == active_id:
                self.table.selectRow(row)
        self.table.resizeRowsToContents()
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

    def prompter(self):
        return self._prompter or getattr(self.parent(), "prompter", None) or Prompter(self)

    def use_selected(self) -> bool:
        """Switch to the selected version (after asking, if it did not pass the gate); False if not."""
        vid = self.selected_id()
        if vid is None:
            return False
        version = next(v for v in self.versions if v.id == vid)
        if version.info.get("accepted") is False:
            reason = version.info.get("reason") or "it scored below the model it was fine-tuned from"
            if not self.prompter().confirm(
                "Use a version that did not pass?",
                f"{version.name} did not pass the gate when it was trained: {reason}.\n\n"
                "Use it anyway? The version you use now stays in the list, so you can switch back.",
                ok_text="Use it",
                object_name="use_rejected_version_prompt",
            ):
                return False
        self.version_chosen.emit(vid)
        if self.repredict_check.isChecked():
            self.repredict_requested.emit(vid)
        return True
