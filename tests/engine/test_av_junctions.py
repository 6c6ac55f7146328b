"""Crossings and bifurcations (model_core.junctions) and the A/V propagation over them
(model_core.artery_vein.propagate), on small drawn vessels."""

import cv2
import numpy as np

from model_core import junctions as J
from model_core.artery_vein import propagate, suggest_av
from model_core.skeleton import skeleton_graph, skeletonize


def line(mask, p, q, width):
    cv2.line(mask, p, q, 1, thickness=width)


def graph_and_widths(mask, width=5.0):
    graph = skeleton_graph(skeletonize(mask.astype(bool)))
    return graph, np.full(graph.segments + 1, width)


def segment_at(graph, x, y):
    """The segment whose pixels come nearest (x, y)."""
    on = graph.label > 0
    d = np.hypot(graph.cols[on] - x, graph.rows[on] - y)
    return int(graph.label[on][np.argmin(d)])


def link_kinds(links, a, b):
    return {int(k) for x, y, k in zip(links.a, links.b, links.kind, strict=True) if {x, y} == {a, b}}


def test_a_crossing_pairs_its_arms_by_direction_and_opposes_the_two_vessels():
    mask = np.zeros((200, 200), np.uint8)
    line(mask, (10, 60), (190, 140), 5)  # shallow angle: the thinning makes two 3-way junctions and a bridge
    line(mask, (10, 140), (190, 60), 5)
    graph, width = graph_and_widths(mask)
    links = J.junction_links(graph, width)
    left_up, right_down = segment_at(graph, 20, 64), segment_at(graph, 180, 136)
    left_down, right_up = segment_at(graph, 20, 136), segment_at(graph, 180, 64)
    assert len({left_up, right_down, left_down, right_up}) == 4
    assert link_kinds(links, left_up, right_down) == {J.CROSS_THROUGH}
    assert link_kinds(links, left_down, right_up) == {J.CROSS_THROUGH}
    assert link_kinds(links, left_up, left_down) == {J.CROSS_OVER}
    assert link_kinds(links, left_up, right_up) == {J.CROSS_OVER}


def test_a_bifurcation_links_the_parent_to_both_children_and_not_the_children_together():
    mask = np.zeros((200, 200), np.uint8)
    line(mask, (10, 100), (100, 100), 5)  # parent
    line(mask, (100, 100), (190, 40), 5)
    line(mask, (100, 100), (190, 160), 5)
    graph, width = graph_and_widths(mask)
    links = J.junction_links(graph, width)
    parent, up, down = segment_at(graph, 20, 100), segment_at(graph, 180, 47), segment_at(graph, 180, 153)
    assert link_kinds(links, parent, up) | link_kinds(links, parent, down) == {J.STRAIGHT, J.SIDE}
    assert link_kinds(links, up, down) == set()


def test_a_spur_is_dropped_and_the_vessel_continues_through_it():
    mask = np.zeros((120, 200), np.uint8)
    line(mask, (5, 60), (195, 60), 7)
    mask[52:56, 100:102] = 1  # a bump on the edge: a 7-px dead end after thinning
    graph, width = graph_and_widths(mask, 7.0)
    assert graph.segments == 3
    links = J.junction_links(graph, width)
    left, right = segment_at(graph, 10, 60), segment_at(graph, 190, 60)
    assert link_kinds(links, left, right) == {J.CONTINUES}
    assert links.dropped.sum() == 1


def test_propagation_carries_a_confident_vessel_through_a_crossing_not_across_it():
    mask = np.zeros((200, 200), np.uint8)
    line(mask, (10, 60), (190, 140), 5)
    line(mask, (10, 140), (190, 60), 5)
    graph, width = graph_and_widths(mask)
    left_up, right_down = segment_at(graph, 20, 64), segment_at(graph, 180, 136)
    left_down, right_up = segment_at(graph, 20, 136), segment_at(graph, 180, 64)
    score = np.zeros(graph.segments + 1)
    score[left_up], score[left_down] = 4.0, -4.0  # artery enters top left, vein bottom left; the right: unknown
    m = propagate(graph, score, width)
    assert m[right_down] > 0 > m[right_up]


def test_suggestion_calls_the_lighter_of_two_unjoined_vessels_artery():
    rng = np.random.default_rng(1)
    mask = np.zeros((240, 240), np.uint8)
    line(mask, (120, 120), (230, 60), 7)  # artery
    line(mask, (120, 120), (10, 180), 7)  # vein, opposite side: no junction between them
    mask[110:131, 110:131] = 0
    av = np.zeros((240, 240), np.uint8)
    xs = np.arange(240)[None, :]
    av[(mask > 0) & (xs > 120)] = 1
    av[(mask > 0) & (xs < 120)] = 2
    photo = np.full((240, 240, 3), 170, np.uint8)
    photo[av == 1] = (150, 95, 55)
    photo[av == 2] = (105, 55, 35)
    photo = np.clip(photo + rng.normal(0, 2, photo.shape), 0, 255).astype(np.uint8)
    labels = suggest_av(photo, mask > 0).labels
    assert np.mean(labels[av > 0] == av[av > 0]) > 0.95


def test_the_balance_point_splits_the_vessel_area_in_halves():
    from model_core.artery_vein import balance_point

    score = np.array([0.0, 3.0, 2.0, 1.0, -5.0])  # row 0 unused
    length = np.array([10.0, 10.0, 10.0, 10.0])
    width = np.array([0.0, 1.0, 1.0, 1.0, 3.0])  # the one dark vessel is as large as the three light ones
    t = balance_point(score, length, width)
    assert -5.0 <= t <= 1.0
    assert balance_point(score, length, np.array([0.0, 1.0, 1.0, 1.0, 1.0])) in (1.0, 2.0)
