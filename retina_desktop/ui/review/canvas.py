"""The image view: fundus (colour or model input), probability heat map, editable mask overlay, tools.

Built on a pyqtgraph ViewBox (wheel zoom, drag pan). The mask overlay is not a pyqtgraph ImageItem:
re-rendering a 3504x2336 ImageItem costs tens of milliseconds per brush move. ``MaskOverlayItem``
keeps an ARGB32 buffer shared with a QImage; a stroke rewrites only its dirty rectangle of the
buffer and asks Qt to repaint only that rectangle.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsObject, QWidget

from ...core.painting import BBox
from ...core.review.mask_document import MaskDocument

pg.setConfigOptions(imageAxisOrder="row-major")

TOOLS = ("navigate", "brush", "eraser", "fill", "trace", "segment")
VESSEL_TOOLS = ("trace", "segment")  # their clicks go to ui.vessel_tools through ``vessel_clicked``
MASK_COLOUR = (0, 230, 118)


class MaskOverlayItem(QGraphicsObject):
    """Paints a boolean mask in one colour; partial updates touch only the dirty rectangle."""

    def __init__(self, colour: tuple[int, int, int] = MASK_COLOUR):
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._mask: np.ndarray | None = None
        self._buffer: np.ndarray | None = None
        self._qimage: QImage | None = None
        self._lut = np.zeros(2, dtype=np.uint32)
        self.paint_count = 0  # read by the benchmark to prove each timed move really repainted
        self.set_colour(colour)

    def set_colour(self, rgb: tuple[int, int, int]) -> None:
        r, g, b = rgb
        self._lut = np.array([0, (0xFF << 24) | (r << 16) | (g << 8) | b], dtype=np.uint32)
        if self._mask is not None:
            self.update_region(None)

    def set_mask(self, mask: np.ndarray | None) -> None:
        self.prepareGeometryChange()
        self._mask = mask
        if mask is None:
            self._buffer, self._qimage = None, None
        else:
            h, w = mask.shape
            buffer = self._buffer
            if buffer is None or buffer.shape != (h, w):
                buffer = self._buffer = np.empty((h, w), dtype=np.uint32)
                self._qimage = QImage(buffer.data, w, h, w * 4, QImage.Format.Format_ARGB32_Premultiplied)
            buffer[...] = self._lut[mask.view(np.uint8)]
        self.update()

    def update_region(self, bbox: BBox | None) -> None:
        buffer = self._buffer
        if self._mask is None or buffer is None:  # set_mask makes the buffer with the mask
            return
        if bbox is None:
            buffer[...] = self._lut[self._mask.view(np.uint8)]
            self.update()
            return
        y0, y1, x0, x1 = bbox
        buffer[y0:y1, x0:x1] = self._lut[self._mask[y0:y1, x0:x1].view(np.uint8)]
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    def boundingRect(self) -> QRectF:
        if self._mask is None:
            return QRectF()
        h, w = self._mask.shape
        return QRectF(0, 0, w, h)

    def paint(self, painter: QPainter, option, widget=None) -> None:
        self.paint_count += 1
        if self._qimage is None:
            return
        # Draw only the exposed part: a brush dab repaints a few hundred pixels, not 8 million.
        r = option.exposedRect.intersected(self.boundingRect())
        if r.isEmpty():
            return
        x0, y0 = math.floor(r.left()), math.floor(r.top())
        x1, y1 = math.ceil(r.right()), math.ceil(r.bottom())
        src = QRectF(x0, y0, x1 - x0, y1 - y0)
        painter.drawImage(src, self._qimage, src)


class ToolItem(QGraphicsObject):
    """Invisible item over the image that turns mouse input into brush, eraser and fill gestures."""

    def __init__(self, canvas: ImageCanvas):
        super().__init__()
        self._canvas = canvas
        self._size = QRectF()
        self._last: tuple[float, float] | None = None
        self._pending: tuple[float, float] | None = None  # a focusing press, painted once it becomes a drag
        self.setAcceptHoverEvents(True)
        self.setAcceptedMouseButtons(Qt.MouseButton.LeftButton)

    def set_size(self, w: int, h: int) -> None:
        self.prepareGeometryChange()
        self._size = QRectF(0, 0, w, h)

    def boundingRect(self) -> QRectF:
        return self._size

    def paint(self, painter, option, widget=None) -> None:
        pass

    def mousePressEvent(self, event) -> None:
        c = self._canvas
        if event.button() != Qt.MouseButton.LeftButton or c.document is None or c.tool == "navigate":
            event.ignore()
            return
        p = (event.pos().x(), event.pos().y())
        event.accept()
        if c.focus_click and c.tool in ("brush", "eraser"):
            self._pending = p  # the click that gave the image focus paints only if it turns into a drag
            return
        if not c.edit_guard():
            return  # e.g. an approved image the grader did not agree to edit: this press changes nothing
        if c.tool in VESSEL_TOOLS:
            c.vessel_clicked.emit(p[0], p[1])
            return
        if c.tool == "fill":
            c.fill_requested.emit(math.floor(p[0]), math.floor(p[1]))
            return
        value = c.tool == "brush"
        c.document.begin_stroke("Brush" if value else "Eraser")
        c.document.stroke_to(p, p, c.brush_radius, value)
        self._last = p

    def mouseMoveEvent(self, event) -> None:
        c = self._canvas
        p = (event.pos().x(), event.pos().y())
        c.move_cursor(p)
        pending, self._pending = self._pending, None
        if pending is not None and c.document is not None and c.edit_guard():
            value = c.tool == "brush"
            c.document.begin_stroke("Brush" if value else "Eraser")
            c.document.stroke_to(pending, pending, c.brush_radius, value)
            self._last = pending
        if self._last is None or c.document is None:
            event.ignore()
            return
        c.document.stroke_to(self._last, p, c.brush_radius, c.tool == "brush")
        self._last = p
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        c = self._canvas
        if self._pending is not None:
            self._pending = None
            c.focus_click_ignored.emit()
        if self._last is not None and c.document is not None:
            c.document.end_stroke()
            c.stroke_finished.emit()
        self._last = None
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        c = self._canvas
        if c.tool in VESSEL_TOOLS and c.document is not None and event.button() == Qt.MouseButton.LeftButton:
            event.accept()
            c.vessel_double_clicked.emit(event.pos().x(), event.pos().y())
            return
        super().mouseDoubleClickEvent(event)

    def hoverMoveEvent(self, event) -> None:
        self._canvas.move_cursor((event.pos().x(), event.pos().y()))

    def hoverLeaveEvent(self, event) -> None:
        self._canvas.hide_cursor()


class ImageCanvas(pg.GraphicsView):
    cursor_info = Signal(str)
    fill_requested = Signal(int, int)
    stroke_finished = Signal()
    zoom_changed = Signal(float)
    focus_click_ignored = Signal()  # a click (no drag) that gave the image focus did not paint
    tool_changed = Signal(str)
    vessel_clicked = Signal(float, float)  # a left click (image x, y) with the trace or segment tool
    vessel_double_clicked = Signal(float, float)
    pointer_moved = Signal(float, float)  # image x, y under the mouse, pressed or not

    def __init__(self, parent: QWidget | None = None, edit_guard: Callable[[], bool] = lambda: True) -> None:
        """``edit_guard()`` is asked before a press edits the mask; False: the press does nothing."""
        super().__init__(parent, useOpenGL=False, background=QColor(24, 26, 30))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.view = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.02)
        self.view.setMouseMode(pg.ViewBox.PanMode)
        self.setCentralItem(self.view)
        self.colour_item = pg.ImageItem(axisOrder="row-major")
        self.model_view_item = pg.ImageItem(axisOrder="row-major")
        self.model_view_item.setVisible(False)
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setLookupTable(pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256))
        self.heat_item.setOpacity(0.75)
        self.heat_item.setVisible(False)
        self.overlay = MaskOverlayItem()
        self.overlay.setOpacity(0.55)
        self.tool_item = ToolItem(self)
        self.cursor_outline = QGraphicsEllipseItem()
        pen = QPen(QColor(255, 255, 255, 230))
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        self.cursor_outline.setPen(pen)
        self.cursor_outline.setVisible(False)
        for z, item in enumerate(
            (self.colour_item, self.model_view_item, self.heat_item, self.overlay, self.tool_item, self.cursor_outline)
        ):
            item.setZValue(z)
            self.view.addItem(item)
        self.view.sigRangeChanged.connect(lambda *_: self.zoom_changed.emit(self.zoom_factor()))

        self.document: MaskDocument | None = None
        self.rgb: np.ndarray | None = None
        self.model_view: np.ndarray | None = None
        self.probability: np.ndarray | None = None
        self.tool = "navigate"
        self.brush_radius = 4.0
        self._mask_visible = True
        self._mask_opacity = 0.55
        self._cursor_pos: tuple[float, float] | None = None
        self.edit_guard = edit_guard
        self.focus_click = False  # true during the press that gave the canvas keyboard focus
        self._focus_by_mouse = False

    def focusInEvent(self, event) -> None:
        # Qt gives focus before it delivers the press that caused it: remember it for that press only.
        self._focus_by_mouse = event.reason() == Qt.FocusReason.MouseFocusReason
        if self._focus_by_mouse:  # a press that went elsewhere (the banner) must not leave it set
            QTimer.singleShot(0, lambda: setattr(self, "_focus_by_mouse", False))
        super().focusInEvent(event)

    def mousePressEvent(self, event) -> None:
        self.focus_click, self._focus_by_mouse = self._focus_by_mouse, False
        try:
            super().mousePressEvent(event)
        finally:
            self.focus_click = False

    # -- content ---------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None, model_view: np.ndarray | None = None) -> None:
        self.rgb, self.model_view = rgb, model_view
        if rgb is None:
            self.colour_item.clear()
            self.model_view_item.clear()
            self.tool_item.set_size(0, 0)
            self.set_probability(None)
            self.set_document(None)
            return
        self.colour_item.setImage(rgb, autoLevels=False, levels=(0, 255))
        if model_view is not None:
            self.model_view_item.setImage(model_view, autoLevels=False, levels=(0, 255))
        else:
            self.model_view_item.clear()
        h, w = rgb.shape[:2]
        self.tool_item.set_size(w, h)
        self.fit()

    def set_probability(self, prob: np.ndarray | None) -> None:
        self.probability = prob
        if prob is None:
            self.heat_item.clear()
        else:
            self.heat_item.setImage(prob, autoLevels=False, levels=(0.0, 1.0))

    def set_document(self, document: MaskDocument | None) -> None:
        if self.document is not None:
            self.document.changed.disconnect(self.overlay.update_region)
        self.document = document
        self.overlay.set_mask(document.mask if document is not None else None)
        if document is not None:
            document.changed.connect(self.overlay.update_region)

    # -- display options -------------------------------------------------------------------
    def show_model_input(self, on: bool) -> None:
        self.model_view_item.setVisible(on)
        self.colour_item.setVisible(not on)

    @property
    def showing_model_input(self) -> bool:
        return self.model_view_item.isVisible()

    def set_heat_visible(self, on: bool) -> None:
        self.heat_item.setVisible(on)

    @property
    def heat_visible(self) -> bool:
        return self.heat_item.isVisible()

    def set_mask_visible(self, on: bool) -> None:
        self._mask_visible = on
        self.overlay.setVisible(on)

    @property
    def mask_visible(self) -> bool:
        return self._mask_visible

    def set_mask_opacity(self, opacity: float) -> None:
        self._mask_opacity = float(np.clip(opacity, 0.0, 1.0))
        self.overlay.setOpacity(self._mask_opacity)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool
        self.setCursor(
            Qt.CursorShape.OpenHandCursor
            if tool == "navigate"
            else Qt.CursorShape.PointingHandCursor
            if tool in ("fill", "segment")
            else Qt.CursorShape.CrossCursor
        )
        self._update_cursor_outline()
        self.tool_changed.emit(tool)

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = max(0.5, float(radius))
        self._update_cursor_outline()

    # -- navigation ------------------------------------------------------------------------
    def fit(self) -> None:
        if self.rgb is None:
            return
        h, w = self.rgb.shape[:2]
        self.view.setRange(QRectF(0, 0, w, h), padding=0.02)

    def one_to_one(self) -> None:
        """One image pixel per screen pixel, keeping the view centre."""
        if self.rgb is None:
            return
        # The ViewBox is inset a little in the viewport; its own size in pixels is what counts.
        geom = self.view.sceneBoundingRect()
        vw, vh = max(1.0, geom.width()), max(1.0, geom.height())
        c = self.view.viewRect().center()
        self.view.setRange(QRectF(c.x() - vw / 2, c.y() - vh / 2, vw, vh), padding=0)

    def zoom_factor(self) -> float:
        """Screen pixels per image pixel."""
        vr = self.view.viewRect()
        geom = self.view.sceneBoundingRect()
        return geom.width() / vr.width() if vr.width() > 0 else 1.0

    def image_to_widget(self, x: float, y: float) -> QPoint:
        """Viewport coordinates of an image point (for tests and the benchmark)."""
        scene = self.view.mapViewToScene(QPointF(x, y))
        return self.mapFromScene(scene)

    def widget_to_image(self, pos: QPointF) -> tuple[float, float]:
        p = self.view.mapSceneToView(self.mapToScene(pos.toPoint() if isinstance(pos, QPointF) else pos))
        return p.x(), p.y()

    # -- cursor ----------------------------------------------------------------------------
    def move_cursor(self, p: tuple[float, float]) -> None:
        self._cursor_pos = p
        self._update_cursor_outline()
        self.pointer_moved.emit(p[0], p[1])
        self.cursor_info.emit(self.describe_pixel(p))

    def hide_cursor(self) -> None:
        self._cursor_pos = None
        self.cursor_outline.setVisible(False)
        self.cursor_info.emit("")

    def _update_cursor_outline(self) -> None:
        if self._cursor_pos is None or self.tool not in ("brush", "eraser"):
            self.cursor_outline.setVisible(False)
            return
        r = self.brush_radius
        x, y = self._cursor_pos
        self.cursor_outline.setRect(QRectF(x - r, y - r, 2 * r, 2 * r))
        self.cursor_outline.setVisible(True)

    def describe_pixel(self, p: tuple[float, float]) -> str:
        if self.rgb is None:
            return ""
        x, y = math.floor(p[0]), math.floor(p[1])
        h, w = self.rgb.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            return ""
        r, g, b = (int(v) for v in self.rgb[y, x])
        parts = [f"x {x}, y {y}", f"RGB {r} {g} {b}"]
        if self.model_view is not None:
            parts.append(f"input {int(self.model_view[y, x])}")
        if self.probability is not None:
            parts.append(f"p {float(self.probability[y, x]):.3f}")
        if self.document is not None:
            parts.append("vessel" if self.document.mask[y, x] else "background")
        return "   ".join(parts)
