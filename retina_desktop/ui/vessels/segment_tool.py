"""The segment tool (S): a click selects the segment between two junctions under it and highlights the pixels
that Delete would remove (``core.vessels.vessel_graph``); Delete removes only those, as one undo step."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem

from ..common.words import count
from .vessel_analysis import VesselAnalysis
from .vessel_canvas import VesselCanvas

SEGMENT_COLOUR = (255, 64, 200, 170)


class SegmentTool(QObject):
    """The selected segment of the analysed mask's graph, and its highlight on the canvas."""

    status = Signal(str)
    selection_changed = Signal()

    def __init__(self, analysis: VesselAnalysis, canvas: VesselCanvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.analysis = analysis
        self.selected: int | None = None
        self._pending_click: tuple[float, float] | None = None  # made before the graph was read
        self.highlight_item = QGraphicsPixmapItem()
        self.highlight_item.setZValue(10)
        self.highlight_item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.highlight_item.setVisible(False)
        canvas.view.addItem(self.highlight_item)
        analysis.graph_ready.connect(self._select_pending)
        analysis.mask_changed.connect(self._mask_changed)

    def _mask_changed(self) -> None:
        if self.selected is not None:
            self.clear()  # the highlight no longer shows what Delete would remove

    def _select_pending(self) -> None:
        if self._pending_click is not None:
            x, y = self._pending_click
            self._pending_click = None
            self.select_at(x, y)

    def select_at(self, x: float, y: float) -> None:
        a = self.analysis
        doc, graph = a.document, a.graph
        if doc is None:
            return
        if not a.graph_fresh or graph is None:
            self._pending_click = (x, y)
            self.status.emit("Segment: reading the vessel graph…")
            a.analyse()
            return
        seg = graph.segment_at(x, y)
        if seg is None:
            self.clear()
            self.status.emit("Segment: no vessel under the click")
            return
        territory = graph.segment_territory(doc.mask, seg)
        if territory is None:
            self.clear()
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
        length = graph.segments[seg].length
        self.status.emit(
            f"Segment selected ({length:.0f} px long, {count(int(patch.sum()), 'pixel')}): Delete removes it, "
            "Esc clears the selection"
        )
        self.selection_changed.emit()

    def clear(self) -> None:
        had = self.selected is not None
        self.selected = None
        self._pending_click = None
        self.highlight_item.setVisible(False)
        if had:
            self.selection_changed.emit()

    def delete_selected(self) -> bool:
        seg, graph, doc = self.selected, self.analysis.graph, self.analysis.document
        if seg is None or graph is None or doc is None or not self.analysis.graph_fresh:
            return False
        self.clear()
        edit = doc.apply("Delete segment", lambda m: graph.delete_segment(m, seg), tool="segment")
        if edit is not None:
            self.status.emit(f"Deleted the segment ({count(edit.removed, 'pixel')})")
        return edit is not None
