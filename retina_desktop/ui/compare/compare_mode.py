"""Compare mode: the reference, the model's prediction, a second grader's mask and your mask, side by side
in one view; their differences in three colour-blind-safe colours; scores that say what is compared with
what; and a brush that copies another grader's mask region by region.

``CompareController`` is built by the composition root (``ui.app.features``) from the parts it uses: the review
session, the canvas it draws on, the task runner, the image list's Dice column; it makes its actions and fills
the Compare menu, and the root places its box in the review panel and the Dice sort in the image list. The masks
are read and the scores computed on worker threads; only the newest result for the open image is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QSignalBlocker, Qt, QTimer, Signal, SignalInstance
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsObject,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from model_core.metrics import DIFF_FN, DIFF_FP, DIFF_TP, DIFFERENCE_COLOURS, difference_labels, difference_rgba

from ...core.model.model_service import ModelHolder
from ...core.review.compare import (
    VIEW_NAMES,
    VIEWS,
    CompareMasks,
    CompareScores,
    CompareView,
    compare_scores,
    load_compare_masks,
    workspace_dice,
)
from ...core.review.mask_document import MaskDocument
from ...core.review.review_session import ReviewSession
from ..common.context import ActionRegistry
from ..common.elided_label import ElidedLabel
from ..common.image_ready import ImageReadiness
from ..common.workers import TaskRunner, Worker

# The displayed mask's colour says which one it is (the editable mask keeps the canvas's green).
VIEW_COLOURS: dict[CompareView, tuple[int, int, int]] = {
    "mask": (0, 230, 118),
    "reference": (255, 255, 255),
    "prediction": (255, 120, 200),
    "second": (160, 140, 255),
}
BRUSH_SOURCES: tuple[CompareView, ...] = ("second", "reference", "prediction")
BACKDROP = (0, 0, 0, 170)  # over the photo where the difference overlay has nothing to say
DICE_SORT = "Dice (worst first)"
DICE_SORT_TIP = (
    "The model prediction's Dice against the reference, worst first: where the model fails (images without one last)"
)
# What the difference legend calls each mask compared with the reference: (title, "only in ...").
LEGEND_NAMES = {
    "mask": ("your mask", "your mask"),
    "prediction": ("model prediction", "the model prediction"),
    "second": ("second grader", "the second grader's mask"),
}


class MaskOverlay(Protocol):
    """The canvas's mask overlay: compare mode shows another mask in it, in that mask's colour."""

    def set_colour(self, rgb: tuple[int, int, int]) -> None: ...
    def set_mask(self, mask: np.ndarray | None) -> None: ...
    def setVisible(self, visible: bool) -> None: ...


class CompareCanvas(Protocol):
    """What compare mode uses of the image canvas (the review feature's ``ImageCanvas``, which this feature does
    not import: the features are independent of each other)."""

    view: Any  # the pyqtgraph ViewBox the overlays are added to
    overlay: MaskOverlay
    cursor_outline: QGraphicsEllipseItem
    document: MaskDocument | None
    brush_radius: float
    stroke_finished: SignalInstance

    @property
    def mask_visible(self) -> bool: ...
    def move_cursor(self, p: tuple[float, float]) -> None: ...
    def hide_cursor(self) -> None: ...
    def set_tool(self, tool: str) -> None: ...
    def setCursor(self, cursor: Qt.CursorShape) -> None: ...


class DiceColumn(Protocol):
    """The image list's Dice of each image (the model prediction's against the reference)."""

    def set_dice(self, key: str, dice: float | None) -> None: ...
    def dice_values(self) -> dict[str, float]: ...


def reference_text(masks: CompareMasks) -> str:
    """The reference's name for the Compare box: what it is, and its file name when that file is the data set's
    own (a copy kept in the History is named by its hash, which says nothing to a grader)."""
    if masks.reference_path is None:
        return masks.reference_label
    if masks.reference_from_history:
        return masks.reference_label
    return f"{masks.reference_label}: {masks.reference_path.name}"


class CopyBrushItem(QGraphicsObject):
    """Over the image while the "brush from another mask" tool is on: inside the brush footprint the mask
    takes the source mask's pixels (vessel and background alike). One undo step per stroke."""

    def __init__(self, controller: CompareController):
        super().__init__()
        self.c = controller
        self._size = QRectF()
        self._last: tuple[float, float] | None = None
        self._source: np.ndarray | None = None
        self._doc: MaskDocument | None = (
            None  # the document the gesture began on: it ends there whatever is open by then
        )
        self.setAcceptHoverEvents(True)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents, True)
        self.setVisible(False)

    def set_size(self, w: int, h: int) -> None:
        self.prepareGeometryChange()
        self._size = QRectF(0, 0, w, h)

    def boundingRect(self) -> QRectF:
        return self._size

    def paint(self, painter, option, widget=None) -> None:
        pass

    def _outline(self, p: tuple[float, float]) -> None:
        canvas = self.c.canvas
        canvas.move_cursor(p)  # the status bar's pixel read-out
        r = canvas.brush_radius
        canvas.cursor_outline.setRect(QRectF(p[0] - r, p[1] - r, 2 * r, 2 * r))
        canvas.cursor_outline.setVisible(True)

    def hoverMoveEvent(self, event) -> None:
        self._outline((event.pos().x(), event.pos().y()))

    def hoverLeaveEvent(self, event) -> None:
        self.c.canvas.hide_cursor()

    def mousePressEvent(self, event) -> None:
        doc = self.c.canvas.document
        source = self.c.brush_source_mask()
        if event.button() != Qt.MouseButton.LeftButton or doc is None or source is None:
            if doc is not None and source is None:
                self.c.show_message(
                    f"Nothing to brush from: this image has no {self.c.brush_source_name()} "
                    "mask. Choose another source in the Compare box.",
                    "warning",
                )
            event.ignore()
            return
        event.accept()
        if not self.c.may_edit():
            return  # an approved image the grader did not agree to edit, as with the plain brush
        # The document's own stroke: autosave, switching images and undo see a gesture in progress, as with
        # the plain brush, and it becomes one undo step on release.
        self._source, self._doc = source, doc
        doc.begin_stroke(f"Brush from {self.c.brush_source_name()}")
        p = (event.pos().x(), event.pos().y())
        doc.copy_stroke_to(p, p, self.c.canvas.brush_radius, source)
        self._last = p

    def mouseMoveEvent(self, event) -> None:
        p = (event.pos().x(), event.pos().y())
        self._outline(p)
        doc = self._doc
        if self._last is None or self._source is None or doc is None or doc is not self.c.canvas.document:
            event.ignore()
            return
        doc.copy_stroke_to(self._last, p, self.c.canvas.brush_radius, self._source)
        self._last = p
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        self.finish_stroke()
        event.accept()

    def finish_stroke(self) -> None:
        """End the gesture as one undo step. Also when the item is hidden mid-drag (another tool chosen with a
        key, the image closed): a hidden item gets no release, and an open stroke would keep the document dirty,
        without undo and refusing autosaves."""
        doc, self._doc = self._doc, None
        if self._last is not None and doc is not None:
            doc.end_stroke()
            self.c.canvas.stroke_finished.emit()
        self._last, self._source = None, None

    def itemChange(self, change, value):
        if change == QGraphicsItem.GraphicsItemChange.ItemVisibleHasChanged and not self.isVisible():
            self.finish_stroke()
        return super().itemChange(change, value)


