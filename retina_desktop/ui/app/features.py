"""The window's features, built by the composition root from the parts each one uses.

A feature converted to that rule is constructed here from the window's ``AppContext`` and the views it works
on; the others (``install_*``) still take the whole window until they are converted (issue 27)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QBoxLayout

from ..compare.compare_mode import CompareController, install_compare
from ..finetune.finetune_panel import FinetuneController, install_finetune
from ..review.history_panel import HistoryController, install_history
from ..vessels.measure_panel import VesselMeasureRunner
from ..vessels.summary_window import WorkspaceSummary
from ..vessels.vessel_tools import VesselTools, install_vessel_tools
from .help import HelpController

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
    help_ = HelpController(
        window,
        window.canvas.parentWidget(),  # the guide goes above the image
        window.menuBar(),
        ctx.actions,
        ctx.review,
        ctx.settings,
        lambda: (ctx.prediction.info, ctx.prediction.model_error),
    )
    history = install_history(window)  # the History dock, version preview and restore, "Revert image to…"
    vessel_tools = install_vessel_tools(window)  # Trace (T), Segment (S), the Topology panel (N / Shift+N)
    compare = install_compare(window)  # compare mode (K / D / Shift+B), the Dice sort
    measurements = VesselMeasureRunner(
        ctx.review,
        ctx.tasks,
        ctx.image_ready,
        ctx.show_message,
        ctx.progress,
        lambda: window.saving.save_current(auto=True),
        window,
    )
    layout = window.review_panel.layout()
    if isinstance(layout, QBoxLayout):
        layout.insertWidget(layout.count() - 1, measurements.panel)  # above the panel's closing stretch
    export_measurements = ctx.actions.add(
        "Export measurements…", measurements.export_dialog, tip="Vessel measurements of every saved mask, as CSV"
    )
    window.action_table.add_to_file_menu(export_measurements, after=window.action_table.export)
    summary = WorkspaceSummary(
        ctx.review,
        ctx.tasks,
        ctx.actions,
        compare.menu,  # type: ignore[attr-defined]  # set by install_compare until compare is converted
        window.image_list.model.dice_values,
        compare.refresh_dice,
        compare.dice_updated,
        window,
    )
    return Features(finetune, help_, history, vessel_tools, compare, measurements, summary)
