"""Keep learning in the window (Model ▸ Keep learning): off by default; on, the fifth approval starts one background
fine-tune (one thread, low priority) that the banner announces with a one-click Stop, and the run's outcome, the gate's
verdict, reaches the banner. Approvals are the grader's own (Approve on an open image, which moves to the next).

The run that is stopped is a real child process (``finetune_panel.CONFIG_OVERRIDES`` makes it small but long enough to
be stopped); the outcomes are told the way the supervised child tells them (``run.finished``), as in
test_finetune_controller, so that no test trains for minutes."""

from __future__ import annotations

import os

import pytest
from gui_helpers import RecordingPrompter, make_workspace
from PySide6.QtCore import Qt

from retina_desktop.core.model.finetune_job import BACKGROUND_NICE, Started

LONG_TINY = dict(epochs=200, steps_per_epoch=50, batch_size=2, patch_size=64, patience=500, seed=0, minutes=None)


@pytest.fixture
def kl_window(make_window, store, qtbot, tmp_path):
    folder = make_workspace(tmp_path / "clinic", 12)
    w = make_window(checkpoint=None)  # no --weights: the model store's active version is fine-tuned
    w.prompter = w.finetune.prompter = RecordingPrompter()
    with qtbot.waitSignal(w.image_opened, timeout=30000):
        assert w.workspaces.open_workspace(folder)
    qtbot.waitUntil(lambda: w.prediction.info is not None, timeout=30000)
    return w


def approve(qtbot, w):
    """The grader approves the open image: saved, marked approved, the next image opens; then Keep learning decides."""
    kl = w.features.keep_learning
    with qtbot.waitSignal(kl.decided, timeout=20000) as decided, qtbot.waitSignal(w.image_opened, timeout=20000):
        w.commands.approve_current()
    return decided.args[0]


def switch_on(w):
    action = w.features.keep_learning.action
    model_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Model")
    assert action in model_menu.actions() and action.isCheckable()
    action.trigger()
    assert action.isChecked() and w.settings.keep_learning


def fake_process(w, monkeypatch):
    """The training process's start records the job instead of spawning a child (its outcome is emitted)."""
    jobs = []
    monkeypatch.setattr(w.finetune.run, "start", jobs.append)
    return jobs


def test_off_by_default_five_approvals_start_nothing(kl_window, qtbot):
    w, kl = kl_window, kl_window.features.keep_learning
    assert not kl.action.isChecked() and not w.settings.keep_learning
    with qtbot.assertNotEmitted(kl.run_started):
        decisions = [approve(qtbot, w) for _ in range(5)]
    assert [d.why for d in decisions] == ["keep learning is off"] * 5
    assert not w.finetune.running and w.workspace.status("img_04") == "approved"


def test_the_fifth_approval_starts_one_low_priority_run_and_stop_cancels_it(
    kl_window, store, qtbot, monkeypatch, tiny_long_runs
):
    w, kl, ctl = kl_window, kl_window.features.keep_learning, kl_window.finetune
    parent, versions_before = store.active().id, [v.id for v in store.versions()]
    switch_on(w)
    started_msgs: list[Started] = []
    ctl.run.message.connect(lambda m: isinstance(m, Started) and started_msgs.append(m))
    runs = []
    kl.run_started.connect(runs.append)
    for i in range(4):
        assert approve(qtbot, w).why == f"{i + 1} of 5 approvals for the next run"
    assert not runs and not ctl.running
    assert approve(qtbot, w).start and len(runs) == 1 and ctl.running and ctl.background
    # Announced in the banner, which stays while the run lasts: the next image's opening did not dismiss it.
    assert w.banner.isVisible() and w.banner.showing_pinned
    assert w.banner.text() == "Keep learning: fine-tuning on your 5 newest approvals in the background…"
    assert list(w.banner.buttons) == ["Stop"]
    assert not ctl.dock.isVisible()  # a background run raises no window over the image
    # The child itself says it trains with one thread at a lowered priority.
    qtbot.waitUntil(lambda: bool(started_msgs), timeout=120_000)
    assert started_msgs[0].threads == 1
    if hasattr(os, "nice"):
        assert started_msgs[0].niceness is not None and started_msgs[0].niceness >= min(19, BACKGROUND_NICE)
    approve(qtbot, w)  # a sixth approval during the run starts no second one
    assert len(runs) == 1
    with qtbot.waitSignal(ctl.run_cancelled, timeout=10_000):
        qtbot.mouseClick(w.banner.buttons["Stop"], Qt.MouseButton.LeftButton)
    assert not ctl.running
    assert w.banner.text().startswith("Keep learning: stopped (in ") and "active model is unchanged" in w.banner.text()
    assert not w.banner.showing_pinned and not w.banner.buttons
    assert store.active().id == parent and [v.id for v in store.versions()] == versions_before
    assert kl.action.isChecked()  # Stop ends the run, not Keep learning


@pytest.fixture
def tiny_long_runs(monkeypatch):
    from retina_desktop.ui.finetune import finetune_panel

    monkeypatch.setattr(finetune_panel, "CONFIG_OVERRIDES", dict(LONG_TINY))


