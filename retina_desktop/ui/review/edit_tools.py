"""The correction tools: which tool the canvas uses, the brush size, the mask opacity, undo/redo, Fill and
*Remove smaller pieces*. They act on the open image's mask document, which the review session owns.

Destructive tools are guarded: the first edit of an approved image asks first (its status never drops to
"edited" silently), and Fill refuses to erase a piece over 2 % of the vessel pixels, pointing to the eraser."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QSignalBlocker, Signal
from PySide6.QtGui import QAction

from ...core.painting import BBox, LargePieceFill, OpenRegionFill, flood_fill, remove_small_pieces
from ...core.review.mask_document import MaskDocument
from ...core.review.review_session import ReviewSession
from ..common.settings import AppSettings
from ..common.words import count
from .approved_guard import ApprovedImageGuard
from .canvas import ImageCanvas
from .review_panel import ReviewPanel


class EditTools(QObject):
    message = Signal(str, str)  # text, level
    status = Signal(str)  # a short note for the status bar

    def __init__(
        self,
        review: ReviewSession,
        canvas: ImageCanvas,
        panel: ReviewPanel,
        settings: AppSettings,
        guard: ApprovedImageGuard,
        width_keys_first: Callable[[int], bool] = lambda step: False,
        parent: QObject | None = None,
    ) -> None:
        """``guard`` is asked before undo, redo and Fill change an approved image (the canvas asks it before a
        stroke). ``width_keys_first(step)`` gets ``[`` / ``]`` first (the trace tool's width while tracing) and
        returns True when it used the key; otherwise they size the brush."""
        super().__init__(parent)
        self.review, self.canvas, self.panel, self.settings = review, canvas, panel, settings
        self.guard, self.width_keys_first = guard, width_keys_first
        self.tool_actions: dict[str, QAction] = {}  # set by the window once its actions exist
        panel.brush_slider.valueChanged.connect(lambda v: self.set_brush_radius(v / 2.0, from_slider=True))
        panel.opacity_slider.valueChanged.connect(self.set_opacity)
        panel.remove_small_button.clicked.connect(self.remove_small)
        canvas.fill_requested.connect(self.fill_at)
        canvas.focus_click_ignored.connect(
            lambda: self.status.emit(
                "That click gave the image focus and changed nothing; click again (or drag) to paint"
            )
        )
        self.set_brush_radius(settings.brush_radius)
        self.set_opacity(panel.opacity_slider.value())

    @property
    def document(self) -> MaskDocument | None:
        return self.review.image.document if self.review.image is not None else None

    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        action = self.tool_actions.get(tool)
        if action is not None and not action.isChecked():
            action.setChecked(True)

    def set_brush_radius(self, radius: float, from_slider: bool = False) -> None:
        radius = float(min(50.0, max(0.5, radius)))
        self.canvas.set_brush_radius(radius)
        self.settings.brush_radius = radius
        self.panel.brush_label.setText(f"{radius:.1f} px")
        if not from_slider:
            with QSignalBlocker(self.panel.brush_slider):
                self.panel.brush_slider.setValue(round(radius * 2))

    def bigger_brush(self) -> None:
        if self.width_keys_first(+1):
            return
        self.set_brush_radius(self.canvas.brush_radius * 1.25 + 0.5)

    def smaller_brush(self) -> None:
        if self.width_keys_first(-1):
            return
        self.set_brush_radius((self.canvas.brush_radius - 0.5) / 1.25)

    def set_opacity(self, value: int) -> None:
        self.canvas.set_mask_opacity(value / 100.0)
        self.settings.mask_opacity = value / 100.0

    def undo(self) -> None:
        if self.document is not None and self.document.can_undo and self.guard.may_edit():
            self.document.undo()

    def redo(self) -> None:
        if self.document is not None and self.document.can_redo and self.guard.may_edit():
            self.document.redo()

    def fill_at(self, x: int, y: int) -> None:
        if self.document is None or not self.guard.may_edit():
            return
        try:
            self.document.apply("Fill", lambda m: flood_fill(m, (x, y), guard=True), tool="fill")
        except LargePieceFill as exc:
            # Erasing the whole connected piece took away a vessel tree with one stray click; a small stray
            # fragment (under the limit) still goes with one click.
            self.message.emit(
                f"Fill not applied at ({x}, {y}): it would erase a whole connected vessel piece ({exc}). "
                "To remove one vessel, click it with the Segment tool (S) and press Delete; to remove "
                "part of it, use the eraser (E).",
                "warning",
            )
        except OpenRegionFill as exc:
            self.message.emit(
                f"Fill not applied at ({x}, {y}): the background there is not a closed hole ({exc}). "
                "Fill closes holes inside vessels; paint anything else with the brush (B).",
                "warning",
            )

    def remove_small(self) -> None:
        if self.document is None or not self.guard.may_edit():
            return
        n = self.panel.min_piece_spin.value()
        self.settings.min_piece_pixels = n
        removed = [0]

        def op(mask: np.ndarray) -> BBox | None:
            bbox, count = remove_small_pieces(mask, n)
            removed[0] = count
            return bbox

        self.document.apply(f"Remove pieces under {n} px", op, tool="cleanup")
        self.status.emit(f"Removed {count(removed[0], 'piece')} smaller than {count(n, 'pixel')}")
