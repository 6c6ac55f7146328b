"""The main window, the composition root: it builds the parts (review session, prediction controller, views,
actions, flows) and the features from them, and connects them. Each job is a part of its own:

* ``core.review.review_session.ReviewSession`` (Qt-free): the workspace, the open image and its mask document, the
  threshold and its policy, save / approve / the review log, the load requests;
* ``prediction_controller.PredictionController``: the model and every prediction run, with cancel and counts;
* ``views``: the canvas, the image list, the Review panel, the banners, the status bar's parts, and their docks;
* ``actions.Actions``: every action with its menu entry, toolbar button and shortcut; ``states.ActionStates``:
  which of them are enabled, and the title;
* ``image_flow.ImageFlow`` (opening images), ``threshold_control``, ``save_flow.SaveFlow`` (saving, where a save
  can fail), ``workspace_flow.WorkspaceFlow`` (opening workspaces), ``commands.Commands`` (approve, autosave,
  export, preferences), ``window_layout.WindowLayout`` (size and docks, kept), ``closing.Closing``;
* ``features.build_features``: fine-tuning, help, history, vessel tools, compare, measurements, the summary.

Everything slow runs in ``TaskRunner`` workers, connected through ``tasks.guard`` so that results arriving
after closing are dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent, QMoveEvent, QResizeEvent, QShowEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow

from ... import APP_NAME
from ...core.model.model_service import ModelHolder
from ...core.review.review_session import ReviewSession
from ...core.workspace import Workspace
from ..common.context import ActionRegistry, AppContext, Progress
from ..common.image_ready import ImageReadiness
from ..common.prompter import Prompter
from ..common.settings import AppSettings
from ..common.wheel_guard import WheelGuard, guard_wheel
from ..common.workers import TaskRunner
from ..compare.compare_mode import CompareController
from ..finetune.finetune_panel import FinetuneController
from ..prediction.prediction_controller import PredictionController
from ..review.approved_guard import ApprovedImageGuard
from ..review.edit_tools import EditTools
from ..review.history_panel import HistoryController
from ..vessels.topology_panel import TopologyReview
from ..vessels.vessel_tools import VesselTools
from .actions import Actions, ActionSlots
from .background import MeasureRunner, ThumbnailLoader
from .closing import Closing
from .commands import Commands
from .export_controller import ExportController
from .features import build_features, build_prediction_view
from .image_flow import ImageFlow
from .save_flow import SaveFlow
from .states import ActionStates
from .status_panel import LongRuns
from .threshold_control import ThresholdControl
from .views import WindowViews, build_views
from .window_layout import WindowLayout
from .workspace_flow import WorkspaceFlow

log = logging.getLogger("retina_desktop")


class MainWindow(QMainWindow):
    workspace_opened = Signal(str)
    image_opened = Signal(str)
    image_failed = Signal(str, str)
    prediction_shown = Signal(str)
    saved = Signal(str, str)
    export_finished = Signal(object)
    message_shown = Signal(str)
    batch_finished = Signal(object)  # BatchSummary of Predict all / Re-predict
    # Set by the composition root (features.py) as it builds the features; the save flow and tests reach them here.
    finetune: FinetuneController
    compare: CompareController
    history: HistoryController
    history_dock: QDockWidget
    vessel_tools: VesselTools
    topology: TopologyReview
    topology_dock: QDockWidget

    def __init__(self, checkpoint_path: str | Path | None = None, settings: AppSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.settings = settings or AppSettings()
        self.tasks = TaskRunner(self, max_threads=2)
        self.window_layout = WindowLayout(self, self.settings, lambda: self.tasks.closed)
        self.prompter = Prompter(self)
        self.model = ModelHolder(checkpoint_path)
        self.prediction = PredictionController(self.tasks, self.model, self)
        self.review = ReviewSession()
        self.image_ready = ImageReadiness(self)  # the open image's prediction is on screen (or will not come)
        self.export = ExportController(self.tasks, self)
        self.approved_guard = ApprovedImageGuard(self.review, self.prompter, self)  # asked before any edit
        views = build_views(self, self.settings, self.approved_guard.may_edit)
        self.workspace_banner, self.canvas, self.banner = views.workspace_banner, views.canvas, views.banner
        self.image_list, self.images_dock = views.image_list, views.images_dock
        self.review_panel, self.review_dock, self.status_panel = (
            views.review_panel,
            views.review_dock,
            views.status_panel,
        )
        self.long_runs = LongRuns(self.status_panel, self.prediction, self.export)
        # What the features are built from (the composition root hands each one the parts it uses).
        self.context = AppContext(
            review=self.review,
            tasks=self.tasks,
            prediction=self.prediction,
            settings=self.settings,
            prompter=self.prompter,
            show_message=self.show_message,
            show_status=self.statusBar().showMessage,
            actions=ActionRegistry(self),
            image_ready=self.image_ready,
            progress=Progress(self.status_panel.show_progress, self.long_runs.hide_progress),
        )
        self.workspaces = WorkspaceFlow(self)
        self.saving = SaveFlow(self)  # conflicts, a full disk, a record to retry
        self.thumbnails = ThumbnailLoader(self.tasks, self.review, self.image_list, self)
        self.measure = MeasureRunner(self.tasks, self.review, self.review_panel.measure_labels, self)
        tools = (self.review, self.canvas, self.review_panel, self.settings, self.approved_guard)
        self.edit_tools = EditTools(*tools, self._trace_width_keys, self)
        self.predictions_view = build_prediction_view(self)
        self._build_flows(views)
        self.action_table = self._build_actions()
        self.states = ActionStates(
            self, self.review, self.action_table, self.review_panel, self.export, self.prediction
        )
        self._connect()
        self.features = build_features(self)  # fine-tuning, help, history, vessel tools, compare, measurements…
        self.wheel_guard = WheelGuard(self)
        guard_wheel(self, self.wheel_guard)  # the wheel scrolls the panels; it changes a control only once focused
        if self.window_layout.restore():
            self.features.finetune.keep_restored_position()  # where the grader left the Fine-tuning window last time
        self.states.update()
        self.prediction.load_model()

    def _trace_width_keys(self, step: int) -> bool:
        """[ / ] set the traced vessel's width while tracing (True); otherwise they size the brush."""
        return self.vessel_tools.width_step(step)

    def _build_flows(self, views: WindowViews) -> None:
        """The threshold slider, opening images, the commands of the menus (approve, export, …), closing."""
        update_actions = lambda: self.states.update()  # noqa: E731 (the states are built with the actions, later)
        self.threshold_control = ThresholdControl(
            self.review, self.review_panel, lambda: self.prompter, self.measure.schedule, update_actions, self
        )
        self.images = ImageFlow(
            self.review,
            self.tasks,
            self.model,
            self.prediction,
            views,
            self.statusBar(),
            self.image_ready,
            self.measure,
            self.show_message,
            leave_current_image=self.saving.leave_current_image,
            predict_current=self.predictions_view.predict_current,
            show_threshold=self.threshold_control.show,
            update_actions=update_actions,
            opened=self.image_opened.emit,
            failed=self.image_failed.emit,
        )
        self.commands = Commands(
            self.review,
            self.saving,
            self.export,
            self.settings,
            self.banner,
            self.statusBar(),
            self.show_message,
            self.images.step_image,
            self,
        )
        self.closing = Closing(
            self.review,
            lambda: self.prompter,
            self.saving,
            self.workspaces,
            self.window_layout,
            self.settings,
            self.tasks,
            self.commands.autosave_timer,
            (self.measure.timer, self.threshold_control.timer, self.thumbnails.timer),
            stop_features=lambda: self.features.finetune.shutdown(),
        )

    def _build_actions(self) -> Actions:
        c, p = self.commands, self.predictions_view
        slots = ActionSlots(
            choose_workspace=self.workspaces.choose_workspace,
            open_demo_workspace=self.workspaces.open_demo_workspace,
            save=lambda: self.saving.save_current(auto=False),
            approve=c.approve_current,
            export=c.export_dialog,
            preferences=c.preferences,
            quit=self.close,
            step_image=self.images.step_image,
            predict=p.predict_current,
            predict_all=p.predict_all,
            start_from_prediction=c.start_from_prediction,
        )
        actions = Actions(self.context.actions, slots, self.canvas, self.edit_tools, self)
        actions.install_menus(self.menuBar())
        self.toolbar = actions.install_toolbar(self)
        return actions

    def _connect(self) -> None:
        panel, r, p = self.review_panel, self.review, self.prediction
        self.canvas.cursor_info.connect(self.status_panel.cursor_label.setText)
        self.edit_tools.message.connect(self.show_message)
        self.approved_guard.message.connect(self.show_message)
        self.edit_tools.status.connect(lambda text: self.statusBar().showMessage(text, 5000))
        panel.save_button.clicked.connect(lambda: self.saving.save_current(auto=False))
        panel.approve_button.clicked.connect(self.commands.approve_current)
        self.action_table.recent_menu.aboutToShow.connect(self.workspaces.fill_recent_menu)
        r.message.connect(self.show_message)
        r.saved.connect(self.saved.emit)
        r.status_changed.connect(self.image_list.model.refresh)
        r.status_changed.connect(lambda _key: self.states.update())
        self.prediction_shown.connect(self.image_ready.settle)
        p.failure.connect(lambda item: self.image_ready.settle(item.key))
        for no_prediction in (p.model_failed, p.error):
            no_prediction.connect(lambda _message: self.image_ready.settle(r.image.key if r.image else None))
        self.export.finished.connect(self.export_finished.emit)
        self.export.busy_changed.connect(self.long_runs.hide_progress)
        self.export.busy_changed.connect(self.states.update)

    # ------------------------------------------------------------------------ messages --
    def show_message(self, text: str, level: str = "error") -> None:
        """A non-blocking message over the top of the image; it stays until something supersedes it."""
        self.banner.show_text(text, level)
        if text:
            self.statusBar().showMessage(text.splitlines()[0], 8000)
            self.message_shown.emit(text)

    def clear_message(self) -> None:
        self.banner.dismiss()

    # ------------------------------------------------------------------ window events --
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.window_layout.shown()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.window_layout.changed()

    def moveEvent(self, event: QMoveEvent) -> None:
        super().moveEvent(event)
        self.window_layout.changed()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closing.close_event(event)

    def shutdown(self) -> None:
        """Stop background work and wait for the threads (used by closeEvent and test teardown)."""
        self.closing.shutdown()

    # ------------------------------------------------------------------------------------------------------------
    # Entry points of the window's parts that the composition root (features.py), the self-test and the tests call.
    @property
    def workspace(self) -> Workspace | None:
        return self.review.workspace

    def switch_model(self) -> None:
        self.predictions_view.switch_model()

    def save_current(self, auto: bool = False) -> bool:
        return self.saving.save_current(auto)

    def autosave(self) -> None:
        self.commands.autosave()

    def show_threshold(self) -> None:
        self.threshold_control.show()

    def update_actions(self) -> None:
        self.states.update()
