"""The window's features, built by the composition root from the parts each one uses.

A feature converted to that rule is constructed here from the window's ``AppContext`` and the views it works
on; the others (``install_*``) still take the whole window until they are converted (issue 27)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..compare.compare_mode import DICE_SORT, DICE_SORT_TIP, CompareController, ImageListDice
from ..finetune.finetune_panel import FinetuneController, install_finetune
from ..prediction.prediction_view import PredictionView
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
    list_dice: ImageListDice


def build_features(window: MainWindow) -> Features:
    ctx = window.context
    finetune = install_finetune(window)  # Fine-tune / Models actions, the Fine-tuning window
    help_ = install_help(window)
    history = install_history(window)  # the History dock, version preview and restore, "Revert image to…"
    vessel_tools = install_vessel_tools(window)  # Trace (T), Segment (S), the Topology panel (N / Shift+N)
    compare, list_dice = build_compare(window)  # compare mode (K / D / Shift+B), the Dice sort
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
        list_dice.refresh,
        list_dice.updated,
        window,
    )
    return Features(finetune, help_, history, vessel_tools, compare, measurements, summary, list_dice)


def build_prediction_view(window: MainWindow) -> PredictionView:
    """The model's and the prediction runs' read-outs (before the actions, which call its ``predict_*``)."""
    ctx = window.context
    view = PredictionView(
        ctx.prediction,
        ctx.review,
        window.image_list.model,
        window.status_panel,
        window.canvas.set_probability,
        ctx.show_message,
        ctx.show_status,
        ctx.progress,
        lambda title, text: window.prompter.error(title, text),  # the prompter of the moment (tests replace it)
        lambda: window.banner.level == "error",
        window.update_actions,
        window,
    )
    # A prediction on screen: the window's read-outs follow it, then the window says so (compare, readiness).
    view.prediction_shown.connect(
        lambda _key: (window.show_threshold(), window.update_actions(), window.measure.schedule())
    )
    view.prediction_shown.connect(window.prediction_shown)
    view.batch_finished.connect(window.batch_finished)
    return view


def build_compare(window: MainWindow) -> tuple[CompareController, ImageListDice]:
    """Compare mode in its menu (before Help), its box in the review panel, the copy brush among the tools; the
    image list's Dice and its sort."""
    ctx = window.context
    bar = window.menuBar()
    help_menu = next((a for a in bar.actions() if a.text().replace("&", "") == "Help"), None)
    menu = bar.addMenu("&Compare")
    if help_menu is not None:  # Help stays last
        bar.insertMenu(help_menu, menu)

    def reveal(box):
        area = window.review_dock.widget()
        if hasattr(area, "ensureWidgetVisible"):
            area.ensureWidgetVisible(box, 0, 0)

    compare = CompareController(
        ctx.review,
        window.canvas,
        ctx.tasks,
        ctx.image_ready,
        ctx.actions,
        menu,
        ctx.show_message,
        ctx.show_status,
        window.edit_tools.may_edit,  # an approved image asks before the copy brush changes it, as the brush does
        reveal,
        window,
    )
    window.action_table.tool_group.addAction(compare.copy_action)
    rows = window.image_list
    list_dice = ImageListDice(ctx.review, ctx.tasks, window.model, rows.model, ctx.image_ready, window)
    compare.scores_shown.connect(list_dice.open_image_scored)
    window.prediction_shown.connect(compare.prediction_shown)
    window.prediction_shown.connect(lambda key: list_dice.refresh([key]))
    window.workspace_opened.connect(lambda _root: list_dice.workspace_opened())
    window.batch_finished.connect(lambda _summary: list_dice.refresh())  # Predict all: every image scored
    window.predictions_view.model_activated.connect(lambda: list_dice.refresh())  # the scores were the old model's
    layout = window.review_panel.layout()
    # Below the boxes a grader needs at all times (the panel scrolls; K and D bring this box into view).
    layout.insertWidget(layout.count() - 1, compare.panel)
    rows.add_sort_key(DICE_SORT, DICE_SORT_TIP)
    rows.sort_combo.currentTextChanged.connect(lambda key: key == DICE_SORT and list_dice.refresh())
    list_dice.updated.connect(lambda: rows.proxy.sort_key == DICE_SORT and rows.resort())
    window.compare = compare
    return compare, list_dice
