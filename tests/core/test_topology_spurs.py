"""Spur markers: only spurs long enough to matter are marked."""

from __future__ import annotations

import numpy as np

from retina_desktop.core.painting import paint_segment
from retina_desktop.core.vessels.topology import TopologyParams, find_spurs
from retina_desktop.core.vessels.vessel_graph import VesselGraph


def vessel_with_spurs(lengths: list[int]) -> np.ndarray:
    """A horizontal 1-px vessel on row 40 with vertical 1-px spurs of the given lengths hanging from it."""
    m = np.zeros((80, 40 + 30 * len(lengths)), bool)
    m[40, 5:-5] = True
    for i, n in enumerate(lengths):
        x = 30 + 30 * i
        paint_segment(m, (x + 0.5, 41.5), (x + 0.5, 40.5 + n), 0.5, True)
    return m


def test_spurs_shorter_than_the_minimum_are_not_marked():
    m = vessel_with_spurs([2, 6])
    graph = VesselGraph.from_mask(m)
    spurs = find_spurs(graph, TopologyParams())
    assert len(spurs) == 1
    x, y = spurs[0].position
    assert int(x) == 60 and y > 44  # the 6-px spur's free end
    # With no minimum, both are marked.
    assert len(find_spurs(graph, TopologyParams(spur_min_length=0.0))) == 2


def test_the_minimum_scales_with_the_photo():
    assert TopologyParams().scaled(2.0).spur_min_length == 2 * TopologyParams().spur_min_length
