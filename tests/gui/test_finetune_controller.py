"""The fine-tuning controller on its own, built from the few parts it takes (no MainWindow): what the end of a run
does to the active model, the panel and the messages, told the way the supervised child process tells it."""

from __future__ import annotations

import pytest
from gui_helpers import RecordingPrompter, make_workspace, task_runner
from PySide6.QtWidgets import QMainWindow


@pytest.fixture
def parts(qtbot, store, app_settings, tmp_path):
    from retina_desktop.core.model.model_service import ModelHolder
    from retina_desktop.core.review.review_session import ReviewSession
    from retina_desktop.core.workspace import Workspace
    from retina_desktop.ui.common.context import ActionRegistry
    from retina_desktop.ui.finetune.finetune_panel import FinetuneController, Messages

    host = QMainWindow()
    qtbot.addWidget(host)
    review = ReviewSession()
    ws = Workspace(make_workspace(tmp_path / "photos", 3))
    review.set_workspace(ws)
    ws.set_status(ws.entries[0].key, "approved")  # two images are left to re-predict
    said: list[tuple[str, str]] = []
    repredicted: list[list[str]] = []
    tasks = task_runner(qtbot, host)
    ctl = FinetuneController(
        review,
        ModelHolder(store=store),
        tasks,
        lambda workspace, entries: repredicted.append([e.key for e in entries]),
        app_settings,
        RecordingPrompter(),
        Messages(lambda text, level: said.append((level, text)), lambda text, ms: None, lambda: "", lambda: None),
        ActionRegistry(host),
        lambda: None,
        host,
    )
    yield ctl, store, said, repredicted
    ctl.shutdown()
    tasks.shutdown()
    ws.close()


def _outcome(version: str | None, accepted: bool, **kw) -> dict:
    out = {
        "accepted": accepted,
        "reason": "validation Dice 0.6100 is at least the parent's 0.6000" if accepted else "below the parent",
        "stop_reason": "completed",
        "failed": False,
        "cancelled": False,
        "parent_dice": 0.6,
        "new_dice": 0.61 if accepted else 0.5,
        "version": version,
        "version_path": None,
        "train": 3,
        "val": 1,
        "note": "",
        "wall_s": 42.0,
        "epochs_run": 2,
    }
    return {**out, **kw}


def _new_version(store, micro_checkpoint_path, accepted: bool):
    from model_core.checkpoint import load_checkpoint

    return store.add(
        load_checkpoint(micro_checkpoint_path),
        {"label": "fine-tuned", "parent": store.active().id, "accepted": accepted},
    )


def test_a_run_that_passed_the_gate_activates_its_version_and_offers_to_repredict(parts, qtbot, micro_checkpoint_path):
    ctl, store, said, repredicted = parts
    parent = store.active()
    version = _new_version(store, micro_checkpoint_path, accepted=True)
    assert store.active().id == parent.id  # the child never activates

    with qtbot.waitSignal(ctl.model_switched) as switched, qtbot.waitSignal(ctl.run_finished) as finished:
        ctl.run.finished.emit(_outcome(version.id, accepted=True))

    assert store.active().id == version.id and ctl.model.checkpoint_path() == version.path
    assert switched.args == [str(version.path)] and finished.args[0]["activated"] is True
    level, text = said[-1]
    assert level == "info" and text.startswith(f"New model {version.id} is active") and "42 s" in text
    assert ctl.panel.progress.value() == 1000 and ctl.panel.progress.format() == "done: new model active"
    assert ctl.panel.parent_line.value() == pytest.approx(0.6)
    assert "Re-predict 2 images not yet reviewed" in ctl.panel.repredict_button.text()
    ctl.panel.repredict_button.click()
    assert repredicted == [["img_01", "img_02"]]


def test_a_run_below_the_parent_keeps_the_current_model_and_says_why(parts, qtbot, micro_checkpoint_path):
    ctl, store, said, _ = parts
    parent = store.active()
    version = _new_version(store, micro_checkpoint_path, accepted=False)
    with qtbot.assertNotEmitted(ctl.model_switched), qtbot.waitSignal(ctl.run_finished) as finished:
        ctl.run.finished.emit(_outcome(version.id, accepted=False, shared=True, train=1, val=1))

    assert store.active().id == parent.id and ctl.model.checkpoint_path() == parent.path
    assert finished.args[0]["activated"] is False
    level, text = said[-1]
    assert level == "warning" and "not activated: below the parent" in text
    assert f"kept as {version.id} in Models" in text and "used for training and validation" in text
    assert ctl.panel.progress.format() == "done: kept the current model" and ctl.panel.status_label.text() == text


def test_a_version_that_cannot_be_activated_is_a_failure_and_the_model_stays(parts, qtbot):
    ctl, store, said, _ = parts
    parent = store.active()
    with qtbot.waitSignal(ctl.run_failed) as failed:
        ctl.run.finished.emit(_outcome("v999", accepted=True))  # not in the store
    assert "v999 was saved but could not be activated" in failed.args[0]
    assert store.active().id == parent.id
    level, text = said[-1]
    assert level == "error" and text.endswith("The active model and all masks are unchanged.")
    assert ctl.panel.progress.format() == "failed" and ctl.finetune_action.isEnabled()


def test_a_cancelled_run_changes_nothing_and_says_so(parts, qtbot):
    ctl, store, said, _ = parts
    parent = store.active()
    with qtbot.assertNotEmitted(ctl.model_switched), qtbot.waitSignal(ctl.run_cancelled):
        ctl.run.cancelled.emit(0.4)
    assert store.active().id == parent.id and not said
    assert ctl.panel.status_label.text().startswith("Fine-tune cancelled (stopped in 0.4 s)")
    assert ctl.panel.progress.format() == "cancelled" and not ctl.running and ctl.finetune_action.isEnabled()


@pytest.mark.parametrize("takes_it", [True, False])
def test_an_ask_verdict_activates_only_on_the_graders_click(parts, qtbot, micro_checkpoint_path, takes_it):
    ctl, store, said, _ = parts
    parent = store.active()
    version = _new_version(store, micro_checkpoint_path, accepted=False)
    ctl.prompter.confirm_answer = takes_it
    reason = "fewer than 2 held-out photos: judged on 1 photo (16 tiles): Dice 0.766 -> 0.785 (+0.019, ...)"
    with qtbot.waitSignal(ctl.run_finished) as finished:
        ctl.run.finished.emit(_outcome(version.id, accepted=False, verdict="ask", reason=reason))

    # The question carries the gate's evidence in its one sentence.
    assert ctl.prompter.asked[-1][0] == "confirm" and "judged on 1 photo" in ctl.prompter.asked[-1][1]
    assert finished.args[0]["activated"] is takes_it
    assert store.active().id == (version.id if takes_it else parent.id)
    level, text = said[-1]
    if takes_it:
        assert level == "info" and "your choice (the gate asked: fewer than 2 held-out photos" in text
    else:
        assert level == "warning" and "not activated: fewer than 2 held-out photos" in text


def test_a_reject_verdict_asks_nothing(parts, qtbot, micro_checkpoint_path):
    ctl, store, _, _ = parts
    version = _new_version(store, micro_checkpoint_path, accepted=False)
    with qtbot.waitSignal(ctl.run_finished):
        ctl.run.finished.emit(_outcome(version.id, accepted=False, verdict="reject"))
    assert not ctl.prompter.asked and store.active().id != version.id
