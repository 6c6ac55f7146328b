"""Trace, segment delete and topology review on small synthetic vessel images."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from scipy.spatial import cKDTree

from retina_desktop.core.painting import paint_segment
from retina_desktop.core.review.mask_document import MaskDocument
from retina_desktop.core.vessels.topology import TopologyParams, apply_fix, find_breaks, review
from retina_desktop.core.vessels.tracing import TraceCost, Tracer, trace
from retina_desktop.core.vessels.vessel_graph import VesselGraph


def polyline(points: np.ndarray, shape: tuple[int, int], radius: float) -> np.ndarray:
    """A vessel of the given radius along ``points`` (x, y), drawn by the app's own brush."""
    m = np.zeros(shape, dtype=bool)
    for a, b in itertools.pairwise(points):
        paint_segment(m, tuple(a), tuple(b), radius, True)
    return m


def soft(mask: np.ndarray) -> np.ndarray:
    """A probability map like a model's: high on the vessel, fading at its edges."""
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.8) * 1.2, 0, 1)


def sine_vessel(n: int = 2000) -> np.ndarray:
    t = np.linspace(0, 1, n)
    return np.stack([20 + 260 * t, 100 + 60 * np.sin(2 * np.pi * t)], axis=1)


def test_trace_between_two_points_of_a_curved_vessel_stays_within_one_pixel_of_it():
    centre = sine_vessel()
    mask = polyline(centre, (200, 300), 1.5)
    cost = TraceCost.from_prediction(soft(mask))
    a, b = tuple(centre[100]), tuple(centre[1900])
    stroke = trace(cost, [a, b])
    dist, _ = cKDTree(centre).query(stroke.points)
    assert dist.max() <= 1.0
    # The path runs the whole way: its ends are the clicked points' pixels and it has no jumps.
    route = cost.route(a, b)
    assert np.hypot(*(route[0] - a)) <= 1.0 and np.hypot(*(route[-1] - b)) <= 1.0
    assert np.hypot(*np.diff(route, axis=0).T).max() <= np.sqrt(2) + 1e-9
    assert cKDTree(centre).query(route)[0].max() <= 1.0
    # The stroke's width comes from the vessel's: it covers the vessel between the clicks and little else.
    painted = np.zeros_like(mask)
    stroke.paint(painted)
    between = mask.copy()
    between[:, : int(a[0]) + 3] = False
    between[:, int(b[0]) - 2 :] = False
    assert np.count_nonzero(between & ~painted) <= 0.1 * np.count_nonzero(between)
    assert np.count_nonzero(painted & ~mask) <= 0.1 * np.count_nonzero(painted)


def test_tracer_previews_live_and_commits_one_undo_step():
    centre = sine_vessel()
    mask = polyline(centre, (200, 300), 1.5)
    cost = TraceCost.from_prediction(soft(mask))
    doc = MaskDocument(np.zeros_like(mask))
    tracer = Tracer(cost)
    tracer.click(*centre[100])
    preview = tracer.preview(*centre[1000])
    assert np.hypot(*(preview[-1] - centre[1000])) <= 1.0
    tracer.click(*centre[1000])
    tracer.click(*centre[1900])
    stroke = tracer.finish()
    assert tracer.anchors == []
    doc.apply("Trace", stroke.paint)
    assert doc.undo_count == 1
    assert np.count_nonzero(doc.mask & mask) >= 0.9 * np.count_nonzero(doc.mask)
    doc.undo()
    assert not doc.mask.any()


def test_tracer_search_in_a_worker_gives_the_same_preview_and_a_stale_search_is_dropped():
    centre = sine_vessel()
    mask = polyline(centre, (200, 300), 1.5)
    cost = TraceCost.from_prediction(soft(mask))
    tracer = Tracer(cost)
    tracer.click(*centre[100], search=False)
    box = tracer.preview(*centre[900])  # before the search: the box search
    tracer.search()
    field = tracer.preview(*centre[900])
    assert np.array_equal(box[[0, -1]], field[[0, -1]])
    assert cKDTree(centre).query(field)[0].max() <= 1.0
    old = tracer.anchors[-1]
    tracer.click(*centre[900], search=False)
    tracer.anchors[-1], new = old, tracer.anchors[-1]  # a search still running for the old anchor ...
    tracer.search()
    tracer.anchors[-1] = new  # ... finishes after the new click: its paths must not be used
    assert tracer._field.anchor == old
    tail = tracer.preview(*centre[1500])[len(tracer.path()) :]
    expected = cost.route(new, cost.snap(tuple(centre[1500])))[1:]
    assert np.array_equal(tail, expected)


