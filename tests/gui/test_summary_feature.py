"""The workspace summary built alone, from the parts MainWindow would hand it (no window)."""

from __future__ import annotations

import pyqtgraph as pg
from gui_helpers import task_runner
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMenu, QWidget

from model_core.imageio import write_png_atomic
from model_core.synthetic import make_fundus
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.common.context import ActionRegistry
from retina_desktop.ui.vessels.summary_window import WorkspaceSummary


class DiceSource(QObject):
    updated = Signal()


def _dice_bars(dlg) -> list[float]:
    bars = [i for i in dlg.plots["dice"].getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    return [float(h) for b in bars for h in b.opts["height"]]


def test_summary_plots_the_dice_it_is_given_and_redraws_when_told(qtbot, tmp_path):
    write_png_atomic(tmp_path / "a.png", make_fundus(64, 80, seed=1).image)
    review = ReviewSession()
    review.set_workspace(Workspace(tmp_path))
    owner = QWidget()
    qtbot.addWidget(owner)
    tasks = task_runner(qtbot, owner)
    menu = QMenu(owner)
    dice = {"a": 0.91, "b": 0.42, "c": 0.95}
    refreshed: list[int] = []
    source = DiceSource()
    summary = WorkspaceSummary(
        review,
        tasks,
        ActionRegistry(owner),
        menu,
        lambda: dict(dice),
        lambda: refreshed.append(1),
        source.updated,
        owner,
    )
    assert summary.action in menu.actions() and summary.action in owner.actions()

    summary.action.trigger()
    dlg = summary.window
    assert dlg is not None and dlg.isVisible() and refreshed == [1]  # asked for fresh scores
    assert sum(_dice_bars(dlg)) == 3  # one bar height per image with a Dice
    qtbot.waitUntil(lambda: dlg.worker is None, timeout=20000)
    assert dlg.rows == []  # nothing saved yet, nothing measured

    dice["d"] = 0.10
    source.updated.emit()
    assert sum(_dice_bars(dlg)) == 4
    assert summary.show() is dlg  # one window, raised again
    tasks.shutdown()
