"""The one vessel geometry (model_core.skeleton): the thinning, the adjacency and what segments, junctions and
ends are, on shapes counted by hand."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from model_core.skeleton import skeleton_graph, skeletonize


def test_the_skeleton_is_scikit_images_thinning_one_pixel_wide_inside_and_connected():
    from skimage.morphology import skeletonize as skimage_skeletonize

    img = np.zeros((160, 200), np.uint8)
    cv2.line(img, (10, 20), (190, 140), 1, 9)
    cv2.circle(img, (100, 90), 35, 1, 5)  # the line crosses the ring: one piece with two holes
    cv2.circle(img, (170, 30), 8, 1, -1)  # and a disc apart
    mask = img.astype(bool)
    skel = skeletonize(mask)
    assert np.array_equal(skel, skimage_skeletonize(mask))
    assert skel.any() and not (skel & ~mask).any()

    def pieces_and_holes(m: np.ndarray) -> tuple[int, int]:
        return (
            cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[0] - 1,
            cv2.connectedComponents((~m).astype(np.uint8), connectivity=4)[0] - 2,
        )

    # A thinning keeps the topology (a morphological skeleton falls apart): two pieces, two holes.
    assert pieces_and_holes(skel) == pieces_and_holes(mask) == (2, 2)


def test_a_mask_touching_every_edge_thins_inside_it():
    band = np.zeros((12, 30), bool)
    band[3:8, :] = True  # a vessel leaving the image at both sides: outside is background
    skel = skeletonize(band)
    assert skel[5, 3:27].all() and skel[:, 3:27].sum(axis=0).max() == 1 and not (skel & ~band).any()
    assert skeletonize(np.ones((9, 9), bool)).any()
    assert not skeletonize(np.zeros((9, 9), bool)).any()


def test_a_staircase_corner_is_a_path_pixel_not_a_junction():
    # A 4-connected staircase: under 8-adjacency each corner pixel has three neighbours; under m-adjacency two.
    skel = np.zeros((20, 20), bool)
    for k in range(8):
        skel[2 + k, 2 + k] = skel[2 + k, 3 + k] = True
    g = skeleton_graph(skel)
    assert (g.segments, g.branch_points, g.end_points) == (1, 0, 2)
    assert g.length.tolist() == [15.0]  # 16 pixels, 15 unit steps
    assert (g.label_image() == 1).sum() == 16


def test_a_plus_is_one_junction_four_segments_four_ends():
    skel = np.zeros((21, 21), bool)
    skel[10, 2:19] = True
    skel[2:19, 10] = True
    g = skeleton_graph(skel)
    assert (g.segments, g.branch_points, g.end_points) == (4, 1, 4)
    labels = g.label_image()
    assert labels[10, 10] == -1 and set(np.unique(labels[skel])) == {-1, 1, 2, 3, 4}
    # Each arm runs from the centre pixel to its end: 8 steps, its length and its chord.
    assert g.length.tolist() == [8.0] * 4 and g.chord.tolist() == [8.0] * 4
    assert g.segment_junction.tolist() == [[1, 1], [2, 1], [3, 1], [4, 1]]


def test_touching_junction_pixels_are_one_junction():
    skel = np.zeros((21, 30), bool)
    skel[10, 2:28] = True
    skel[2:10, 14] = True  # a branch up from (10, 14)
    skel[11:19, 15] = True  # and one down from (10, 15), its neighbour
    g = skeleton_graph(skel)
    assert (g.segments, g.branch_points, g.end_points) == (4, 1, 4)
    labels = g.label_image()
    assert labels[10, 14] == labels[10, 15] == -1


def test_a_ring_on_a_stem_is_a_loop_and_a_lone_pixel_is_nothing():
    img = np.zeros((100, 100), np.uint8)
    cv2.circle(img, (50, 35), 20, 1, 1)
    img[56:90, 50] = 1  # a stem hanging from the ring's bottom
    img[95, 5] = 1  # a lone pixel
    g = skeleton_graph(img.astype(bool))
    assert (g.segments, g.branch_points, g.end_points) == (2, 1, 1)
    assert g.label_image()[95, 5] == 0
    # The ring leaves the junction and comes back to it: no chord, out of the tortuosity; the stem is straight.
    assert g.arc.size == 1 and g.chord[0] == pytest.approx(34, abs=1.5)
    assert g.tortuosity == pytest.approx(1.0, abs=0.01)
    assert g.segment_junction.tolist() == [[1, 1], [2, 1]]


def test_lengths_count_diagonal_steps_as_root_two():
    skel = np.zeros((30, 30), bool)
    np.fill_diagonal(skel[5:25, 5:25], True)
    g = skeleton_graph(skel)
    assert g.length[0] == pytest.approx(19 * math.sqrt(2))
    assert g.chord[0] == pytest.approx(19 * math.sqrt(2)) and g.tortuosity == pytest.approx(1.0)


def test_an_empty_skeleton_is_an_empty_graph():
    g = skeleton_graph(np.zeros((8, 8), bool))
    assert (g.segments, g.branch_points, g.end_points) == (0, 0, 0)
    assert math.isnan(g.tortuosity) and not g.label_image().any()
    with pytest.raises(ValueError, match="2-D"):
        skeletonize(np.zeros((2, 2, 2), bool))
