"""Vessel tools on the canvas: the trace tool (T, ``trace_tool``), the segment tool (S, ``segment_tool``), and
the analysis of the mask (its vessel graph and topology review, ``vessel_analysis``) that the segment tool and
the topology panel share. ``VesselTools`` routes the canvas's clicks to the tool in use, follows the open image,
and makes the Enter / Esc / Delete actions, enabled only while they mean something."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from ...core.review.review_session import ReviewSession
from ..common.context import ActionRegistry
from ..common.image_ready import ImageReadiness
from ..common.workers import TaskRunner
from .segment_tool import SegmentTool
from .trace_tool import TraceTool
from .vessel_analysis import VesselAnalysis
from .vessel_canvas import VesselCanvas

TRACE_HELP = "Trace: click along a vessel; Enter or double-click paints it, Esc cancels, [ ] change its width"
SEGMENT_HELP = "Segment: click a vessel to select the segment between two junctions; Delete removes it"


class VesselTools(QObject):
    status = Signal(str)  # a note for the status bar
    trace_changed = Signal()
    selection_changed = Signal()

    def __init__(
        self,
        review: ReviewSession,
        canvas: VesselCanvas,
        tasks: TaskRunner,
        image_ready: ImageReadiness,
        actions: ActionRegistry,
        auto_analyse: Callable[[], bool] = lambda: True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.review, self.canvas = review, canvas
        self.analysis = VesselAnalysis(review, tasks, auto_analyse, self)
        self.trace = TraceTool(review, canvas, tasks, self)
        self.segment = SegmentTool(self.analysis, canvas, self)
        for source in (self.analysis.failed, self.trace.status, self.segment.status):
            source.connect(self.status.emit)
        self.trace.trace_changed.connect(self.trace_changed.emit)
        self.segment.selection_changed.connect(self.selection_changed.emit)

        canvas.vessel_clicked.connect(self.click)
        canvas.vessel_double_clicked.connect(lambda _x, _y: self.finish_trace())
        canvas.pointer_moved.connect(self.trace.pointer_moved)
        canvas.tool_changed.connect(self._tool_changed)
        image_ready.ready.connect(lambda _key: self.attach())  # after the first prediction, not before
        review.image_closed.connect(self.detach)
        review.prediction_shown.connect(lambda _key: self.trace.probability_changed())

        self.finish_trace_action = actions.add(
            "Finish trace", self.finish_trace, ["Return", "Enter"], tip="Paint the traced vessel"
        )
        self.cancel_trace_action = actions.add("Cancel trace / clear selection", self.escape, "Esc")
        self.delete_segment_action = actions.add(
            "Delete segment", self.delete_selected, "Delete", tip="Remove the selected vessel segment"
        )
        self.trace_changed.connect(self._update_actions)
        self.selection_changed.connect(self._update_actions)
        self._update_actions()

    # ---------------------------------------------------------------- what others read --
    @property
    def tracing(self) -> bool:
        return self.trace.tracing

    @property
    def selected(self) -> int | None:
        return self.segment.selected

    @property
    def fresh(self) -> bool:
        """True when the analysis (graph and topology findings) describes the current mask."""
        return self.analysis.fresh

    def _update_actions(self) -> None:
        # Enabled only while they mean something, so Enter, Esc and Delete reach the panels otherwise.
        self.finish_trace_action.setEnabled(self.trace.can_finish)
        self.cancel_trace_action.setEnabled(self.tracing or self.selected is not None)
        self.delete_segment_action.setEnabled(self.selected is not None)

    # -------------------------------------------------------------------- image --
    def attach(self) -> None:
        self.detach()
        s = self.review.image
        if s is None:
            return
        self.analysis.attach(s.document)
        if self.canvas.tool == "trace":
            self.trace.ensure_cost()

    def detach(self) -> None:
        self.trace.forget_image()
        self.segment.clear()
        self.analysis.detach()

    # -------------------------------------------------------------------- tools --
    def _tool_changed(self, tool: str) -> None:
        if tool != "trace":
            self.trace.cancel()
        if tool != "segment":
            self.segment.clear()
        if tool == "trace":
            self.trace.ensure_cost()
            if self.trace.cost is not None:
                self.status.emit(TRACE_HELP)
        elif tool == "segment":
            self.status.emit(SEGMENT_HELP)

    def click(self, x: float, y: float) -> None:
        if self.canvas.tool == "trace":
            self.trace.click(x, y)
        elif self.canvas.tool == "segment":
            self.segment.select_at(x, y)

    def finish_trace(self) -> bool:
        """Paint the traced path as one undo step (Enter / double-click). False if there was none."""
        return self.trace.finish(self.analysis.document)

    def width_step(self, step: int) -> bool:
        """``[`` / ``]``: the traced vessel's width while the trace tool is in use; False (not used) otherwise."""
        return self.trace.width_step(step)

    def delete_selected(self) -> bool:
        return self.segment.delete_selected()

    def escape(self) -> None:
        self.trace.cancel()
        self.segment.clear()
