"""Fine-tune from the app: the dialog, the progress window with its live plot, gating (model switching: model_switcher).

``install_finetune(window)`` adds the "Fine-tune…" and "Models…" actions (toolbar and a Model menu)
and a ``FinetuneController`` as ``window.finetune``. Training runs in a child process (see
``finetune_job`` for why); this module only starts it, polls its messages with a timer on the UI
thread, and decides what to do with the outcome: activate the new version when it passed the gate,
otherwise keep it in the store and say why.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import queue as queue_mod
import time
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from model_core.errors import CheckpointError
from model_core.model_store import DEFAULT_ID

from ...core.model.finetune_job import (
    Done,
    Epoch,
    Failed,
    FinetuneJob,
    Note,
    Plan,
    Started,
    Step,
    budget_overrides,
    child_main,
    corrected_samples,
    kept_model_words,
    measure_step_seconds,
    training_threads,
    unreviewed_photos,
)
from ..common.workers import Worker
from .finetune_dialog import (
    FinetuneDialog,
    fmt_duration as _fmt_duration,
)
from .model_switcher import ModelSwitcher

log = logging.getLogger("retina_desktop")

# TrainConfig fields merged over the engine's fine-tune defaults and the chosen budget (tests shrink runs here).
CONFIG_OVERRIDES: dict = {}
POLL_MS = 100
CANCEL_GRACE_S = 1.5  # cooperative cancel first; then the process is terminated


def _device():
    """(type, text) of the device training will use."""
    import torch

    from model_core.device import select_device

    dev = select_device()
    if dev.type == "cuda":
        return "cuda", f"GPU: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        return "mps", "Apple GPU (MPS)"
    return "cpu", f"CPU ({training_threads()} of {__import__('os').cpu_count()} cores; no GPU found)"


class FinetunePanel(QWidget):
    """Progress, ETA, the live plot (training loss per step, validation Dice per epoch), Cancel."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.status_label = QLabel("No fine-tune run yet.")
        self.status_label.setObjectName("ft_status_label")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.status_label)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setObjectName("ft_progress")
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.eta_label = QLabel("")
        self.eta_label.setObjectName("ft_eta_label")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("ft_cancel_button")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.progress, 1)
        row.addWidget(self.eta_label)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setMinimumHeight(170)
        self.loss_plot = self.plot.addPlot(title="training loss")
        self.loss_plot.setLabel("bottom", "step")
        self.dice_plot = self.plot.addPlot(title="validation Dice")
        self.dice_plot.setLabel("bottom", "epoch")
        self.dice_plot.setYRange(0.0, 1.0, padding=0.02)
        self.dice_plot.setLimits(yMin=-0.02, yMax=1.02)  # Dice lives in [0, 1]; zooming never leaves it
        self.dice_plot.enableAutoRange(axis="y", enable=False)
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#5aa9e6", width=1))
        self.dice_curve = self.dice_plot.plot([], [], pen=pg.mkPen("#f2b134", width=2), symbol="o", symbolSize=5)
        self.parent_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen("#aaaaaa", style=Qt.PenStyle.DashLine),
            label="current model",
            # right-aligned inside the plot: at the left edge it was cut to "rrent"
            labelOpts={"position": 0.97, "anchors": [(1, 1), (1, 1)], "color": "#aaaaaa"},
        )
        self.parent_line.hide()
        self.dice_plot.addItem(self.parent_line)
        lay.addWidget(self.plot, 1)
        actions = QHBoxLayout()
        self.repredict_button = QPushButton("Re-predict images not yet reviewed")
        self.repredict_button.setObjectName("ft_repredict_button")
        self.repredict_button.hide()
        self.models_button = QPushButton("Models…")
        actions.addWidget(self.repredict_button)
        actions.addStretch(1)
        actions.addWidget(self.models_button)
        lay.addLayout(actions)
        self.steps_x: list[int] = []
        self.losses: list[float] = []
        self.epochs_x: list[int] = []
        self.dices: list[float] = []

    def reset(self) -> None:
        self.steps_x, self.losses, self.epochs_x, self.dices = [], [], [], []
        self.loss_curve.setData([], [])
        self.dice_curve.setData([], [])
        self.parent_line.hide()
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.eta_label.setText("")
        self.repredict_button.hide()

    def add_step(self, x: int, loss: float) -> None:
        self.steps_x.append(x)
        self.losses.append(loss)

    def add_epoch(self, epoch: int, dice: float) -> None:
        if dice is not None and math.isfinite(dice):
            self.epochs_x.append(epoch)
            self.dices.append(dice)
            self.dice_curve.setData(self.epochs_x, self.dices)

    def redraw(self) -> None:
        self.loss_curve.setData(self.steps_x, self.losses)


