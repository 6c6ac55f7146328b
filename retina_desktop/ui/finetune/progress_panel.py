"""The Fine-tuning window's contents: progress, time left, the live plot (training loss per step, validation Dice
per epoch), Cancel; and ``RunProgress``, which shows a running child's messages there."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ...core.model.finetune_job import ChildMessage, Epoch, EpochReportDict, Plan, Started, Step, TrainOverrides
from .finetune_dialog import fmt_duration

if TYPE_CHECKING:
    from model_core.engine import TrainConfig

PLOT_MS = 250  # the loss curve is redrawn at most 4 times a second


def finetune_dock(panel: QWidget, parent: QWidget) -> QDockWidget:
    """The Fine-tuning window, hidden until a run (or the Model menu) shows it."""
    dock = QDockWidget("Fine-tuning", parent)
    dock.setObjectName("finetune_dock")
    dock.setWidget(panel)
    # A window of its own by default: docked at the bottom of a 1280x800 window it covered the review
    # panel's buttons and made the window taller than the screen. The grader may still dock it.
    dock.setFloating(True)
    dock.resize(720, 360)
    dock.hide()
    return dock


class FinetunePanel(QWidget):
    """Progress, ETA, the live plot (training loss per step, validation Dice per epoch), Cancel."""

    def __init__(self, parent: QWidget | None = None) -> None:
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

    def add_epoch(self, epoch: int, dice: float | None) -> None:
        if dice is not None and math.isfinite(dice):
            self.epochs_x.append(epoch)
            self.dices.append(dice)
            self.dice_curve.setData(self.epochs_x, self.dices)

    def redraw(self) -> None:
        self.loss_curve.setData(self.steps_x, self.losses)

    def show_epoch(self, r: EpochReportDict) -> None:
        dice = r["val_dice"]
        self.add_epoch(r["epoch"], dice)
        self.status_label.setText(
            f"Epoch {r['epoch']}: training loss {r['train_loss']:.4f}, validation Dice "
            f"{dice:.4f} (best {r['best_dice']:.4f})"
            if dice is not None and math.isfinite(dice)
            else f"Epoch {r['epoch']}: training loss {r['train_loss']:.4f}"
        )

    def show_progress(self, fraction: float, eta_s: float) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{fraction * 100:.0f} %")
        self.eta_label.setText(f"about {fmt_duration(eta_s)} left")

    def end_progress(self, text: str) -> None:
        self.progress.setValue(1000)
        self.progress.setFormat(text)
        self.eta_label.setText("")

    def show_parent_dice(self, dice: float | None) -> None:
        """The dashed line of the model fine-tuned from, on the validation Dice plot."""
        if dice is not None:
            self.parent_line.setValue(dice)
            self.parent_line.show()


class RunProgress:
    """A run's Started, Plan, Step and Epoch messages as the panel shows them: the status line, the plot, the
    progress (steps done, or the time budget used, whichever is further) and the time left."""

    def __init__(self, panel: FinetunePanel) -> None:
        self.panel = panel
        self._overrides: TrainOverrides = {}
        self._cfg: TrainConfig | None = None
        self._parent_label = ""
        self._eta_from_epoch: tuple[float, float] | None = None  # (when, the engine's time left then)
        self.plot_timer = QTimer(panel)
        self.plot_timer.setInterval(PLOT_MS)
        self.plot_timer.timeout.connect(panel.redraw)

    def begin(self, overrides: TrainOverrides, parent_label: str, n_samples: int) -> None:
        from model_core.finetune import finetune_config

        self._overrides, self._cfg = overrides, finetune_config(**overrides)
        self._parent_label, self._eta_from_epoch = parent_label, None
        self.panel.reset()
        self.panel.status_label.setText(
            f"Fine-tuning {parent_label} on {n_samples} approved corrections (starting the training process)…"
        )
        self.panel.cancel_button.setEnabled(True)
        self.plot_timer.start()

    def stop(self) -> None:
        """The process is gone: the last points drawn, nothing left to cancel."""
        self.plot_timer.stop()
        self.panel.redraw()
        self.panel.cancel_button.setEnabled(False)

    def take(self, msg: ChildMessage) -> None:
        p = self.panel
        if isinstance(msg, Step) and self._cfg is not None:
            spe = int(self._overrides.get("steps_per_epoch") or self._cfg.steps_per_epoch)
            done = (msg.epoch - 1) * spe + msg.step
            if math.isfinite(msg.loss):
                p.add_step(done, msg.loss)
            self._show_progress(self._cfg, done, msg.elapsed)
        elif isinstance(msg, Epoch):
            p.show_epoch(msg.report)
            self._eta_from_epoch = (time.monotonic(), msg.report["eta_s"])
        elif isinstance(msg, Started):
            p.status_label.setText(f"Fine-tuning {self._parent_label} on {msg.device}…")
        elif isinstance(msg, Plan):
            p.status_label.setText(p.status_label.text() + f" {msg.note}.")

    def _show_progress(self, cfg: TrainConfig, steps_done: int, elapsed: float) -> None:
        frac = steps_done / max(1, cfg.epochs * cfg.steps_per_epoch)
        if cfg.minutes:
            frac = max(frac, elapsed / (cfg.minutes * 60))
        frac = min(frac, 0.999)
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        if self._eta_from_epoch is not None:
            at, epoch_eta = self._eta_from_epoch
            eta = min(eta, max(0.0, epoch_eta - (time.monotonic() - at)))
        self.panel.show_progress(frac, eta)

    def end(self, text: str, status: str) -> None:
        """The run is over: the bar full with ``text`` on it, ``status`` as the panel's last line."""
        self.panel.end_progress(text)
        self.panel.status_label.setText(status)
        self._eta_from_epoch = None
