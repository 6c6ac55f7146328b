"""One vessel geometry in one window: the Measurements panel (model_core.morphometry) and the Segment and
Topology tools (core.vessel_graph) see the same segments, junctions and ends of a mask."""

from __future__ import annotations

import numpy as np
import pytest

from model_core.imageio import read_mask
from model_core.morphometry import measure
from model_core.skeleton import skeleton_graph, skeletonize
from retina_desktop.core.vessels.topology import TopologyParams, find_spurs
from retina_desktop.core.vessels.vessel_graph import VesselGraph


def assert_same_geometry(mask: np.ndarray) -> None:
    m = measure(mask)
    tools = VesselGraph.from_mask(mask)
    ends = sum(len(s.ends) for s in tools.segments.values())
    assert (m.segments, m.branch_points, m.end_points) == (len(tools.segments), len(tools.junctions), ends)
    # Not only the counts: pixel for pixel the same segments and junctions, the same segment-junction contacts.
    geometry = skeleton_graph(skeletonize(mask))
    assert np.array_equal(tools.labels, geometry.label_image())
    contacts = sorted((s.id, j) for s in tools.segments.values() for j in s.junctions)
    assert contacts == [tuple(p) for p in geometry.segment_junction.tolist()]
    assert m.segments > 10 and m.branch_points > 5 and m.end_points > 5  # a real vessel tree, not a trivial one


def test_measurements_and_vessel_tools_agree_on_a_synthetic_fundus():
    from model_core.synthetic import make_fundus

    assert_same_geometry(make_fundus(584, 565, seed=3).vessels.astype(bool))


@pytest.mark.data
def test_measurements_and_vessel_tools_agree_on_drive_references(shared_data):
    masks = sorted((shared_data / "drive" / "test" / "masks").glob("*.png"))[:3]
    if not masks:
        pytest.skip("DRIVE test references are not present")
    for path in masks:
        assert_same_geometry(read_mask(path))


def test_a_ring_hanging_from_a_stem_is_one_junction_for_both():
    # The old vessel graph merged a junction that touched fewer than three distinct segments, so a ring on a
    # stem was one segment there and two in the measurements.
    import cv2

    img = np.zeros((100, 100), np.uint8)
    cv2.circle(img, (50, 35), 20, 1, 1)
    img[56:90, 50] = 1
    mask = img.astype(bool)
    m, tools = measure(mask), VesselGraph.from_mask(mask)
    assert (m.segments, m.branch_points, m.end_points) == (2, 1, 1)
    assert len(tools.segments) == 2 and len(tools.junctions) == 1
    # The ring has no free end, so of the two only the stem can be a spur.
    spurs = find_spurs(tools, TopologyParams(spur_length=100.0))
    assert len(spurs) == 1 and len(tools.segments[spurs[0].segment].ends) == 1


def test_a_break_reaches_a_dot_whose_skeleton_is_one_lone_pixel():
    # A lone skeleton pixel is no segment (nor end) in the one geometry, yet it is the skeleton of a piece of
    # vessel: the break from the vessel's end to it is found, and the dot is not called a fragment.
    from retina_desktop.core.painting import paint_segment
    from retina_desktop.core.vessels.topology import review

    mask = np.zeros((60, 120), bool)
    paint_segment(mask, (10.5, 30.5), (80.5, 30.5), 1.5, True)
    paint_segment(mask, (89.5, 30.5), (89.5, 30.5), 2.0, True)  # a dot 5 px across, 6 px past the end
    graph = VesselGraph.from_mask(mask)
    dot = graph.skeleton[:, 84:]
    assert dot.sum() == 1 and not graph.labels[:, 84:].any()
    assert [f.kind for f in review(mask, graph=graph)] == ["break"]