def _outcome(version: str, verdict: str) -> dict:
    reasons = {
        "accept": "held-out Dice 0.6100 is clear of the parent's 0.6000",
        "reject": "held-out Dice 0.5000 is below the parent's 0.6000",
        "ask": "fewer than 2 held-out photos: judged on 1 photo; changes 29 % of predictions; threshold 0.50 → 0.95",
    }
    return {
        "accepted": verdict == "accept",
        "verdict": verdict,
        "reason": reasons[verdict],
        "stop_reason": "completed",
        "failed": False,
        "cancelled": False,
        "parent_dice": 0.6,
        "new_dice": 0.61,
        "version": version,
        "version_path": None,
        "train": 4,
        "val": 1,
        "note": "",
        "wall_s": 42.0,
        "epochs_run": 2,
    }


def _start_a_background_run(qtbot, w, monkeypatch):
    """Keep learning on, five approvals: one job handed to the training process, which here spawns nothing."""
    jobs = fake_process(w, monkeypatch)
    switch_on(w)
    for _ in range(5):
        approve(qtbot, w)
    assert len(jobs) == 1 and jobs[0]["threads"] == 1 and jobs[0]["nice"] == BACKGROUND_NICE
    assert jobs[0]["overrides"]["minutes"] == 10.0  # the app's default CPU budget (none chosen in the dialog yet)
    return jobs


def _new_version(store, micro_checkpoint_path):
    from model_core.checkpoint import load_checkpoint

    return store.add(load_checkpoint(micro_checkpoint_path), {"label": "fine-tuned", "parent": store.active().id})


@pytest.mark.parametrize("verdict", ["accept", "reject"])
def test_a_background_runs_outcome_reaches_the_banner(
    kl_window, store, qtbot, monkeypatch, micro_checkpoint_path, verdict
):
    w, ctl = kl_window, kl_window.finetune
    _start_a_background_run(qtbot, w, monkeypatch)
    parent = store.active().id
    version = _new_version(store, micro_checkpoint_path)
    with qtbot.waitSignal(ctl.run_finished):
        ctl.run.finished.emit(_outcome(version.id, verdict))
    text = w.banner.text()
    if verdict == "accept":
        assert text.startswith(f"Keep learning: New model {version.id} is active: held-out Dice 0.6100 is clear")
        assert store.active().id == version.id
    else:
        assert text.startswith("Keep learning: The fine-tuned model was not activated: held-out Dice 0.5000")
        assert f"kept as {version.id} in Models" in text and store.active().id == parent
    assert not w.banner.showing_pinned and not w.banner.buttons  # the Stop went with the run
    assert not ctl.prompter.asked  # nothing was asked


def test_an_ask_from_a_background_run_waits_for_a_click_and_holds_the_next_run(
    kl_window, store, qtbot, monkeypatch, micro_checkpoint_path
):
    w, ctl, kl = kl_window, kl_window.finetune, kl_window.features.keep_learning
    jobs = _start_a_background_run(qtbot, w, monkeypatch)
    parent = store.active().id
    version = _new_version(store, micro_checkpoint_path)
    with qtbot.assertNotEmitted(ctl.run_finished), qtbot.waitSignal(ctl.ask_deferred):
        ctl.run.finished.emit(_outcome(version.id, "ask"))
    assert not ctl.prompter.asked  # no question box in the middle of a stroke: the banner asks
    assert store.active().id == parent and w.banner.showing_pinned
    assert "judged on 1 photo; changes 29 % of predictions; threshold 0.50 → 0.95" in w.banner.text()
    assert list(w.banner.buttons) == ["Use it", "Not now"]
    decisions = [approve(qtbot, w) for _ in range(5)]  # the question still stands: no new run
    assert decisions[-1].why == "the previous run's model waits for your choice" and len(jobs) == 1
    assert w.banner.showing_pinned  # opening the next images did not take the question away
    with qtbot.waitSignal(ctl.run_finished) as finished:
        qtbot.mouseClick(w.banner.buttons["Use it"], Qt.MouseButton.LeftButton)
    assert finished.args[0]["activated"] is True and store.active().id == version.id
    assert w.banner.text().startswith(f"Keep learning: New model {version.id} is active: your choice")
    assert kl.check() and len(jobs) == 2  # answered, the waiting approvals start the next run


def test_k_set_in_preferences_decides_after_how_many_approvals_a_run_starts(kl_window, qtbot, monkeypatch):
    from retina_desktop.ui.app.dialogs import PreferencesDialog

    w = kl_window
    jobs = fake_process(w, monkeypatch)
    dlg = PreferencesDialog(w.settings, w)
    qtbot.addWidget(dlg)
    assert dlg.keep_learning_every.value() == 5
    dlg.keep_learning_every.setValue(2)
    dlg.apply()
    assert w.settings.keep_learning_every == 2
    switch_on(w)
    assert approve(qtbot, w).why == "1 of 2 approvals for the next run"
    assert approve(qtbot, w).start and len(jobs) == 1
