"""What the calibre view draws on the canvas: the optic disc as a circle the grader drags and resizes, zones B
and C as thin dashed rings around it, and the artery/vein labels with the vessels the calibre used."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPixmapItem, QGraphicsSceneMouseEvent

from model_core.calibre import ARTERY, UNCERTAIN, VEIN, ZONE_B, ZONE_C, Calibre, Disc

# The canvas puts pixel (col, row) on the square [col, col + 1) x [row, row + 1); model_core's coordinates are
# pixel centres, so half a pixel separates the two.
DISC_COLOUR = QColor(255, 236, 90)
ZONE_COLOUR = QColor(255, 236, 90, 200)
LABEL_COLOURS = {ARTERY: (255, 90, 90, 130), VEIN: (90, 140, 255, 130), UNCERTAIN: (70, 220, 90, 110)}
USED_COLOURS = {ARTERY: (255, 30, 30, 255), VEIN: (40, 110, 255, 255)}
Z = 20  # above the mask overlay and the tools' highlights


def _dashed(colour: QColor) -> QPen:
    pen = QPen(colour)
    pen.setCosmetic(True)
    pen.setWidthF(1.2)
    pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class DiscItems:
    """A CircleROI on the disc's margin and dashed circles at zone B's inner and outer radius and zone C's outer.
    ``moved(disc)`` is called when the grader lets go of a drag or resize (not while setting it)."""

    def __init__(self, view: pg.ViewBox, moved: Callable[[Disc], None]) -> None:
        self.view, self._moved = view, moved
        pen = QPen(DISC_COLOUR)
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        self.roi = pg.CircleROI((0, 0), (10, 10), pen=pen, movable=True, resizable=True)
        self.roi.setZValue(Z + 2)
        self.rings = [QGraphicsEllipseItem() for _ in range(3)]
        for ring in self.rings:
            ring.setPen(_dashed(ZONE_COLOUR))
            ring.setZValue(Z + 1)
            ring.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            view.addItem(ring)
        view.addItem(self.roi)
        self.roi.sigRegionChanged.connect(lambda _r: self._draw_rings())
        self.roi.sigRegionChangeFinished.connect(self._finished)
        self._setting = False
        self.set_visible(False)

    def disc(self) -> Disc:
        x, y = self.roi.pos()
        w, h = self.roi.size()
        d = float((w + h) / 2)
        return Disc(float(x) + d / 2 - 0.5, float(y) + d / 2 - 0.5, d)

    def set_disc(self, disc: Disc) -> None:
        self._setting = True
        try:
            r = disc.diameter / 2 - 0.5
            self.roi.setPos((disc.x - r, disc.y - r), update=False, finish=False)
            self.roi.setSize((disc.diameter, disc.diameter), update=True, finish=False)
        finally:
            self._setting = False
        self._draw_rings()

    def set_visible(self, on: bool) -> None:
        for item in (self.roi, *self.rings):
            item.setVisible(on)

    def set_editable(self, on: bool) -> None:
        """Off while a painting tool is in use: a stroke that starts inside the disc paints, it does not drag it."""
        buttons = Qt.MouseButton.LeftButton if on else Qt.MouseButton.NoButton
        self.roi.translatable = on
        for item in (self.roi, *(h["item"] for h in self.roi.handles)):
            item.setAcceptedMouseButtons(buttons)
            item.setAcceptHoverEvents(on)

    def _draw_rings(self) -> None:
        disc = self.disc()
        b_inner, b_outer = disc.zone_radii(ZONE_B)
        _, c_outer = disc.zone_radii(ZONE_C)
        for ring, r in zip(self.rings, (b_inner, b_outer, c_outer), strict=True):
            ring.setRect(QRectF(disc.x + 0.5 - r, disc.y + 0.5 - r, 2 * r, 2 * r))

    def _finished(self, _roi: object) -> None:
        if not self._setting:
            self._moved(self.disc())


class LabelsItem(QGraphicsPixmapItem):
    """The A/V labels, faint, and the vessels the calibre used, solid; with the A/V tool on it takes the left and
    right clicks on the image: ``clicked(x, y, kind)``, left artery, right or Shift+left vein, Ctrl+left
    uncertain."""

    def __init__(self, view: pg.ViewBox, clicked: Callable[[float, float, int], object]) -> None:
        super().__init__()
        self._clicked = clicked
        self.setZValue(Z)
        self.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)  # clicks on transparent pixels too
        self.set_clickable(False)
        self.setVisible(False)
        view.addItem(self)

    def set_clickable(self, on: bool) -> None:
        buttons = Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton
        self.setAcceptedMouseButtons(buttons if on else Qt.MouseButton.NoButton)

    def show_labels(self, labels: np.ndarray | None, result: Calibre | None) -> None:
        if labels is None:
            self.setPixmap(QPixmap())
            return
        rgba = np.zeros((*labels.shape, 4), np.uint8)
        for kind, colour in LABEL_COLOURS.items():
            rgba[labels == kind] = colour
        for vessel in result.used if result is not None else ():
            used = np.zeros(labels.shape, np.uint8)
            used[vessel.rows, vessel.cols] = 1
            y0, y1 = max(0, int(vessel.rows.min()) - 3), int(vessel.rows.max()) + 4
            x0, x1 = max(0, int(vessel.cols.min()) - 3), int(vessel.cols.max()) + 4
            thick = cv2.dilate(used[y0:y1, x0:x1], np.ones((3, 3), np.uint8)) > 0
            rgba[y0:y1, x0:x1][thick] = USED_COLOURS.get(vessel.kind, (255, 255, 255, 255))
        h, w = labels.shape
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self.setPixmap(QPixmap.fromImage(image))

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        mods = event.modifiers()
        if event.button() == Qt.MouseButton.RightButton or mods & Qt.KeyboardModifier.ShiftModifier:
            kind = VEIN
        elif mods & Qt.KeyboardModifier.ControlModifier:
            kind = UNCERTAIN
        else:
            kind = ARTERY
        p = event.pos()
        event.accept()
        self._clicked(float(p.x()) - 0.5, float(p.y()) - 0.5, kind)  # pixel centres, as the skeleton's
