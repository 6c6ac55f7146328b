"""The window's views and where they sit: the image in the middle (under the workspace's banner), the image list
docked left, the Review panel docked right, the status bar's permanent parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QVBoxLayout, QWidget

from ..common.settings import AppSettings
from ..review.canvas import ImageCanvas
from ..review.image_list import ImageListPanel
from ..review.review_panel import ReviewPanel
from .banner import MessageBanner
from .status_panel import StatusPanel


@dataclass
class WindowViews:
    workspace_banner: QLabel  # what opening the workspace found (its layout, notices, who else has it open)
    canvas: ImageCanvas
    banner: MessageBanner  # the messages over the image
    image_list: ImageListPanel
    images_dock: QDockWidget
    review_panel: ReviewPanel
    review_dock: QDockWidget
    status_panel: StatusPanel


def build_views(window: QMainWindow, settings: AppSettings, edit_guard: Callable[[], bool]) -> WindowViews:
    central = QWidget(window)
    lay = QVBoxLayout(central)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(0)
    workspace_banner = QLabel(central)
    workspace_banner.setObjectName("workspace_banner")
    workspace_banner.setWordWrap(True)
    workspace_banner.setStyleSheet("QLabel { background: #2d3340; color: #dfe6f0; padding: 5px 10px; }")
    workspace_banner.hide()
    canvas = ImageCanvas(central, edit_guard)
    banner = MessageBanner(canvas)
    lay.addWidget(workspace_banner)
    lay.addWidget(canvas, 1)
    window.setCentralWidget(central)

    image_list = ImageListPanel(window)
    images_dock = _dock(window, "Images", "images_dock", image_list, Qt.DockWidgetArea.LeftDockWidgetArea)
    review_panel = ReviewPanel(settings.min_piece_pixels, settings.mask_opacity)
    review_dock = _dock(
        window, "Review", "review_dock", review_panel.scrolling(), Qt.DockWidgetArea.RightDockWidgetArea
    )
    status_panel = StatusPanel(window.statusBar())
    return WindowViews(
        workspace_banner, canvas, banner, image_list, images_dock, review_panel, review_dock, status_panel
    )


def _dock(window: QMainWindow, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    dock.setFeatures(
        QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
    )
    window.addDockWidget(area, dock)
    return dock
