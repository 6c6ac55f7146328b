"""Closing the window: unsaved edits are asked about first (save, discard, or stay open); then the layout and the
open image are remembered, and the background work is stopped before the window goes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent

from ...core.review.review_session import ReviewSession
from ..common.prompter import Prompter
from ..common.settings import AppSettings
from ..common.workers import TaskRunner
from .save_flow import SaveFlow
from .window_layout import WindowLayout
from .workspace_flow import WorkspaceFlow


class Closing:
    def __init__(
        self,
        review: ReviewSession,
        prompter: Callable[[], Prompter],
        saving: SaveFlow,
        workspaces: WorkspaceFlow,
        layout: WindowLayout,
        settings: AppSettings,
        tasks: TaskRunner,
        autosave_timer: QTimer,
        timers: Sequence[QTimer],
        stop_features: Callable[[], None],
    ) -> None:
        """``prompter``: read at each question (tests and the self-test put their own prompter on the window);
        ``timers``: the others, stopped with the autosave's; ``stop_features``: ends what the features run (a
        training process)."""
        self.review, self._prompter, self.saving, self.workspaces = review, prompter, saving, workspaces
        self.layout, self.settings, self.tasks = layout, settings, tasks
        self.autosave_timer, self.timers, self.stop_features = autosave_timer, timers, stop_features

    def close_event(self, event: QCloseEvent) -> None:
        s, ws = self.review.image, self.review.workspace
        if s is not None and s.document.unsaved:
            writable = bool(ws and ws.gt_writable)
            choice = self._prompter().ask_unsaved(s.entry.name, can_save=writable)
            if choice == "cancel" or (choice == "save" and not self.saving.save_current(auto=False)):
                event.ignore()
                return
        self.autosave_timer.stop()
        self.layout.remember()  # first: what follows may fail (a workspace that has gone)
        self.workspaces.remember_open_image()
        self.settings.sync()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop background work and wait for the threads (used by closeEvent and test teardown)."""
        for timer in (self.autosave_timer, *self.timers, self.layout.timer):
            timer.stop()
        self.stop_features()  # ends a training process still running
        self.tasks.shutdown()  # from here on, results still queued for the UI thread are dropped
        if self.review.workspace is not None:
            self.review.workspace.close()  # ends this window's "already open" record
