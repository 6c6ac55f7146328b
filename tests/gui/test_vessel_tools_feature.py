"""The vessel tools and the topology review built alone, from the parts MainWindow would hand them (no window):
a canvas, a review session with one synthetic photo open, a task runner, the image readiness and an action
registry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from gui_helpers import send_mouse, shown_canvas, task_runner
from PySide6.QtWidgets import QWidget

from model_core.imageio import write_png_atomic
from retina_desktop.core.model.tasks import load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.common.context import ActionRegistry
from retina_desktop.ui.common.image_ready import ImageReadiness
from retina_desktop.ui.vessels.topology_panel import TopologyReview
from retina_desktop.ui.vessels.vessel_tools import VesselTools

H, W = 160, 150
JUNCTION = (75, 90)  # x, y
BRANCH_ENDS = ((75, 150), (30, 20), (120, 20))  # bottom, upper left, upper right


def _line(a, b, thickness=5) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    cv2.line(m, a, b, 1, thickness=thickness)
    return m.astype(bool)


@pytest.fixture
def parts(qtbot, tmp_path):
    """(review, canvas, tasks, image readiness, action owner) with one flat synthetic photo open on an empty
    mask; the tasks are shut down afterwards."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = (190, 90, 40)
    write_png_atomic(tmp_path / "flat.png", rgb)
    ws = Workspace(tmp_path)
    review = ReviewSession()
    review.set_workspace(ws)
    request, entry = review.begin_load("flat")
    assert review.finish_load(request, load_image(None, ws, entry, "no model")) is not None
    owner = QWidget()
    qtbot.addWidget(owner)
    canvas = shown_canvas(qtbot, review, (450, 480))
    tasks = task_runner(qtbot, owner)
    yield review, canvas, tasks, ImageReadiness(owner), owner
    tasks.shutdown()


def _click(canvas, x, y):
    p = canvas.image_to_widget(x, y)
    send_mouse(canvas.viewport(), "press", p)
    send_mouse(canvas.viewport(), "release", p)


def test_a_segment_click_and_delete_remove_exactly_one_branch_of_a_y_as_one_undo_step(qtbot, parts):
    review, canvas, tasks, image_ready, owner = parts
    tools = VesselTools(review, canvas, tasks, image_ready, ActionRegistry(owner), parent=owner)
    doc = review.image.document
    y_mask = np.zeros((H, W), bool)
    for end in BRANCH_ENDS:
        y_mask |= _line(JUNCTION, end)
    doc.replace("Y", y_mask)
    steps = doc.undo_count
    image_ready.opened("flat", has_prediction=True)  # ready: the tools follow this image's mask now
    assert not tools.delete_segment_action.isEnabled()

    canvas.set_tool("segment")
    _click(canvas, 45.5, 42.5)  # on the upper-left branch
    qtbot.waitUntil(lambda: tools.selected is not None, timeout=20000)
    assert tools.segment.highlight_item.isVisible() and tools.delete_segment_action.isEnabled()
    tools.delete_segment_action.trigger()

    yy, xx = np.mgrid[:H, :W]
    away = np.hypot(xx - JUNCTION[0], yy - JUNCTION[1]) > 10  # the fork, where the branches overlap, stays
    left = _line(JUNCTION, BRANCH_ENDS[1]) & away
    others = _line(JUNCTION, BRANCH_ENDS[0]) | _line(JUNCTION, BRANCH_ENDS[2])
    assert left.sum() > 300 and not doc.mask[left].any()
    assert doc.mask[others].all()  # the other two branches, pixel for pixel
    assert not (doc.mask & ~y_mask).any() and doc.undo_count == steps + 1
    assert tools.selected is None and not tools.delete_segment_action.isEnabled()
    assert doc.undo() and np.array_equal(doc.mask, y_mask)


def test_the_bridge_of_a_5px_gap_asks_the_edit_guard_and_closes_the_gap_as_one_undo_step(qtbot, parts, app_settings):
    review, canvas, tasks, image_ready, owner = parts
    actions = ActionRegistry(owner)
    tools = VesselTools(review, canvas, tasks, image_ready, actions, parent=owner)
    allowed: list[bool] = [False]
    statuses: list[str] = []
    topo = TopologyReview(
        review,
        tools.analysis,
        canvas,
        app_settings,
        actions,
        lambda text, _ms: statuses.append(text),
        lambda: tools.trace.cost,
        lambda: allowed[0],
        lambda: canvas.tool == "navigate",
        owner,
    )
    doc = review.image.document
    gap = np.zeros((H, W), bool)
    gap[78:83, 15:136] = True
    gap[:, 70:75] = False  # a 5-px gap
    doc.replace("gap", gap)
    image_ready.opened("flat", has_prediction=True)
    qtbot.waitUntil(lambda: tools.fresh and any(f.kind == "break" for f in topo.findings), timeout=20000)
    assert len(topo.markers) == len(topo.findings) == topo.panel.list.count()

    topo.next_marker_action.trigger()  # N
    assert topo.current_finding is not None and topo.current_finding.kind == "break"
    assert topo.panel.fix_button.text() == "Bridge" and statuses[-1].startswith("1 of ")
    steps = doc.undo_count
    assert not topo.fix_current()  # the guard said no (an approved image the grader did not agree to edit)
    assert np.array_equal(doc.mask, gap) and doc.undo_count == steps
    allowed[0] = True
    assert topo.fix_current()
    assert doc.mask[78:83, 70:75].all()  # the gap is closed at the vessel's width
    assert not doc.mask[:76].any() and not doc.mask[85:].any() and doc.undo_count == steps + 1
    qtbot.waitUntil(lambda: tools.fresh, timeout=20000)  # the review runs again after the edit
    assert not any(f.kind == "break" for f in topo.findings)
