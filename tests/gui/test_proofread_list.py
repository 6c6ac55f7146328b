"""The Topology panel as Proofread's list, built alone from the parts MainWindow hands them (no window): a photo
whose mask has three gaps the model saw faintly. With P on, the panel lists the three bridges surest first; a
row, N and Shift+N go to any of them (a skipped one too) without deciding; Accept and Reject are Enter and
Backspace; with P off, the panel lists its findings and shows their markers again."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import review_of_photo, shown_canvas, task_runner
from PySide6.QtWidgets import QWidget

from retina_desktop.ui.common.context import ActionRegistry
from retina_desktop.ui.common.image_ready import ImageReadiness
from retina_desktop.ui.vessels.proofread_view import REJECTED, ProofreadView
from retina_desktop.ui.vessels.topology_panel import TopologyReview
from retina_desktop.ui.vessels.vessel_tools import VesselTools

H, W = 60, 220
GAPS = ((40, 3), (100, 5), (160, 7))  # x, width: three breaks, the shortest the surest


@pytest.fixture
def parts(qtbot, tmp_path, app_settings):
    mask = np.zeros((H, W), bool)
    mask[28:31, 10:210] = True
    prob = np.where(mask, 0.9, 0.02).astype(np.float32)
    for x, gap in GAPS:
        mask[28:31, x : x + gap] = False
        prob[29, x : x + gap] = 0.3  # seen below the threshold
    rgb = np.full((H, W, 3), (190, 90, 40), np.uint8)  # nothing to see in the photo: no candidates
    review = review_of_photo(tmp_path, rgb, mask, prob)
    owner = QWidget()
    qtbot.addWidget(owner)
    canvas = shown_canvas(qtbot, review, (660, 300))
    tasks = task_runner(qtbot, owner)
    image_ready = ImageReadiness(owner)
    actions = ActionRegistry(owner)
    statuses: list[str] = []
    status = lambda text, _ms: statuses.append(text)  # noqa: E731
    tools = VesselTools(review, canvas, tasks, image_ready, actions, parent=owner)
    topology = TopologyReview(
        review, tools.analysis, canvas, app_settings, actions, status, lambda: tools.trace.cost,
        lambda: True, lambda: canvas.tool == "navigate", owner,
    )  # fmt: skip
    proofread = ProofreadView(review, canvas, tasks, image_ready, actions, status, lambda: True, canvas, owner)
    topology.follow(proofread)
    image_ready.opened("photo", has_prediction=True)
    image_ready.settle("photo")
    qtbot.waitUntil(lambda: tools.fresh and len(topology.findings) >= 3, timeout=30000)
    yield topology, proofread, review
    tasks.shutdown()


def _rows(topology: TopologyReview) -> list[str]:
    lst = topology.panel.list
    return [lst.item(i).text() for i in range(lst.count())]


def _x(p) -> int:
    return round(p.centroid[0])


def test_the_topology_panel_lists_the_queue_and_goes_back_to_a_skipped_proposal(qtbot, parts):
    topology, proofread, review = parts
    panel, doc = topology.panel, review.image.document
    findings_rows = _rows(topology)
    assert all(m.isVisible() for m in topology.markers) and panel.dismiss_button.text() == "Dismiss"

    with qtbot.waitSignal(proofread.computed, timeout=30000):
        proofread.action.setChecked(True)
    rows = _rows(topology)
    assert len(rows) == 3 and all(r.startswith("Bridge a break") for r in rows)
    xs = [_x(p) for p in proofread.queue.proposals]
    assert [round(float(r.split("(")[1].split(",")[0])) for r in rows] == xs  # the rows are the queue, in order
    assert panel.list.currentRow() == 0 and _x(proofread.current()) == xs[0]
    assert not any(m.isVisible() for m in topology.markers)  # the dashed proposal is the marker now
    assert (panel.fix_button.text(), panel.dismiss_button.text()) == ("Accept", "Reject")
    assert panel.summary_label.text().startswith("Proofread: 1 of 3, 0 accepted")
    assert not any(b.isEnabled() for b in panel.kind_boxes.values())

    topology.next_marker_action.trigger()  # N skips, deciding nothing
    assert panel.list.currentRow() == 1 and _x(proofread.current()) == xs[1]
    panel.list.setCurrentRow(2)  # a row goes to its proposal
    assert _x(proofread.current()) == xs[2] and proofread.item.isVisible()
    topology.prev_marker_action.trigger()  # Shift+N: back to the skipped second one
    assert panel.list.currentRow() == 1 and _x(proofread.current()) == xs[1]
    assert not doc.mask[28:31].all(axis=0)[10:210].all()  # nothing was decided by moving

    gap_x = xs[1]
    with qtbot.waitSignal(proofread.computed, timeout=30000):
        panel.fix_button.click()  # Accept: that gap is closed, one undo step
    closed = next((x, g) for x, g in GAPS if x <= gap_x <= x + g)
    assert doc.mask[28:31, closed[0] : closed[0] + closed[1]].all()
    assert len(_rows(topology)) == 2 and _x(proofread.current()) == xs[2]  # goes on from where it stood
    assert panel.summary_label.text().startswith("Proofread: 3 of 3, 1 accepted")  # all three were looked at

    panel.dismiss_button.click()  # Reject: logged for this image, the list goes on
    logged = [r for r in review.workspace.log.rows("photo") if r["action"] == REJECTED]
    assert [round(r["x"]) for r in logged] == [xs[2]]
    assert len(_rows(topology)) == 1 and _x(proofread.current()) == xs[0]

    proofread.action.setChecked(False)  # off: the findings and their markers come back
    qtbot.waitUntil(lambda: tools_fresh(topology), timeout=30000)
    assert _rows(topology) != rows and panel.dismiss_button.text() == "Dismiss"
    assert all(m.isVisible() for m in topology.markers) and len(topology.markers) == panel.list.count()
    assert all(b.isEnabled() for b in panel.kind_boxes.values())
    breaks = [sum(r.startswith("Break") for r in listed) for listed in (findings_rows, _rows(topology))]
    assert breaks == [3, 2]  # the accepted bridge closed one break


def tools_fresh(topology: TopologyReview) -> bool:
    return topology.analysis.fresh
