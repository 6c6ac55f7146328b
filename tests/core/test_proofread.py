"""The Proofread queue: what it proposes on synthetic vessels, what accepting and rejecting do, its counters."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from retina_desktop.core.painting import paint_segment
from retina_desktop.core.vessels.proofread import ProofreadQueue, view_box
from retina_desktop.core.vessels.tracing import TraceCost, profile_radius


def photo_with(vessels: list[tuple[np.ndarray, float, int]], shape=(120, 200)) -> np.ndarray:
    """An RGB photo of a bright background with dark vessels: (centre line (n, 2) x, y, width, darkening)."""
    green = np.full(shape, 160, np.float32)
    for line, width, dark in vessels:
        m = np.zeros(shape, bool)
        for a, b in itertools.pairwise(line):
            paint_segment(m, tuple(a), tuple(b), width / 2, True)
        green[m] -= dark
    green = cv2.GaussianBlur(green, (0, 0), 0.7)
    rgb = np.zeros((*shape, 3), np.uint8)
    rgb[..., 1] = np.clip(green, 0, 255).astype(np.uint8)
    rgb[..., 0] = 200
    return rgb


def faint_curve() -> np.ndarray:
    x = np.arange(30, 171, 1.0)
    return np.stack([x, 80 + 12 * np.sin((x - 30) / 30)], axis=1) + 0.5


def test_a_faint_vessel_is_proposed_at_its_width_and_one_accept_puts_it_on_its_centre_line():
    strong = np.array([[10.5, 20.5], [190.5, 20.5]])
    curve = faint_curve()
    rgb = photo_with([(strong, 5, 60), (curve, 3, 25)])
    mask = np.zeros((120, 200), bool)
    mask[18:23, 10:191] = True  # the strong vessel, found by the model
    line = np.zeros_like(mask)
    for a, b in itertools.pairwise(curve):
        paint_segment(line, tuple(a), tuple(b), 0.5, True)
    prob = np.where(mask, 0.95, 0.02).astype(np.float32)
    prob[ndi.binary_dilation(line, iterations=1)] = 0.3  # the model saw something there, below its threshold
    queue = ProofreadQueue(prob, rgb, threshold=0.5)
    proposals = queue.compute(mask)
    adds = [p for p in proposals if p.kind == "add"]
    assert len(adds) == 1 and proposals[0] is adds[0]
    p = adds[0]
    # Drawn at the width measured on the photo (the drawn vessel's, within a pixel), not 1 px.
    drawn = np.zeros_like(mask)
    for a, b in itertools.pairwise(curve):
        paint_segment(drawn, tuple(a), tuple(b), 1.5, True)
    assert abs(np.median(p.patch.sum(axis=0)[1:-1]) - np.median(drawn[:, 40:160].sum(axis=0))) <= 1
    edited = mask.copy()
    queue.accept(p, edited)
    # Its centre line lies within 1 px of the drawn vessel's, and it covers the vessel from end to end.
    to_line = ndi.distance_transform_cdt(~line, metric="chessboard")
    assert to_line[p.centre_line[:, 0], p.centre_line[:, 1]].max() <= 1
    assert (edited & line).sum() >= 0.95 * line.sum()
    assert not (edited & ~mask & (to_line > 3)).any()  # nothing far from the vessel is added
    assert queue.counter() == "1 of 1, 1 accepted"


def gapped(gap: int) -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((60, 160), bool)
    mask[28:31, 10:150] = True
    mask[28:31, 78 : 78 + gap] = False
    prob = np.where(mask, 0.9, 0.02).astype(np.float32)
    prob[29, 78 : 78 + gap] = 0.3
    return mask, prob


def test_a_5_px_gap_gets_exactly_one_proposal_and_it_closes_the_gap():
    mask, prob = gapped(5)
    queue = ProofreadQueue(prob, threshold=0.5)
    proposals = queue.compute(mask)
    assert [p.kind for p in proposals] == ["bridge"]
    p = proposals[0]
    x, y = p.centroid
    assert 78 <= x <= 83 and 28 <= y <= 31
    # The view shows the piece at about a third of its side, with context (never a few pixels).
    y0, y1, x0, x1 = p.view
    assert y1 - y0 == x1 - x0 >= 48 and x0 <= x <= x1
    edited = mask.copy()
    queue.accept(p, edited)
    assert edited[29, 10:150].all()
    assert queue.compute(edited) == []


def test_a_2_px_speck_gets_no_proposal():
    mask, prob = gapped(0)
    mask[10, 40:42] = True  # a speck of 2 px, far from the vessel
    prob[10, 40:42] = 0.7
    assert ProofreadQueue(prob, threshold=0.5).compute(mask) == []


def test_an_isolated_fragment_above_the_speck_size_is_proposed_for_removal():
    mask, prob = gapped(0)
    mask[8:11, 40:52] = True  # 36 px, far from the vessel
    prob[8:11, 40:52] = 0.55
    proposals = ProofreadQueue(prob, threshold=0.5).compute(mask)
    assert [(p.kind, p.reason) for p in proposals] == [("remove", "fragment")]
    edited = mask.copy()
    proposals[0].apply(edited)
    assert not edited[:20].any() and edited[28:31, 10:150].all()


def test_a_rejected_proposal_stays_rejected_after_an_edit_elsewhere_and_its_record_is_json():
    mask, prob = gapped(5)
    mask[8:11, 40:52] = True
    prob[8:11, 40:52] = 0.55
    queue = ProofreadQueue(prob, threshold=0.5)
    queue.replace(queue.compute(mask))
    assert sorted(p.kind for p in queue.proposals) == ["bridge", "remove"]
    bridge = next(p for p in queue.proposals if p.kind == "bridge")
    record = queue.reject(bridge)
    assert json.loads(json.dumps(record))["kind"] == "bridge"
    assert [p.kind for p in queue.proposals] == ["remove"]
    # An unrelated edit: the fragment is removed with the brush; the queue is found again.
    edited = mask.copy()
    edited[8:11, 40:52] = False
    queue.replace(queue.compute(edited))
    assert queue.proposals == []
    # A new queue for the same image, given the persisted records, does not propose it either.
    again = ProofreadQueue(prob, threshold=0.5)
    again.restore(json.loads(json.dumps(queue.rejections)))
    assert again.compute(edited) == []
    assert queue.counter() == "1 of 1, 0 accepted"


def test_the_counters_count_each_proposal_looked_at_once():
    mask, prob = gapped(5)
    mask[8:11, 40:52] = True
    prob[8:11, 40:52] = 0.55
    queue = ProofreadQueue(prob, threshold=0.5)
    queue.replace(queue.compute(mask))
    assert queue.counter() == "0 of 2, 0 accepted"
    first = queue.current()
    assert first is not None
    queue.show(first)
    queue.show(first)
    assert queue.counter() == "1 of 2, 0 accepted"
    edited = mask.copy()
    queue.accept(first, edited)
    assert (queue.shown, queue.accepted) == (1, 1)
    queue.replace(queue.compute(edited))
    second = queue.current()
    assert second is not None and second.kind != first.kind
    queue.reject(second)
    assert queue.counter() == "2 of 2, 1 accepted"


def three_gaps() -> tuple[np.ndarray, np.ndarray]:
    """A vessel with gaps of 3, 5 and 7 px: three bridges, the shortest gap the surest."""
    mask = np.zeros((60, 220), bool)
    mask[28:31, 10:210] = True
    prob = np.where(mask, 0.9, 0.02).astype(np.float32)
    for x, gap in ((40, 3), (100, 5), (160, 7)):
        mask[28:31, x : x + gap] = False
        prob[29, x : x + gap] = 0.3
    return mask, prob


def test_the_grader_skips_ahead_goes_back_to_a_skipped_proposal_and_the_list_goes_on_from_there():
    mask, prob = three_gaps()
    queue = ProofreadQueue(prob, threshold=0.5)
    queue.replace(queue.compute(mask))
    xs = [round(p.centroid[0]) for p in queue.proposals]
    assert len(xs) == 3 and [p.kind for p in queue.proposals] == ["bridge"] * 3
    assert queue.index() == 0
    second = queue.step(+1)
    assert second is queue.proposals[1] and queue.current() is second
    assert queue.step(+1) is queue.proposals[2]
    assert queue.step(+1) is queue.proposals[0]  # round the list
    assert queue.step(-1) is queue.proposals[2]
    # Back to the skipped second one from the list: it stays current when the queue is found again.
    assert queue.choose(1) is queue.proposals[1]
    queue.replace(queue.compute(mask))
    assert round(queue.current().centroid[0]) == xs[1]
    # Accepting it goes on to the one that followed it, not back to the top.
    edited = mask.copy()
    queue.accept(queue.current(), edited)
    queue.replace(queue.compute(edited))
    assert round(queue.current().centroid[0]) == xs[2]
    # Rejecting the surest one (unskipped) goes to the surest that is left, as before.
    queue.choose(0)
    queue.reject(queue.proposals[0])
    assert queue.current() is queue.proposals[0] and round(queue.current().centroid[0]) == xs[2]
    assert queue.counter() == "2 of 3, 1 accepted"


@pytest.mark.parametrize("width", [1, 3, 5])
def test_the_width_off_the_prediction_is_measured_on_the_green_channel(width):
    line = np.array([[20.5, 40.5], [180.5, 40.5]])
    rgb = photo_with([(line, width, 30)], shape=(80, 200))
    pts = np.stack([np.arange(30, 170) + 0.5, np.full(140, 40.5)], axis=1)
    green = rgb[..., 1].astype(np.float32) / 255
    assert profile_radius(green, pts) == pytest.approx(width / 2, abs=0.5)
    # The trace takes it where the model saw no vessel; without a photo, 1 px.
    prob = np.zeros((80, 200), np.float32)
    assert TraceCost.from_prediction(prob, rgb).local_radius(pts) == profile_radius(green, pts)
    assert TraceCost.from_prediction(prob).local_radius(pts) == 0.5


def test_the_view_box_is_three_times_the_piece_and_stays_inside_the_image():
    assert view_box((100, 130, 200, 220), (1000, 1000), minimum=48) == (70, 160, 165, 255)
    y0, y1, x0, _ = view_box((0, 4, 0, 4), (1000, 1000))
    assert (y0, x0) == (0, 0) and y1 - y0 == 167  # a speck-sized piece: a sixth of the photo, for context
    y0, y1, _, _ = view_box((0, 4, 0, 4), (120, 120))
    assert y1 - y0 == 48  # never under 48 px
