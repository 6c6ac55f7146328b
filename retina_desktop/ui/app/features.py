"""The window's features, built by the composition root from the parts each one uses.

Each feature is constructed here from the window's ``AppContext`` and the views it works on, then placed (docks,
menus, toolbar) and connected to the others; no feature knows the window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QBoxLayout, QDockWidget, QMenu

from ..compare.compare_mode import DICE_SORT, DICE_SORT_TIP, CompareController, ImageListDice
from ..finetune.finetune_panel import FinetuneController, Messages
from ..finetune.keep_learning_view import BannerPins, KeepLearning
from ..prediction.prediction_view import PredictionView
from ..review.history_panel import HistoryController
from ..vessels.av_teaching_view import AVTeachingView
from ..vessels.calibre_view import CalibreView
from ..vessels.measure_panel import VesselMeasureRunner
from ..vessels.proofread_view import ProofreadView
from ..vessels.summary_window import WorkspaceSummary
from ..vessels.topology_panel import TopologyReview
from ..vessels.vessel_tools import VesselTools
from .help import HelpController

if TYPE_CHECKING:
    from .main_window import MainWindow


@dataclass
class Features:
    """What MainWindow built (tests reach a feature here: ``window.features.compare``)."""

    finetune: FinetuneController
    keep_learning: KeepLearning
    help: HelpController
    history: HistoryController
    vessel_tools: VesselTools
    topology: TopologyReview
    compare: CompareController
    measurements: VesselMeasureRunner
    summary: WorkspaceSummary
    list_dice: ImageListDice
    calibre: CalibreView
    proofread: ProofreadView
    av_teaching: AVTeachingView


def build_features(window: MainWindow) -> Features:
    ctx = window.context
    finetune, keep_learning = _build_finetune(window)  # Fine-tune / Keep learning / Models, the Fine-tuning window
    help_ = HelpController(
        window,
        window.canvas.parentWidget(),  # the guide goes above the image
        window.menuBar(),
        ctx.actions,
        ctx.review,
        ctx.settings,
        lambda: (ctx.prediction.info, ctx.prediction.model_error),
    )
    history = _history(window)  # the History dock, version preview and restore, "Revert image to…"
    compare, list_dice = build_compare(window)  # compare mode (K / D / Shift+B), the Dice sort
    vessel_tools, topology = _vessel_tools(window, compare)  # Trace (T), Segment (S), the Topology panel (N)
    measurements = VesselMeasureRunner(
        ctx.review, ctx.tasks, ctx.image_ready, ctx.show_message, ctx.progress,
        lambda: window.save_current(auto=True), window,
    )  # fmt: skip
    proofread = _proofread(window, topology)  # P: the queue of proposed fixes, listed in the Topology panel
    calibre, av_teaching = _calibre(window)  # Shift+C: the disc, zones B and C, A/V labels (A), CRAE / CRVE / AVR
    history.calibre_restored.connect(calibre.reload)  # a disc or labels version restored in the History: shown
    calibre.saved.connect(lambda _key: history.refresh())  # and each one saved is listed there
    layout = window.review_panel.layout()
    if isinstance(layout, QBoxLayout):
        layout.insertWidget(layout.count() - 1, measurements.panel)  # above the panel's closing stretch
        layout.insertWidget(layout.count() - 1, calibre.panel)
        layout.insertWidget(layout.count() - 1, proofread.label)
    export_measurements = ctx.actions.add(
        "Export measurements…", measurements.export_dialog, tip="Vessel measurements of every saved mask, as CSV"
    )
    window.action_table.add_to_file_menu(export_measurements, after=window.action_table.export)
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
    return Features(
        finetune,
        keep_learning,
        help_,
        history,
        vessel_tools,
        topology,
        compare,
        measurements,
        summary,
        list_dice,
        calibre,
        proofread,
        av_teaching,
    )


def _proofread(window: MainWindow, topology: TopologyReview) -> ProofreadView:
    """Proofread mode (P, in Edit); it takes Enter and Backspace on the image while a proposal is shown, and the
    Topology panel lists its queue while it is on."""
    ctx = window.context
    proofread = ProofreadView(
        ctx.review,
        window.canvas,
        ctx.tasks,
        ctx.image_ready,
        ctx.actions,
        ctx.show_status,
        window.approved_guard.may_edit,  # an approved image asks before an accept changes it, as the brush does
        window.canvas,
        window,
    )
    menu = _menu(window, "&Edit")
    if menu is not None:
        menu.addSeparator()
        menu.addAction(proofread.action)
        menu.addAction(proofread.held_back_action)
    topology.follow(proofread)
    return proofread


def _calibre(window: MainWindow) -> tuple[CalibreView, AVTeachingView]:
    """The calibre view with its actions in View (Shift+C, Ctrl+Alt+Z) and Edit (the A/V tool, A; Teach
    artery/vein, whose taught suggestion the view then uses)."""
    ctx = window.context
    calibre = CalibreView(
        ctx.review, window.canvas, ctx.tasks, ctx.image_ready, ctx.actions, window, lambda: ctx.settings.reviewer
    )
    calibre.status.connect(lambda text: ctx.show_status(text, 8000))
    teaching = AVTeachingView(ctx.review, ctx.tasks, ctx.actions, window.prompter.confirm, window)
    teaching.status.connect(lambda text: ctx.show_status(text, 8000))
    teaching.changed.connect(calibre.resuggest)
    edit = (calibre.av_action, teaching.teach_action, teaching.stop_action, teaching.use_action)
    for title, items in (("&View", (calibre.view_action, calibre.undo_action)), ("&Edit", edit)):
        menu = _menu(window, title)
        if menu is not None:
            menu.addSeparator()
            for a in items:
                menu.addAction(a)
    return calibre, teaching


def _menu(window: MainWindow, title: str) -> QMenu | None:
    """The menu bar's menu called ``title`` ("&Edit"), or None."""
    found = next((a.menu() for a in window.menuBar().actions() if a.text() == title), None)
    return found if isinstance(found, QMenu) else None