def y_junction(shape=(120, 120)) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    stem = np.array([[60.5, 115.5], [60.5, 60.5]])
    left = np.array([[60.5, 60.5], [20.5, 10.5]])
    right = np.array([[60.5, 60.5], [100.5, 10.5]])
    branches = {
        "stem": polyline(stem, shape, 2.0),
        "left": polyline(left, shape, 1.5),
        "right": polyline(right, shape, 1.5),
    }
    return branches["stem"] | branches["left"] | branches["right"], branches


def test_graph_of_a_y_junction_has_one_junction_three_segments_three_ends():
    mask, _ = y_junction()
    g = VesselGraph.from_mask(mask)
    assert len(g.junctions) == 1
    assert len(g.segments) == 3
    assert sorted(len(s.ends) for s in g.segments.values()) == [1, 1, 1]
    assert all(s.junctions == (1,) for s in g.segments.values())


def test_deleting_a_segment_removes_exactly_one_branch_of_a_y_junction():
    mask, branches = y_junction()
    g = VesselGraph.from_mask(mask)
    seg = g.segment_at(35.5, 35.5)  # on the left branch, halfway up
    assert seg is not None
    doc = MaskDocument(mask)
    doc.apply("Delete segment", lambda m: g.delete_segment(m, seg))
    after = doc.mask
    # The other two branches are untouched, pixel for pixel.
    assert np.array_equal(after & (branches["stem"] | branches["right"]), branches["stem"] | branches["right"])
    # Of the left branch, nothing is left beyond the junction's disc (the stem's width around the fork).
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    far = np.hypot(xx + 0.5 - 60.5, yy + 0.5 - 60.5) > 6
    assert not (after & branches["left"] & far).any()
    # One connected tree is left, and one undo brings the branch back.
    assert cv2.connectedComponents(after.astype(np.uint8), connectivity=8)[0] == 2
    doc.undo()
    assert np.array_equal(doc.mask, mask)


