"""The trace tool (T): click along a vessel; between clicks the path follows the ridge of the probability
(``core.vessels.tracing``) and is previewed as the mouse moves, at the width it will be painted. ``[`` / ``]``
adjust the width while tracing; Enter or a double-click commits the whole path as one undo step; Esc cancels.

The cost map takes seconds on a large photo, so it is built in a worker the first time the tool is used on an
image (clicks made meanwhile are kept and traced once it is ready; the status bar says so)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

from ...core.review.mask_document import MaskDocument
from ...core.review.review_session import ReviewSession
from ..common.workers import TaskRunner, Worker, WorkerContext
from .vessel_canvas import VesselCanvas

# The vessel engine (SciPy, scikit-image) is imported in the workers that first need it (see vessel_analysis).
if TYPE_CHECKING:
    from ...core.vessels.tracing import CostField, TraceCost, Tracer

TRACE_COLOUR = QColor(64, 200, 255, 150)


def build_cost(
    ctx: WorkerContext, probability: np.ndarray, rgb: np.ndarray | None, threshold: float, fov: np.ndarray | None
) -> TraceCost:
    from ...core.vessels.tracing import TraceCost

    return TraceCost.from_prediction(probability, rgb, threshold=threshold, fov=fov)


def _search(ctx: WorkerContext, tracer: Tracer) -> CostField | None:
    return tracer.search()


class TraceTool(QObject):
    """The cost map of the open image, the path being traced and its preview on the canvas."""

    status = Signal(str)
    cost_ready = Signal()
    trace_changed = Signal()

    def __init__(
        self, review: ReviewSession, canvas: VesselCanvas, tasks: TaskRunner, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.review, self.canvas, self.tasks = review, canvas, tasks
        self.cost: TraceCost | None = None
        self._cost_source: np.ndarray | None = None  # the probability array the cost was built from
        self._cost_worker: Worker | None = None
        self.tracer: Tracer | None = None
        self.radius_offset = 0.0
        self._pending_clicks: list[tuple[float, float]] = []
        self._last_pointer: tuple[float, float] | None = None
        self.preview_item = QGraphicsPathItem()
        pen = QPen(TRACE_COLOUR)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self.preview_item.setPen(pen)
        self.preview_item.setZValue(11)
        self.preview_item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.preview_item.setVisible(False)
        canvas.view.addItem(self.preview_item)

    @property
    def active(self) -> bool:
        return self.canvas.tool == "trace"

    @property
    def tracing(self) -> bool:
        return (self.tracer is not None and bool(self.tracer.anchors)) or bool(self._pending_clicks)

    @property
    def can_finish(self) -> bool:
        return self.tracer is not None and len(self.tracer.anchors) >= 2

    def forget_image(self) -> None:
        """The image was closed: its cost map, path and kept clicks go with it."""
        self.cancel()
        self.cost, self._cost_source, self._cost_worker = None, None, None
        self._pending_clicks.clear()

    def probability_changed(self) -> None:
        s = self.review.image
        if s is not None and s.probability is not self._cost_source:
            self.cost, self._cost_source, self._cost_worker = None, None, None
            if self.active:
                self.ensure_cost()

    def pointer_moved(self, x: float, y: float) -> None:
        self._last_pointer = (x, y)
        if self.active and self.tracer is not None and self.tracer.anchors:
            self._show_preview(self.tracer.preview(x, y))

    # ------------------------------------------------------------------ cost map --
    def ensure_cost(self) -> None:
        """Start building the trace cost map of the open image unless it exists or is being built."""
        s = self.review.image
        if s is None or self.cost is not None or self._cost_worker is not None or self.tasks.closed:
            return
        prob = s.probability
        # Without a prediction yet the mask itself is the best guess of where vessels are.
        source = prob if prob is not None else s.document.mask.astype(np.float32)
        rgb, fov = self.canvas.rgb, getattr(s.loaded, "fov", None)
        w = Worker(build_cost, source, rgb, self.review.threshold, fov, name="trace cost map")
        self._cost_worker = w
        key = s.key
        w.returned.connect(self.tasks.guard(lambda cost, w=w, p=prob, k=key: self._cost_built(w, p, k, cost)))
        w.errored.connect(self.tasks.guard(lambda msg, w=w: self._cost_failed(w, msg)))
        self.tasks.start(w, priority=1)
        self.status.emit("Trace: preparing the vessel map for this image…")

    def _cost_built(self, worker: Worker, prob: np.ndarray | None, key: str, cost: TraceCost) -> None:
        s = self.review.image
        if worker is not self._cost_worker or s is None or s.key != key:
            return
        self._cost_worker = None
        self.cost, self._cost_source = cost, prob
        self.cost_ready.emit()
        if self.active:
            self.status.emit("Trace: ready. Click along a vessel; Enter or double-click paints it, Esc cancels")
        pending, self._pending_clicks = self._pending_clicks, []
        for x, y in pending:
            self.click(x, y)

    def _cost_failed(self, worker: Worker, message: str) -> None:
        if worker is self._cost_worker:
            self._cost_worker = None
            self._pending_clicks.clear()
            self.status.emit(f"Trace: the vessel map could not be built: {message}")

    # --------------------------------------------------------------------- path --
    def click(self, x: float, y: float) -> None:
        if self.review.image is None:
            return
        if self.cost is None:
            self._pending_clicks.append((x, y))
            self.ensure_cost()
            self.status.emit(
                f"Trace: preparing the vessel map for this image… ({len(self._pending_clicks)} click(s) kept)"
            )
            self.trace_changed.emit()
            return
        if self.tracer is None or self.tracer.cost is not self.cost:
            from ...core.vessels.tracing import Tracer

            self.tracer = Tracer(self.cost, radius_offset=self.radius_offset)
        self.tracer.click(x, y, search=False)
        # The search from the new anchor takes up to half a second on a large photo; until it is done,
        # previews use the box search.
        if not self.tasks.closed:
            # Ahead of a queued analysis: the live preview is what the grader is waiting for.
            self.tasks.run(_search, self.tracer, name="trace search", priority=3)
        self._show_preview(self.tracer.path())
        n = len(self.tracer.anchors)
        self.status.emit(
            f"Trace: {n} point(s), width {2 * self.tracer.radius:.1f} px. Enter or double-click "
            "paints it, Esc cancels, [ ] change the width"
        )
        self.trace_changed.emit()

    def finish(self, document: MaskDocument | None) -> bool:
        """Paint the traced path into ``document`` as one undo step (Enter / double-click). False if there was
        none."""
        tracer = self.tracer
        if tracer is None or document is None or len(tracer.anchors) < 2:
            return False
        stroke = tracer.finish()
        self._hide_preview()
        self.trace_changed.emit()
        if stroke is None:
            return False
        edit = document.apply("Trace", stroke.paint, tool="trace")
        self.status.emit("Trace painted" if edit is not None else "Trace: the vessel was already painted there")
        return edit is not None

    def cancel(self) -> None:
        had = self.tracing
        if self.tracer is not None:
            self.tracer.cancel()
        self._pending_clicks.clear()
        self._hide_preview()
        if had:
            self.status.emit("Trace cancelled")
            self.trace_changed.emit()

    def width_step(self, step: int) -> bool:
        """``[`` / ``]`` with the trace tool: the width of the traced vessel, half a pixel of radius at a time."""
        if not self.active:
            return False
        self.radius_offset += 0.5 * step
        if self.tracer is not None:
            self.radius_offset = max(self.radius_offset, 0.5 - (self.tracer.radius - self.tracer.radius_offset))
            self.tracer.radius_offset = self.radius_offset
            if self.tracer.anchors:
                p = self._last_pointer
                self._show_preview(self.tracer.preview(*p) if p else self.tracer.path())
                self.status.emit(f"Trace width {2 * self.tracer.radius:.1f} px")
                return True
        self.status.emit(f"Trace width: automatic {self.radius_offset:+.1f} px of radius")
        return True

    # ------------------------------------------------------------------ preview --
    def _show_preview(self, points: np.ndarray) -> None:
        if self.tracer is None or len(points) == 0:
            self._hide_preview()
            return
        path = QPainterPath(QPointF(*points[0]))
        for x, y in points[1:]:
            path.lineTo(x, y)
        pen = self.preview_item.pen()
        pen.setWidthF(2 * self.tracer.radius)
        self.preview_item.setPen(pen)
        self.preview_item.setPath(path)
        self.preview_item.setVisible(True)

    def _hide_preview(self) -> None:
        self.preview_item.setVisible(False)
        self.preview_item.setPath(QPainterPath())

    @property
    def preview_points(self) -> int:
        """How many path points the preview draws (tests)."""
        return self.preview_item.path().elementCount() if self.preview_item.isVisible() else 0
