"""The workspace summary (Compare → Workspace summary…): where people would rather look than read.

Histograms of the model prediction's Dice against the reference per image and of each vessel measurement
over the saved masks, and the edit burden over time (pixels changed per save, from the review log). The
measurements are computed on a worker when the window opens; it fits a 1280×800 screen.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Signal, SignalInstance
from PySide6.QtWidgets import QDialog, QGridLayout, QHBoxLayout, QLabel, QMenu, QPushButton, QVBoxLayout, QWidget

from ...core.review.compare import edit_burden, histogram
from ...core.review.export import workspace_measurements
from ...core.review.review_session import ReviewSession
from ..common.context import ActionRegistry
from ..common.workers import TaskRunner, Worker
from .measure_panel import ROWS

BAR_COLOUR = (86, 180, 233)  # the difference overlay's sky blue


class SummaryWindow(QDialog):
    updated = Signal()

    def __init__(
        self,
        review: ReviewSession,
        tasks: TaskRunner,
        dice_values: Callable[[], dict[str, float]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("summary_window")
        self.setWindowTitle("Workspace summary")
        self.review, self.tasks, self.dice_values = review, tasks, dice_values
        self.resize(1180, 720)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.status_label = QLabel("–")
        self.status_label.setObjectName("summary_status")
        self.refresh_button = QPushButton("Measure again")
        self.refresh_button.clicked.connect(self.refresh)
        top.addWidget(self.status_label, 1)
        top.addWidget(self.refresh_button)
        lay.addLayout(top)
        grid = QGridLayout()
        lay.addLayout(grid, 1)
        self.plots: dict[str, pg.PlotWidget] = {}
        titles = [("dice", "Model prediction vs reference: Dice per image")]
        titles += [(key, f"{title} per mask") for key, title, _f, _t in ROWS]
        titles += [("burden", "Edit burden: pixels changed per save")]
        for i, (key, title) in enumerate(titles):
            axis = {"bottom": pg.DateAxisItem()} if key == "burden" else None
            plot = pg.PlotWidget(axisItems=axis, background="w")
            plot.setTitle(title, size="9pt", color="#222")
            plot.setMinimumSize(200, 150)
            plot.setLabel("left", "pixels" if key == "burden" else "images")
            plot.setMouseEnabled(x=False, y=False)
            grid.addWidget(plot, i // 3, i % 3)
            self.plots[key] = plot
        self.rows: list = []
        self.worker: Worker | None = None

    def refresh(self) -> Worker | None:
        """Plot what is known now (Dice, the review log) and measure every saved mask on a worker."""
        ws = self.review.workspace
        self.draw_dice()
        self.draw_burden()
        if ws is None or self.worker is not None:
            return None
        self.status_label.setText("Measuring the saved masks…")
        self.refresh_button.setEnabled(False)
        w = Worker(workspace_measurements, ws, None, name="summary measurements")
        g = self.tasks.guard
        w.returned.connect(g(lambda result, ws=ws: self._measured(ws, result)))
        w.errored.connect(g(lambda msg: self._failed(msg)))
        self.worker = w
        self.tasks.start(w, priority=-1)
        return w

    def _measured(self, ws, result) -> None:
        self.worker = None
        self.refresh_button.setEnabled(True)
        if ws is not self.review.workspace:
            return
        self.rows, problems = result
        for key, _title, _fmt, _tip in ROWS:
            self._bars(self.plots[key], [getattr(m, key) for _k, m in self.rows])
        dice = self.dice_values()
        self.status_label.setText(
            f"{len(self.rows)} saved mask(s) measured, {len(dice)} image(s) with a Dice "
            "against the reference (images with a cached prediction and a reference)"
            + (f"; {len(problems)} not measured: {problems[0]}" if problems else "")
        )
        self.updated.emit()

    def _failed(self, message: str) -> None:
        self.worker = None
        self.refresh_button.setEnabled(True)
        self.status_label.setText(f"Not measured: {message}")
        self.updated.emit()

    def draw_dice(self) -> None:
        self._bars(self.plots["dice"], list(self.dice_values().values()), bins=20, span=(0.0, 1.0))
        self.plots["dice"].setXRange(0.0, 1.0)  # Dice lives in 0..1: a cluster near 1 is good, to the left is not

    def draw_burden(self) -> None:
        ws = self.review.workspace
        plot = self.plots["burden"]
        plot.clear()
        if ws is None:
            return
        t, px = edit_burden(ws.review_log())
        if not t.size:
            plot.addItem(pg.TextItem("No saves in the review log yet", color="#555", anchor=(0.5, 0.5)))
        else:
            plot.plot(t, px, pen=pg.mkPen(BAR_COLOUR, width=1.5), symbol="o", symbolSize=5, symbolBrush=BAR_COLOUR)
            plot.setYRange(0, max(1, int(px.max())) * 1.1)
            plot.setXRange(t.min() - 60, t.max() + 60)  # a minute either side: one save is a point, not a line

    @staticmethod
    def _bars(plot: pg.PlotWidget, values: list, bins: int = 10, span=None) -> None:
        plot.clear()
        edges, counts = histogram(values, bins, span)
        if counts.size:
            plot.addItem(
                pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush=BAR_COLOUR, pen=pg.mkPen("#333"))
            )
            plot.setYRange(0, max(1, int(np.max(counts))) * 1.1)


class WorkspaceSummary(QObject):
    """Compare → Workspace summary…: the action, and the window it opens (made on first use)."""

    def __init__(
        self,
        review: ReviewSession,
        tasks: TaskRunner,
        actions: ActionRegistry,
        menu: QMenu,
        dice_values: Callable[[], dict[str, float]],
        refresh_dice: Callable[[], object],
        dice_updated: SignalInstance,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self._review, self._tasks, self._parent = review, tasks, parent
        self._dice_values, self._refresh_dice, self._dice_updated = dice_values, refresh_dice, dice_updated
        self.window: SummaryWindow | None = None
        self.action = actions.add(
            "Workspace summary…",
            self.show,
            tip="Plots of Dice against the reference, the vessel measurements and the edit burden over time",
        )
        menu.addSeparator()
        menu.addAction(self.action)

    def show(self) -> SummaryWindow:
        dlg = self.window
        if dlg is None:
            dlg = self.window = SummaryWindow(self._review, self._tasks, self._dice_values, self._parent)
            self._dice_updated.connect(dlg.draw_dice)
        dlg.show()
        dlg.raise_()
        self._refresh_dice()
        dlg.refresh()
        return dlg