def test_a_five_pixel_gap_is_found_and_bridged_with_one_click():
    centre = sine_vessel()
    full = polyline(centre, (200, 300), 1.5)
    # Cut a 5-px gap across the vessel where it runs level (its crest at x = 85, y = 160).
    broken = full.copy()
    broken[:, 83:88] = False
    assert cv2.connectedComponents(broken.astype(np.uint8), connectivity=8)[0] == 3
    prob = soft(full) * 0.9
    prob[:, 83:88] *= 0.3  # the model saw the vessel there, below its threshold
    findings = review(broken, prob)
    breaks = [f for f in findings if f.kind == "break"]
    assert len(breaks) == 1
    f = breaks[0]
    assert 80 <= f.position[0] <= 91 and 155 <= f.position[1] <= 165
    # No spur or fragment is reported on a clean vessel.
    assert [g.kind for g in findings] == ["break"]
    doc = MaskDocument(broken)
    doc.apply(f.label, lambda m: apply_fix(f, m, TraceCost.from_prediction(prob)))
    assert doc.undo_count == 1
    fixed = doc.mask
    assert cv2.connectedComponents(fixed.astype(np.uint8), connectivity=8)[0] == 2
    # The bridge fills the gap where the vessel was and adds nothing more than 1 px beside it.
    gap = full & ~broken
    assert np.count_nonzero(fixed & gap) >= 0.7 * np.count_nonzero(gap)
    near = cv2.dilate(full.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert not (fixed & ~near).any()


def test_with_a_ridge_check_no_break_is_reported_where_the_probability_shows_nothing():
    centre = sine_vessel()
    full = polyline(centre, (200, 300), 1.5)
    broken = full.copy()
    broken[:, 83:88] = False
    prob = soft(full) * 0.9
    prob[:, 83:88] = 0.0
    graph = VesselGraph.from_mask(broken)
    assert find_breaks(broken, graph, prob, TopologyParams(ridge_min=0.05)) == []
    assert len(find_breaks(broken, graph, prob, TopologyParams(ridge_min=0.0))) == 1


def test_spur_and_fragment_are_found_and_removed():
    mask, _branches = y_junction()
    spur = polyline(np.array([[60.5, 90.5], [66.5, 90.5]]), mask.shape, 0.5)
    blob = polyline(np.array([[100.5, 100.5], [103.5, 102.5]]), mask.shape, 1.0)
    findings = review(mask | spur | blob)
    kinds = sorted(f.kind for f in findings)
    assert kinds == ["fragment", "spur"]
    m = mask | spur | blob
    for f in findings:
        apply_fix(f, m)
    assert not (m & blob).any()
    # The spur goes, but for the stem's junction disc (the stem is 4 px wide, to x = 62.5).
    assert not (m & spur)[:, 65:].any()
    assert np.array_equal(m & mask, mask)


def test_a_click_near_a_thin_vessel_snaps_onto_it():
    mask = polyline(np.array([[10.5, 50.5], [190.5, 50.5]]), (100, 200), 0.5)
    cost = TraceCost.from_prediction(soft(mask))
    assert cost.snap((100.5, 52.5), 3.0) == (100.5, 50.5)
    assert cost.snap((100.5, 55.5), 3.0)[1] != 50.5  # farther than the snap radius: stays off
    tracer = Tracer(cost)
    tracer.click(20.5, 48.5)
    tracer.click(180.5, 52.5)
    assert np.all(tracer.path()[:, 1] == 50.5)


@pytest.mark.parametrize("radius", [0.5, 1.5, 3.0])
def test_local_radius_matches_the_drawn_vessel(radius):
    centre = np.array([[10.5, 50.5], [190.5, 50.5]])
    mask = polyline(centre, (100, 200), radius)
    cost = TraceCost.from_prediction(mask.astype(np.float32))
    r = cost.local_radius(cost.route((20.5, 50.5), (180.5, 50.5)))
    assert abs(r - radius) <= 0.5


def _bench():
    import importlib.util
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_correction.py"
    spec = importlib.util.spec_from_file_location("bench_correction", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_correction"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_correction_benchmark_counts_a_break_and_prices_a_brush_stroke_by_the_steering_law():
    bc = _bench()
    from skimage.morphology import skeletonize

    ref, _ = y_junction()
    # The prediction: the reference with a 3-px gap across the stem and the left branch missing.
    _, branches = y_junction()
    pred = ref & ~branches["left"]
    pred[90:93, :] = False
    ref_skel = skeletonize(ref)
    truths = bc.true_breaks(ref_skel, pred)
    assert len(truths) == 1 and all(89 <= y <= 93 for y, _ in truths[0])
    # The missed branch is one piece, ordered end to end, about as long as the drawn branch.
    graph = VesselGraph.from_skeleton(ref_skel)
    pieces = bc.runs(ref_skel & ~pred, graph.labels, np.ones(ref.shape), "missed")
    assert len(pieces) == 1
    p = pieces[0]
    branch_length = np.hypot(60.5 - 20.5, 60.5 - 10.5)
    assert branch_length - 12 <= p.length <= branch_length + 2
    assert np.hypot(*np.diff(p.pixels, axis=0).T).max() <= np.sqrt(2) + 1e-9
    # A brush stroke: Fitts to its start, then a + b L / W; the corrected mask covers the branch.
    g = bc.Grader(p.pixels[0].astype(float), brush_radius=0.5, tool="brush")
    m = pred.copy()
    bc.brush_fix(g, m, p)
    # The steering tunnel is the vessel's width plus the 1 px the stroke may stray either side: 1 + 2 px.
    expected = bc.CLICK_MIN + bc.STEER_A + bc.STEER_B * p.length / 3.0
    assert g.seconds == pytest.approx(expected)
    assert (g.strokes, g.clicks, g.keys) == (1, 0, 0)
    yy, xx = np.mgrid[: ref.shape[0], : ref.shape[1]]
    beyond_fork = np.hypot(xx + 0.5 - 60.5, yy + 0.5 - 60.5) > 6  # the fork's pixels are the junction's
    assert m[ref_skel & branches["left"] & beyond_fork].all()
