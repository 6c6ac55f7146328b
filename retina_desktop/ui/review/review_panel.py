"""The right-hand review panel: the open image, the correction tools, the view, the measures, Save and Approve.

A widget of its own that only shows and forwards: the main window connects its controls to the review
session and the canvas. Save and Approve sit at the top, where no dock below can cover them.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..common.elided_label import ElidedLabel

MEASURE_ROWS = ("Dice", "IoU", "Accuracy", "AUC", "Pixels added", "Pixels removed", "Vessel pixels")
# What the two pixel counts are: differences between the prediction and the mask, not the grader's edits.
MEASURE_TITLES = {"Pixels added": "Only in mask", "Pixels removed": "Only in prediction"}


class HeatLegend(QWidget):
    """The heat map's colour scale (the canvas's inferno map over probabilities 0 to 1)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("heat_legend")
        self.setFixedHeight(28)
        self.setToolTip("Probability heat map (H): the model's vessel probability per pixel, 0 (dark) to 1 (bright)")
        cmap = pg.colormap.get("inferno")
        self._stops = [
            (float(p), QColor(*[int(c) for c in cmap.map(p, mode="byte")[:3]])) for p in (0.0, 0.25, 0.5, 0.75, 1.0)
        ]

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        bar = self.rect().adjusted(0, 0, 0, -14)
        grad = QLinearGradient(bar.left(), 0, bar.right(), 0)
        for pos, colour in self._stops:
            grad.setColorAt(pos, colour)
        p.fillRect(bar, grad)
        p.setPen(self.palette().windowText().color())
        for pos, text in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):
            x = int(bar.left() + pos * bar.width())
            w = p.fontMetrics().horizontalAdvance(text)
            p.drawText(min(max(0, x - w // 2), self.width() - w), self.height() - 2, text)
        p.end()


class ReviewPanel(QWidget):
    def __init__(self, min_piece_pixels: int, mask_opacity: float, parent=None):
        super().__init__(parent)
        pl = QVBoxLayout(self)
        pl.setContentsMargins(6, 6, 6, 6)

        review_row = QHBoxLayout()
        self.save_button = QPushButton("Save")
        self.approve_button = QPushButton("Approve")
        self.approve_button.setObjectName("approve_button")
        self.approve_button.setStyleSheet("QPushButton { font-weight: bold; }")
        review_row.addWidget(self.save_button)
        review_row.addWidget(self.approve_button)
        pl.addLayout(review_row)

        for box in (
            self._image_box(),
            self._tools_box(min_piece_pixels),
            self._view_box(mask_opacity),
            self._measure_box(),
        ):
            pl.addWidget(box)
        pl.addStretch(1)

    def _image_box(self) -> QGroupBox:
        box = QGroupBox("Image", self)
        info = QFormLayout(box)
        # A long file name is elided in the middle: word-wrapped, it widened the panel past the window (issue 27).
        self.image_name_label = ElidedLabel("–")
        self.image_name_label.setObjectName("image_name_label")
        self.image_status_label = QLabel("–")
        self.mask_source_label = ElidedLabel("–")
        info.addRow("Name", self.image_name_label)
        info.addRow("Status", self.image_status_label)
        info.addRow("Mask from", self.mask_source_label)
        return box

    def _tools_box(self, min_piece_pixels: int) -> QGroupBox:
        box = QGroupBox("Correct", self)
        tl = QFormLayout(box)
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(1, 100)
        self.brush_slider.setObjectName("brush_slider")
        self.brush_label = QLabel()
        tl.addRow("Brush radius", _row(self.brush_slider, self.brush_label))
        self.min_piece_spin = QSpinBox()
        self.min_piece_spin.setRange(2, 100000)
        self.min_piece_spin.setValue(min_piece_pixels)
        self.min_piece_spin.setSuffix(" px")
        self.remove_small_button = QPushButton("Remove smaller pieces")
        tl.addRow("Pieces under", _row(self.min_piece_spin, self.remove_small_button, stretch_first=False))
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(50)
        self.threshold_slider.setObjectName("threshold_slider")
        self.threshold_label = QLabel("0.50")
        self.threshold_label.setObjectName("threshold_label")
        tl.addRow("Threshold", _row(self.threshold_slider, self.threshold_label))
        return box

    def _view_box(self, mask_opacity: float) -> QGroupBox:
        box = QGroupBox("View", self)
        vl = QFormLayout(box)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(mask_opacity * 100))
        vl.addRow("Mask opacity", self.opacity_slider)
        self.zoom_label = QLabel("–")
        self.zoom_label.setObjectName("zoom_label")
        vl.addRow("Zoom", self.zoom_label)
        self.heat_legend = HeatLegend(box)
        vl.addRow("Heat map", self.heat_legend)
        return box

    def _measure_box(self) -> QGroupBox:
        box = QGroupBox("Model prediction vs. mask on screen", self)
        box.setToolTip(
            "The model's thresholded prediction scored against the mask on screen (yours, or the "
            "reference as loaded). The pixel counts are where the two differ, not what you changed: "
            "the review log counts your changes."
        )
        ml = QFormLayout(box)
        self.measure_labels: dict[str, QLabel] = {}
        for name in MEASURE_ROWS:
            lab = QLabel("–")
            lab.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.measure_labels[name] = lab
            ml.addRow(MEASURE_TITLES.get(name, name), lab)
        return box

    def show_threshold(self, t: float, mask_edited: bool) -> None:
        """The slider and label say the threshold; the label also says when the mask is not simply cut at it."""
        blocked = self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(t * 100))
        self.threshold_slider.blockSignals(blocked)
        self.threshold_label.setText(f"{t:.2f}" + (" (mask edited)" if mask_edited else ""))
        self.threshold_label.setToolTip(
            "The mask on screen was edited or saved by hand: moving the slider "
            "re-derives it from the prediction (after asking)."
            if mask_edited
            else "The mask on screen is the prediction cut at this threshold."
        )

    def clear_image(self) -> None:
        labels: list[QLabel | ElidedLabel] = [
            self.image_name_label,
            self.image_status_label,
            self.mask_source_label,
            self.zoom_label,
            *self.measure_labels.values(),
        ]
        for lab in labels:
            lab.setText("–")

    def scrolling(self) -> QScrollArea:
        """This panel in a scroll area, so that it never makes the window taller than the screen."""
        area = QScrollArea()
        area.setWidget(self)
        area.setWidgetResizable(True)
        area.setFrameShape(QScrollArea.Shape.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        area.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        area.setMinimumWidth(self.sizeHint().width() + 16)
        return area


def _row(first: QWidget, second: QWidget, stretch_first: bool = True) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(first, 1 if stretch_first else 0)
    row.addWidget(second)
    return row
