"""What the vessel tools and the topology review use of the image canvas (``ui.review.canvas.ImageCanvas``, which
this package may not import: the window's features are independent of each other)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import SignalInstance


class VesselCanvas(Protocol):
    view: Any  # the pyqtgraph ViewBox the overlays are added to (addItem, removeItem, setRange)
    tool: str  # "navigate", "brush", … "trace", "segment"
    rgb: np.ndarray | None  # the photo on screen
    vessel_clicked: SignalInstance  # (x, y) in image pixels, with the trace or segment tool
    vessel_double_clicked: SignalInstance  # (x, y)
    pointer_moved: SignalInstance  # (x, y) under the mouse, pressed or not
    tool_changed: SignalInstance  # (tool)
