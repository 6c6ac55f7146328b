"""The window's features, built by the composition root from the parts each one uses.

A feature converted to that rule is constructed here from the window's ``AppContext`` and the views it works
on; the others (``install_*``) still take the whole window until they are converted (issue 27)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt

from ..compare.compare_mode import CompareController, install_compare
from ..finetune.finetune_panel import FinetuneController, Messages
from ..review.history_panel import HistoryController, install_history
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
    finetune = _build_finetune(window)  # Fine-tune / Models actions, the Fine-tuning window
    help_ = install_help(window)
    history = install_history(window)  # the History dock, version preview and restore, "Revert image to…"
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


def _build_finetune(window: MainWindow) -> FinetuneController:
    """The Fine-tune and Models actions (toolbar and a Model menu), the Fine-tuning dock, the close question."""
    ctx = window.context
    messages = Messages(ctx.show_message, ctx.show_status, window.banner.text, window.clear_message)
    finetune = FinetuneController(
        ctx.review,
        window.model,
        ctx.tasks,
        ctx.prediction.repredict,
        ctx.settings,
        ctx.prompter,
        messages,
        ctx.actions,
        lambda: window.save_current(auto=True),
        window,
    )
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, finetune.dock)
    finetune.model_switched.connect(lambda _path: window.switch_model())  # the prediction feature loads it
    window.installEventFilter(finetune)  # closing the window during a run asks first
    menu = window.menuBar().addMenu("&Model")
    menu.addAction(finetune.finetune_action)
    menu.addAction(finetune.models_action)
    menu.addSeparator()
    menu.addAction(finetune.dock.toggleViewAction())
    window.toolbar.addSeparator()
    window.toolbar.addAction(finetune.finetune_action)
    window.finetune = finetune  # MainWindow restores its position and stops its run on closing; tests reach it
    return finetune
