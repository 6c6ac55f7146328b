"""Teach artery/vein (Edit): the grader's saved A/V labels teach the suggestion of the other photos
(``core.vessels.av_teaching``; README, Calibre).

Teaching runs on a worker with its progress in the status bar and can be stopped. The gate's verdict decides what
follows: accept puts the taught suggestion in use and says so; ask shows the evidence in one sentence and puts it in
use only on the grader's click; reject keeps it unused and says why. "Use the taught artery/vein suggestion" turns
it on and off afterwards. ``changed`` tells the calibre view to suggest again where nothing is labelled yet."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from ...core.review.review_session import ReviewSession
from ...core.vessels.av_teaching import (
    TeachOutcome,
    activate,
    active_setting,
    adopt_candidate,
    deactivate,
    model_path,
    teach_workspace,
)
from ...core.workspace import Workspace, WorkspaceError
from ..common.context import ActionRegistry
from ..common.workers import TaskRunner, Worker

Confirm = Callable[[str, str, str], bool]  # (title, text, ok button) -> clicked ok


class AVTeachingView(QObject):
    status = Signal(str)
    changed = Signal()  # the suggestion in use changed
    finished = Signal(object)  # TeachOutcome, or None when teaching failed

    def __init__(
        self,
        review: ReviewSession,
        tasks: TaskRunner,
        actions: ActionRegistry,
        confirm: Confirm,
        parent: QObject | None = None,
        steps: int | None = None,
    ) -> None:
        """``steps``: the network's training steps (None: model_core.av_net.TEACH_STEPS)."""
        super().__init__(parent)
        self.review, self.tasks, self.confirm, self.steps = review, tasks, confirm, steps
        self.worker: Worker | None = None
        self.teach_action = actions.add(
            "Teach artery/vein from my labels",
            lambda _c=False: self.teach(),
            tip="Your saved artery/vein labels teach the suggestion on the other photos (a few minutes)",
        )
        self.stop_action = actions.add("Stop teaching artery/vein", lambda _c=False: self.stop())
        self.stop_action.setEnabled(False)
        self.use_action = actions.add(
            "Use the taught artery/vein suggestion",
            self.set_in_use,
            checkable=True,
            tip="Suggest artery/vein labels with the network your labels taught, instead of the automatic one",
        )
        self._teaching_in: Workspace | None = None  # the workspace the run in flight teaches
        review.workspace_changed.connect(lambda *_a: self._workspace_changed())
        self._show_state()

    @property
    def running(self) -> bool:
        return self.worker is not None

    def _workspace_changed(self) -> None:
        """Another workspace opened: a run for the former one stops (it keeps nothing; its result is dropped)."""
        if self.worker is not None and self._teaching_in is not self.review.workspace:
            self.worker.cancel()
            self.status.emit("Teach artery/vein: stopped, another workspace was opened")
        self._show_state()

    def _show_state(self) -> None:
        """The actions' state from the files and the setting alone: no network is loaded here (torch stays off the
        window's start-up path; the calibre view's worker checks the weights when it suggests)."""
        ws = self.review.workspace
        self.teach_action.setEnabled(ws is not None and not self.running)
        self.stop_action.setEnabled(self.running)
        has = ws is not None and model_path(ws).is_file()
        self.use_action.setEnabled(has and not self.running)
        blocked = self.use_action.blockSignals(True)
        self.use_action.setChecked(has and ws is not None and isinstance(active_setting(ws), str))
        self.use_action.blockSignals(blocked)

    def teach(self) -> bool:
        ws = self.review.workspace
        if ws is None or self.running:
            return False
        steps = self.steps

        def run(ctx) -> TeachOutcome:
            def progress(done: int, total: int) -> None:
                ctx.progress(done, total, f"Teaching artery/vein: step {done} of {total}")

            return teach_workspace(ws, steps, progress=progress, cancelled=lambda: ctx.cancelled)

        w = Worker(run, name="teach artery/vein")
        w.progress.connect(self.tasks.guard(lambda _d, _t, text: self.status.emit(text)))
        w.returned.connect(self.tasks.guard(self._taught))
        w.errored.connect(self.tasks.guard(self._failed))
        w.finished.connect(self.tasks.guard(self._ended))
        self.worker, self._teaching_in = w, ws
        self._show_state()
        self.status.emit("Teaching artery/vein from your labels…")
        self.tasks.start(w, priority=-1)  # behind the calibre and prediction work of the open image
        return True

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.status.emit("Stopping artery/vein teaching…")

    def _ended(self) -> None:
        self.worker = None
        self._show_state()

    def _failed(self, message: str) -> None:
        self.status.emit(f"Teach artery/vein: {message}")
        self.finished.emit(None)

    def _taught(self, outcome: TeachOutcome) -> None:
        self.worker = None
        if self._teaching_in is not self.review.workspace:  # taught for a workspace no longer open: dropped
            self._show_state()
            self.finished.emit(None)
            return
        for line in outcome.skipped:
            self.status.emit(f"Teach artery/vein: skipped {line}")
        t = outcome.taught
        if t.verdict == "ask" and self.review.workspace is not None:
            doubts, _, said = t.reason.partition(": ")
            if self.confirm(
                "Use the taught artery/vein suggestion?",
                f"Your labels taught a new artery/vein suggestion, {said}.\n\nIt is not put in use by itself: "
                f"{doubts}. Use it for the photos you have not labelled?",
                "Use it",
            ):
                self._adopt(outcome)
            else:
                self.status.emit(outcome.message())
        else:
            self.status.emit(outcome.message())
            if outcome.active:
                self.changed.emit()
        self._show_state()
        self.finished.emit(outcome)

    def _adopt(self, outcome: TeachOutcome) -> None:
        ws = self.review.workspace
        try:
            if ws is not None and adopt_candidate(ws, outcome.taught.model):
                self.status.emit("Teach artery/vein: the taught suggestion is in use")
                self.changed.emit()
            else:
                self.status.emit("Teach artery/vein: the network asked about is gone or was replaced; teach again")
        except (WorkspaceError, OSError, sqlite3.Error) as exc:
            self.status.emit(f"Teach artery/vein: {exc}")

    def set_in_use(self, on: bool) -> None:
        ws = self.review.workspace
        if ws is None:
            return
        try:
            if on and not activate(ws):
                self.status.emit("Teach artery/vein: no taught suggestion yet")
            elif not on:
                deactivate(ws)
        except (WorkspaceError, OSError, sqlite3.Error) as exc:
            self.status.emit(f"Teach artery/vein: {exc}")
        self._show_state()
        self.changed.emit()
