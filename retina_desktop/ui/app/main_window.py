"""The main window: wires the views (image list, canvas, review panel, banner) to the review session and the
prediction controller.

Where things live:

* ``core.review_session.ReviewSession`` (Qt-free): the workspace, the open image and its mask document, the
  threshold and its policy, save / approve / the review log, the load requests;
* ``prediction_controller.PredictionController``: the model and every prediction run, with cancel and counts;
* ``actions.Actions``: every action with its menu entry, toolbar button and shortcut;
* ``review_panel.ReviewPanel``: the right-hand panel; ``banner.MessageBanner``: messages over the image;
* ``background``: thumbnails and the measure panel's numbers; ``finetune_panel``: fine-tuning and Models….

Everything slow runs in ``TaskRunner`` workers, connected through ``tasks.guard`` so that results arriving
after closing are dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMainWindow, QVBoxLayout, QWidget

from ... import APP_NAME
from ...core.model.model_service import ModelHolder, ModelInfo
from ...core.model.tasks import LoadedImage, load_image
from ...core.review.export import ExportOptions
from ...core.review.review_session import OpenImage, ReviewSession
from ...core.workspace import Workspace
from ..common.context import ActionRegistry, AppContext, Progress
from ..common.image_ready import ImageReadiness
from ..common.prompter import Prompter
from ..common.settings import AppSettings
from ..common.wheel_guard import WheelGuard, guard_wheel
from ..common.workers import TaskRunner, Worker
from ..prediction.prediction_controller import PredictionController
from ..review.canvas import ImageCanvas
from ..review.edit_tools import EditTools
from ..review.image_list import ImageListPanel
from ..review.review_panel import ReviewPanel
from .actions import Actions
from .background import MeasureRunner, ThumbnailLoader
from .banner import MessageBanner
from .dialogs import PreferencesDialog
from .export_controller import ExportController
from .features import build_features, build_prediction_view
from .save_flow import SaveFlow
from .status_panel import StatusPanel
from .workspace_flow import WorkspaceFlow

log = logging.getLogger("retina_desktop")
FRAME_SETTLE_MS = 300  # how long after the first show the window manager's frame is measured
LAYOUT_SAVE_MS = 1000  # the window's size and dock layout are written this long after they last changed

# Widgets of the review panel also reachable as ``window.<name>`` (tests, the self-test, the help).
PANEL_WIDGETS = (
    "save_button",
    "approve_button",
    "image_name_label",
    "image_status_label",
    "mask_source_label",
    "brush_slider",
    "brush_label",
    "min_piece_spin",
    "remove_small_button",
    "threshold_slider",
    "threshold_label",
    "opacity_slider",
    "zoom_label",
    "measure_labels",
)


class MainWindow(QMainWindow):
    workspace_opened = Signal(str)
    image_opened = Signal(str)
    image_failed = Signal(str, str)
    prediction_shown = Signal(str)
    saved = Signal(str, str)
    export_finished = Signal(object)
    message_shown = Signal(str)
    batch_finished = Signal(object)  # BatchSummary of Predict all / Re-predict

    def __init__(self, checkpoint_path: str | Path | None = None, settings: AppSettings | None = None):
        super().__init__()
        self.setWindowTitle(APP_NAME)
        screen = QGuiApplication.primaryScreen()
        room = screen.availableGeometry() if screen is not None else None
        # A first launch fits the screen: at 1280x800 a fixed 1480x920 pushed the Review panel off its edge.
        self.resize(min(1480, room.width()) if room else 1480, min(920, room.height()) if room else 920)
        self.settings = settings or AppSettings()
        self.prompter = Prompter(self)
        self.tasks = TaskRunner(self, max_threads=2)
        self.model = ModelHolder(checkpoint_path)
        self.prediction = PredictionController(self.tasks, self.model, self)
        self.review = ReviewSession()
        self.image_ready = ImageReadiness(self)  # the open image's prediction is on screen (or will not come)
        self.export = ExportController(self.tasks, self)
        self.workspaces = WorkspaceFlow(self)
        self.saving = SaveFlow(self)  # conflicts, a full disk, a record to retry
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
            progress=Progress(lambda *a: self.status_panel.show_progress(*a), lambda: self.hide_progress()),
        )
        self.start, self.open_workspace = self.workspaces.start, self.workspaces.open_workspace
        self.open_demo_workspace, self.choose_workspace = (
            self.workspaces.open_demo_workspace,
            self.workspaces.choose_workspace,
        )

        self._build_ui()
        self.edit_tools = EditTools(self.review, self.canvas, self.review_panel, self.settings, self.prompter, self)
        # The tools' entry points, also as the window's (tests, the self-test and the benchmarks call them).
        self.set_tool, self.set_brush_radius = self.edit_tools.set_tool, self.edit_tools.set_brush_radius
        self.remove_small, self.undo, self.redo = (
            self.edit_tools.remove_small,
            self.edit_tools.undo,
            self.edit_tools.redo,
        )
        self.predictions_view = build_prediction_view(self)
        self.predict_current, self.predict_all = (
            self.predictions_view.predict_current,
            self.predictions_view.predict_all,
        )
        self.switch_model = self.predictions_view.switch_model
        self.action_table = Actions(self, self.context.actions)
        for name, action in self.action_table.named().items():
            setattr(self, f"{name}_action", action)
        self.tool_actions = self.action_table.tools
        self.action_table.install_menus(self)
        self.toolbar = self.action_table.install_toolbar(self)
        self._connect()
        self.features = build_features(self)  # fine-tuning, help, history, vessel tools, compare, measurements…
        self.wheel_guard = WheelGuard(self)
        guard_wheel(self, self.wheel_guard)  # the wheel scrolls the panels; it changes a control only once focused

        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(self.settings.autosave_seconds * 1000)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self.threshold_timer = QTimer(self, singleShot=True, interval=250)
        self.threshold_timer.timeout.connect(lambda: self.apply_threshold(self.threshold_slider.value() / 100.0))

        geometry = self.settings.window_geometry()
        # A first launch at the size chosen above: its title bar and frame must fit the screen too.
        self._fit_frame_pending = geometry is None
        self._launch_size = self.size()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.window_state()
        if state is not None and self.restoreState(state):
            self.finetune.keep_restored_position()  # where the grader left the Fine-tuning window last time
        # The size, place and dock layout are written a moment after each change, not only on closing: a window
        # ended without closeEvent (killed, logged out, a crash, an X session that ends) came back at its
        # first-launch size (issue 27).
        self.layout_timer = QTimer(self, singleShot=True, interval=LAYOUT_SAVE_MS)
        self.layout_timer.timeout.connect(self.remember_layout)
        self.tabifiedDockWidgetActivated.connect(self._layout_changed)  # History raised over Review, or back
        for dock in self.findChildren(QDockWidget):
            dock.dockLocationChanged.connect(self._layout_changed)
            dock.topLevelChanged.connect(self._layout_changed)
            dock.visibilityChanged.connect(self._layout_changed)
        self.update_actions()
        self.prediction.load_model()

    # ------------------------------------------------------------- what others read --
    @property
    def workspace(self) -> Workspace | None:
        return self.review.workspace

    @property
    def session(self) -> OpenImage | None:
        """The open image (its entry, decoded photo, mask document and probabilities), or None."""
        return self.review.image

    @property
    def threshold(self) -> float:
        return self.review.threshold

    @property
    def model_info(self) -> ModelInfo | None:
        return self.prediction.info

    @property
    def model_error(self) -> str | None:
        return self.prediction.model_error

    # ------------------------------------------------------------------------------ UI --
    def _build_ui(self) -> None:
        central = QWidget(self)
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.workspace_banner = QLabel(central)
        self.workspace_banner.setObjectName("workspace_banner")
        self.workspace_banner.setWordWrap(True)
        self.workspace_banner.setStyleSheet("QLabel { background: #2d3340; color: #dfe6f0; padding: 5px 10px; }")
        self.workspace_banner.hide()
        self.canvas = ImageCanvas(central)
        self.banner = MessageBanner(self.canvas)
        lay.addWidget(self.workspace_banner)
        lay.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        self.image_list = ImageListPanel(self)
        self.images_dock = self._dock("Images", "images_dock", self.image_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.review_panel = ReviewPanel(self.settings.min_piece_pixels, self.settings.mask_opacity)
        for name in PANEL_WIDGETS:
            setattr(self, name, getattr(self.review_panel, name))
        self.review_dock = self._dock(
            "Review", "review_dock", self.review_panel.scrolling(), Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.status_panel = StatusPanel(self.statusBar())
        for name in ("cursor_label", "progress_label", "progress_bar", "cancel_button", "model_label", "device_label"):
            setattr(self, name, getattr(self.status_panel, name))

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        self.thumbnails = ThumbnailLoader(self.tasks, self.review, self.image_list, self)
        self.measure = MeasureRunner(self.tasks, self.review, self.measure_labels, self)
        self.image_list.image_activated.connect(self.open_image)
        self.canvas.cursor_info.connect(self.cursor_label.setText)
        self.canvas.zoom_changed.connect(self._show_zoom)
        self.threshold_slider.valueChanged.connect(self._threshold_slider_moved)
        self.edit_tools.message.connect(self.show_message)
        self.edit_tools.status.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.save_button.clicked.connect(lambda: self.save_current(auto=False))
        self.approve_button.clicked.connect(self.approve_current)
        self.cancel_button.clicked.connect(self.cancel_background)
        self.recent_menu.aboutToShow.connect(self.workspaces.fill_recent_menu)

        r = self.review
        r.threshold_changed.connect(lambda _t: self.show_threshold())
        r.message.connect(self.show_message)
        r.saved.connect(self.saved.emit)
        r.status_changed.connect(lambda key: (self.image_list.model.refresh(key), self.update_actions()))
        self.prediction_shown.connect(self.image_ready.settle)
        self.prediction.failure.connect(lambda item: self.image_ready.settle(item.key))
        for no_prediction in (self.prediction.model_failed, self.prediction.error):
            no_prediction.connect(lambda _message: self.image_ready.settle(self.session.key if self.session else None))
        self.export.progress.connect(self.status_panel.show_progress)
        self.export.finished.connect(self._export_finished)
        self.export.busy_changed.connect(lambda: (self.hide_progress(), self.update_actions()))

    # ------------------------------------------------------------------------ messages --
    def show_message(self, text: str, level: str = "error") -> None:
        """A non-blocking message over the top of the image; it stays until something supersedes it."""
        self.banner.show_text(text, level)
        if text:
            self.statusBar().showMessage(text.splitlines()[0], 8000)
            self.message_shown.emit(text)

    def clear_message(self) -> None:
        self.banner.dismiss()

    def _update_title(self) -> None:
        parts = [APP_NAME]
        if self.workspace is not None:
            parts.append(self.workspace.title)
        if self.session is not None:
            parts.append(self.session.entry.name + "[*]")
        self.setWindowTitle(" — ".join(parts))
        self.setWindowModified(self.session is not None and self.session.document.unsaved)

    def update_actions(self) -> None:
        doc = self.session.document if self.session else None
        has = self.session is not None
        self.undo_action.setEnabled(bool(doc and doc.can_undo))
        self.redo_action.setEnabled(bool(doc and doc.can_redo))
        writable = bool(self.workspace and self.workspace.gt_writable)
        for w in (self.save_action, self.approve_action, self.save_button, self.approve_button):
            w.setEnabled(has and writable)
        self.remove_small_action.setEnabled(has)
        self.remove_small_button.setEnabled(has)
        self.export_action.setEnabled(self.workspace is not None and not self.export.running)
        self.predict_all_action.setEnabled(self.workspace is not None and not self.prediction.batch_running)
        self.predict_action.setEnabled(has)
        if has:
            self.image_status_label.setText(
                self.workspace.status(self.session.key) + (" (unsaved edits)" if doc.unsaved else "")
            )
            self.mask_source_label.setText(doc.source)
        self._update_title()

    def _show_zoom(self, *_args) -> None:
        self.zoom_label.setText(f"{self.canvas.zoom_factor() * 100:.0f} %" if self.session is not None else "–")

    # ------------------------------------------------------------------------ images --
    def detach_image(self) -> None:
        s = self.session
        if s is not None:
            s.document.changed.disconnect(self._document_changed)
            s.document.state_changed.disconnect(self._document_state_changed)
        self.image_ready.closed()
        self.canvas.set_image(None)
        self.review_panel.clear_image()

    def leave_current_image(self) -> bool:
        """Autosave before switching; if saving is impossible, ask. False means stay."""
        return self.saving.leave_current_image()

    def step_image(self, step: int) -> None:
        r = self.review
        current = self.session.key if self.session else (r.loading_key or r.current_key)
        key = self.image_list.neighbour(current, step)
        if key:
            self.open_image(key)

    def open_image(self, key: str) -> None:
        if self.workspace is None:
            return
        if self.session is not None and self.session.key == key:
            self.image_list.select(key)
            return
        if not self.leave_current_image():
            if self.session is not None:
                self.image_list.select(self.session.key)
            return
        self.detach_image()
        request, entry = self.review.begin_load(key)
        self.image_list.select(key)
        self.image_name_label.setText(entry.name)
        self.clear_message()
        self.statusBar().showMessage(f"Opening {entry.name}…")
        w = Worker(load_image, self.workspace, entry, self.model.cache_key, name=f"open {entry.name}")
        w.returned.connect(self.tasks.guard(lambda loaded, r=request: self._image_loaded(r, loaded)))
        w.errored.connect(self.tasks.guard(lambda msg, r=request, k=key: self._image_load_failed(r, k, msg)))
        self.tasks.start(w, priority=2)

    def _image_load_failed(self, request: int, key: str, message: str) -> None:
        if self.review.has_key(key):
            self.image_list.model.set_error(key, message)
        if not self.review.load_failed(request):
            return
        self.show_message(message, "error")
        self.statusBar().clearMessage()
        self.update_actions()
        self.image_failed.emit(key, message)

    def _image_loaded(self, request: int, loaded: LoadedImage) -> None:
        s = self.review.finish_load(request, loaded)
        if s is None:
            return  # the grader moved on while it was decoding
        entry, doc = s.entry, s.document
        self.image_list.model.set_error(entry.key, None)
        doc.changed.connect(self._document_changed)
        doc.state_changed.connect(self._document_state_changed)
        self.canvas.set_image(loaded.rgb, loaded.model_view)
        self.canvas.set_probability(loaded.probability)
        self.canvas.set_document(doc)
        h, w = loaded.rgb.shape[:2]
        self.image_name_label.setText(f"{entry.name}  ({w}×{h})")
        if loaded.ground_truth_problem:
            self.show_message(loaded.ground_truth_problem, "warning")
        self.statusBar().showMessage(f"Opened {entry.name}", 3000)
        self._show_zoom()
        self.show_threshold()
        self.update_actions()
        self.image_opened.emit(entry.key)
        self.image_ready.opened(entry.key, has_prediction=loaded.probability is not None)
        if loaded.probability is None:
            self.predict_current()
            if self.model_error is not None:
                self.image_ready.settle(entry.key)  # no model: nothing to wait for
        else:
            self.measure.schedule()

    def cancel_background(self) -> None:
        self.prediction.cancel()
        self.export.cancel()
        self.progress_label.setText("Cancelling…")

    def hide_progress(self) -> None:
        if not self.prediction.batch_running and not self.export.running:
            self.status_panel.hide_progress()

    # ---------------------------------------------------------------------- editing --
    def _document_changed(self, bbox) -> None:
        if self.banner.level in ("warning", "info"):
            self.clear_message()  # a later successful edit supersedes e.g. a refused Fill
        self.measure.schedule()

    def _document_state_changed(self) -> None:
        if self.session is not None:
            self.image_list.model.set_dirty(self.session.key, self.session.document.unsaved)
        self.show_threshold()
        self.update_actions()

    # -------------------------------------------------------------------- threshold --
    def show_threshold(self) -> None:
        self.review_panel.show_threshold(self.review.threshold, self.review.threshold_overridden)

    def _threshold_slider_moved(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        self.threshold_timer.start()

    def apply_threshold(self, t: float) -> bool:
        """Re-derive the open mask from the probabilities at ``t``; asks first if that discards edits."""
        question = self.review.threshold_question(t)
        if question is not None and not self.prompter.confirm(
            "Re-derive the mask?", question, ok_text="Replace mask", object_name="threshold_prompt"
        ):
            self.show_threshold()  # the slider goes back to the threshold the mask was cut at
            return False
        self.review.apply_threshold(t)
        self.show_threshold()
        self.measure.schedule()
        self.update_actions()
        return True

    # ------------------------------------------------------------------------- saving --
    def start_from_prediction(self) -> None:
        if self.review.start_from_prediction():
            self.show_message(
                "The mask on screen is the model's prediction now (Undo goes back); the mask on disk "
                "is replaced only when you save.",
                "info",
            )
        else:
            self.show_message("There is no prediction of this image yet: predict it first (Ctrl+R).", "warning")

    def save_current(self, auto: bool = False) -> bool:
        return self.saving.save_current(auto)

    def _model_description(self) -> str | None:
        return self.model_info.description if self.model_info else None

    def autosave(self) -> None:
        s = self.session
        if s is None or not s.document.unsaved or not (self.workspace and self.workspace.gt_writable):
            return
        if QApplication.mouseButtons() != Qt.MouseButton.NoButton:
            return  # never in the middle of a stroke
        self.saving.autosave_in_background()

    def approve_current(self) -> None:
        s = self.session
        if s is None or self.workspace is None:
            return
        if self.review.needs_save_before_approve() and not self.save_current(auto=False):
            return
        if not self.saving.approve():
            return
        self.statusBar().showMessage(f"Approved {s.entry.name}", 3000)
        if self.banner.level in ("warning", "info"):
            self.clear_message()
        if self.settings.advance_after_approve:
            self.step_image(+1)

    # ----------------------------------------------------------------------- export --
    def export_dialog(self) -> None:
        if self.workspace is None:
            return
        self.save_current(auto=True)
        options = self.export.ask(self, self.workspace)
        if options is not None:
            self.export_to(options)

    def export_to(self, options: ExportOptions) -> Worker | None:
        return self.export.start(self.workspace, options) if self.workspace is not None else None

    def _export_finished(self, result) -> None:
        if isinstance(result, str):
            self.show_message(f"Export failed: {result}")
        else:
            self.show_message(result.text().replace("\n", " · "), "info")
        self.export_finished.emit(result)

    def preferences(self) -> None:
        dlg = PreferencesDialog(self.settings, self)
        if dlg.exec():
            dlg.apply()
            self.autosave_timer.setInterval(self.settings.autosave_seconds * 1000)

    # ------------------------------------------------------------------------- layout --
    def _layout_changed(self, *_args) -> None:
        timer = getattr(self, "layout_timer", None)  # None while __init__ restores the last layout
        if timer is not None and self.isVisible() and not self.tasks.closed:
            timer.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._fit_frame_pending:
            self._fit_frame_pending = False
            # The window manager adds its frame after the window is mapped: measured a moment later.
            QTimer.singleShot(FRAME_SETTLE_MS, self._fit_frame_to_screen)

    def _fit_frame_to_screen(self) -> None:
        """At first launch the window was as large as the screen's free area, and its title bar and frame pushed
        the status bar below the screen's edge at 1280x800: shrink by the frame's own size (none offscreen)."""
        screen = self.screen()
        if screen is None or self.isMaximized() or self.isFullScreen() or self.size() != self._launch_size:
            return  # sized by someone else meanwhile (the grader, a test, the window manager)
        room, frame = screen.availableGeometry(), self.frameGeometry()
        extra_w, extra_h = frame.width() - self.width(), frame.height() - self.height()
        if (extra_w <= 0 and extra_h <= 0) or (frame.width() <= room.width() and frame.height() <= room.height()):
            return
        self.resize(min(self.width(), room.width() - extra_w), min(self.height(), room.height() - extra_h))
        self.move(room.topLeft())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._layout_changed()

    def moveEvent(self, event) -> None:
        super().moveEvent(event)
        self._layout_changed()

    def remember_layout(self) -> None:
        """Write the window's geometry and dock layout to the settings (restored by the next launch)."""
        self.layout_timer.stop()
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()

    # ------------------------------------------------------------------------ closing --
    def closeEvent(self, event: QCloseEvent) -> None:
        s = self.session
        if s is not None and s.document.unsaved:
            writable = bool(self.workspace and self.workspace.gt_writable)
            choice = self.prompter.ask_unsaved(s.entry.name, can_save=writable)
            if choice == "cancel" or (choice == "save" and not self.save_current(auto=False)):
                event.ignore()
                return
        self.autosave_timer.stop()
        self.remember_layout()  # first: what follows may fail (a workspace that has gone)
        self.workspaces.remember_open_image()
        self.settings.sync()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop background work and wait for the threads (used by closeEvent and test teardown)."""
        for timer in (
            self.autosave_timer,
            self.measure.timer,
            self.threshold_timer,
            self.thumbnails.timer,
            self.layout_timer,
        ):
            timer.stop()
        self.finetune.shutdown()  # ends a training process still running
        self.tasks.shutdown()  # from here on, results still queued for the UI thread are dropped
        if self.workspace is not None:
            self.workspace.close()  # ends this window's "already open" record
