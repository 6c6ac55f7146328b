"""The Models dialog: one name per version (the bundled model is "v3 (bundled)" where the status bar says
"v3"; a stored version is "v001-…", never "vv001-…"), and a version that failed the gate is used only after
the grader says so, with the offer to re-predict."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from model_core.checkpoint import load_checkpoint
from model_core.model_store import DEFAULT_ID, ModelStore
from model_core.resources import resource_path
from retina_desktop.ui.finetune.models_dialog import GATE, WHY, ModelsDialog


class AnsweringPrompter:
    def __init__(self, answer: bool):
        self.answer, self.asked = answer, []

    def confirm(self, title, text, ok_text="OK", object_name=""):
        self.asked.append((object_name, text))
        return self.answer


@pytest.fixture
def store(tmp_path, micro_checkpoint_path):
    s = ModelStore(tmp_path / "models")
    ckpt = load_checkpoint(micro_checkpoint_path)
    s.add(ckpt, {"parent": DEFAULT_ID, "accepted": False, "reason": "validation Dice 0.40 is below the parent's 0.50"})
    s.add(ckpt, {"parent": DEFAULT_ID, "accepted": True, "reason": "validation Dice rose"})
    return s


def _dialog(qtbot, store, prompter=None):
    dlg = ModelsDialog(store, None, prompter=prompter)
    qtbot.addWidget(dlg)
    return dlg


def _record(dlg):
    chosen, repredict = [], []
    dlg.version_chosen.connect(chosen.append)
    dlg.repredict_requested.connect(repredict.append)
    return chosen, repredict


def _ids(store):
    return {v.id: v for v in store.versions()}


def test_a_failed_version_is_used_only_after_asking(qtbot, store):
    failed = next(v for v in store.versions() if v.info.get("accepted") is False)
    no = AnsweringPrompter(False)
    dlg = _dialog(qtbot, store, no)
    chosen, repredict = _record(dlg)
    dlg.select_version(failed.id)
    dlg.use_button.click()
    assert chosen == [] and repredict == []
    assert no.asked[0][0] == "use_rejected_version_prompt"
    assert failed.id in no.asked[0][1] and "below the parent's 0.50" in no.asked[0][1]

    yes = AnsweringPrompter(True)
    dlg._prompter = yes
    dlg.use_button.click()
    assert chosen == [failed.id] and repredict == [failed.id]
    dlg.repredict_check.setChecked(False)
    dlg.use_button.click()
    assert chosen == [failed.id] * 2 and repredict == [failed.id]


def test_a_version_that_passed_is_used_without_a_question(qtbot, store):
    passed = next(v for v in store.versions() if v.info.get("accepted") is True)
    p = AnsweringPrompter(False)
    dlg = _dialog(qtbot, store, p)
    chosen, repredict = _record(dlg)
    dlg.select_version(passed.id)
    dlg.use_button.click()
    assert p.asked == [] and chosen == [passed.id] and repredict == [passed.id]


def test_the_question_is_a_real_message_box_by_default(qtbot, store):
    failed = next(v for v in store.versions() if v.info.get("accepted") is False)
    dlg = _dialog(qtbot, store)  # no prompter and no parent window: the dialog's own message box
    chosen, _ = _record(dlg)
    dlg.select_version(failed.id)
    seen = []

    def answer():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append(box.objectName())
        box.button(QMessageBox.StandardButton.Cancel).click()

    QTimer.singleShot(0, answer)
    assert dlg.use_selected() is False
    assert seen == ["use_rejected_version_prompt"] and chosen == []


@pytest.mark.skipif(not resource_path("default_model.pt").is_file(), reason="no bundled model in this checkout")
def test_the_bundled_model_has_one_name(qtbot, store):
    from model_core.predictor import VesselPredictor

    card = json.loads(resource_path("model_card.json").read_text(encoding="utf-8"))
    bundled = _ids(store)[DEFAULT_ID]
    assert bundled.name == f"v{card['version']} (bundled)"
    # The status bar shows the predictor's description: the same "v3".
    assert VesselPredictor(bundled.path).description.endswith(f" v{card['version']}")
    dlg = _dialog(qtbot, store)
    versions = [dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount())]
    parents = [dlg.table.item(r, 3).text() for r in range(dlg.table.rowCount())]
    assert versions[0] == bundled.name and DEFAULT_ID not in versions
    assert parents[1:] == [bundled.name, bundled.name]  # the children name their parent the same way


def test_a_stored_version_is_described_without_a_double_v(store):
    from model_core.predictor import VesselPredictor

    stored = next(v for v in store.versions() if v.id != DEFAULT_ID)
    assert stored.id.startswith("v001-") and stored.name == stored.id
    assert VesselPredictor(stored.path).description == f"test-micro {stored.id}"


def test_the_whole_reason_is_in_the_why_tooltip(qtbot, store):
    dlg = _dialog(qtbot, store)
    row = [dlg.table.item(r, GATE).text() for r in range(dlg.table.rowCount())].index("not passed")
    assert dlg.table.item(row, WHY).toolTip() == "validation Dice 0.40 is below the parent's 0.50"


def test_every_column_is_in_view_at_the_dialogs_own_size(qtbot, tmp_path, micro_checkpoint_path):
    s = ModelStore(tmp_path / "models")
    long_reason = (
        "validation Dice 0.8163 is at least the parent's 0.7686 on the held-out corrections; "
        "blend α 0.9 keeps 90 % of the gain and changes predictions on other photos by 14 %"
    )
    s.add(load_checkpoint(micro_checkpoint_path), {"parent": DEFAULT_ID, "accepted": False, "reason": long_reason})
    dlg = _dialog(qtbot, s)
    dlg.show()
    qtbot.waitExposed(dlg)
    t = dlg.table
    viewport = t.viewport().width()
    for col in range(t.columnCount()):  # no column starts or ends behind a horizontal scroll bar
        assert t.columnViewportPosition(col) >= 0
        assert t.columnViewportPosition(col) + t.columnWidth(col) <= viewport + 1, t.horizontalHeaderItem(col).text()
    assert t.columnWidth(WHY) >= 200  # room to read the reason
    row = next(r for r in range(t.rowCount()) if t.item(r, WHY).text() == long_reason)
    assert t.item(row, GATE).text() == "not passed" and t.rowHeight(row) > t.fontMetrics().height() * 1.5  # wrapped


def test_the_gates_verdict_and_the_threshold_have_columns(qtbot, tmp_path, micro_checkpoint_path):
    from retina_desktop.ui.finetune.models_dialog import COLUMNS

    s = ModelStore(tmp_path / "models")
    ckpt = load_checkpoint(micro_checkpoint_path)
    evidence = {"threshold_before": 0.5, "threshold_after": 0.75}
    asked = s.add(ckpt, {"label": "ft", "accepted": False, "verdict": "ask", "reason": "r", "evidence": evidence})
    old = s.add(ckpt, {"label": "ft", "accepted": True, "reason": "r"})  # before the three verdicts
    dlg = _dialog(qtbot, s)
    rows = {dlg.table.item(r, 1).text(): r for r in range(dlg.table.rowCount())}
    threshold = COLUMNS.index("Threshold")
    assert dlg.table.item(rows[asked.name], GATE).text() == "asked you"
    assert dlg.table.item(rows[asked.name], threshold).text() == "0.50 → 0.75"
    assert dlg.table.item(rows[old.name], GATE).text() == "passed"
    assert dlg.table.item(rows[old.name], threshold).text() == "–"