def _vessel_tools(window: MainWindow, compare: CompareController) -> tuple[VesselTools, TopologyReview]:
    """The trace and segment tools with their keys (Enter, Esc, Delete), and the Topology dock (N / Shift+N)."""
    ctx, canvas = window.context, window.canvas
    dock = QDockWidget("Topology", window)
    tools = VesselTools(
        ctx.review,
        canvas,
        ctx.tasks,
        ctx.image_ready,
        ctx.actions,
        lambda: not dock.isHidden(),  # the panel closed, edits are not reviewed (the segment tool still asks)
        window,
    )
    tools.status.connect(lambda text: ctx.show_status(text, 8000))
    topology = TopologyReview(
        ctx.review,
        tools.analysis,
        canvas,
        ctx.settings,
        ctx.actions,
        ctx.show_status,
        lambda: tools.trace.cost,
        window.approved_guard.may_edit,
        # The copy brush sets the canvas to "navigate" too; a marker under it must not take its clicks.
        lambda: canvas.tool == "navigate" and not compare.brush_item.isVisible(),
        window,
    )
    # Enter belongs to the image while a trace is open: a panel or field with the focus keeps its own Enter (a
    # window-wide shortcut would paint the trace instead).
    finish = tools.finish_trace_action
    finish.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    window.removeAction(finish)
    canvas.addAction(finish)
    edit_menu = _menu(window, "&Edit")
    if edit_menu is not None:
        edit_menu.addSeparator()
        for a in (finish, tools.cancel_trace_action, tools.delete_segment_action):
            edit_menu.addAction(a)
    _dock_topology(window, dock, topology, tools)
    # Tests reach them here.
    window.vessel_tools, window.topology, window.topology_dock = tools, topology, dock
    return tools, topology


def _dock_topology(window: MainWindow, dock: QDockWidget, topology: TopologyReview, tools: VesselTools) -> None:
    """The Topology panel docked under the image list, and View ▸ N / Shift+N / Topology."""
    dock.setObjectName("topology_dock")
    dock.setWidget(topology.panel)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable
        | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        | QDockWidget.DockWidgetFeature.DockWidgetClosable
    )  # View ▸ Topology brings it back
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    window.splitDockWidget(window.images_dock, dock, Qt.Orientation.Vertical)

    def shown(_on: bool) -> None:
        # Closed (View ▸ Topology), the panel takes its markers with it and stops reviewing each edit.
        topology.set_markers_visible(not dock.isHidden())
        tools.analysis.set_live(not dock.isHidden())

    dock.visibilityChanged.connect(shown)
    view_menu = _menu(window, "&View")
    if view_menu is not None:
        view_menu.addSeparator()
        for a in (topology.next_marker_action, topology.prev_marker_action, dock.toggleViewAction()):
            view_menu.addAction(a)


def _build_finetune(window: MainWindow) -> tuple[FinetuneController, KeepLearning]:
    """The Fine-tune, Keep learning and Models actions (toolbar and a Model menu), the Fine-tuning dock, the close
    question."""
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
    banner = window.banner
    pins = BannerPins(
        lambda text, level, buttons: banner.pin(text, level, buttons), banner.unpin, ctx.show_message, ctx.show_status
    )
    keep_learning = KeepLearning(finetune, ctx.review, ctx.settings, ctx.actions, pins, window)
    menu = window.menuBar().addMenu("&Model")
    menu.addAction(finetune.finetune_action)
    menu.addAction(keep_learning.action)
    menu.addAction(finetune.models_action)
    menu.addSeparator()
    menu.addAction(finetune.dock.toggleViewAction())
    window.toolbar.addSeparator()
    window.toolbar.addAction(finetune.finetune_action)
    window.finetune = finetune  # MainWindow restores its position and stops its run on closing; tests reach it
    return finetune, keep_learning


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
    def follow(_key: str) -> None:
        window.show_threshold()
        window.update_actions()
        window.measure.schedule()

    view.prediction_shown.connect(follow)
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
        window.approved_guard.may_edit,  # an approved image asks before the copy brush changes it, as the brush does
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
    if isinstance(layout, QBoxLayout):
        # Below the boxes a grader needs at all times (the panel scrolls; K and D bring this box into view).
        layout.insertWidget(layout.count() - 1, compare.panel)
    rows.add_sort_key(DICE_SORT, DICE_SORT_TIP)
    rows.sort_combo.currentTextChanged.connect(lambda key: key == DICE_SORT and list_dice.refresh())

    def resort() -> None:
        if rows.proxy.sort_key == DICE_SORT:
            rows.resort()

    list_dice.updated.connect(resort)
    window.compare = compare
    return compare, list_dice


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
    image_menu = _menu(window, "&Image")
    if image_menu is not None:
        image_menu.addSeparator()
        image_menu.addAction(history.revert_action)

    def restored(key: str) -> None:
        window.image_list.model.set_dirty(key, False)
        window.update_actions()

    history.restored.connect(restored)
    # The save flow's "View both" draws their version from the History; tests and the layout reach the dock here.
    window.history, window.history_dock = history, history.dock
    return history
