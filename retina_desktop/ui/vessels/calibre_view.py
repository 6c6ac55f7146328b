"""The calibre view (Shift+C): the optic disc, zones B and C, the artery/vein labels and CRAE / CRVE / AVR of the
open image (``core.vessels.calibre_review``; README, Calibre).

Turned on, it reads the image's saved disc and labels (or suggests them: ``model_core.optic_disc``,
``model_core.artery_vein``) and its vessel geometry on a worker, then computes the calibre on a worker 250 ms after
the last change: a drag or resize of the disc, an A/V click, an undo, a saved mask. The A/V tool (A) labels the
clicked vessel through its branches up to a crossing; Ctrl+Alt+Z undoes the last label. Each change is saved at
once in the workspace's records (``Workspace.calibre``, ``core.workspace.calibre_records``: keep before replace, a
version row each). A damaged saved file is named in one line and the suggestion is shown instead; the History
restores an earlier version (``reload``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from model_core.calibre import Calibre, Disc

from ...core.review.review_session import ReviewSession
from ...core.vessels.av_teaching import active_model_at, active_setting, labels_with, model_path
from ...core.vessels.calibre_review import (
    KINDS,
    CalibreReview,
    Prepared,
    VesselGeometry,
    compute,
    prepare,
    scale_of,
)
from ...core.workspace import WorkspaceError
from ...core.workspace.calibre_records import (
    DEFAULT_DISC_UM,
    CalibreFileDamaged,
    CalibreStore,
    checked_scale,
    scale_settings,
)
from ..common.context import ActionRegistry
from ..common.image_ready import ImageReadiness
from ..common.words import count
from ..common.workers import TaskRunner, Worker
from .calibre_items import DiscItems, LabelsItem
from .vessel_canvas import VesselCanvas

AV_HELP = "A/V labels: click a vessel to mark it artery; Shift+click or right-click vein, Ctrl+click uncertain"


class CalibrePanel(QGroupBox):
    """CRAE, CRVE, AVR and the vessels counted, with the one-line reason when a value is missing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Calibre (zone B)", parent)
        self.setObjectName("calibre")
        self.setToolTip("Revised Knudtson formula over the six largest arterioles and venules in zone B (Shift+C)")
        form = QFormLayout(self)
        self.labels: dict[str, QLabel] = {}
        for key, title in (("crae", "CRAE"), ("crve", "CRVE"), ("avr", "AVR"), ("counts", "Arterioles / venules")):
            lab = QLabel("–")
            lab.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.labels[key] = lab
            form.addRow(title, lab)
        self.reason = QLabel("Turn on View ▸ Calibre view (Shift+C)")
        self.reason.setWordWrap(True)
        form.addRow(self.reason)
        # The workspace's scale: pixels, µm per pixel, or an assumed disc diameter (recorded in its records and in
        # every result's calibre_method, so an export says which was used).
        self.scale = QComboBox()
        self.scale.setObjectName("calibre_scale")
        for text, data in (("pixels", "px"), ("µm per pixel", "um_per_px"), ("disc diameter (µm)", "disc_um")):
            self.scale.addItem(text, data)
        self.scale_value = QLineEdit()
        self.scale_value.setObjectName("calibre_scale_value")
        self.scale_value.setPlaceholderText(f"{DEFAULT_DISC_UM:g}")
        self.scale_apply = QPushButton("Use")
        self.scale_apply.setToolTip("Record this scale for the workspace; CRAE and CRVE are then shown in µm")
        # Narrow rows: the box must not widen the review dock (the canvas beside it keeps its size).
        self.scale_value.setMaximumWidth(70)
        row = QHBoxLayout()
        row.addWidget(self.scale_value)
        row.addWidget(self.scale_apply)
        form.addRow("Scale", self.scale)
        form.addRow("Value", row)
        self.scale_error = QLabel("")
        self.scale_error.setObjectName("calibre_scale_error")
        self.scale_error.setWordWrap(True)
        form.addRow(self.scale_error)
        self.scale.currentIndexChanged.connect(self._scale_choice_changed)
        self._scale_choice_changed()

    def _scale_choice_changed(self) -> None:
        choice = self.scale.currentData()
        self.scale_value.setEnabled(choice != "px")
        if choice == "disc_um" and not self.scale_value.text().strip():
            self.scale_value.setText(f"{DEFAULT_DISC_UM:g}")  # the common assumption, as a suggestion

    def show_scale(self, um_per_px: float | None, disc_um: float | None) -> None:
        """The workspace's recorded scale in the choice and its value."""
        choice, value = ("um_per_px", um_per_px) if um_per_px is not None else ("disc_um", disc_um)
        if value is None:
            choice = "px"
        blocked = self.scale.blockSignals(True)
        self.scale.setCurrentIndex(self.scale.findData(choice))
        self.scale.blockSignals(blocked)
        self.scale_value.setText("" if value is None else f"{value:g}")
        self.scale_value.setEnabled(choice != "px")
        self.scale_error.setText("")

    def show_result(self, result: Calibre | None, note: str = "") -> None:
        unit = "µm" if result is not None and result.unit == "um" else "px"
        for key in ("crae", "crve"):
            v = getattr(result, key) if result is not None else None
            self.labels[key].setText("–" if v is None else f"{v:.1f} {unit}")
        avr = result.avr if result is not None else None
        self.labels["avr"].setText("–" if avr is None else f"{avr:.3f}")
        counts = f"{result.n_arterioles} / {result.n_venules}" if result is not None else "–"
        self.labels["counts"].setText(counts)
        self.reason.setText(note or (result.reason if result is not None else ""))