class FinetuneController(QObject):
    run_started = Signal()
    epoch_reported = Signal(object)  # dict of an EpochReport
    run_finished = Signal(object)  # the child's outcome dict, plus "activated"
    run_failed = Signal(str)
    run_cancelled = Signal(float)  # seconds from Cancel to the training process gone
    model_switched = Signal(str)  # the checkpoint path now used

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.panel = FinetunePanel(window)
        self.dock = QDockWidget("Fine-tuning", window)
        self.dock.setObjectName("finetune_dock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        # A window of its own by default: docked at the bottom of a 1280x800 window it covered the review
        # panel's buttons and made the window taller than the screen. The grader may still dock it.
        self.dock.setFloating(True)
        self.dock.resize(720, 360)
        self.dock.hide()
        self._placed = False  # put at the window's lower right on first show; where the grader moves it, it stays
        self.panel.cancel_button.clicked.connect(self.cancel)
        self.versions = ModelSwitcher(self)
        # Model switching is the switcher's; these are its entry points (the Models… action, tests).
        self.activate_version = self.versions.activate_version
        self.open_models_dialog = self.versions.open_models_dialog
        self.repredict_unreviewed = self.versions.repredict_unreviewed
        self.panel.models_button.clicked.connect(self.open_models_dialog)
        self.panel.repredict_button.clicked.connect(self.repredict_unreviewed)
        self.dialog: FinetuneDialog | None = None
        self._proc = None
        self._queue = None
        self._cancel_event = None
        self._cancel_t0: float | None = None
        self._terminal: Done | Failed | None = None
        self._job: dict | None = None
        self._overrides: dict = {}
        self._started_at = 0.0
        self._plan: Plan | None = None
        self._notes: list[str] = []
        self._estimate_worker: Worker | None = None
        self.last_outcome: dict | None = None
        self._eta_from_epoch: tuple[float, float] | None = None
        self._parent_label = ""
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self._poll)
        self.plot_timer = QTimer(self)  # the loss curve is redrawn at most 4 times a second
        self.plot_timer.setInterval(250)
        self.plot_timer.timeout.connect(self.panel.redraw)
        window.installEventFilter(self)  # to ask before closing the window ends a run

    def eventFilter(self, obj, event) -> bool:
        if obj is self.window and event.type() == QEvent.Type.Close and self.running:
            stop = self.window.prompter.confirm(
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
        return self._proc is not None

    @property
    def store(self):
        return self.window.model.store

    def parent_model(self) -> tuple[Path, str | None, str]:
        """(checkpoint, store version id or None, label) of the model the app uses now."""
        holder = self.window.model
        version = holder.active_version()
        if version is not None:
            if version.id == DEFAULT_ID:  # its name already says "(bundled)"
                return version.path, version.id, f"{version.name}, the default model"
            return version.path, version.id, f"{version.name} ({version.label})"
        path = holder.checkpoint_path()
        return path, None, f"{path.name} (given on the command line)"

    def keep_restored_position(self) -> None:
        self._placed = True

    def show_dock(self) -> None:
        """Show the Fine-tuning window; the first time at the lower right of the main window, so it covers
        neither the toolbar, the image list nor the banner that reports the outcome."""
        if not self._placed and self.dock.isFloating():
            frame = self.window.frameGeometry()
            x = max(frame.left(), frame.right() - self.dock.width() - 24)
            y = max(frame.top(), frame.bottom() - self.dock.height() - 48)
            self.dock.move(x, y)
            self._placed = True
        self.dock.show()
        self.dock.raise_()

    # ------------------------------------------------------------------ dialog --
    def open_dialog(self) -> FinetuneDialog | None:
        w = self.window
        if self.running:
            self.show_dock()
            return None
        if w.workspace is None:
            w.show_message("Open a workspace and approve some corrected masks first.", "info")
            return None
        w.save_current(auto=True)
        samples = corrected_samples(w.workspace)
        try:
            parent_path, _pid, parent_label = self.parent_model()
        except (CheckpointError, OSError) as exc:  # no model file: there is nothing to fine-tune
            w.show_message(f"Fine-tune needs a model: {exc}", "warning")
            return None
        from model_core.finetune import plan_split

        note = (
            plan_split(samples).note
            if samples
            else "Approve at least one corrected image (Ctrl+Enter) to fine-tune on it."
        )
        device_type, device_text = _device()
        dlg = FinetuneDialog(w, len(samples), note, parent_label, device_type, device_text, w.settings)
        dlg.accepted.connect(lambda d=dlg: self.start(d.overrides()))
        dlg.finished.connect(self._dialog_closed)
        self.dialog = dlg
        if samples:
            est = Worker(
                lambda ctx: measure_step_seconds(parent_path, dlg.overrides(), cancelled=lambda: ctx.cancelled),
                name="measure step time",
            )
            g = w.tasks.guard
            est.returned.connect(g(lambda s, d=dlg: d is self.dialog and d.set_step_seconds(s)))
            est.errored.connect(g(lambda msg, d=dlg: d is self.dialog and d.set_step_seconds(None, msg)))
            self._estimate_worker = est
            w.tasks.start(est, priority=1)
        dlg.open()  # window-modal, non-blocking: the event loop (and the tests) keep running
        return dlg

    def _dialog_closed(self, _result: int) -> None:
        if self._estimate_worker is not None:
            self._estimate_worker.cancel()
            self._estimate_worker = None
        self.dialog = None

    # ------------------------------------------------------------------- run --
    def start(self, overrides: dict | None = None) -> bool:
        """Start a run on the workspace's approved corrections; False (with a message) if it cannot."""
        w = self.window
        if self.running or w.workspace is None:
            return False
        samples = corrected_samples(w.workspace)
        if not samples:
            w.show_message("Nothing to fine-tune on: approve at least one corrected image first.", "info")
            return False
        try:
            parent_path, parent_id, parent_label = self.parent_model()
        except (CheckpointError, OSError) as exc:
            w.show_message(f"Fine-tune needs a model: {exc}", "warning")
            return False
        device_type, _ = _device()
        self._overrides = {**budget_overrides(device_type), **CONFIG_OVERRIDES, **(overrides or {})}
        job = FinetuneJob(
            str(parent_path),
            parent_id,
            [(str(s.image), str(s.mask)) for s in samples],
            str(self.store.root),
            self._overrides,
            training_threads(),
            unreviewed_photos(w.workspace),
        )
        self._job = job.as_dict()
        self._parent_label = parent_label
        ctx = mp.get_context("spawn")  # never fork a process that runs Qt threads
        self._queue = ctx.Queue()
        self._cancel_event = ctx.Event()
        self._terminal, self._cancel_t0, self._plan, self._notes = None, None, None, []
        proc = ctx.Process(
            target=child_main, args=(self._job, self._queue, self._cancel_event), name="retina-finetune", daemon=True
        )
        try:
            proc.start()
        except Exception as exc:
            log.exception("could not start the fine-tune process")
            self._queue = self._cancel_event = None
            w.show_message(f"Fine-tune could not start: {exc}")
            return False
        self._proc = proc
        self._started_at = time.monotonic()
        self.last_outcome = None
        if w.banner.text().startswith(("New model", "The fine-tuned model", "Fine-tune")):
            w.clear_message()  # the previous run's outcome is superseded by this run
        self.panel.reset()
        self.panel.status_label.setText(
            f"Fine-tuning {parent_label} on {len(samples)} approved corrections (starting the training process)…"
        )
        self.panel.cancel_button.setEnabled(True)
        self.show_dock()
        self.poll_timer.start()
        self.plot_timer.start()
        self._update_actions()
        w.statusBar().showMessage("Fine-tuning started in the background", 4000)
        self.run_started.emit()
        return True

    def cancel(self) -> None:
        if not self.running or self._cancel_t0 is not None:
            return
        self._cancel_t0 = time.monotonic()
        self._cancel_event.set()
        self.panel.cancel_button.setEnabled(False)
        self.panel.status_label.setText("Cancelling… the active model stays as it is.")
        QTimer.singleShot(int(CANCEL_GRACE_S * 1000), self._force_stop)

    def _force_stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.is_alive():
            log.info("fine-tune process did not stop within %.1f s of cancel: terminating it", CANCEL_GRACE_S)
            proc.terminate()
            proc.join(0.5)
            if proc.is_alive():
                proc.kill()

    def shutdown(self) -> None:
        """The app is closing: stop the training process at once (nothing is activated)."""
        self.poll_timer.stop()
        self.plot_timer.stop()
        proc = self._proc
        if proc is not None:
            self._cancel_event.set()
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
                if proc.is_alive():
                    proc.kill()
                    proc.join(1.0)
            self._cleanup()

    def _cleanup(self) -> None:
        self.poll_timer.stop()
        self.plot_timer.stop()
        if self._queue is not None:
            self._queue.close()
            self._queue.cancel_join_thread()
        self._proc = self._queue = self._cancel_event = None
        self.panel.cancel_button.setEnabled(False)
        self._update_actions()

    def _drain(self) -> None:
        q = self._queue
        while q is not None:
            try:
                msg = q.get_nowait()
            except (queue_mod.Empty, EOFError, OSError, ValueError):
                return
            self._handle(msg)

    def _poll(self) -> None:
        if self._proc is None:
            return
        self._drain()
        proc = self._proc
        if self._terminal is None and proc.is_alive():
            return
        if self._terminal is None:
            # The process has ended without its last word: it may still be in the pipe.
            try:
                while self._queue is not None and self._terminal is None:
                    self._handle(self._queue.get(timeout=0.2))
            except (queue_mod.Empty, EOFError, OSError, ValueError):
                pass
        terminal, cancel_t0 = self._terminal, self._cancel_t0
        if proc.is_alive():
            # It has said all it will say; what is left is interpreter shutdown (~1-2 s with torch loaded).
            # After a cancel there is nothing to wait for: end it now. Otherwise let it exit on its own.
            if cancel_t0 is not None:
                proc.terminate()
                proc.join(0.5)
            else:
                QTimer.singleShot(5000, lambda p=proc: self._reap(p))
        exitcode = proc.exitcode
        self._cleanup()
        self.panel.redraw()
        if cancel_t0 is not None:
            # Whatever the child got to (even a run that finished just before the cancel reached it),
            # nothing is activated: the grader cancelled.
            self._cancelled(time.monotonic() - cancel_t0)
        elif terminal is None:
            how = f"killed by signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
            hint = " (often the system running out of memory)" if exitcode == -9 else ""
            self._failed(f"the training process stopped unexpectedly ({how}{hint})")
        elif isinstance(terminal, Failed):
            log.error("fine-tune failed in the training process (%s):\n%s", terminal.kind, terminal.traceback)
            self._failed(terminal.message)
        else:
            self._finished(terminal.outcome)

    @staticmethod
    def _reap(proc) -> None:
        if proc.is_alive():
            proc.terminate()
        proc.join(0.5)

    def _handle(self, msg) -> None:
        p = self.panel
        if isinstance(msg, Step):
            spe = int(self._overrides.get("steps_per_epoch") or self._cfg().steps_per_epoch)
            done = (msg.epoch - 1) * spe + msg.step
            if math.isfinite(msg.loss):
                p.add_step(done, msg.loss)
            self._show_progress(done, msg.elapsed)
        elif isinstance(msg, Epoch):
            r = msg.report
            p.add_epoch(r["epoch"], r["val_dice"])
            dice = r["val_dice"]
            p.status_label.setText(
                f"Epoch {r['epoch']}: training loss {r['train_loss']:.4f}, validation Dice "
                f"{dice:.4f} (best {r['best_dice']:.4f})"
                if dice is not None and math.isfinite(dice)
                else f"Epoch {r['epoch']}: training loss {r['train_loss']:.4f}"
            )
            self._eta_from_epoch = (time.monotonic(), r["eta_s"])
            self.epoch_reported.emit(r)
        elif isinstance(msg, Started):
            p.status_label.setText(f"Fine-tuning {self._parent_label} on {msg.device}…")
        elif isinstance(msg, Plan):
            self._plan = msg
            p.status_label.setText(p.status_label.text() + f" {msg.note}.")
        elif isinstance(msg, Note):
            self._notes.append(msg.text)
            self.window.show_message(f"Fine-tune: {msg.text}", "warning")
        elif isinstance(msg, (Done, Failed)):
            self._terminal = msg

    def _cfg(self):
        from model_core.finetune import finetune_config

        return finetune_config(**self._overrides)

    def _show_progress(self, steps_done: int, elapsed: float) -> None:
        cfg = self._cfg()
        total = max(1, cfg.epochs * cfg.steps_per_epoch)
        frac = steps_done / total
        if cfg.minutes:
            frac = max(frac, elapsed / (cfg.minutes * 60))
        frac = min(frac, 0.999)
        self.panel.progress.setValue(int(frac * 1000))
        self.panel.progress.setFormat(f"{frac * 100:.0f} %")
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        epoch_eta = getattr(self, "_eta_from_epoch", None)
        if epoch_eta is not None:
            eta = min(eta, max(0.0, epoch_eta[1] - (time.monotonic() - epoch_eta[0])))
        self.panel.eta_label.setText(f"about {_fmt_duration(eta)} left")

    # --------------------------------------------------------------- outcomes --
    def _end_progress(self, text: str) -> None:
        self.panel.progress.setValue(1000)
        self.panel.progress.setFormat(text)
        self.panel.eta_label.setText("")
        self._eta_from_epoch = None

    def _cancelled(self, latency: float) -> None:
        self._end_progress("cancelled")
        self.panel.status_label.setText(
            f"Fine-tune cancelled (stopped in {latency:.1f} s). The active model is "
            "unchanged and no masks were touched."
        )
        self.window.statusBar().showMessage("Fine-tune cancelled; the active model is unchanged", 6000)
        self.run_cancelled.emit(latency)

    def _failed(self, message: str) -> None:
        self._end_progress("failed")
        text = f"Fine-tune failed: {message}. The active model and all masks are unchanged."
        self.panel.status_label.setText(text)
        self.window.show_message(text, "error")
        self.run_failed.emit(message)

    def _finished(self, out: dict) -> None:
        w = self.window
        self.last_outcome = out
        if out.get("failed"):
            self._failed(out.get("reason") or out.get("stop_reason", "training failed"))
            return
        before = out.get("parent_dice")
        if before is not None:
            self.panel.parent_line.setValue(before)
            self.panel.parent_line.show()
        split = f"{out['train']} training / {out['val']} validation image{'s' if out['val'] != 1 else ''}"
        if out.get("shared"):  # one approved image: the same one trains and validates
            split = "1 image, used for training and validation since there are too few to hold one out"
        out["activated"] = False
        split += "".join("; " + w for w in kept_model_words(out))
        if out.get("accepted") and out.get("version"):
            try:
                self.activate_version(out["version"])
                out["activated"] = True
            except Exception as exc:
                log.exception("could not activate %s", out["version"])
                self._failed(f"the new version {out['version']} was saved but could not be activated ({exc})")
                return
            text = (
                f"New model {out['version']} is active: {out['reason']} ({split}; "
                f"{_fmt_duration(out['wall_s'])}, {out['stop_reason']})."
            )
            self._end_progress("done: new model active")
            w.show_message(
                text + " Images not yet reviewed can be re-predicted with it (button in the Fine-tuning panel).", "info"
            )
        else:
            where = f" It is kept as {out['version']} in Models…, not active." if out.get("version") else ""
            text = (
                f"The fine-tuned model was not activated: {out['reason']} ({split}).{where} "
                "The current model stays active."
            )
            self._end_progress("done: kept the current model")
            w.show_message(text, "warning")
        self.panel.status_label.setText(text)
        self.run_finished.emit(out)

    def _update_actions(self) -> None:
        self.finetune_action.setEnabled(not self.running)
        self.finetune_action.setText("Fine-tune…" if not self.running else "Fine-tuning…")


def install_finetune(window) -> FinetuneController:
    """Add the Fine-tune and Models actions (toolbar and a Model menu) and the controller to ``window``."""
    ctl = FinetuneController(window)
    ctl.finetune_action = QAction("Fine-tune…", window)
    ctl.finetune_action.setObjectName("finetune_action")
    ctl.finetune_action.setToolTip("Teach the model from the corrected and approved masks of this workspace")
    ctl.finetune_action.triggered.connect(lambda _c=False: ctl.open_dialog())
    ctl.models_action = QAction("Models…", window)
    ctl.models_action.setObjectName("models_action")
    ctl.models_action.setToolTip("Model versions: metrics, switch, roll back")
    ctl.models_action.triggered.connect(lambda _c=False: ctl.open_models_dialog())
    menu = window.menuBar().addMenu("&Model")
    menu.addAction(ctl.finetune_action)
    menu.addAction(ctl.models_action)
    menu.addSeparator()
    menu.addAction(ctl.dock.toggleViewAction())
    window.toolbar.addSeparator()
    window.toolbar.addAction(ctl.finetune_action)
    window.finetune = ctl
    return ctl
