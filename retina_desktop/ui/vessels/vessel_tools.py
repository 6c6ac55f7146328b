"""Vessel tools on the canvas: the trace tool (T), the segment tool (S), and the analysis of the mask (its
vessel graph and topology review) that they and the topology panel share.

* **Trace (T).** Click along a vessel; between clicks the path follows the ridge of the probability
  (``core.tracing``) and is previewed as the mouse moves, at the width it will be painted. ``[`` / ``]``
  adjust the width while tracing; Enter or a double-click commits the whole path as one undo step; Esc
  cancels. The cost map takes seconds on a large photo, so it is built in a worker the first time the tool
  is used on an image (clicks made meanwhile are kept and traced once it is ready; the status bar says so).
* **Segment (S).** A click selects the segment between two junctions under it and highlights the pixels
  that Delete would remove (``core.vessel_graph``); Delete removes only those, as one undo step.
* **Analysis.** After each edit (debounced), a worker builds the vessel graph of a copy of the mask and
  runs the topology review (``core.topology``); results for a mask that has changed since are dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsPixmapItem

# scikit-image and SciPy (the vessel engine) take about a second to import: they are imported where the vessel
# tools first run, in workers, so the window and the first prediction do not wait for them.
if TYPE_CHECKING:
    from ...core.vessels.topology import TopologyParams
    from ...core.vessels.tracing import TraceCost, Tracer
    from ...core.vessels.vessel_graph import VesselGraph

from ..common.words import count
from ..common.workers import Worker

TRACE_COLOUR = QColor(64, 200, 255, 150)
SEGMENT_COLOUR = (255, 64, 200, 170)
DRIVE_WIDTH = 565  # the topology parameters were tuned on DRIVE-sized photos


def build_cost(
    ctx, probability: np.ndarray, rgb: np.ndarray | None, threshold: float, fov: np.ndarray | None
) -> TraceCost:
    from ...core.vessels.tracing import TraceCost

    return TraceCost.from_prediction(probability, rgb, threshold=threshold, fov=fov)


def analyse_mask(ctx, mask: np.ndarray, probability: np.ndarray | None, params: TopologyParams):
    """The vessel graph of ``mask`` and its topology findings (runs in a worker on a copy of the mask).

    The graph is also emitted as soon as it exists: the segment tool needs only it, and the review takes
    several times longer on a large photo."""
    from ...core.vessels.topology import review
    from ...core.vessels.vessel_graph import VesselGraph

    graph = VesselGraph.from_mask(mask)
    ctx.emit(graph)
    return graph, review(mask, probability, params, graph=graph)


def topology_params(shape: tuple[int, int]) -> TopologyParams:
    # Never scaled below DRIVE's size: on a small photo a 5-px gap is still a break.
    from ...core.vessels.topology import TopologyParams

    return TopologyParams().scaled(max(1.0, shape[1] / DRIVE_WIDTH))


def _search(ctx, tracer: Tracer):
    return tracer.search()


class VesselTools(QObject):
    status = Signal(str)
    cost_ready = Signal()
    analysis_ready = Signal()  # ``graph`` and ``findings`` describe the mask as it is now
    analysis_started = Signal()
    selection_changed = Signal()
    trace_changed = Signal()

    def __init__(self, window, parent: QObject | None = None):
        super().__init__(parent or window)
        self.window, self.canvas, self.tasks = window, window.canvas, window.tasks
        self.cost: TraceCost | None = None
        self._cost_source = None  # the probability array the cost was built from
        self._cost_worker = None
        self.tracer: Tracer | None = None
        self.radius_offset = 0.0
        self._pending_clicks: list[tuple[float, float]] = []
        self._last_pointer: tuple[float, float] | None = None
        self.graph: VesselGraph | None = None
        self.findings: list = []
        self.generation = 0  # bumped by every change of the mask
        self.analysed_generation = -1
        self.graph_generation = -1
        self._analysis_worker = None
        self.selected: int | None = None
        self._pending_segment_click: tuple[float, float] | None = None
        self._doc = None
        # Whether edits re-run the analysis by themselves (the topology panel is showing); otherwise it runs
        # when the segment tool needs the graph, so a large photo's review costs nothing while hidden.
        self.auto_analyse = lambda: True
        self.analysis_timer = QTimer(self, singleShot=True, interval=300)
        self.analysis_timer.timeout.connect(self.analyse)

        view = self.canvas.view
        self.preview_item = QGraphicsPathItem()
        pen = QPen(TRACE_COLOUR)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self.preview_item.setPen(pen)
        self.highlight_item = QGraphicsPixmapItem()
        for z, item in ((10, self.highlight_item), (11, self.preview_item)):
            item.setZValue(z)
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            item.setVisible(False)
            view.addItem(item)

        self.canvas.vessel_clicked.connect(self.click)
        self.canvas.vessel_double_clicked.connect(lambda _x, _y: self.finish_trace())
        self.canvas.pointer_moved.connect(self.pointer_moved)
        self.canvas.tool_changed.connect(self._tool_changed)
        window.image_ready.ready.connect(lambda _key: self.attach())  # after the first prediction, not before
        window.review.image_closed.connect(self.detach)
        window.review.prediction_shown.connect(lambda _key: self._probability_changed())
        window.edit_tools.width_step = self.width_step

    # -------------------------------------------------------------------- image --
    @property
    def session(self):
        return self.window.session

    @property
    def fresh(self) -> bool:
        """True when ``graph`` and ``findings`` describe the current mask."""
        return self._doc is not None and self.analysed_generation == self.generation

    @property
    def graph_fresh(self) -> bool:
        return self._doc is not None and self.graph_generation == self.generation

    def attach(self) -> None:
        self.detach()
        s = self.session
        if s is None:
            return
        self._doc = s.document
        self._doc.changed.connect(self._mask_changed)
        if self.auto_analyse():
            self.analyse()
        if self.canvas.tool == "trace":
            self.ensure_cost()

    def detach(self) -> None:
        if self._doc is not None:
            self._doc.changed.disconnect(self._mask_changed)
        self._doc = None
        self.cancel_trace()
        self.clear_selection()
        self.cost, self._cost_source, self._cost_worker = None, None, None
        self._pending_clicks.clear()
        self.graph, self.findings = None, []
        self.generation += 1
        self._analysis_worker = None
        self.analysis_timer.stop()

    def _probability_changed(self) -> None:
        s = self.session
        if s is not None and s.probability is not self._cost_source:
            self.cost, self._cost_source, self._cost_worker = None, None, None
            if self.canvas.tool == "trace":
                self.ensure_cost()

    def _mask_changed(self, _bbox) -> None:
        self.generation += 1
        if self.selected is not None:
            self.clear_selection()
        if self.auto_analyse():
            if not self.analysis_timer.isActive():
                self.analysis_started.emit()  # once per burst of changes, not per brush segment
            self.analysis_timer.start()

    # ----------------------------------------------------------------- analysis --
    def analyse(self) -> None:
        """Build the graph and review of the mask as it is now, in a worker (one at a time)."""
        self.analysis_timer.stop()
        if self._doc is None or self.tasks.closed:
            return
        if self._analysis_worker is not None:
            return  # when it returns stale, it starts the next one
        gen, doc = self.generation, self._doc
        prob = self.session.probability
        # The parameters are made in the worker too: building them imports the vessel engine (SciPy), which
        # on the UI thread held the first prediction back by 1.4 s.
        mask = doc.mask.copy()
        w = Worker(lambda ctx: analyse_mask(ctx, mask, prob, topology_params(mask.shape)), name="vessel analysis")
        self._analysis_worker = w
        w.yielded.connect(self.tasks.guard(lambda graph, g=gen, w=w: self._graph_built(w, g, graph)))
        w.returned.connect(self.tasks.guard(lambda result, g=gen, w=w: self._analysed(w, g, result)))
        w.errored.connect(self.tasks.guard(lambda msg, g=gen, w=w: self._analysis_failed(w, g, msg)))
        self.tasks.start(w, priority=0)  # connected first: a small mask is analysed before a later connect would run
        self.analysis_started.emit()

    def _graph_built(self, worker, gen: int, graph: VesselGraph) -> None:
        if worker is not self._analysis_worker or gen != self.generation:
            return
        self.graph, self.graph_generation = graph, gen
        self._select_pending()

    def _select_pending(self) -> None:
        if self._pending_segment_click is not None:
            x, y = self._pending_segment_click
            self._pending_segment_click = None
            self.select_segment_at(x, y)

    def _analysed(self, worker, gen: int, result) -> None:
        if worker is not self._analysis_worker:
            return  # from an image closed meanwhile
        self._analysis_worker = None
        if gen != self.generation:
            self.analyse()
            return
        self.graph, self.findings = result
        self.analysed_generation = self.graph_generation = gen
        self.analysis_ready.emit()
        self._select_pending()

    def _analysis_failed(self, worker, gen: int, message: str) -> None:
        if worker is self._analysis_worker:
            self._analysis_worker = None
            if gen != self.generation:
                self.analyse()  # the mask changed meanwhile: this one may well work
            else:
                self.status.emit(f"Vessel analysis failed: {message}")

    # -------------------------------------------------------------------- tools --
    def _tool_changed(self, tool: str) -> None:
        if tool != "trace":
            self.cancel_trace()
        if tool != "segment":
            self.clear_selection()
        if tool == "trace":
            self.ensure_cost()
            if self.cost is not None:
                self.status.emit(
                    "Trace: click along a vessel; Enter or double-click paints it, Esc cancels, [ ] change its width"
                )
        elif tool == "segment":
            self.status.emit("Segment: click a vessel to select the segment between two junctions; Delete removes it")

    def click(self, x: float, y: float) -> None:
        if self.canvas.tool == "trace":
            self.trace_click(x, y)
        elif self.canvas.tool == "segment":
            self.select_segment_at(x, y)

    def pointer_moved(self, x: float, y: float) -> None:
        self._last_pointer = (x, y)
        if self.canvas.tool == "trace" and self.tracer is not None and self.tracer.anchors:
            self._show_preview(self.tracer.preview(x, y))

    # -------------------------------------------------------------------- trace --
    def ensure_cost(self) -> None:
        """Start building the trace cost map of the open image unless it exists or is being built."""
        s = self.session
        if s is None or self.cost is not None or self._cost_worker is not None or self.tasks.closed:
            return
        prob = s.probability
        # Without a prediction yet the mask itself is the best guess of where vessels are.
        source = prob if prob is not None else s.document.mask.astype(np.float32)
        rgb, fov = self.canvas.rgb, getattr(s.loaded, "fov", None)
        w = Worker(build_cost, source, rgb, self.window.review.threshold, fov, name="trace cost map")
        self._cost_worker = w
        key = s.key
        w.returned.connect(self.tasks.guard(lambda cost, w=w, p=prob, k=key: self._cost_built(w, p, k, cost)))
        w.errored.connect(self.tasks.guard(lambda msg, w=w: self._cost_failed(w, msg)))
        self.tasks.start(w, priority=1)
        self.status.emit("Trace: preparing the vessel map for this image…")

    def _cost_built(self, worker, prob, key: str, cost: TraceCost) -> None:
        if worker is not self._cost_worker or self.session is None or self.session.key != key:
            return
        self._cost_worker = None
        self.cost, self._cost_source = cost, prob
        self.cost_ready.emit()
        if self.canvas.tool == "trace":
            self.status.emit("Trace: ready. Click along a vessel; Enter or double-click paints it, Esc cancels")
        pending, self._pending_clicks = self._pending_clicks, []
        for x, y in pending:
            self.trace_click(x, y)

    def _cost_failed(self, worker, message: str) -> None:
        if worker is self._cost_worker:
            self._cost_worker = None
            self._pending_clicks.clear()
            self.status.emit(f"Trace: the vessel map could not be built: {message}")

    @property
    def tracing(self) -> bool:
        return (self.tracer is not None and bool(self.tracer.anchors)) or bool(self._pending_clicks)

    def trace_click(self, x: float, y: float) -> None:
        if self.session is None:
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

    def finish_trace(self) -> bool:
        """Paint the traced path as one undo step (Enter / double-click). False if there was none."""
        tracer, doc = self.tracer, self._doc
        if tracer is None or doc is None or len(tracer.anchors) < 2:
            return False
        stroke = tracer.finish()
        self._hide_preview()
        self.trace_changed.emit()
        if stroke is None:
            return False
        edit = doc.apply("Trace", stroke.paint, tool="trace")
        self.status.emit("Trace painted" if edit is not None else "Trace: the vessel was already painted there")
        return edit is not None

    def cancel_trace(self) -> None:
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
        if self.canvas.tool != "trace":
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

    # ------------------------------------------------------------------ segment --
    def select_segment_at(self, x: float, y: float) -> None:
        if self._doc is None:
            return
        if not self.graph_fresh:
            self._pending_segment_click = (x, y)
            self.status.emit("Segment: reading the vessel graph…")
            self.analyse()
            return
        seg = self.graph.segment_at(x, y)
        if seg is None:
            self.clear_selection()
            self.status.emit("Segment: no vessel under the click")
            return
        territory = self.graph.segment_territory(self._doc.mask, seg)
        if territory is None:
            self.clear_selection()
            return
        self.selected = seg
        (y0, _y1, x0, _x1), patch = territory
        rgba = np.zeros((*patch.shape, 4), np.uint8)
        rgba[patch] = SEGMENT_COLOUR
        h, w = patch.shape
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self.highlight_item.setPixmap(QPixmap.fromImage(image))
        self.highlight_item.setPos(x0, y0)
        self.highlight_item.setVisible(True)
        length = self.graph.segments[seg].length
        self.status.emit(
            f"Segment selected ({length:.0f} px long, {count(int(patch.sum()), 'pixel')}): Delete removes it, "
            "Esc clears the selection"
        )
        self.selection_changed.emit()

    def clear_selection(self) -> None:
        had = self.selected is not None
        self.selected = None
        self._pending_segment_click = None
        self.highlight_item.setVisible(False)
        if had:
            self.selection_changed.emit()

    def delete_selected(self) -> bool:
        seg, graph, doc = self.selected, self.graph, self._doc
        if seg is None or graph is None or doc is None or not self.graph_fresh:
            return False
        self.clear_selection()
        edit = doc.apply("Delete segment", lambda m: graph.delete_segment(m, seg), tool="segment")
        if edit is not None:
            self.status.emit(f"Deleted the segment ({count(edit.removed, 'pixel')})")
        return edit is not None

    def escape(self) -> None:
        self.cancel_trace()
        self.clear_selection()


def install_vessel_tools(window) -> VesselTools:
    """The trace and segment tools, their keys (Enter, Esc, Delete) and the topology review panel."""
    from .topology_panel import install_topology_review

    tools = VesselTools(window)
    window.vessel_tools = tools
    tools.status.connect(lambda text: window.statusBar().showMessage(text, 8000))
    make = window.action_table.add
    window.finish_trace_action = make(
        "Finish trace", tools.finish_trace, ["Return", "Enter"], tip="Paint the traced vessel"
    )
    # Enter belongs to the image while a trace is open: a panel or field with the focus keeps its own
    # Enter (a window-wide shortcut would paint the trace instead).
    window.finish_trace_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    window.removeAction(window.finish_trace_action)
    window.canvas.addAction(window.finish_trace_action)
    window.cancel_trace_action = make("Cancel trace / clear selection", tools.escape, "Esc")
    window.delete_segment_action = make(
        "Delete segment", tools.delete_selected, "Delete", tip="Remove the selected vessel segment"
    )

    def update() -> None:
        # Enabled only while they mean something, so Enter, Esc and Delete reach the panels otherwise.
        window.finish_trace_action.setEnabled(tools.tracer is not None and len(tools.tracer.anchors) >= 2)
        window.cancel_trace_action.setEnabled(tools.tracing or tools.selected is not None)
        window.delete_segment_action.setEnabled(tools.selected is not None)

    tools.trace_changed.connect(update)
    tools.selection_changed.connect(update)
    update()
    edit_menu = next((a.menu() for a in window.menuBar().actions() if a.text() == "&Edit"), None)
    if edit_menu is not None:
        edit_menu.addSeparator()
        for a in (window.finish_trace_action, window.cancel_trace_action, window.delete_segment_action):
            edit_menu.addAction(a)
    install_topology_review(window, tools)
    return tools
