"""The window's features, built by the composition root from the parts each one uses.

A feature converted to that rule is constructed here from the window's ``AppContext`` and the views it works
on; the others (``install_*``) still take the whole window until they are converted (issue 27)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt

from ..compare.compare_mode import CompareController, install_compare
from ..finetune.finetune_panel import FinetuneController, install_finetune
from ..review.history_panel import HistoryController
from ..vessels.measure_panel import VesselMeasureRunner
from ..vessels.summary_window import WorkspaceSummary
from ..vessels.vessel_tools import VesselTools, install_vessel_tools
from .help import HelpController, install_help

if TYPE_CHECKING:
    from .main_window import MainWindow


@dataclass
class Features:
    """What MainWindow built (tests reach a feature here: ``window.features.compare``)."""

    finetune: FinetuneController
    help: HelpController
    history: HistoryController
    vessel_tools: VesselTools
    compare: CompareController
    measurements: VesselMeasureRunner
    summary: WorkspaceSummary


def build_features(window: MainWindow) -> Features:
    ctx = window.context
    finetune = install_finetune(window)  # Fine-tune / Models actions, the Fine-tuning window
    help_ = install_help(window)
    history = _history(window)  # the History dock, version preview and restore, "Revert image to…"
    vessel_tools = install_vessel_tools(window)  # Trace (T), Segment (S), the Topology panel (N / Shift+N)
    compare = install_compare(window)  # compare mode (K / D / Shift+B), the Dice sort
    measurements = VesselMeasureRunner(
        ctx.review,
        ctx.tasks,
        ctx.image_ready,
        ctx.show_message,
        ctx.progress,
        lambda: window.save_current(auto=True),
        window,
    )
    layout = window.review_panel.layout()
    layout.insertWidget(layout.count() - 1, measurements.panel)
    measurements.export_action = ctx.actions.add(
        "Export measurements…", measurements.export_dialog, tip="Vessel measurements of every saved mask, as CSV"
    )
    file_menu = window.menuBar().actions()[0].menu()
    items = file_menu.actions()
    file_menu.insertAction(items[items.index(window.export_action) + 1], measurements.export_action)
    summary = WorkspaceSummary(
        ctx.review,
        ctx.tasks,
        ctx.actions,
        compare.menu,
        window.image_list.model.dice_values,
        compare.refresh_dice,
        compare.dice_updated,
        window,
    )
    return Features(finetune, help_, history, vessel_tools, compare, measurements, summary)


def _history(window: MainWindow) -> HistoryController:
    ctx = window.context
    history = HistoryController(
        ctx.review,
        window.canvas,
        ctx.settings,
        ctx.prompter,
        ctx.show_message,
        ctx.show_status,
        lambda: window.save_current(auto=False),
        window.saving.resolve_conflict,
        window,
    )
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, history.dock)
    window.tabifyDockWidget(window.review_dock, history.dock)
    window.review_dock.raise_()
    image_menu = next((a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Image"), None)
    if image_menu is not None:
        image_menu.addSeparator()
        image_menu.addAction(history.revert_action)
    history.restored.connect(lambda key: (window.image_list.model.set_dirty(key, False), window.update_actions()))
    # The save flow's "View both" draws their version from the History; tests and the layout reach the dock here.
    window.history, window.history_dock = history, history.dock
    return history