class ComparePanel(QGroupBox):
    """What is shown, the legend of the difference overlay, and the scores (each row says what against what)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Compare (K: switch mask, D: differences)", parent)
        self.setObjectName("compare_box")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        # One line each, elided in the middle: a long file name must not widen the Review panel (issue 27).
        self.showing_label = ElidedLabel("–")
        self.showing_label.setObjectName("compare_showing")
        self.reference_label = ElidedLabel("–")
        self.reference_label.setObjectName("compare_reference")
        self.second_label = ElidedLabel("–")
        self.second_label.setObjectName("compare_second")
        form.addRow("Showing", self.showing_label)
        form.addRow("Reference", self.reference_label)
        form.addRow("2nd grader", self.second_label)
        self.brush_source = QComboBox()
        self.brush_source.setObjectName("brush_source")
        for s in BRUSH_SOURCES:
            self.brush_source.addItem(VIEW_NAMES[s], s)
        self.brush_source.setToolTip("The mask the copy brush (Shift+B) takes its pixels from")
        form.addRow("Brush from", self.brush_source)
        lay.addLayout(form)
        lay.addLayout(self._score_grid())
        self.legend = self._legend()
        lay.addWidget(self.legend)
        self.legend.hide()

    def _score_grid(self) -> QGridLayout:
        """A row per comparison, a column per score; ``score_labels[row name]`` are the row's cells."""
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        for col, head in enumerate(("", "Dice", "clDice", "Sens.", "Spec.")):
            h = QLabel(f"<b>{head}</b>")
            h.setToolTip(
                "Sensitivity and specificity take the reference as the truth; Dice and clDice are "
                "symmetric. Whole image."
                if head
                else ""
            )
            grid.addWidget(h, 0, col)
        self.score_labels: dict[str, list[QLabel]] = {}
        self.row_names = ("Model prediction vs reference", "Your mask vs reference", "Second grader vs reference")
        for row, name in enumerate(self.row_names, start=1):
            title = QLabel(name.replace(" vs ", "\nvs "))
            grid.addWidget(title, row, 0)
            cells = []
            for col in range(1, 5):
                lab = QLabel("–")
                lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                grid.addWidget(lab, row, col)
                cells.append(lab)
            self.score_labels[name] = cells
        return grid

    def _legend(self) -> QWidget:
        """The difference overlay's legend: a swatch and its text per colour (``legend_rows[label]``)."""
        legend = QWidget()
        legend.setObjectName("difference_legend")
        ll = QVBoxLayout(legend)
        ll.setContentsMargins(0, 4, 0, 0)
        ll.setSpacing(2)
        self.legend_title = QLabel()
        ll.addWidget(self.legend_title)
        self.legend_rows: dict[int, QLabel] = {}
        for label in (DIFF_TP, DIFF_FP, DIFF_FN):
            row = QHBoxLayout()
            swatch = QLabel()
            swatch.setFixedSize(14, 14)
            swatch.setStyleSheet(f"background: {DIFFERENCE_COLOURS[label]}; border: 1px solid #444;")
            text = QLabel()
            text.setWordWrap(True)
            row.addWidget(swatch)
            row.addWidget(text, 1)
            ll.addLayout(row)
            self.legend_rows[label] = text
        return legend

    def show_masks(self, masks: CompareMasks) -> None:
        """The open image's reference and second grader's mask, and the copy brush's source for it."""
        if masks.reference is not None:
            self.reference_label.setText(reference_text(masks), str(masks.reference_path))
        else:
            self.reference_label.setText("none (no mask came with this image)")
        if masks.second is not None and masks.second_path is not None:
            second = masks.second_path
            self.second_label.setText(second.parent.name + "/" + second.name, str(second))
        else:
            self.second_label.setText("none")
        # The copy brush offers a mask this image has: a second grader's, else the reference, else the prediction.
        present = {"second": masks.second is not None, "reference": masks.reference is not None, "prediction": True}
        if masks.second is not None:
            self.brush_source.setCurrentIndex(BRUSH_SOURCES.index("second"))
        elif not present.get(self.brush_source.currentData(), True):
            self.brush_source.setCurrentIndex(
                BRUSH_SOURCES.index("reference" if present["reference"] else "prediction")
            )

    def show_scores(self, scores: CompareScores | None) -> None:
        by_name = dict(scores.rows()) if scores is not None else {}
        for name, cells in self.score_labels.items():
            a = by_name.get(name)
            values = (a.dice, a.cldice, a.sensitivity, a.specificity) if a is not None else (None,) * 4
            for lab, v in zip(cells, values, strict=False):
                lab.setText("–" if v is None or v != v else f"{v:.3f}")

    def show_legend(self, subject: str | None) -> None:
        """The legend of the difference overlay of ``subject`` (a view: "mask", "prediction", "second")."""
        if subject is None:
            self.legend.hide()
            return
        name, only_in = LEGEND_NAMES[subject]
        self.legend_title.setText(f"Differences: {name} vs reference")
        self.legend_rows[DIFF_TP].setText("in both")
        self.legend_rows[DIFF_FP].setText(f"only in {only_in} (false positive)")
        self.legend_rows[DIFF_FN].setText("only in the reference (false negative)")
        self.legend.show()

    def clear(self) -> None:
        for lab in (self.showing_label, self.reference_label, self.second_label):
            lab.setText("–")
        self.show_scores(None)
        self.legend.hide()


