"""Proofread mode (P): the app proposes each fix to the open mask, surest first, and the grader accepts it with
Enter (one undo step) or rejects it with Backspace (``core.vessels.proofread``; README, Proofread).

Turned on, it finds the queue for the open image on a worker and shows the first proposal drawn in place, dashed,
with the view moved to its neighbourhood. After an accept the queue is found again on a worker (the mask
changed); a reject only moves on, and the rejected proposal stays rejected for that image: it is written to the
review log (action "proposal rejected") and read back when the image is proofread again. Accepts are logged too
("proposal accepted"), both with the proposal's features: when a queue is made for an image, its ranking is learned
from every decision logged in the workspace (``core.vessels.proposal_ranking``; milliseconds for thousands), and the
proposals it expects to be rejected are held back. Enter and Backspace are taken from the window's shortcuts (Enter
also finishes a trace) only while a proposal is on screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QLabel, QWidget

from ...core.review.review_session import ReviewSession
from ..common.context import ActionRegistry
from ..common.image_ready import ImageReadiness
from ..common.workers import TaskRunner, Worker
from .vessel_canvas import VesselCanvas

if TYPE_CHECKING:  # the engine imports scipy, which the window does not load until the mode is used
    from ...core.review.mask_document import MaskDocument
    from ...core.vessels.proofread import ProofreadQueue, Proposal

COLOURS = {"bridge": QColor(80, 230, 255), "add": QColor(120, 255, 120), "remove": QColor(255, 110, 90)}
Z = 21  # above the mask overlay and the calibre view's rings
ACCEPT_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
REJECT_KEYS = (Qt.Key.Key_Backspace,)
REJECTED = "proposal rejected"  # the review log's action for a rejection (``ProofreadQueue.rejections``)
ACCEPTED = "proposal accepted"  # ... and for an accept; both with the proposal's features: the ranking's training data


def outline(p: Proposal) -> QPainterPath:
    """The outline of ``p``'s pixels in canvas coordinates (pixel (col, row) is the square [col, col + 1) x
    [row, row + 1))."""
    path = QPainterPath()
    y0, _y1, x0, _x1 = p.bbox
    # A contour runs through its boundary pixels' centres. Upsampled by 2, pixel c spans big pixels 2c and
    # 2c + 1, so big index i lies on the pixel corner ceil(i / 2): the outline follows the pixels' edges.
    big = np.kron(p.patch.astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(np.pad(big, 1), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    for c in contours:
        pts = np.ceil((c.reshape(-1, 2) - 1) / 2)
        path.moveTo(QPointF(x0 + pts[0, 0], y0 + pts[0, 1]))
        for x, y in pts[1:]:
            path.lineTo(QPointF(x0 + x, y0 + y))
        path.closeSubpath()
    return path


class ProofreadView(QObject):
    shown = Signal(object)  # the Proposal on screen, or None when the queue is empty
    # The whole queue after each change, for the Topology panel's list: (proposals, index on screen, counter), or
    # None when the mode is off or the image closed.
    listed = Signal(object)
    computed = Signal(str)  # key: the queue was found (again) for this image

    def __init__(
        self,
        review: ReviewSession,
        canvas: VesselCanvas,
        tasks: TaskRunner,
        image_ready: ImageReadiness,
        actions: ActionRegistry,
        show_status: Callable[[str, int], None],
        may_edit: Callable[[], bool],
        key_widget: QWidget | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``may_edit()``: asked before an accept changes the mask (an approved image asks first, as the brush
        does). ``key_widget``: the widget whose Enter and Backspace the mode takes while a proposal is shown."""
        super().__init__(parent)
        self.review, self.canvas, self.tasks, self.image_ready = review, canvas, tasks, image_ready
        self.show_status, self.may_edit = show_status, may_edit
        self.queue: ProofreadQueue | None = None
        self.queue_key: str | None = None
        self._request = 0  # only the newest computation is installed
        self._document: MaskDocument | None = None  # the mask whose edits recompute the queue
        # Any other edit (a brush stroke, an undo) finds the queue again once the grader pauses.
        self.timer = QTimer(self, singleShot=True, interval=400)
        self.timer.timeout.connect(self._compute)
        self.label = QLabel("")
        self.label.setObjectName("proofreadCounter")
        self.item = QGraphicsPathItem()
        pen = QPen(COLOURS["bridge"])
        pen.setCosmetic(True)
        pen.setWidthF(1.6)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.item.setPen(pen)
        self.item.setZValue(Z)
        self.item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.item.setVisible(False)
        canvas.view.addItem(self.item)
        self.action = actions.add(
            "Proofread",
            self.set_on,
            "P",
            checkable=True,
            tip="Proposed fixes, surest first: Enter accepts one (one undo step), Backspace rejects it",
        )
        self.held_back_action = actions.add(
            "Show held-back proposals",
            self.set_show_held_back,
            checkable=True,
            tip="Also list the proposals the learned ranking expects you to reject, after the others",
        )
        if key_widget is not None:
            key_widget.installEventFilter(self)
        image_ready.ready.connect(lambda _k: self._compute())
        review.image_closed.connect(self._forget)

    def set_show_held_back(self, on: bool) -> None:
        """List the held-back proposals too (after the others), from the next queue found; found again now."""
        if self.queue is not None:
            self.queue.show_held_back = on
        if self.on:
            self._compute()

    # ----------------------------------------------------------------------- turning on --
    @property
    def on(self) -> bool:
        return self.action.isChecked()

    def set_on(self, on: bool) -> None:
        if self.action.isChecked() != on:
            self.action.setChecked(on)  # toggled: back here
            return
        if on:
            self._compute()
        else:
            self.item.setVisible(False)
            self.label.setText("")
            self.listed.emit(None)

    def current(self) -> Proposal | None:
        return self.queue.current() if self.on and self.queue is not None else None

    # ------------------------------------------------------------------------ computing --
    def _compute(self) -> None:
        s = self.review.image
        if not self.on or s is None or self.image_ready.ready_key != s.key:
            return
        if s.probability is None:  # the proposals are ranked by the model's probabilities
            self.label.setText("")
            self.item.setVisible(False)
            self.show_status("Proofread needs a prediction of this image (Ctrl+R predicts it)", 8000)
            self.listed.emit(None)
            return
        if self._document is not s.document:
            if self._document is not None:
                self._document.changed.disconnect(self._mask_edited)
            self._document = s.document
            s.document.changed.connect(self._mask_edited)
        if self.queue is None or self.queue_key != s.key:
            from ...core.vessels.proofread import ProofreadQueue
            from ...core.vessels.proposal_ranking import ProposalRanker, decisions_of_log

            self.queue = ProofreadQueue(s.probability, s.loaded.rgb, s.loaded.fov, self.review.threshold)
            self.queue.show_held_back = self.held_back_action.isChecked()
            self.queue_key = s.key
            ws = self.review.workspace
            if ws is not None:  # what the grader rejected on this image before stays rejected
                rows = ws.log.rows()
                self.queue.restore([r for r in rows if r.get("image") == s.key and r.get("action") == REJECTED])
                self.queue.ranker = ProposalRanker.fit(decisions_of_log(rows))
        self._request += 1
        req, key, queue, mask = self._request, s.key, self.queue, s.document.mask.copy()
        w = Worker(lambda _ctx: queue.compute(mask), name="proofread: proposals")
        w.returned.connect(self.tasks.guard(lambda found, r=req, k=key: self._computed(r, k, found)))
        w.errored.connect(
            self.tasks.guard(lambda msg: self.show_status(f"Proofread: proposals not found: {msg}", 8000))
        )
        self.tasks.start(w, priority=0)

    def _mask_edited(self, _bbox: object) -> None:
        if self.on:
            self.timer.start()

    def _computed(self, request: int, key: str, found: list[Proposal]) -> None:
        s = self.review.image
        if request != self._request or s is None or s.key != key or self.queue is None or self.queue_key != key:
            return
        self.queue.replace(found)
        self._show_current()
        self.computed.emit(key)

    def _forget(self) -> None:
        self._request += 1
        self.timer.stop()
        self.queue = self.queue_key = None
        self.item.setVisible(False)
        self.label.setText("")
        self.listed.emit(None)

    # -------------------------------------------------------------------------- showing --
    def _show_current(self) -> None:
        q, p = self.queue, self.current()
        if q is None:
            return
        if p is None:
            self.item.setVisible(False)
        else:
            q.show(p)
            pen = self.item.pen()
            pen.setColor(COLOURS[p.kind])
            self.item.setPen(pen)
            self.item.setPath(outline(p))
            self.item.setVisible(True)
            y0, y1, x0, x1 = p.view
            self.canvas.view.setRange(QRectF(x0, y0, x1 - x0, y1 - y0), padding=0)
        text = q.counter()
        what = f"{p.kind} ({p.reason}): Enter accepts, Backspace rejects" if p is not None else "no proposals left"
        self.label.setText(text)
        self.show_status(f"Proofread {text}; {what}", 8000)
        self.shown.emit(p)
        self.listed.emit((list(q.proposals), q.index(), text))

    # ------------------------------------------------------------------------ moving --
    def choose(self, index: int) -> None:
        """Show ``proposals[index]``: a row of the list, a skipped proposal included."""
        if self.on and self.queue is not None and self.queue.proposals:
            self.queue.choose(index)
            self._show_current()

    def step(self, step: int) -> None:
        """Skip to the next (previous) proposal, deciding nothing (N / Shift+N while proofreading)."""
        if self.on and self.queue is not None and self.queue.proposals:
            self.queue.step(step)
            self._show_current()

    # ------------------------------------------------------------------------- deciding --
    def accept(self) -> bool:
        """Apply the proposal on screen as one undo step and find the queue again; False when nothing changed."""
        s, q, p = self.review.image, self.queue, self.current()
        if s is None or q is None or p is None or not self.may_edit():
            return False
        record = q.record(p, True)
        edit = s.document.apply(f"Proofread: {p.kind}", lambda m: q.accept(p, m), tool="proofread")
        ws = self.review.workspace
        if edit is not None and ws is not None:
            ws.log.add(s.key, ACCEPTED, **record)
        self._show_current()  # the next one at once; the recomputed queue replaces it
        self.timer.stop()  # started by the edit: found again now instead
        self._compute()
        return edit is not None

    def reject(self) -> bool:
        q, p = self.queue, self.current()
        if q is None or p is None:
            return False
        record = q.reject(p)
        ws, key = self.review.workspace, self.queue_key
        if ws is not None and key is not None:  # training data for the ranking, evidence for the gate
            ws.log.add(key, REJECTED, **record)
        self._show_current()
        return True

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) or self.current() is None:
            return False
        assert isinstance(event, QKeyEvent)
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return False
        key = event.key()
        if key not in ACCEPT_KEYS + REJECT_KEYS:
            return False
        if kind == QEvent.Type.ShortcutOverride:
            event.accept()  # the key comes to this widget as a key press, not to the window's shortcut
            return True
        if key in ACCEPT_KEYS:
            self.accept()
        else:
            self.reject()
        return True
