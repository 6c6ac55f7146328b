"""The analysis of the open mask that the segment tool and the topology review share: after each edit
(debounced), a worker builds the vessel graph of a copy of the mask and runs the topology review
(``core.vessels.topology``); results for a mask that has changed since are dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ...core.review.mask_document import MaskDocument
from ...core.review.review_session import ReviewSession
from ..common.workers import TaskRunner, Worker, WorkerContext

# scikit-image and SciPy (the vessel engine) take about a second to import: they are imported where the vessel
# tools first run, in workers, so the window and the first prediction do not wait for them.
if TYPE_CHECKING:
    from ...core.painting import BBox
    from ...core.vessels.topology import Finding, TopologyParams
    from ...core.vessels.vessel_graph import VesselGraph

DRIVE_WIDTH = 565  # the topology parameters were tuned on DRIVE-sized photos


def analyse_mask(
    ctx: WorkerContext, mask: np.ndarray, probability: np.ndarray | None, params: TopologyParams
) -> tuple[VesselGraph, list[Finding]]:
    """The vessel graph of ``mask`` and its topology findings (runs in a worker on a copy of the mask).

    The graph is also emitted as soon as it exists: the segment tool needs only it, and the review takes
    several times longer on a large photo."""
    from ...core.vessels.topology import review
    from ...core.vessels.vessel_graph import VesselGraph

    graph = VesselGraph.from_mask(mask)
    ctx.emit(graph)
    return graph, review(mask, probability, params, graph=graph)


def topology_params(shape: tuple[int, ...]) -> TopologyParams:
    # Never scaled below DRIVE's size: on a small photo a 5-px gap is still a break.
    from ...core.vessels.topology import TopologyParams

    return TopologyParams().scaled(max(1.0, shape[1] / DRIVE_WIDTH))


class VesselAnalysis(QObject):
    """``graph`` and ``findings`` of the attached mask document, one worker at a time."""

    mask_changed = Signal()  # the attached mask was edited: what was read off it is stale
    analysis_started = Signal()
    graph_ready = Signal()  # ``graph`` describes the mask as it is now (the review may still run)
    analysis_ready = Signal()  # ``graph`` and ``findings`` describe the mask as it is now
    failed = Signal(str)

    def __init__(
        self,
        review: ReviewSession,
        tasks: TaskRunner,
        auto_analyse: Callable[[], bool] = lambda: True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.review, self.tasks = review, tasks
        # Whether edits re-run the analysis by themselves (the topology panel is showing); otherwise it runs
        # when the segment tool needs the graph, so a large photo's review costs nothing while hidden.
        self.auto_analyse = auto_analyse
        self.document: MaskDocument | None = None
        self.graph: VesselGraph | None = None
        self.findings: list[Finding] = []
        self.generation = 0  # bumped by every change of the mask
        self.analysed_generation = -1
        self.graph_generation = -1
        self.worker: Worker | None = None
        self.timer = QTimer(self, singleShot=True, interval=300)
        self.timer.timeout.connect(self.analyse)

    @property
    def fresh(self) -> bool:
        """True when ``graph`` and ``findings`` describe the current mask."""
        return self.document is not None and self.analysed_generation == self.generation

    @property
    def graph_fresh(self) -> bool:
        return self.document is not None and self.graph_generation == self.generation

    def attach(self, document: MaskDocument) -> None:
        self.detach()
        self.document = document
        document.changed.connect(self._mask_changed)
        if self.auto_analyse():
            self.analyse()

    def detach(self) -> None:
        if self.document is not None:
            self.document.changed.disconnect(self._mask_changed)
        self.document = None
        self.graph, self.findings = None, []
        self.generation += 1
        self.worker = None
        self.timer.stop()

    def _mask_changed(self, _bbox: BBox | None) -> None:
        self.generation += 1
        self.mask_changed.emit()
        if self.auto_analyse():
            if not self.timer.isActive():
                self.analysis_started.emit()  # once per burst of changes, not per brush segment
            self.timer.start()

    def set_live(self, on: bool) -> None:
        """The topology panel shown (edits are reviewed as they come) or hidden (none is, and a pending one
        is dropped)."""
        if not on:
            self.timer.stop()
        elif not self.fresh:
            self.analyse()

    def analyse(self) -> None:
        """Build the graph and review of the mask as it is now, in a worker (one at a time)."""
        self.timer.stop()
        doc, image = self.document, self.review.image
        if doc is None or image is None or self.tasks.closed:
            return
        if self.worker is not None:
            return  # when it returns stale, it starts the next one
        gen, prob = self.generation, image.probability
        # The parameters are made in the worker too: building them imports the vessel engine (SciPy), which
        # on the UI thread held the first prediction back by 1.4 s.
        mask = doc.mask.copy()
        w = Worker(lambda ctx: analyse_mask(ctx, mask, prob, topology_params(mask.shape)), name="vessel analysis")
        self.worker = w
        w.yielded.connect(self.tasks.guard(lambda graph, g=gen, w=w: self._graph_built(w, g, graph)))
        w.returned.connect(self.tasks.guard(lambda result, g=gen, w=w: self._analysed(w, g, result)))
        w.errored.connect(self.tasks.guard(lambda msg, g=gen, w=w: self._failed(w, g, msg)))
        self.tasks.start(w, priority=0)  # connected first: a small mask is analysed before a later connect would run
        self.analysis_started.emit()

    def _graph_built(self, worker: Worker, gen: int, graph: VesselGraph) -> None:
        if worker is not self.worker or gen != self.generation:
            return
        self.graph, self.graph_generation = graph, gen
        self.graph_ready.emit()

    def _analysed(self, worker: Worker, gen: int, result: tuple[VesselGraph, list[Finding]]) -> None:
        if worker is not self.worker:
            return  # from an image closed meanwhile
        self.worker = None
        if gen != self.generation:
            self.analyse()
            return
        self.graph, self.findings = result
        self.analysed_generation = self.graph_generation = gen
        self.analysis_ready.emit()
        self.graph_ready.emit()

    def _failed(self, worker: Worker, gen: int, message: str) -> None:
        if worker is self.worker:
            self.worker = None
            if gen != self.generation:
                self.analyse()  # the mask changed meanwhile: this one may well work
            else:
                self.failed.emit(f"Vessel analysis failed: {message}")