class ImageListDice(QObject):
    """The image list's Dice of every image: the model prediction's against the reference at the threshold, read
    from the prediction cache on a worker (the Dice sort and the workspace summary show it)."""

    updated = Signal()  # a whole-workspace run is done: the list may re-sort

    def __init__(
        self,
        review: ReviewSession,
        tasks: TaskRunner,
        model: ModelHolder,
        column: DiceColumn,
        image_ready: ImageReadiness,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.review, self.tasks, self.model, self.column = review, tasks, model, column
        self._pending = False  # a workspace was opened: its Dice waits until the first image is ready (launch)
        image_ready.ready.connect(lambda _key: self._pending and self.refresh())
        review.threshold_changed.connect(lambda _t: column.dice_values() and self.refresh())  # at another cut

    def workspace_opened(self) -> None:
        self._pending = True

    def open_image_scored(self, key: str, scores: CompareScores) -> None:
        """Compare mode scored the open image (its mask may be newer than the cached prediction's)."""
        if scores.prediction_vs_reference is not None:
            self.column.set_dice(key, scores.prediction_vs_reference.dice)

    def refresh(self, keys: list[str] | None = None) -> Worker | None:
        """The Dice of ``keys`` (None: every image) against the model now in use, at the threshold now."""
        if keys is None:
            self._pending = False
        ws = self.review.workspace
        if ws is None:
            return None
        worker = Worker(workspace_dice, ws, self.model.cache_key, self.review.threshold, keys, name="dice")

        def computed(key_dice: tuple[str, float | None]) -> None:
            if ws is self.review.workspace:  # not one of a workspace closed meanwhile
                self.column.set_dice(*key_dice)

        worker.yielded.connect(self.tasks.guard(computed))
        if keys is None:  # a whole-workspace run may re-sort the list; one image's new score does not
            worker.finished.connect(self.tasks.guard(lambda: self.updated.emit()))
        self.tasks.start(worker, priority=-1)
        return worker


class CompareController(QObject):
    """Compare mode on the open image. The root connects the window's event it has no other way to hear:
    ``prediction_shown(key)``, the open image's new prediction is on screen."""

    view_changed = Signal(str)
    masks_loaded = Signal(str)  # key
    scores_shown = Signal(str, object)  # key, CompareScores

    def __init__(
        self,
        review: ReviewSession,
        canvas: CompareCanvas,
        tasks: TaskRunner,
        image_ready: ImageReadiness,
        actions: ActionRegistry,
        menu: QMenu,
        show_message: Callable[[str, str], None],
        show_status: Callable[[str, int], None],
        may_edit: Callable[[], bool],
        reveal: Callable[[QWidget], None],
        parent: QObject | None = None,
    ) -> None:
        """``may_edit()``: asked before a copy stroke changes the mask (an approved image asks first, as with the
        plain brush); ``reveal(widget)``: scroll the review panel to the Compare box."""
        super().__init__(parent)
        self.review, self.canvas, self.tasks = review, canvas, tasks
        self.show_message, self.show_status, self.may_edit, self._reveal = show_message, show_status, may_edit, reveal
        self.masks: CompareMasks | None = None
        self.scores: CompareScores | None = None
        self.view: CompareView = "mask"
        self._subject: CompareView | None = (
            None  # what the differences are of, once the grader chose (None: the model's)
        )
        self._doc: MaskDocument | None = None
        self._request = 0
        self._score_request = 0
        self.diff_item = pg.ImageItem(axisOrder="row-major")
        self.diff_item.setZValue(3.5)  # over the mask overlay, under the tools
        self.diff_item.setOpacity(1.0)
        self.diff_item.setVisible(False)
        self.canvas.view.addItem(self.diff_item)
        self.brush_item = CopyBrushItem(self)
        self.brush_item.setZValue(4.5)
        self.canvas.view.addItem(self.brush_item)
        self.panel = ComparePanel()
        self.score_timer = QTimer(self, singleShot=True, interval=400)
        self.score_timer.timeout.connect(self._start_scores)
        self.diff_timer = QTimer(self, singleShot=True, interval=250)
        self.diff_timer.timeout.connect(self._redraw_difference)
        self._add_actions(actions, menu)

        # The reference masks load once the prediction is on screen; the workspace's Dice too: at launch they
        # took the CPU of the first prediction.
        image_ready.ready.connect(self._image_opened)
        review.image_closed.connect(self._image_closed)
        review.threshold_changed.connect(lambda _t: self._mask_changed())

    def _add_actions(self, actions: ActionRegistry, menu: QMenu) -> None:
        self.cycle_action = actions.add(
            "Switch shown mask (yours / reference / prediction / 2nd grader)",
            self.cycle_view,
            "K",
            tip="Show your mask, the reference, the model's prediction or the second grader's mask",
        )
        self.diff_action = actions.add(
            "Differences against the reference",
            self.set_difference_visible,
            "D",
            checkable=True,
            tip="True positives, false positives and false negatives in colour-blind-safe colours",
        )
        self.copy_action = actions.add(  # the root adds it to the canvas's tool group: one tool at a time
            "Brush from another mask",
            self.set_copy_tool,
            "Shift+B",
            checkable=True,
            tip="Paint the chosen mask's pixels (second grader, reference, prediction) into yours",
        )
        self.menu = menu
        menu.addAction(self.cycle_action)
        menu.addAction(self.diff_action)
        menu.addSeparator()
        menu.addAction(self.copy_action)

    # ----------------------------------------------------------------- the open image --
    def _image_opened(self, key: str) -> None:
        self._detach()
        s = self.review.image
        if s is None:
            return
        self._doc = s.document
        self._doc.changed.connect(self._document_changed)
        h, w = s.document.shape
        self.brush_item.set_size(w, h)
        self.brush_item.setVisible(self.copy_action.isChecked())
        self._request += 1
        req = self._request
        worker = Worker(load_compare_masks, self.review.workspace, s.entry, (h, w), name=f"compare {key}")
        worker.returned.connect(self.tasks.guard(lambda m, r=req: self._masks_loaded(r, m)))
        self.tasks.start(worker, priority=1)

    def _image_closed(self) -> None:
        self._detach()
        self.panel.clear()

    def _detach(self) -> None:
        if self._doc is not None:
            self._doc.changed.disconnect(self._document_changed)
            self._doc = None
        self.masks, self.scores = None, None
        self.view, self._subject = "mask", None
        self.diff_item.clear()
        self.diff_item.setVisible(False)
        self.canvas.overlay.set_colour(VIEW_COLOURS["mask"])
        self.canvas.overlay.setVisible(self.canvas.mask_visible)
        self.brush_item.setVisible(False)

    def _masks_loaded(self, request: int, masks: CompareMasks) -> None:
        s = self.review.image
        if request != self._request or s is None or s.key != masks.key:
            return
        self.masks = masks
        self.panel.show_masks(masks)
        if masks.problems:
            self.show_message(masks.problems[0], "warning")
        self._show_view_label()
        # Scored at once, but not through score_timer.start(0): that would set its interval to 0 for good and
        # start a scoring worker (with an 8-MB mask copy) on every brush move (32 ms moves at 3504x2336).
        self.score_timer.stop()
        self._start_scores()
        self.masks_loaded.emit(masks.key)

    def prediction_shown(self, key: str) -> None:
        self._mask_changed()

    def _document_changed(self, _bbox) -> None:
        subject = self._subject
        if self.view != "mask":
            self.set_view("mask")  # painting shows the mask being painted
        # An edit makes the differences the painted mask's; a new prediction or threshold (no box) leaves them.
        self._subject = "mask" if _bbox is not None else subject
        self._mask_changed()

    def _mask_changed(self) -> None:
        if self.review.image is None:
            return
        self.score_timer.start()
        if self.diff_item.isVisible():
            self.diff_timer.start()
        if self.view == "prediction":
            self.set_view("prediction")

    # -------------------------------------------------------------- what is displayed --
    def mask_of(self, view: CompareView) -> np.ndarray | None:
        s = self.review.image
        if s is None:
            return None
        if view == "mask":
            return s.document.mask
        if view == "prediction":
            return s.probability >= self.review.threshold if s.probability is not None else None
        if self.masks is None:
            return None
        return self.masks.reference if view == "reference" else self.masks.second

    def available_views(self) -> list[CompareView]:
        s = self.review.image
        if s is None:
            return []
        # Which views exist, without cutting the probabilities at the threshold just to test for None.
        have = {
            "mask": True,
            "prediction": s.probability is not None,
            "reference": self.masks is not None and self.masks.reference is not None,
            "second": self.masks is not None and self.masks.second is not None,
        }
        return [v for v in VIEWS if have[v]]

    def cycle_view(self) -> None:
        views = self.available_views()
        if len(views) < 2:
            self.show_message("Nothing to compare with yet: this image has no reference mask or prediction.", "info")
            return
        nxt = views[(views.index(self.view) + 1) % len(views)] if self.view in views else "mask"
        self.set_view(nxt)
        self.reveal_panel()

    def set_view(self, view: CompareView) -> None:
        mask = self.mask_of(view)
        if mask is None:
            return
        self.view = view
        if view != "reference":  # the reference against itself says nothing: the differences stay as they were
            self._subject = view
        self.canvas.overlay.set_colour(VIEW_COLOURS[view])
        self.canvas.overlay.set_mask(mask)
        self._show_view_label()
        if self.diff_item.isVisible():
            self._redraw_difference()
        self.show_status(
            f"Showing {VIEW_NAMES[view]}"
            + ("" if view == "mask" else " (read-only; K: next, painting goes back to your mask)"),
            5000,
        )
        self.view_changed.emit(view)

    def _show_view_label(self) -> None:
        name = VIEW_NAMES[self.view]
        if self.view == "reference" and self.masks is not None:
            name = self.masks.reference_label
        self.panel.showing_label.setText(name)

    def reveal_panel(self) -> None:
        """Scroll the review panel to this box, where the legend and the scores are."""
        self._reveal(self.panel)

    # --------------------------------------------------------------- the differences --
    def difference_subject(self) -> CompareView:
        """What the difference overlay compares with the reference: the mask the grader chose to show (K) or
        painted; before either, the model's prediction. An image's mask starts as its reference, and "your mask
        vs reference" was then one colour all over (issue 27)."""
        if self._subject is not None and self.mask_of(self._subject) is not None:
            return self._subject
        s = self.review.image
        return "prediction" if s is not None and s.probability is not None else "mask"

    def set_difference_visible(self, on: bool) -> None:
        if on and (self.masks is None or self.masks.reference is None):
            self.show_message("No differences to show: this image has no reference mask.", "info")
            with QSignalBlocker(self.diff_action):
                self.diff_action.setChecked(False)
            on = False
        self.diff_item.setVisible(on)
        self.canvas.overlay.setVisible(self.canvas.mask_visible and not on)
        if on:
            self._redraw_difference()
            self.reveal_panel()
        else:
            self.panel.show_legend(None)

    def difference_labels(self) -> np.ndarray | None:
        subject = self.mask_of(self.difference_subject())
        if subject is None or self.masks is None or self.masks.reference is None:
            return None
        return difference_labels(subject, self.masks.reference)

    def _redraw_difference(self) -> None:
        labels = self.difference_labels()
        if labels is None or not self.diff_item.isVisible():
            return
        rgba = difference_rgba(labels)
        # Vermillion vanishes on an orange fundus: the photo is dimmed where both agree on background.
        rgba[labels == 0] = BACKDROP
        self.diff_item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.panel.show_legend(self.difference_subject())

    # -------------------------------------------------------------------- the scores --
    def _start_scores(self) -> None:
        s = self.review.image
        if s is None or self.masks is None:
            return
        self._score_request += 1
        req, key = self._score_request, s.key
        prob, threshold = s.probability, self.review.threshold
        mask, ref, second = s.document.mask.copy(), self.masks.reference, self.masks.second
        # The probabilities are cut at the threshold in the worker, not on the UI thread.
        worker = Worker(
            lambda ctx: compare_scores(prob >= threshold if prob is not None else None, mask, ref, second),
            name="compare scores",
        )
        worker.returned.connect(self.tasks.guard(lambda sc, r=req, k=key: self._scores_done(r, k, sc)))
        self.tasks.start(worker, priority=0)

    def _scores_done(self, request: int, key: str, scores) -> None:
        s = self.review.image
        if request != self._score_request or s is None or s.key != key:
            return
        self.scores = scores
        self.panel.show_scores(scores)
        self.scores_shown.emit(key, scores)

    # ------------------------------------------------------------------ the copy brush --
    def brush_source_name(self) -> str:
        return VIEW_NAMES[self.panel.brush_source.currentData()]

    def brush_source_mask(self) -> np.ndarray | None:
        return self.mask_of(self.panel.brush_source.currentData())

    def set_copy_tool(self, on: bool) -> None:
        if on:
            self.canvas.set_tool("navigate")  # the canvas's own tools stand aside; this item takes the mouse
            self.canvas.setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.canvas.cursor_outline.setVisible(False)
        self.brush_item.setVisible(on and self.review.image is not None)