class CalibreView(QObject):
    calculated = Signal(str, object)  # key, Calibre: on screen
    prepared = Signal(str)  # key: disc, labels and geometry read
    status = Signal(str)
    saved = Signal(str)  # key: a disc or labels version was saved (the History lists it)

    def __init__(
        self,
        review: ReviewSession,
        canvas: VesselCanvas,
        tasks: TaskRunner,
        image_ready: ImageReadiness,
        actions: ActionRegistry,
        parent: QObject | None = None,
        reviewer: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``reviewer()``: the name each disc and labels version is recorded under, read at every save (the
        app's reviewer setting, as mask saves use; None: the login name)."""
        super().__init__(parent)
        self.review, self.canvas, self.tasks, self.image_ready = review, canvas, tasks, image_ready
        self.reviewer = reviewer
        self.panel = CalibrePanel()
        self.disc_items = DiscItems(canvas.view, self._disc_moved)
        self.labels_item = LabelsItem(canvas.view, self.mark)
        self.calibre: CalibreReview | None = None
        self.geometry: VesselGeometry | None = None
        self.latest: Calibre | None = None
        self.suggested = False  # the open image's labels are a suggestion, not saved ones
        self._read_request = self._compute_request = 0  # only the newest of each is shown
        self._preparing = False
        self.timer = QTimer(self, singleShot=True, interval=250)
        self.timer.timeout.connect(self._compute)
        self.panel.scale_apply.clicked.connect(lambda _c=False: self.apply_scale())
        self.panel.scale_value.returnPressed.connect(lambda: self.apply_scale())
        review.workspace_changed.connect(lambda *_a: self._show_scale())
        self._show_scale()

        self.view_action = actions.add(
            "Calibre view", self.set_visible, "Shift+C", checkable=True, tip="Optic disc, zones B and C, CRAE/CRVE/AVR"
        )
        self.av_action = actions.add("Artery/vein labels", self.set_av_tool, "A", checkable=True, tip=AV_HELP)
        self.undo_action = actions.add("Undo disc / artery-vein label", self.undo, "Ctrl+Alt+Z")
        self.undo_action.setEnabled(False)
        image_ready.ready.connect(lambda _k: self._image_ready())
        review.image_closed.connect(self._forget)
        # A saved mask, a new prediction or threshold: the same disc and labels on the new mask's geometry.
        review.saved.connect(lambda *_a: self._mask_changed())
        review.prediction_shown.connect(lambda _k: self._mask_changed())
        review.threshold_changed.connect(lambda _t: self._mask_changed())
        canvas.tool_changed.connect(lambda _tool: self.av_action.setChecked(False))
        # The disc is dragged with the pan tool (or the A/V tool); with a painting tool a press inside it paints.
        canvas.tool_changed.connect(lambda tool: self.disc_items.set_editable(tool == "navigate"))
        self.disc_items.set_editable(canvas.tool == "navigate")

    # ----------------------------------------------------------------------- showing --
    @property
    def visible(self) -> bool:
        return self.view_action.isChecked()

    def set_visible(self, on: bool) -> None:
        if self.view_action.isChecked() != on:
            self.view_action.setChecked(on)  # toggled: back here
            return
        if not on:
            self.av_action.setChecked(False)
        self.disc_items.set_visible(on and self.calibre is not None and self.calibre.disc is not None)
        self.labels_item.setVisible(on and self.calibre is not None)
        if on:
            self._image_ready()

    def set_av_tool(self, on: bool) -> None:
        if on and not self.visible:
            self.set_visible(True)
        self.labels_item.set_clickable(on)
        if on:
            self.status.emit(AV_HELP)

    def records(self) -> CalibreStore | None:
        ws = self.review.workspace
        return ws.calibre if ws is not None else None

    def reload(self, key: str) -> None:
        """The image's saved disc and labels changed elsewhere (a restore in the History): take them. Restored
        labels are one undo step (Ctrl+Alt+Z takes them back, itself saved as a new version), as a mask's restore."""
        s, records, c = self.review.image, self.records(), self.calibre
        if s is None or s.key != key or c is None or c.key != key or records is None:
            return
        try:
            disc = records.read_disc(key)
            labels = records.read_labels(key, c.labels.shape)
        except CalibreFileDamaged as exc:
            self.status.emit(f"Calibre: {exc}")
            return
        if c.restore(disc, labels):  # one undo step for what the restore changed
            if c.disc is not None:
                self.disc_items.set_disc(c.disc)
            self.undo_action.setEnabled(c.can_undo)
            self.labels_item.show_labels(c.labels, self.latest)
        self.set_visible(self.visible)
        self.timer.start()

    # ------------------------------------------------------------------------- scale --
    def _show_scale(self) -> None:
        ws = self.review.workspace
        self.panel.show_scale(*(scale_of(ws.setting) if ws is not None else (None, None)))

    def apply_scale(self) -> bool:
        """Record the panel's scale for the workspace and recompute; a bad value: one line, nothing recorded."""
        ws, p = self.review.workspace, self.panel
        if ws is None:
            return False
        try:
            um_per_px, disc_um = checked_scale(str(p.scale.currentData()), p.scale_value.text())
            if ws.read_only_records is not None:  # a newer app's records: never changed here
                raise ValueError(ws.read_only_records)
            for name, value in scale_settings(um_per_px, disc_um).items():
                ws.set_setting(name, value)
        except (ValueError, OSError, sqlite3.Error) as exc:
            p.scale_error.setText(f"Scale not changed: {exc}")
            return False
        p.show_scale(um_per_px, disc_um)
        if self.calibre is not None:
            self._compute()
        return True

    # ----------------------------------------------------------------------- reading --
    def _image_ready(self) -> None:
        s = self.review.image
        if not self.visible or s is None or self.image_ready.ready_key != s.key:
            return
        if self.calibre is not None and self.calibre.key == s.key:
            if self.geometry is not None:
                self.timer.start()
            return
        self._prepare(fresh=True)

    def _prepare(self, fresh: bool) -> None:
        """Read the disc, labels and geometry on a worker (``fresh``: the image's saved ones, else the ones here)."""
        s, records = self.review.image, self.records()
        if s is None:
            return
        self._read_request += 1
        self._preparing = True
        req, key, mask, rgb, fov = self._read_request, s.key, s.document.mask.copy(), s.loaded.rgb, s.loaded.fov
        held = self.calibre if not fresh and self.calibre is not None and self.calibre.key == key else None

        damaged: list[str] = []

        def saved(read_one):  # a damaged file: its one line, and the suggestion shown in its place
            try:
                return read_one()
            except CalibreFileDamaged as exc:
                damaged.append(str(exc))
                return None

        ws = self.review.workspace
        # The taught suggestion in use (Teach artery/vein): its setting read here, its file on the worker.
        taught_at = (model_path(ws), active_setting(ws)) if ws is not None else None

        def read(_ctx) -> Prepared:
            disc = held.disc if held else saved(lambda: records.read_disc(key)) if records else None
            labels = held.labels if held else saved(lambda: records.read_labels(key, mask.shape)) if records else None
            suggest = labels_with(active_model_at(*taught_at)) if labels is None and taught_at else None
            return prepare(rgb, mask, fov, disc, labels, suggest)

        w = Worker(read, name="calibre: disc, labels and vessel geometry")
        w.returned.connect(self.tasks.guard(lambda p, r=req, k=key: self._prepared(r, k, p, held, damaged)))
        w.errored.connect(self.tasks.guard(lambda msg: self.status.emit(f"Calibre not read: {msg}")))
        self.tasks.start(w, priority=0)

    def _prepared(
        self, request: int, key: str, p: Prepared, held: CalibreReview | None, damaged: list[str] | None = None
    ) -> None:
        s = self.review.image
        if request != self._read_request or s is None or s.key != key:
            return
        self._preparing = False
        self.calibre = held or CalibreReview(key, p.disc, p.labels)
        self.geometry = p.geometry
        if p.disc is not None and held is None:
            self.disc_items.set_disc(p.disc)
        self.set_visible(self.visible)
        self.labels_item.show_labels(self.calibre.labels, None)
        if damaged:
            self.status.emit(f"Calibre: {damaged[0]}")
        elif p.suggested and held is None:
            by = "the network your labels taught" if p.taught else "the photo"
            self.status.emit(f"Calibre: artery/vein labels suggested by {by}; A labels a vessel")
        if held is None:
            self.suggested = p.suggested
        self.prepared.emit(key)
        self._compute()

    def resuggest(self) -> None:
        """The suggestion in use changed (Teach artery/vein): suggest the open image's labels again, unless they
        are saved or the grader changed them here."""
        if self.calibre is None or not self.suggested or self.calibre.can_undo:
            return
        if self.visible:
            self._prepare(fresh=True)
        else:
            self._forget()  # hidden: the next time it is shown, it prepares (and suggests) afresh

    def _mask_changed(self) -> None:
        if self.visible and self.calibre is not None:
            self._prepare(fresh=False)

    def _forget(self) -> None:
        self._read_request += 1
        self._compute_request += 1
        self._preparing = False
        self.calibre = self.geometry = self.latest = None
        self.suggested = False
        self.timer.stop()
        self.disc_items.set_visible(False)
        self.labels_item.setVisible(False)
        self.labels_item.show_labels(None, None)
        self.undo_action.setEnabled(False)
        self.panel.show_result(None, "")

    # ---------------------------------------------------------------------- changing --
    def _disc_moved(self, disc: Disc) -> None:
        if self.calibre is not None and self.calibre.set_disc(disc):  # one undo step
            self.undo_action.setEnabled(self.calibre.can_undo)
            self._save(disc=True)
            self.timer.start()

    def mark(self, x: float, y: float, kind: int) -> int:
        """An A/V click (image pixel centre x, y): the vessel there labelled ``kind``, one undo step."""
        if self.calibre is None or self.geometry is None or self._preparing:
            self.status.emit("A/V labels: reading the vessel geometry…")
            return 0
        changed = self.calibre.mark(self.geometry, x, y, kind)
        if not changed:
            self.status.emit("A/V labels: no vessel under the click, or it is labelled so already")
            return 0
        self.status.emit(f"Marked {KINDS[kind]} ({count(changed, 'pixel')}); Ctrl+Alt+Z undoes it")
        self._changed()
        return changed

    def undo(self) -> bool:
        """The last disc move, A/V click or restore taken back, and saved as a new version."""
        changed = self.calibre.undo() if self.calibre is not None else set()
        if not changed:
            return False
        assert self.calibre is not None
        if "disc" in changed and self.calibre.disc is not None:
            self.disc_items.set_disc(self.calibre.disc)
        self._changed(disc="disc" in changed, labels="labels" in changed)
        return True

    def _changed(self, disc: bool = False, labels: bool = True) -> None:
        """The disc and/or labels changed here: shown, saved as new versions, recomputed."""
        assert self.calibre is not None
        self.undo_action.setEnabled(self.calibre.can_undo)
        self.labels_item.show_labels(self.calibre.labels, self.latest)
        self._save(disc=disc, labels=labels)
        self.timer.start()

    def _save(self, disc: bool = False, labels: bool = False) -> None:
        records, c = self.records(), self.calibre
        if records is None or c is None:
            return
        try:
            who = self.reviewer()
            if disc and c.disc is not None:
                records.save_disc(c.key, c.disc, reviewer=who)
            if labels:
                records.save_labels(c.key, c.labels, reviewer=who)
                self.suggested = False
            self.saved.emit(c.key)
        except (WorkspaceError, OSError) as exc:  # read-only, disk full, newer records: one line, nothing replaced
            self.status.emit(f"Calibre records not saved: {exc}")

    # --------------------------------------------------------------------- computing --
    def _compute(self) -> None:
        s, c = self.review.image, self.calibre
        if s is None or c is None or c.key != s.key:
            return
        self._compute_request += 1
        req, key, mask, labels, disc = self._compute_request, s.key, s.document.mask.copy(), c.labels, c.disc
        ws = self.review.workspace
        um_per_px, disc_um = scale_of(ws.setting) if ws is not None else (None, None)
        w = Worker(lambda _ctx: compute(mask, labels, disc, um_per_px, disc_um), name="calibre")
        w.returned.connect(self.tasks.guard(lambda r, q=req, k=key: self._show(q, k, r)))
        self.tasks.start(w, priority=0)

    def _show(self, request: int, key: str, result: Calibre) -> None:
        s = self.review.image
        if request != self._compute_request or s is None or s.key != key or self.calibre is None:
            return
        self.latest = result
        self.panel.show_result(result)
        self.labels_item.show_labels(self.calibre.labels, result)
        self.calculated.emit(key, result)
