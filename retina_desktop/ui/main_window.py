"""The main window: wires the workspace, the image list, the canvas, the tools and the workers.

Everything slow (decoding photos, the model, export, measurements) runs in ``TaskRunner`` workers;
this class only reacts to their signals. Results for an image that is no longer open are used to
update the list and otherwise dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QMainWindow,
                               QProgressBar, QPushButton, QSlider, QSpinBox, QToolBar, QToolButton, QVBoxLayout,
                               QWidget)

from .. import APP_NAME
from .canvas import ImageCanvas
from ..core.demo import ensure_demo_workspace
from .dialogs import ExportDialog, PreferencesDialog, Prompter, default_export_folder
from ..core.export import ExportOptions, export_masks
from .finetune_panel import install_finetune
from .help import install_help
from .image_list import ImageListPanel
from ..core.mask_document import MaskDocument
from ..core.measure import CorrectionMeasure, measure_correction
from ..core.model_service import ModelHolder, ModelInfo
from ..core.painting import OpenRegionFill, flood_fill, remove_small_pieces
from ..core.paths import user_cache_dir
from .settings import AppSettings
from ..core.tasks import LoadedImage, PredictionFailure, PredictionResult, load_image, load_model, make_thumbnails, predict_images
from .workers import TaskRunner, Worker, user_message
from ..core.workspace import Workspace, WorkspaceError

log = logging.getLogger("retina_desktop")


@dataclass
class ImageSession:
    """The image open in the canvas and its editable mask."""

    entry: object  # ImageEntry
    loaded: LoadedImage
    document: MaskDocument
    probability: np.ndarray | None

    @property
    def key(self) -> str:
        return self.entry.key


class MainWindow(QMainWindow):
    workspace_opened = Signal(str)
    image_opened = Signal(str)
    image_failed = Signal(str, str)
    prediction_shown = Signal(str)
    saved = Signal(str, str)
    export_finished = Signal(object)
    measured = Signal(str, object)
    model_ready = Signal(object)
    message_shown = Signal(str)

    def __init__(self, checkpoint_path: str | Path | None = None, settings: AppSettings | None = None):
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.resize(1480, 920)
        self.settings = settings or AppSettings()
        self.prompter = Prompter(self)
        self.tasks = TaskRunner(self, max_threads=2)
        self.model = ModelHolder(checkpoint_path)
        self.model_info: ModelInfo | None = None
        self.model_error: str | None = None
        self.workspace: Workspace | None = None
        self.session: ImageSession | None = None
        self.threshold = 0.5
        self._threshold_applied = 0.5
        self._load_request = 0
        self._loading_key: str | None = None
        self._predicting: set[str] = set()
        self._batch_worker: Worker | None = None
        self._batch_failed: list[str] = []  # keys a "Predict all" run could not predict
        self._export_worker: Worker | None = None
        self._measure_request = 0
        self._closing = False
        self._current_key: str | None = None

        self._build_ui()
        self._build_actions()
        self._connect()
        install_finetune(self)  # Fine-tune / Models actions, the Fine-tuning dock
        install_help(self)

        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(self.settings.autosave_seconds * 1000)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self.measure_timer = QTimer(self, singleShot=True, interval=350)
        self.measure_timer.timeout.connect(self._start_measure)
        self.threshold_timer = QTimer(self, singleShot=True, interval=250)
        self.threshold_timer.timeout.connect(lambda: self.apply_threshold(self.threshold_slider.value() / 100.0))

        geometry = self.settings.window_geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        self._update_actions()
        self._start_model_load()

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
        self.banner = QLabel(central)
        self.banner.setObjectName("message_banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        self.canvas = ImageCanvas(central)
        lay.addWidget(self.workspace_banner)
        lay.addWidget(self.banner)
        lay.addWidget(self.canvas, 1)
        self.setCentralWidget(central)

        self.image_list = ImageListPanel(self)
        dock = QDockWidget("Images", self)
        dock.setObjectName("images_dock")
        dock.setWidget(self.image_list)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.images_dock = dock

        panel = QWidget(self)
        pl = QVBoxLayout(panel)
        info_box = QGroupBox("Image", panel)
        info = QFormLayout(info_box)
        self.image_name_label = QLabel("–")
        self.image_name_label.setWordWrap(True)
        self.image_status_label = QLabel("–")
        self.mask_source_label = QLabel("–")
        info.addRow("Name", self.image_name_label)
        info.addRow("Status", self.image_status_label)
        info.addRow("Mask from", self.mask_source_label)
        pl.addWidget(info_box)

        tools_box = QGroupBox("Correct", panel)
        tl = QFormLayout(tools_box)
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(1, 100)
        self.brush_slider.setObjectName("brush_slider")
        self.brush_label = QLabel()
        brow = QHBoxLayout()
        brow.addWidget(self.brush_slider, 1)
        brow.addWidget(self.brush_label)
        tl.addRow("Brush radius", brow)
        self.min_piece_spin = QSpinBox()
        self.min_piece_spin.setRange(2, 100000)
        self.min_piece_spin.setValue(self.settings.min_piece_pixels)
        self.min_piece_spin.setSuffix(" px")
        self.remove_small_button = QPushButton("Remove smaller pieces")
        rrow = QHBoxLayout()
        rrow.addWidget(self.min_piece_spin)
        rrow.addWidget(self.remove_small_button)
        tl.addRow("Pieces under", rrow)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(50)
        self.threshold_slider.setObjectName("threshold_slider")
        self.threshold_label = QLabel("0.50")
        trow = QHBoxLayout()
        trow.addWidget(self.threshold_slider, 1)
        trow.addWidget(self.threshold_label)
        tl.addRow("Threshold", trow)
        pl.addWidget(tools_box)

        view_box = QGroupBox("View", panel)
        vl = QFormLayout(view_box)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(round(self.settings.mask_opacity * 100)))
        vl.addRow("Mask opacity", self.opacity_slider)
        self.zoom_label = QLabel("–")
        vl.addRow("Zoom", self.zoom_label)
        pl.addWidget(view_box)

        measure_box = QGroupBox("Prediction vs. corrected mask", panel)
        ml = QFormLayout(measure_box)
        self.measure_labels: dict[str, QLabel] = {}
        for name in ("Dice", "IoU", "Accuracy", "AUC", "Pixels added", "Pixels removed", "Vessel pixels"):
            lab = QLabel("–")
            lab.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.measure_labels[name] = lab
            ml.addRow(name, lab)
        pl.addWidget(measure_box)

        review_row = QHBoxLayout()
        self.save_button = QPushButton("Save")
        self.approve_button = QPushButton("Approve")
        self.approve_button.setObjectName("approve_button")
        self.approve_button.setStyleSheet("QPushButton { font-weight: bold; }")
        review_row.addWidget(self.save_button)
        review_row.addWidget(self.approve_button)
        pl.addLayout(review_row)
        pl.addStretch(1)
        dock = QDockWidget("Review", self)
        dock.setObjectName("review_dock")
        dock.setWidget(panel)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.review_dock = dock

        sb = self.statusBar()
        self.cursor_label = QLabel("")
        self.cursor_label.setMinimumWidth(420)
        sb.addWidget(self.cursor_label, 1)
        self.progress_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        for w in (self.progress_label, self.progress_bar, self.cancel_button):
            w.hide()
            sb.addPermanentWidget(w)
        self.model_label = QLabel("Model: loading…")
        self.model_label.setObjectName("model_label")
        self.device_label = QLabel("")
        self.device_label.setObjectName("device_label")
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.device_label)

    def _action(self, text: str, slot, shortcut=None, checkable: bool = False, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
            # Window-wide, so keys work whichever panel has focus.
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.setCheckable(checkable)
        if tip or shortcut:
            keys = ", ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText)
                             for s in (shortcut if isinstance(shortcut, list) else [shortcut] if shortcut else []))
            a.setToolTip(f"{tip or text}" + (f" ({keys})" if keys else ""))
        if checkable:
            a.toggled.connect(slot)
        else:
            a.triggered.connect(lambda _checked=False: slot())
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        A = self._action
        self.open_action = A("Open folder…", self.choose_workspace, QKeySequence.StandardKey.Open)
        self.demo_action = A("Open demo workspace", self.open_demo_workspace)
        self.save_action = A("Save as ground truth", lambda: self.save_current(auto=False), QKeySequence.StandardKey.Save)
        self.approve_action = A("Approve", self.approve_current, ["Ctrl+Return", "Ctrl+Enter"],
                                tip="Save and mark this image reviewed")
        self.export_action = A("Export masks…", self.export_dialog, "Ctrl+E")
        self.prefs_action = A("Preferences…", self.preferences)
        self.quit_action = A("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.next_action = A("Next image", lambda: self.step_image(+1), ["PgDown", "."])
        self.prev_action = A("Previous image", lambda: self.step_image(-1), ["PgUp", ","])
        self.predict_action = A("Predict this image", self.predict_current, "Ctrl+R")
        self.predict_all_action = A("Predict all", self.predict_all, "Ctrl+Shift+P",
                                    tip="Predict every image without a cached prediction")
        self.undo_action = A("Undo", self.undo, QKeySequence.StandardKey.Undo)
        self.redo_action = A("Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.remove_small_action = A("Remove small pieces", self.remove_small, "Ctrl+Shift+X")
        self.fit_action = A("Fit", self.canvas.fit, ["F", "0"])
        self.one_to_one_action = A("1:1", self.canvas.one_to_one, "1")
        self.model_input_action = A("Model input (green + CLAHE)", self.canvas.show_model_input, "C", checkable=True)
        self.heat_action = A("Probability heat map", self.canvas.set_heat_visible, "H", checkable=True)
        self.mask_action = A("Mask overlay", self.canvas.set_mask_visible, "M", checkable=True)
        self.mask_action.setChecked(True)
        self.bigger_action = A("Bigger brush", lambda: self.set_brush_radius(self.canvas.brush_radius * 1.25 + 0.5), "]")
        self.smaller_action = A("Smaller brush", lambda: self.set_brush_radius((self.canvas.brush_radius - 0.5) / 1.25), "[")

        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[str, QAction] = {}
        for tool, text, key in (("navigate", "Pan", "V"), ("brush", "Brush", "B"), ("eraser", "Eraser", "E"),
                                ("fill", "Fill", "G")):
            a = A(text, lambda on, t=tool: on and self.set_tool(t), key, checkable=True)
            self.tool_group.addAction(a)
            self.tool_actions[tool] = a
        self.tool_actions["navigate"].setChecked(True)

        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (self.open_action, self.demo_action, None, self.save_action, self.approve_action, None,
                  self.export_action, None, self.prefs_action, None, self.quit_action):
            m.addSeparator() if a is None else m.addAction(a)
        self.recent_menu = m.addMenu("Recent workspaces")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m = mb.addMenu("&Edit")
        for a in (self.undo_action, self.redo_action, None, *self.tool_actions.values(), None, self.bigger_action,
                  self.smaller_action, self.remove_small_action):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&View")
        for a in (self.fit_action, self.one_to_one_action, None, self.model_input_action, self.heat_action,
                  self.mask_action):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&Image")
        for a in (self.prev_action, self.next_action, None, self.predict_action, self.predict_all_action):
            m.addSeparator() if a is None else m.addAction(a)

        tb = QToolBar("Main", self)
        tb.setObjectName("main_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.setMovable(False)
        for a in (self.open_action, None, self.prev_action, self.next_action, None, self.predict_all_action, None,
                  *self.tool_actions.values(), None, self.undo_action, self.redo_action, None, self.fit_action,
                  self.one_to_one_action, None, self.model_input_action, self.heat_action, self.mask_action, None,
                  self.save_action, self.approve_action, self.export_action):
            tb.addSeparator() if a is None else tb.addAction(a)
        # Short toolbar labels so that Save, Approve and Fine-tune… fit a 1280-px-wide window instead of hiding
        # behind the overflow arrow; menus keep the full names, and so do the tooltips (_action sets them).
        for a, short in ((self.open_action, "Open…"), (self.prev_action, "Previous"), (self.next_action, "Next"),
                         (self.model_input_action, "Model input"), (self.heat_action, "Heat map"),
                         (self.mask_action, "Mask"), (self.save_action, "Save"), (self.export_action, "Export…")):
            a.setIconText(short)
        self.addToolBar(tb)
        self.toolbar = tb

    def _connect(self) -> None:
        self.image_list.image_activated.connect(self.open_image)
        self.image_list.model.thumbnails_wanted.connect(self._want_thumbnails)
        self.canvas.cursor_info.connect(self.cursor_label.setText)
        self.canvas.fill_requested.connect(self.fill_at)
        self.canvas.zoom_changed.connect(
            lambda z: self.zoom_label.setText(f"{z * 100:.0f} %" if self.session is not None else "–"))
        self.brush_slider.valueChanged.connect(lambda v: self.set_brush_radius(v / 2.0, from_slider=True))
        self.set_brush_radius(self.settings.brush_radius)
        self.opacity_slider.valueChanged.connect(self._opacity_changed)
        self._opacity_changed(self.opacity_slider.value())
        self.threshold_slider.valueChanged.connect(self._threshold_slider_moved)
        self.remove_small_button.clicked.connect(self.remove_small)
        self.save_button.clicked.connect(lambda: self.save_current(auto=False))
        self.approve_button.clicked.connect(self.approve_current)
        self.cancel_button.clicked.connect(self.cancel_background)
        self._thumb_pending: list[str] = []
        self._thumb_timer = QTimer(self, singleShot=True, interval=30)
        self._thumb_timer.timeout.connect(self._load_thumbnails)

    # ------------------------------------------------------------------------ messages --
    def show_message(self, text: str, level: str = "error") -> None:
        """A non-blocking one-line message above the image (errors stay until the next image opens)."""
        colours = {"error": ("#5c1f1f", "#ffd9d6"), "warning": ("#5a4a12", "#fff1c2"), "info": ("#1f3b5c", "#d6e9ff")}
        bg, fg = colours.get(level, colours["info"])
        self.banner.setStyleSheet(f"QLabel {{ background: {bg}; color: {fg}; padding: 6px 10px; }}")
        self.banner.setText(text)
        self.banner.setVisible(bool(text))
        if text:
            self.statusBar().showMessage(text.splitlines()[0], 8000)
            self.message_shown.emit(text)

    def clear_message(self) -> None:
        self.banner.clear()
        self.banner.hide()

    def _update_title(self) -> None:
        parts = [APP_NAME]
        if self.workspace is not None:
            parts.append(self.workspace.title)
        if self.session is not None:
            parts.append(self.session.entry.name + "[*]")
        self.setWindowTitle(" — ".join(parts))
        self.setWindowModified(self.session is not None and self.session.document.is_dirty)

    def _update_actions(self) -> None:
        doc = self.session.document if self.session else None
        has = self.session is not None
        self.undo_action.setEnabled(bool(doc and doc.can_undo))
        self.redo_action.setEnabled(bool(doc and doc.can_redo))
        writable = bool(self.workspace and self.workspace.gt_writable)
        for a in (self.save_action, self.approve_action):
            a.setEnabled(has and writable)
        self.save_button.setEnabled(has and writable)
        self.approve_button.setEnabled(has and writable)
        self.remove_small_action.setEnabled(has)
        self.remove_small_button.setEnabled(has)
        self.export_action.setEnabled(self.workspace is not None and self._export_worker is None)
        self.predict_all_action.setEnabled(self.workspace is not None and self._batch_worker is None)
        self.predict_action.setEnabled(has)
        if has:
            self.image_status_label.setText(self.workspace.status(self.session.key) +
                                            (" (unsaved edits)" if doc.is_dirty else ""))
            self.mask_source_label.setText(doc.source)
        self._update_title()

    # ------------------------------------------------------------------------- model --
    def _start_model_load(self) -> None:
        self.model_label.setText("Model: loading…")
        w = Worker(load_model, self.model, name="load model")
        w.returned.connect(self._model_loaded)
        w.errored.connect(self._model_failed)
        self.tasks.start(w, priority=1)

    def _model_loaded(self, info: ModelInfo) -> None:
        self.model_info, self.model_error = info, None
        self.model_label.setText(f"Model: {info.description}")
        self.model_label.setToolTip(str(info.path))
        self.device_label.setText(info.device)
        if self.workspace is None or self.workspace.threshold is None:
            self._set_threshold_slider(info.threshold)
        self.model_ready.emit(info)

    def _model_failed(self, message: str) -> None:
        self.model_error = message
        self.model_label.setText("Model: none")
        self.model_label.setToolTip(message)
        self.device_label.setText("")
        self.show_message(f"No model: {message}. You can still view, paint and save masks.", "warning")

    # --------------------------------------------------------------------- workspace --
    def start(self, folder: str | None = None) -> None:
        """What launching does: the given folder, else the last workspace, else the demo workspace."""
        if folder:
            self.open_workspace(folder)
            return
        last = self.settings.last_workspace
        if last and Path(last).is_dir():
            try:
                self._set_workspace(Workspace(last))
                return
            except WorkspaceError as exc:
                self.show_message(f"Could not reopen the last workspace: {exc}", "warning")
        self.open_demo_workspace()

    def open_demo_workspace(self) -> None:
        self.statusBar().showMessage("Preparing the demo workspace…")
        w = Worker(lambda ctx: ensure_demo_workspace(progress=ctx.progress), name="demo workspace")
        w.progress.connect(self._safe(lambda d, t, s: self._show_progress("Creating demo images", d, t)))
        w.returned.connect(self._safe(lambda folder: (self._hide_progress(), self.open_workspace(str(folder)))))
        w.errored.connect(self._safe(lambda msg: (self._hide_progress(), self.show_message(f"Demo workspace: {msg}"))))
        self.tasks.start(w)

    def choose_workspace(self) -> None:
        start = str(self.workspace.root) if self.workspace else ""
        folder = self.prompter.choose_folder("Open a folder of fundus photos", start)
        if folder:
            self.open_workspace(folder)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_workspaces:
            self.recent_menu.addAction(p, lambda p=p: self.open_workspace(p))

    def open_workspace(self, folder: str | Path) -> bool:
        if not self._leave_current_image():
            return False
        try:
            ws = Workspace(folder)
        except WorkspaceError as exc:
            self.show_message(str(exc))
            return False
        self._set_workspace(ws)
        return True

    def _set_workspace(self, ws: Workspace) -> None:
        if self._batch_worker is not None:
            self._batch_worker.cancel()
        if self.workspace is not None:
            self.workspace.flush()
        self.workspace = ws
        self._close_session()
        self.settings.last_workspace = str(ws.root)
        self.image_list.set_workspace(ws)
        if ws.threshold is not None:
            self._set_threshold_slider(ws.threshold)
        elif self.model_info is not None:
            self._set_threshold_slider(self.model_info.threshold)
        notes = []
        if ws.synthetic:
            notes.append("<b>Synthetic images</b> made by the built-in generator (demo workspace), not real patients.")
        notes.append(f"{len(ws)} image{'' if len(ws) == 1 else 's'} · {ws.layout} layout · ground truth in "
                     f"{', '.join(sorted({str(e.gt_dir.relative_to(ws.root)) for e in ws.entries}))}/")
        if ws.duplicates:
            notes.append(f"<b>Not listed</b>, because ground truth is paired by file name: {', '.join(ws.duplicates[:5])}"
                         f"{' …' if len(ws.duplicates) > 5 else ''}. Rename them to review them.")
        if not ws.gt_writable:
            notes.append("<b>Read-only workspace:</b> ground truth cannot be saved here; export the masks to "
                         "another folder instead.")
        self.workspace_banner.setText("  ".join(notes))
        self.workspace_banner.show()
        self.clear_message()
        self.workspace_opened.emit(str(ws.root))
        first = self.image_list.neighbour(None, +1)
        if first:
            self.open_image(first)
        self._update_actions()

    # ------------------------------------------------------------------------ images --
    def _close_session(self) -> None:
        if self.session is not None:
            self.session.document.changed.disconnect(self._document_changed)
            self.session.document.state_changed.disconnect(self._document_state_changed)
        self.session = None
        self.canvas.set_image(None)
        self.image_name_label.setText("–")
        self.image_status_label.setText("–")
        self.mask_source_label.setText("–")
        for lab in self.measure_labels.values():
            lab.setText("–")

    def _leave_current_image(self) -> bool:
        """Autosave before switching; if saving is impossible, ask. False means stay."""
        if self.session is None or not self.session.document.is_dirty:
            return True
        if self.workspace.gt_writable and self.save_current(auto=True):
            return True
        choice = self.prompter.ask_unsaved(self.session.entry.name, can_save=False)
        return choice == "discard"

    def step_image(self, step: int) -> None:
        current = self.session.key if self.session else (self._loading_key or self._current_key)
        key = self.image_list.neighbour(current, step)
        if key:
            self.open_image(key)

    def open_image(self, key: str) -> None:
        if self.workspace is None:
            return
        if self.session is not None and self.session.key == key:
            self.image_list.select(key)
            return
        if not self._leave_current_image():
            if self.session is not None:
                self.image_list.select(self.session.key)
            return
        self._close_session()
        self._load_request += 1
        self._loading_key = key
        self._current_key = key
        entry = self.workspace.entry(key)
        self.image_list.select(key)
        self.image_name_label.setText(entry.name)
        self.clear_message()
        self.statusBar().showMessage(f"Opening {entry.name}…")
        w = Worker(load_image, self.workspace, entry, self.model.cache_key, name=f"open {entry.name}")
        request = self._load_request
        w.returned.connect(self._safe(lambda loaded, r=request: self._image_loaded(r, loaded)))
        w.errored.connect(self._safe(lambda msg, r=request, k=key: self._image_load_failed(r, k, msg)))
        self.tasks.start(w, priority=2)

    def _image_load_failed(self, request: int, key: str, message: str) -> None:
        if self.workspace is not None and key in {e.key for e in self.workspace.entries}:
            self.image_list.model.set_error(key, message)
        if request != self._load_request:
            return
        self._loading_key = None
        self.show_message(message, "error")
        self.statusBar().clearMessage()
        self._update_actions()
        self.image_failed.emit(key, message)

    def _image_loaded(self, request: int, loaded: LoadedImage) -> None:
        if request != self._load_request or self.workspace is None:
            return
        self._loading_key = None
        entry = loaded.entry
        self.image_list.model.set_error(entry.key, None)
        h, w = loaded.rgb.shape[:2]
        if loaded.ground_truth is not None:
            doc = MaskDocument(loaded.ground_truth, source="ground truth")
        elif loaded.probability is not None:
            doc = MaskDocument(loaded.probability >= self.threshold, source="prediction")
        else:
            doc = MaskDocument(np.zeros((h, w), bool), source="empty")
        self.session = ImageSession(entry, loaded, doc, loaded.probability)
        self._threshold_applied = self.threshold
        doc.changed.connect(self._document_changed)
        doc.state_changed.connect(self._document_state_changed)
        self.canvas.set_image(loaded.rgb, loaded.model_view)
        self.canvas.set_probability(loaded.probability)
        self.canvas.set_document(doc)
        self.image_name_label.setText(f"{entry.name}  ({w}×{h})")
        if loaded.ground_truth_problem:
            self.show_message(loaded.ground_truth_problem, "warning")
        self.statusBar().showMessage(f"Opened {entry.name}", 3000)
        self._update_actions()
        self.image_opened.emit(entry.key)
        if loaded.probability is None:
            self.predict_current()
        else:
            self.measure_timer.start()

    # ------------------------------------------------------------------------ predict --
    def predict_current(self) -> None:
        if self.session is None or self.workspace is None:
            return
        if self.model_error is not None:
            self.show_message(f"No model: {self.model_error}. You can still view, paint and save masks.", "warning")
            return
        key = self.session.key
        if key in self._predicting:
            return
        self._predicting.add(key)
        self.statusBar().showMessage(f"Predicting {self.session.entry.name}…")
        w = Worker(predict_images, self.model, self.workspace, [self.session.entry], self.model.cache_key,
                   name=f"predict {key}")
        w.yielded.connect(self._prediction_arrived)
        w.errored.connect(self._prediction_errored)
        w.finished.connect(self._safe(lambda k=key: self._predicting.discard(k)))
        self.tasks.start(w, priority=1)

    def predict_all(self) -> None:
        if self.workspace is None or self._batch_worker is not None:
            return
        if self.model_error is not None:
            self.prompter.error("Predict all", f"No model is available: {self.model_error}")
            return
        w = Worker(predict_images, self.model, self.workspace, list(self.workspace.entries), self.model.cache_key,
                   skip_cached=True, name="predict all")
        self._batch_failed = []
        w.yielded.connect(self._batch_item_arrived)
        w.progress.connect(self._safe(lambda d, t, s: self._show_progress("Predicting", d, t, s)))
        w.errored.connect(self._prediction_errored)
        w.finished.connect(self._batch_finished)
        self._batch_worker = w
        self._show_progress("Predicting", 0, len(self.workspace.entries))
        self.tasks.start(w)
        self._update_actions()

    def _batch_item_arrived(self, item) -> None:
        if isinstance(item, PredictionFailure):
            self._batch_failed.append(item.key)
        self._prediction_arrived(item)

    def _batch_finished(self) -> None:
        w, self._batch_worker = self._batch_worker, None
        if self.workspace is not None:
            self.workspace.flush()
        self._hide_progress()
        if w is None:
            return
        failed = len(self._batch_failed)
        if w.is_cancelled:
            self.statusBar().showMessage("Prediction cancelled", 5000)
        elif failed:
            total = len(self.workspace.entries) if self.workspace is not None else failed
            self.show_message(f"{failed} of {total} images could not be read or predicted (marked 'error' in the "
                              "list; hover one for the reason). The others are predicted.", "warning")
        else:
            self.statusBar().showMessage("All images predicted", 5000)
        self._update_actions()

    def cancel_background(self) -> None:
        for w in (self._batch_worker, self._export_worker):
            if w is not None:
                w.cancel()
        self.progress_label.setText("Cancelling…")

    def _prediction_errored(self, message: str) -> None:
        self._model_failed(message) if "checkpoint" in message.lower() or "model" in message.lower() else \
            self.show_message(message)

    def _prediction_arrived(self, item) -> None:
        if self.workspace is None:
            return
        if isinstance(item, PredictionFailure):
            self.image_list.model.set_error(item.key, item.message)
            if self.session is not None and self.session.key == item.key:
                self.show_message(item.message)
            return
        result: PredictionResult = item
        if result.key not in {e.key for e in self.workspace.entries}:
            return  # from a workspace that is no longer open
        self.workspace.set_prediction_info(result.key, result.uncertainty)
        self.image_list.model.set_error(result.key, None)
        self.image_list.model.refresh(result.key)
        s = self.session
        if s is None or s.key != result.key or result.probability.shape != s.document.shape:
            return
        s.probability = result.probability
        self.canvas.set_probability(result.probability)
        doc = s.document
        if doc.source == "empty" and not doc.undo_count:
            doc.reset(result.probability >= self.threshold, "prediction", saved=True)
            self._threshold_applied = self.threshold
        elif doc.source == "empty":
            self.show_message("The prediction arrived after you started painting; your mask was kept. "
                              "Move the threshold slider to replace it with the prediction.", "info")
        self.statusBar().showMessage(f"Prediction shown ({result.model})", 3000)
        self._update_actions()
        self.measure_timer.start()
        self.prediction_shown.emit(result.key)

    # ---------------------------------------------------------------------- progress --
    def _show_progress(self, label: str, done: int, total: int, text: str = "") -> None:
        self.progress_label.setText(f"{label} {text}".strip())
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{done}/{total}")
        for w in (self.progress_label, self.progress_bar, self.cancel_button):
            w.show()

    def _hide_progress(self) -> None:
        if self._batch_worker is None and self._export_worker is None:
            for w in (self.progress_label, self.progress_bar, self.cancel_button):
                w.hide()

    def _want_thumbnails(self, keys: list[str]) -> None:
        self._thumb_pending.extend(keys)
        self._thumb_timer.start()

    def _load_thumbnails(self) -> None:
        if not self._thumb_pending or self.workspace is None:
            return
        keys, self._thumb_pending = self._thumb_pending, []
        ws = self.workspace
        entries = [ws.entry(k) for k in keys if k in {e.key for e in ws.entries}]
        cache = user_cache_dir() / "thumbnails"
        cache.mkdir(parents=True, exist_ok=True)
        w = Worker(make_thumbnails, ws, entries, cache, name="thumbnails")
        w.yielded.connect(self._safe(lambda kv, ws=ws: ws is self.workspace and self.image_list.model.set_thumbnail(*kv)))
        self.tasks.start(w, priority=-1)

    # ---------------------------------------------------------------------- editing --
    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        if not self.tool_actions[tool].isChecked():
            self.tool_actions[tool].setChecked(True)

    def set_brush_radius(self, radius: float, from_slider: bool = False) -> None:
        radius = float(min(50.0, max(0.5, radius)))
        self.canvas.set_brush_radius(radius)
        self.settings.brush_radius = radius
        self.brush_label.setText(f"{radius:.1f} px")
        if not from_slider:
            with QSignalBlocker(self.brush_slider):
                self.brush_slider.setValue(int(round(radius * 2)))

    def _opacity_changed(self, value: int) -> None:
        self.canvas.set_mask_opacity(value / 100.0)
        self.settings.mask_opacity = value / 100.0

    def _document_changed(self, bbox) -> None:
        self.measure_timer.start()

    def _document_state_changed(self) -> None:
        if self.session is not None:
            self.image_list.model.set_dirty(self.session.key, self.session.document.is_dirty)
        self._update_actions()

    def undo(self) -> None:
        if self.session is not None:
            self.session.document.undo()

    def redo(self) -> None:
        if self.session is not None:
            self.session.document.redo()

    def fill_at(self, x: int, y: int) -> None:
        if self.session is None:
            return
        try:
            self.session.document.apply("Fill", lambda m: flood_fill(m, (x, y), guard=True))
        except OpenRegionFill as exc:
            self.show_message(f"Fill not applied at ({x}, {y}): the background there is not a closed hole ({exc}). "
                              "Fill closes holes inside vessels; paint anything else with the brush (B).", "warning")

    def remove_small(self) -> None:
        if self.session is None:
            return
        n = self.min_piece_spin.value()
        self.settings.min_piece_pixels = n
        removed = [0]

        def op(mask):
            bbox, count = remove_small_pieces(mask, n)
            removed[0] = count
            return bbox

        self.session.document.apply(f"Remove pieces under {n} px", op)
        self.statusBar().showMessage(f"Removed {removed[0]} piece(s) smaller than {n} pixels", 5000)

    # -------------------------------------------------------------------- threshold --
    def _set_threshold_slider(self, t: float) -> None:
        self.threshold = float(t)
        self._threshold_applied = self.threshold
        with QSignalBlocker(self.threshold_slider):
            self.threshold_slider.setValue(int(round(t * 100)))
        self.threshold_label.setText(f"{t:.2f}")

    def _threshold_slider_moved(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        self.threshold_timer.start()

    def apply_threshold(self, t: float) -> bool:
        """Re-derive the open mask from the probabilities; asks first if that discards edits."""
        s = self.session
        if s is not None and s.probability is not None and abs(t - self._threshold_applied) > 1e-9:
            # has_edits counts a saved ground truth on screen as somebody's work: replacing it by the prediction is
            # never silent, and the prompt says that the next save or autosave (switching images) writes over it.
            if s.document.has_edits or s.document.is_dirty:
                edits = s.document.is_dirty or s.document.can_undo  # by hand, since the mask was loaded or derived
                shows_gt = s.document.source == "ground truth" and s.entry.existing_gt() is not None
                text = (f"Thresholding the probabilities at {t:.2f} replaces the saved ground truth of {s.entry.name} "
                        f"on screen by the prediction{', discarding your edits,' if edits else ''} and writes it over "
                        "the ground-truth file at the next save or autosave (the workspace history keeps the old file)."
                        if shows_gt else
                        f"Thresholding the probabilities at {t:.2f} replaces the mask of {s.entry.name} "
                        "and discards its edits.")
                ok = self.prompter.confirm("Re-derive the mask?", text, ok_text="Replace mask",
                                           object_name="threshold_prompt")
                if not ok:
                    self._set_threshold_slider(self._threshold_applied)
                    return False
            saved = s.entry.existing_gt() is None
            s.document.reset(s.probability >= t, "prediction", saved=saved)
        self.threshold = t
        self._threshold_applied = t
        if self.workspace is not None:
            self.workspace.threshold = t
        self.threshold_label.setText(f"{t:.2f}")
        self.measure_timer.start()
        self._update_actions()
        return True

    # ------------------------------------------------------------------------- saving --
    def save_current(self, auto: bool = False) -> bool:
        s, ws = self.session, self.workspace
        if s is None or ws is None:
            return False
        doc = s.document
        if auto and not doc.is_dirty:
            return True
        changed = doc.is_dirty
        try:
            path = ws.save_ground_truth(s.entry, doc.mask)
        except (WorkspaceError, OSError) as exc:
            message = user_message(exc)
            self.show_message(f"Not saved: {message}")
            if not auto:
                self.prompter.error("Save failed", message)
            return False
        doc.mark_saved()
        doc.source = "ground truth" if doc.source != "ground truth" else doc.source
        added = removed = 0
        if s.probability is not None:
            pred = s.probability >= self.threshold
            added = int(np.count_nonzero(doc.mask & ~pred))
            removed = int(np.count_nonzero(pred & ~doc.mask))
        # An approved mask that changed (a stroke, or a re-threshold, which leaves no undo step) needs review again.
        if ws.status(s.key) != "approved" or changed:
            ws.set_status(s.key, "edited")
        ws.log_review(s.key, "autosave" if auto else "save",
                      model=self.model_info.description if self.model_info else None,
                      added=added, removed=removed, reviewer=self.settings.reviewer, threshold=round(self.threshold, 4))
        self.image_list.model.set_dirty(s.key, False)
        self.image_list.model.refresh(s.key)
        self.statusBar().showMessage(f"{'Autosaved' if auto else 'Saved'} {path}", 4000)
        self._update_actions()
        self.saved.emit(s.key, str(path))
        return True

    def autosave(self) -> None:
        s = self.session
        if s is None or not s.document.is_dirty or not (self.workspace and self.workspace.gt_writable):
            return
        if QApplicationMouseButtonsHeld():
            return  # never in the middle of a stroke
        self.save_current(auto=True)

    def approve_current(self) -> None:
        s, ws = self.session, self.workspace
        if s is None or ws is None:
            return
        # Approving means "the mask on screen is the ground truth": save it whenever the file on disk is not that
        # mask, including a saved mask that could not be used (wrong size, unreadable; the history keeps it).
        if s.document.is_dirty or s.entry.existing_gt() is None or s.loaded.ground_truth_problem:
            if not self.save_current(auto=False):
                return
        ws.set_status(s.key, "approved")
        ws.log_review(s.key, "approve", model=self.model_info.description if self.model_info else None,
                      reviewer=self.settings.reviewer)
        self.image_list.model.refresh(s.key)
        self._update_actions()
        self.statusBar().showMessage(f"Approved {s.entry.name}", 3000)
        if self.settings.advance_after_approve:
            self.step_image(+1)

    # ---------------------------------------------------------------------- measure --
    def _start_measure(self) -> None:
        s = self.session
        if s is None or s.probability is None:
            return
        self._measure_request += 1
        req, key = self._measure_request, s.key
        prob, mask, fov, t = s.probability, s.document.mask.copy(), s.loaded.fov, self.threshold
        w = Worker(lambda ctx: measure_correction(prob, mask, t, fov), name="measure")
        w.returned.connect(self._safe(lambda m, r=req, k=key: self._measured(r, k, m)))
        self.tasks.start(w, priority=0)

    def _measured(self, request: int, key: str, m: CorrectionMeasure) -> None:
        if request != self._measure_request or self.session is None or self.session.key != key:
            return
        for name, value in m.as_rows():
            self.measure_labels[name].setText(value)
        self.measured.emit(key, m)

    # ----------------------------------------------------------------------- export --
    def export_dialog(self) -> None:
        if self.workspace is None:
            return
        self.save_current(auto=True)
        dlg = ExportDialog(self, default_export_folder(self.workspace.root))
        if dlg.exec():
            self.export_to(dlg.options())

    def export_to(self, options: ExportOptions) -> Worker | None:
        if self.workspace is None or self._export_worker is not None:
            return None
        ws = self.workspace
        w = Worker(lambda ctx: export_masks(ws, options, progress=ctx.progress, cancelled=lambda: ctx.cancelled),
                   name="export")
        w.progress.connect(self._safe(lambda d, t, s: self._show_progress("Exporting", d, t, s)))
        w.returned.connect(self._export_done)
        w.errored.connect(self._safe(lambda msg: (self.show_message(f"Export failed: {msg}"), self.export_finished.emit(msg))))
        w.finished.connect(self._export_cleanup)
        self._export_worker = w
        self._update_actions()
        self.tasks.start(w)
        return w

    def _export_done(self, summary) -> None:
        self.show_message(summary.text().replace("\n", " · "), "info")
        self.export_finished.emit(summary)

    def _export_cleanup(self) -> None:
        self._export_worker = None
        self._hide_progress()
        self._update_actions()

    def preferences(self) -> None:
        dlg = PreferencesDialog(self.settings, self)
        if dlg.exec():
            dlg.apply()
            self.autosave_timer.setInterval(self.settings.autosave_seconds * 1000)

    # ------------------------------------------------------------------------ closing --
    def closeEvent(self, event: QCloseEvent) -> None:
        s = self.session
        if s is not None and s.document.is_dirty:
            writable = bool(self.workspace and self.workspace.gt_writable)
            choice = self.prompter.ask_unsaved(s.entry.name, can_save=writable)
            if choice == "cancel" or (choice == "save" and not self.save_current(auto=False)):
                event.ignore()
                return
        self._closing = True
        self.autosave_timer.stop()
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop background work and wait for the threads (used by closeEvent and test teardown)."""
        self._closing = True
        for timer in (self.autosave_timer, self.measure_timer, self.threshold_timer, self._thumb_timer):
            timer.stop()
        self.finetune.shutdown()  # ends a training process still running
        self.tasks.shutdown()
        if self.workspace is not None:
            self.workspace.flush()

    def _safe(self, fn):
        """Wrap a worker-signal handler so results that arrive after closing are dropped."""
        def call(*args):
            if not self._closing:
                fn(*args)
        return call


def QApplicationMouseButtonsHeld() -> bool:
    from PySide6.QtWidgets import QApplication

    return QApplication.mouseButtons() != Qt.MouseButton.NoButton
