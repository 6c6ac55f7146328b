"""Fine-tune from the app: the dialog, the progress window with its live plot, and what a run's end does.

``FinetuneController`` makes the "Fine-tune…" and "Models…" actions and the Fine-tuning window (a dock); the
composition root (``ui.app.features``) puts them in the Model menu and the toolbar, docks the window, has the
prediction feature load the model after ``model_switched``, and asks ``eventFilter`` before the main window
closes. Training runs in a child process (``training_process``; ``finetune_job`` says why); the outcome is
the gate's: the new version is activated when it passed, otherwise kept in the store and the reason said
(``run_outcome``). Switching versions and re-predicting are ``model_switcher``'s.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import QWidget

from model_core.errors import CheckpointError
from model_core.model_store import DEFAULT_ID

from ...core.model.finetune_job import (
    BACKGROUND_NICE,
    BACKGROUND_THREADS,
    ChildMessage,
    DoneOutcome,
    Epoch,
    FinetuneJob,
    Note,
    TrainOverrides,
    budget_overrides,
    corrected_samples,
    measure_step_seconds,
    training_threads,
    unreviewed_photos,
)
from ...core.model.model_service import ModelHolder
from ...core.review.review_session import ReviewSession
from ..common.context import ActionRegistry
from ..common.prompter import Prompter
from ..common.settings import AppSettings
from ..common.workers import TaskRunner, Worker, WorkerContext
from .finetune_dialog import FinetuneDialog
from .model_switcher import ModelSwitcher, Repredict
from .progress_panel import FinetunePanel, RunProgress, finetune_dock
from .run_outcome import (
    KEEP_LEARNING_PREFIX,
    OUTCOME_PREFIXES,
    REPREDICT_HINT,
    activated_text,
    ask_text,
    asks_the_grader,
    cancelled_text,
    failed_text,
    kept_text,
    passed_gate,
)
from .training_process import TrainingProcess

log = logging.getLogger("retina_desktop")

# TrainConfig fields merged over the engine's fine-tune defaults and the chosen budget (tests shrink runs here).
CONFIG_OVERRIDES: TrainOverrides = {}


def _device() -> tuple[str, str]:
    """(type, text) of the device training will use."""
    import torch

    from model_core.device import select_device

    dev = select_device()
    if dev.type == "cuda":
        return "cuda", f"GPU: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "mps", "Apple GPU (MPS)"
    return "cpu", f"CPU ({training_threads()} of {os.cpu_count()} cores; no GPU found)"


def run_budget(settings: AppSettings, device_type: str, background: bool) -> TrainOverrides:
    """The dialog passes its own budget; a background run takes the one last started with (the device's default
    until one was chosen)."""
    if not background:
        return budget_overrides(device_type)
    if settings.finetune_by_epochs:
        return budget_overrides(device_type, epochs=settings.finetune_epochs)
    return budget_overrides(device_type, minutes=settings.finetune_minutes or None)


def estimate_step_time(
    tasks: TaskRunner, dlg: FinetuneDialog, parent_path: Path, still_open: Callable[[], bool]
) -> Worker:
    """Time a training step in a worker and tell the dialog, if ``still_open`` (a closed one's goes nowhere)."""

    def measure(ctx: WorkerContext) -> float:
        return measure_step_seconds(parent_path, dlg.overrides(), cancelled=lambda: ctx.cancelled)

    def measured(step_s: float | None, error: str | None = None) -> None:
        if still_open():
            dlg.set_step_seconds(step_s, error)

    est = Worker(measure, name="measure step time")
    est.returned.connect(tasks.guard(measured))
    est.errored.connect(tasks.guard(lambda msg: measured(None, msg)))
    tasks.start(est, priority=1)
    return est


@dataclass(frozen=True)
class Messages:
    """Where the feature speaks: the banner over the image (its text and dismissal too) and the status bar."""

    show: Callable[[str, str], None]  # (text, level)
    status: Callable[[str, int], None]  # (text, milliseconds)
    banner_text: Callable[[], str]
    clear: Callable[[], None]


class FinetuneController(QObject):
    run_started = Signal()
    epoch_reported = Signal(object)  # dict of an EpochReport
    run_finished = Signal(object)  # the child's outcome dict, plus "activated"
    run_failed = Signal(str)
    run_cancelled = Signal(float)  # seconds from Cancel to the training process gone
    # A background run's gate asked: the question waits (``pending_ask``) for ``answer_pending_ask``, which the
    # grader gives by a click, since a question box would pop up in the middle of a brush stroke.
    ask_deferred = Signal(object)  # the DoneOutcome
    model_switched = Signal(str)  # the checkpoint path now used

    def __init__(
        self,
        review: ReviewSession,
        model: ModelHolder,
        tasks: TaskRunner,
        repredict: Repredict,
        settings: AppSettings,
        prompter: Prompter,
        messages: Messages,
        actions: ActionRegistry,
        save_open_image: Callable[[], object],
        parent: QWidget,
    ) -> None:
        """``parent``: the main window's widget, parent of the dock and the dialogs (the dock first opens at its
        lower right); ``save_open_image`` autosaves the open image before its mask is counted."""
        super().__init__(parent)
        self.review, self.model, self.tasks, self.settings = review, model, tasks, settings
        self.prompter, self.messages, self.save_open_image = prompter, messages, save_open_image
        self._parent = parent
        self.panel = FinetunePanel(parent)
        self.run_progress = RunProgress(self.panel)
        self.dock = finetune_dock(self.panel, parent)
        self._placed = False  # put at the window's lower right on first show; where the grader moves it, it stays
        self.versions = ModelSwitcher(
            model,
            review,
            repredict,
            self.panel.repredict_button,
            lambda: self.running,
            messages.show,
            messages.status,
            parent,
        )
        self.versions.model_switched.connect(self.model_switched)
        # Model switching is the switcher's; these are its entry points (the Models… action, tests).
        self.activate_version = self.versions.activate_version
        self.open_models_dialog = self.versions.open_models_dialog
        self.repredict_unreviewed = self.versions.repredict_unreviewed
        self.panel.models_button.clicked.connect(self.open_models_dialog)
        self.panel.repredict_button.clicked.connect(self.repredict_unreviewed)
        self.panel.cancel_button.clicked.connect(self.cancel)
        self._add_actions(actions)
        self.dialog: FinetuneDialog | None = None
        self._estimate_worker: Worker | None = None
        self.run = TrainingProcess(self)
        self.run.message.connect(self._handle)
        self.run.stopped.connect(self._stopped)
        self.run.cancelled.connect(self._cancelled)
        self.run.failed.connect(self._failed)
        self.run.finished.connect(self._finished)
        self._notes: list[str] = []  # what the running child said the grader should know
        self.last_outcome: DoneOutcome | None = None
        self.background = False  # the run is Keep learning's: one thread, low priority, its messages say so
        self.pending_ask: DoneOutcome | None = None  # a background run's "ask" verdict not answered yet

    def _add_actions(self, actions: ActionRegistry) -> None:
        tip = "Teach the model from the corrected and approved masks of this workspace"
        self.finetune_action = actions.add("Fine-tune…", self.open_dialog, tip=tip)
        self.finetune_action.setObjectName("finetune_action")
        tip = "Model versions: metrics, switch, roll back"
        self.models_action = actions.add("Models…", self.open_models_dialog, tip=tip)
        self.models_action.setObjectName("models_action")

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        """Installed by the root on the main window: closing it during a run asks first."""
        if event.type() == QEvent.Type.Close and self.running:
            stop = self.prompter.confirm(
                "Fine-tuning is running",
                "Closing the app stops the fine-tune run; the active model stays as it is.",
                ok_text="Stop and close",
                object_name="finetune_close_prompt",
            )
            if not stop:
                event.ignore()
                return True  # the window stays open, the run goes on
        return False

    # ----------------------------------------------------------------- helpers --
    @property
    def running(self) -> bool:
        return self.run.running

    def parent_model(self) -> tuple[Path, str | None, str]:
        """(checkpoint, store version id or None, label) of the model the app uses now."""
        version = self.model.active_version()
        if version is not None:
            if version.id == DEFAULT_ID:  # its name already says "(bundled)"
                return version.path, version.id, f"{version.name}, the default model"
            return version.path, version.id, f"{version.name} ({version.label})"
        path = self.model.checkpoint_path()
        return path, None, f"{path.name} (given on the command line)"

    def keep_restored_position(self) -> None:
        self._placed = True

    def show_dock(self) -> None:
        """Show the Fine-tuning window; the first time at the lower right of the main window, so it covers
        neither the toolbar, the image list nor the banner that reports the outcome."""
        if not self._placed and self.dock.isFloating():
            frame = self._parent.frameGeometry()
            x = max(frame.left(), frame.right() - self.dock.width() - 24)
            y = max(frame.top(), frame.bottom() - self.dock.height() - 48)
            self.dock.move(x, y)
            self._placed = True
        self.dock.show()
        self.dock.raise_()

    # ------------------------------------------------------------------ dialog --
    def open_dialog(self) -> FinetuneDialog | None:
        workspace = self.review.workspace
        if self.running:
            self.show_dock()
            return None
        if workspace is None:
            self.messages.show("Open a workspace and approve some corrected masks first.", "info")
            return None
        self.save_open_image()
        samples = corrected_samples(workspace)
        try:
            parent_path, _pid, parent_label = self.parent_model()
        except (CheckpointError, OSError) as exc:  # no model file: there is nothing to fine-tune
            self.messages.show(f"Fine-tune needs a model: {exc}", "warning")
            return None
        from model_core.finetune import plan_split

        note = (
            plan_split(samples).note
            if samples
            else "Approve at least one corrected image (Ctrl+Enter) to fine-tune on it."
        )
        device_type, device_text = _device()
        dlg = FinetuneDialog(self._parent, len(samples), note, parent_label, device_type, device_text, self.settings)
        dlg.accepted.connect(lambda d=dlg: self.start(d.overrides()))
        dlg.finished.connect(self._dialog_closed)
        self.dialog = dlg
        if samples:
            self._estimate_worker = estimate_step_time(self.tasks, dlg, parent_path, lambda: dlg is self.dialog)
        dlg.open()  # window-modal, non-blocking: the event loop (and the tests) keep running
        return dlg

    def _dialog_closed(self, _result: int) -> None:
        if self._estimate_worker is not None:
            self._estimate_worker.cancel()
            self._estimate_worker = None
        self.dialog = None

    # ------------------------------------------------------------------- run --
    def start(self, overrides: TrainOverrides | None = None, background: bool = False) -> bool:
        """Start a run on the workspace's approved corrections; False (with a message) if it cannot.

        ``background`` (Keep learning): one training thread at low priority, so painting keeps its speed, with the
        budget last chosen in the Fine-tune dialog; the Fine-tuning window is not raised over the image."""
        workspace = self.review.workspace
        if self.running or workspace is None:
            return False
        samples = corrected_samples(workspace)
        if not samples:
            self.messages.show("Nothing to fine-tune on: approve at least one corrected image first.", "info")
            return False
        try:
            parent_path, parent_id, parent_label = self.parent_model()
        except (CheckpointError, OSError) as exc:
            self.messages.show(f"Fine-tune needs a model: {exc}", "warning")
            return False
        device_type, _ = _device()
        overrides = {**run_budget(self.settings, device_type, background), **CONFIG_OVERRIDES, **(overrides or {})}
        job = FinetuneJob(
            str(parent_path),
            parent_id,
            [(str(s.image), str(s.mask)) for s in samples],
            str(self.model.store.root),
            overrides,
            BACKGROUND_THREADS if background else training_threads(),
            unreviewed_photos(workspace),
            BACKGROUND_NICE if background else 0,
        )
        if self.pending_ask is not None:
            self.answer_pending_ask(False)  # a new run supersedes the question about the last one's model
        self._notes = []
        try:
            self.run.start(job.as_dict())
        except Exception as exc:
            log.exception("could not start the fine-tune process")
            self.messages.show(f"Fine-tune could not start: {exc}", "error")
            return False
        self.last_outcome = None
        self.background = background
        if self.messages.banner_text().startswith(OUTCOME_PREFIXES):
            self.messages.clear()  # the previous run's outcome is superseded by this run
        self.run_progress.begin(overrides, parent_label, len(samples))
        if not background:
            self.show_dock()
        self._update_actions()
        self.messages.status("Fine-tuning started in the background", 4000)
        self.run_started.emit()
        return True

    def cancel(self) -> None:
        if self.run.cancel():
            self.panel.cancel_button.setEnabled(False)
            self.panel.status_label.setText("Cancelling… the active model stays as it is.")

    def shutdown(self) -> None:
        """The app is closing: stop the training process at once (nothing is activated)."""
        self.run_progress.plot_timer.stop()
        self.run.shutdown()

    def _stopped(self) -> None:
        self.run_progress.stop()
        self._update_actions()

    def _handle(self, msg: ChildMessage) -> None:
        self.run_progress.take(msg)
        if isinstance(msg, Epoch):
            self.epoch_reported.emit(msg.report)
        elif isinstance(msg, Note):
            self._notes.append(msg.text)
            self.messages.show(f"Fine-tune: {msg.text}", "warning")

    # --------------------------------------------------------------- outcomes --
    def _cancelled(self, latency: float) -> None:
        self.run_progress.end("cancelled", cancelled_text(latency))
        self.messages.status("Fine-tune cancelled; the active model is unchanged", 6000)
        self.run_cancelled.emit(latency)

    def _failed(self, message: str) -> None:
        text = failed_text(message)
        self.run_progress.end("failed", text)
        self._say(text, "error")
        self.run_failed.emit(message)

    def _say(self, text: str, level: str) -> None:
        """The banner; a background run's words say whose run it was."""
        self.messages.show((KEEP_LEARNING_PREFIX if self.background else "") + text, level)

    def _finished(self, out: DoneOutcome) -> None:
        """The gate's verdict: a version that passed becomes the active model; one that did not is kept, said why."""
        self.last_outcome = out
        if out.get("failed"):
            self._failed(out.get("reason") or out.get("stop_reason", "training failed"))
            return
        self.panel.show_parent_dice(out.get("parent_dice"))
        out["activated"] = False
        if self.background and asks_the_grader(out):
            self.pending_ask = out
            self.run_progress.end("done: waiting for your choice", ask_text(out))
            self.ask_deferred.emit(out)
            return
        self._conclude(out, passed_gate(out) or (asks_the_grader(out) and self._grader_takes(out)))

    def answer_pending_ask(self, use_it: bool) -> None:
        """The grader's answer to a background run's "ask": its version becomes active only if ``use_it``."""
        out, self.pending_ask = self.pending_ask, None
        if out is not None:
            self._conclude(out, use_it)

    def _conclude(self, out: DoneOutcome, take: bool) -> None:
        """Activate the run's version if ``take`` (and there is one), say what came of it, emit ``run_finished``."""
        version = out.get("version")
        if version is not None and take:
            try:
                self.activate_version(version)
                out["activated"] = True
            except Exception as exc:
                log.exception("could not activate %s", version)
                self._failed(f"the new version {version} was saved but could not be activated ({exc})")
                return
            text = activated_text(out)
            self.run_progress.end("done: new model active", text)
            self._say(text + REPREDICT_HINT, "info")
        else:
            text = kept_text(out)
            self.run_progress.end("done: kept the current model", text)
            self._say(text, "warning")
        self.run_finished.emit(out)

    def _grader_takes(self, out: DoneOutcome) -> bool:
        """The gate left the choice to the grader: the evidence in one sentence, and the new version is used only
        if they click *Use it*."""
        return self.prompter.confirm(
            "Use the fine-tuned model?", ask_text(out), ok_text="Use it", object_name="gate_ask"
        )

    def _update_actions(self) -> None:
        self.finetune_action.setEnabled(not self.running)
        self.finetune_action.setText("Fine-tune…" if not self.running else "Fine-tuning…")
