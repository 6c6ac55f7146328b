"""Keep learning (Model ▸ Keep learning, off by default): after every k approvals a background fine-tune.

When a run starts is ``core.model.keep_learning``'s decision; the run is the Fine-tune… dialog's own
(``FinetuneController.start(background=True)``: one thread, low priority) and its gate decides as for any run.
This view turns it on and off, asks for the decision after each approval, and keeps the banner told: a pinned
"…in the background [Stop]" while the run lasts, what came of it after, and the gate's "ask" as a pinned question
with [Use it] / [Not now] (no question box pops up in the middle of a brush stroke).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from ...core.model.finetune_job import DoneOutcome, corrected_samples
from ...core.model.keep_learning import Decision, decide, log_run_started, now_stamp
from ...core.review.review_session import ReviewSession
from ..common.context import ActionRegistry
from ..common.settings import AppSettings
from .finetune_panel import FinetuneController
from .run_outcome import KEEP_LEARNING_PREFIX

log = logging.getLogger("retina_desktop")

Buttons = list[tuple[str, Callable[[], object]]]


@dataclass(frozen=True)
class BannerPins:
    """The banner's messages that stay while their matter lasts (``MessageBanner.pin`` / ``unpin``), and its
    ordinary ones (``show(text, level)``) and the status bar's (``status(text, ms)``)."""

    pin: Callable[[str, str, Buttons], None]
    unpin: Callable[[], None]
    show: Callable[[str, str], None]
    status: Callable[[str, int], None]


def started_text(new: int, total: int) -> str:
    newest = "approval" if new == 1 else f"{new} newest approvals"
    also = f" ({total} approved images in all)" if total > new else ""
    return f"{KEEP_LEARNING_PREFIX}fine-tuning on your {newest}{also} in the background…"


def stopped_text(latency: float, every: int) -> str:
    return (
        f"{KEEP_LEARNING_PREFIX}stopped (in {latency:.1f} s); the active model is unchanged. It stays on: the next "
        f"run starts after {every} more approvals (Model ▸ Keep learning turns it off)."
    )


def asked_text(out: DoneOutcome) -> str:
    return (
        f"{KEEP_LEARNING_PREFIX}the fine-tuned model {out['version']} looks better, but the gate leaves the choice "
        f"to you: {out['reason']}. It stays in Models… either way."
    )


class KeepLearning(QObject):
    decided = Signal(object)  # every Decision taken after an approval (the status bar says it too)
    run_started = Signal(object)  # the Decision that started a run

    def __init__(
        self,
        finetune: FinetuneController,
        review: ReviewSession,
        settings: AppSettings,
        actions: ActionRegistry,
        banner: BannerPins,
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self.finetune, self.review, self.settings, self.banner = finetune, review, settings, banner
        # k is read at each use: Preferences changes it while the window is open.
        tip = (
            "After every k approvals (Preferences), fine-tune the active model in the background "
            "(one CPU thread, low priority), gated like any fine-tune"
        )
        self.action = actions.add("Keep learning", self.set_on, checkable=True, tip=tip)
        self.action.setObjectName("keep_learning_action")
        self.action.blockSignals(True)  # the stored choice is shown, not chosen again
        self.action.setChecked(settings.keep_learning)
        self.action.blockSignals(False)
        self.last_decision: Decision | None = None
        review.approved.connect(self._approved)
        review.workspace_changed.connect(lambda _ws: self._start_counting(only_if_unset=True))
        finetune.run_finished.connect(self._finished)
        finetune.run_failed.connect(self._failed)
        finetune.run_cancelled.connect(self._cancelled)
        finetune.ask_deferred.connect(self._asked)

    @property
    def on(self) -> bool:
        return self.settings.keep_learning

    @property
    def ours(self) -> bool:
        """The fine-tune the controller runs (or ran last) is ours."""
        return self.finetune.background

    def set_on(self, on: bool) -> None:
        self.settings.keep_learning = on
        if on:
            self._start_counting()
            self.banner.status(
                f"Keep learning is on: after every {self.settings.keep_learning_every} approvals a fine-tune runs "
                "in the background",
                6000,
            )
        elif self.finetune.running and self.ours:
            self.stop()  # switched off: its run goes too

    def _start_counting(self, only_if_unset: bool = False) -> None:
        """Approvals count from now (switched on; a workspace never counted before)."""
        ws = self.review.workspace
        if ws is None or not self.on:
            return
        if only_if_unset and self.settings.keep_learning_since(str(ws.root)) is not None:
            return  # counted since its last run, across restarts
        self.settings.set_keep_learning_since(str(ws.root), now_stamp())

    def _approved(self, _key: str) -> None:
        # After the approval's own flow (the status bar, the step to the next image) has run.
        QTimer.singleShot(0, self.check)

    def check(self) -> bool:
        """Start a background run if the policy says so; True if one started. ``decided`` tells either way."""
        ws = self.review.workspace
        ft = self.finetune
        since = self.settings.keep_learning_since(str(ws.root)) if ws is not None else None
        d = decide(
            ws,
            on=self.on,
            every=self.settings.keep_learning_every,
            since=since,
            busy=ft.running or ft.dialog is not None,
            ask_pending=ft.pending_ask is not None,
        )
        self.last_decision = d
        log.info("keep learning: %s", d.why)
        started = ws is not None and d.start and self._start(d, str(ws.root), len(corrected_samples(ws)))
        if not started and self.on and d.new:
            self.banner.status(f"Keep learning: {d.why}", 3000)
        self.decided.emit(d)
        return started

    def _start(self, d: Decision, root: str, total: int) -> bool:
        # Counting restarts at the run's start, whether it starts or not: a run that cannot start (no model) is
        # said once, not again at every later approval.
        self.settings.set_keep_learning_since(root, now_stamp())
        ws = self.review.workspace
        if ws is not None:
            log_run_started(ws, d.new)  # another window on this workspace counts from here too
        if not self.finetune.start(background=True):
            return False
        self.banner.pin(started_text(len(d.new), total), "info", [("Stop", self.stop)])
        self.run_started.emit(d)
        return True

    def stop(self) -> None:
        """The banner's Stop: cancel the background run (nothing is activated)."""
        if self.finetune.running and self.ours:
            self.finetune.cancel()
            self.banner.pin(f"{KEEP_LEARNING_PREFIX}stopping the background fine-tune…", "info", [])

    # ------------------------------------------------------------------------------------- outcomes --
    def _finished(self, _out: DoneOutcome) -> None:
        if self.ours:
            self.banner.unpin()  # the controller has said what came of it, over the pinned line

    def _failed(self, _message: str) -> None:
        if self.ours:
            self.banner.unpin()

    def _cancelled(self, latency: float) -> None:
        if self.ours:
            self.banner.unpin()
            self.banner.show(stopped_text(latency, self.settings.keep_learning_every), "info")

    def _asked(self, out: DoneOutcome) -> None:
        self.banner.pin(asked_text(out), "warning", [("Use it", self._use_it), ("Not now", self._not_now)])

    def _use_it(self) -> None:
        self.banner.unpin()
        self.finetune.answer_pending_ask(True)

    def _not_now(self) -> None:
        self.banner.unpin()
        self.finetune.answer_pending_ask(False)
