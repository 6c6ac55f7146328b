"""Vessel measurements against values known by construction (straight lines, filled squares, box counts) and
by hand counts."""

import math

import cv2
import numpy as np
import pytest

from model_core import morphometry as M
from model_core.imageio import read_mask
from model_core.skeleton import skeleton_graph, skeletonize


def _blank(size=512):
    return np.zeros((size, size), bool)


def _carpet(level: int) -> np.ndarray:
    c = np.ones((1, 1), bool)
    for _ in range(level):
        z = np.zeros_like(c)
        c = np.block([[c, c, c], [c, z, c], [c, c, c]])
    return c


# --- values known by construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("draw", ["horizontal", "diagonal", "slanted"])
def test_straight_line_has_fd_1_and_tortuosity_1(draw):
    img = np.zeros((512, 512), np.uint8)
    if draw == "horizontal":
        img[200, :] = 1
    elif draw == "diagonal":
        np.fill_diagonal(img, 1)
    else:  # slope 0.37: a digital line with irregular steps
        cv2.line(img, (0, 40), (511, 40 + round(0.37 * 511)), 1, 1)
    m = M.measure(img.astype(bool))
    assert m.fractal_dimension == pytest.approx(1.0, abs=0.05)
    assert m.tortuosity == pytest.approx(1.0, abs=0.01)
    assert (m.segments, m.branch_points, m.end_points) == (1, 0, 2)


def test_filled_corner_square_has_fd_2():
    img = _blank()
    img[:256, :256] = True
    assert M.fractal_dimension(img) == pytest.approx(2.0, abs=0.05)


def test_box_counts_follow_the_issue_definition():
    img = _blank()
    img[:256, :256] = True
    sizes, counts = M.box_counts(img)
    assert sizes.tolist() == [2, 4, 8, 16, 32, 64, 128]  # up to a quarter of 512
    assert counts.tolist() == [(256 // s) ** 2 for s in sizes]
    # Grid anchored top-left, partial edge boxes counted: a 70x70 image (sizes 2..16), one pixel at (69, 69)
    # lies in the partial last box of every size.
    dot = np.zeros((70, 70), bool)
    dot[69, 69] = True
    sizes, counts = M.box_counts(dot)
    assert sizes.tolist() == [2, 4, 8, 16]
    assert counts.tolist() == [1, 1, 1, 1]
    # A pixel at (1, 2): box (0, 1) at s = 2, box (0, 0) from s = 4 on; with (2, 1) added, two boxes at s = 2.
    two = np.zeros((64, 64), bool)
    two[1, 2] = two[2, 1] = True
    assert M.box_counts(two)[1].tolist() == [2, 1, 1, 1]


def test_semicircular_arc_has_tortuosity_pi_over_2():
    img = np.zeros((512, 512), np.uint8)
    cv2.ellipse(img, (256, 300), (200, 200), 0, 180, 360, 1, 1)
    m = M.measure(img.astype(bool))
    assert m.tortuosity == pytest.approx(math.pi / 2, abs=0.05)
    assert (m.segments, m.end_points) == (1, 2)


def test_sierpinski_carpet_fd_is_log8_over_log3():
    carpet = _carpet(6)
    assert carpet.shape == (729, 729)
    assert M.fractal_dimension(carpet) == pytest.approx(math.log(8) / math.log(3), abs=0.05)


def test_vessel_density_equals_a_hand_count():
    mask = np.zeros((10, 10), bool)
    mask[2, 1:8] = True  # 7 vessel pixels
    fov = np.zeros((10, 10), bool)
    fov[:5, :10] = True  # 50 FOV pixels, all 7 vessel pixels inside
    fov[2, 6:8] = False  # now 48 FOV pixels with 5 vessel pixels inside
    assert M.vessel_density(mask) == 7 / 100
    assert M.vessel_density(mask, fov) == 5 / 48
    assert M.measure(mask, fov).vessel_density == 5 / 48


# --- graph counts on hand-drawn shapes --------------------------------------------------------------------------


def test_plus_has_four_segments_one_branch_point_four_ends():
    img = np.zeros((101, 101), bool)
    img[50, 10:91] = True
    img[10:91, 50] = True
    m = M.measure(img)
    assert (m.segments, m.branch_points, m.end_points) == (4, 1, 4)
    assert m.tortuosity == pytest.approx(1.0, abs=0.01)
    g = skeleton_graph(skeletonize(img))
    # Each arm runs from the centre pixel to its end: 40 px.
    assert sorted(g.chord.tolist()) == pytest.approx([40.0] * 4)


def test_y_has_three_segments_one_branch_point_three_ends():
    img = np.zeros((80, 80), bool)
    img[40:75, 40] = True  # stem, up to the fork at (40, 40)
    for k in range(1, 30):  # two diagonal arms
        img[40 - k, 40 - k] = img[40 - k, 40 + k] = True
    m = M.measure(img)
    assert (m.segments, m.branch_points, m.end_points) == (3, 1, 3)
    g = skeleton_graph(skeletonize(img))
    assert sorted(g.chord.tolist()) == pytest.approx(sorted([34.0, 29 * math.sqrt(2), 29 * math.sqrt(2)]))
    assert g.tortuosity == pytest.approx(1.0, abs=0.01)


def test_two_forks_and_a_closed_loop():
    img = np.zeros((120, 200), bool)
    img[30, 20:180] = True  # one line with two side branches: 2 branch points, 4 ends, 5 segments
    img[31:60, 60] = True
    img[31:60, 140] = True
    cv2.circle(img.view(np.uint8), (100, 95), 15, 1, 1)  # a ring: one more segment, no end, no branch point
    m = M.measure(img)
    assert (m.segments, m.branch_points, m.end_points) == (6, 2, 4)
    g = skeleton_graph(skeletonize(img))
    assert g.arc.size == 5  # the loop has no chord and stays out of the tortuosity
    assert m.tortuosity == pytest.approx(1.0, abs=0.01)


def test_a_loop_back_to_its_branch_point_stays_out_of_the_tortuosity():
    img = np.zeros((160, 160), np.uint8)
    cv2.circle(img, (80, 60), 30, 1, 1)  # a ring, with a straight stem hanging from its bottom
    img[91:150, 80] = 1
    m = M.measure(img.astype(bool))
    assert (m.segments, m.branch_points, m.end_points) == (2, 1, 1)
    g = skeleton_graph(skeletonize(img.astype(bool)))
    assert g.arc.size == 1 and g.chord[0] == pytest.approx(60, abs=1.5)
    assert m.tortuosity == pytest.approx(1.0, abs=0.01)


def test_a_lone_ring_is_one_segment_without_tortuosity():
    img = np.zeros((100, 100), np.uint8)
    cv2.circle(img, (50, 50), 30, 1, 1)
    m = M.measure(img.astype(bool))
    assert (m.segments, m.branch_points, m.end_points) == (1, 0, 0)
    assert math.isnan(m.tortuosity)


def test_width_of_lines_and_bars():
    line = np.zeros((64, 300), bool)
    line[30, 10:290] = True
    assert M.mean_width(line) == pytest.approx(1.0)
    bar = np.zeros((64, 300), bool)
    bar[27:34, 10:290] = True  # 7 px thick
    assert M.mean_width(bar) == pytest.approx(7.0, abs=0.2)
    assert M.measure(bar).width_px == pytest.approx(7.0, abs=0.2)


def test_empty_and_tiny_masks_give_nan_not_errors():
    m = M.measure(np.zeros((64, 64), bool))
    assert math.isnan(m.fractal_dimension) and math.isnan(m.tortuosity) and math.isnan(m.width_px)
    assert (m.vessel_density, m.segments, m.branch_points, m.end_points) == (0.0, 0, 0, 0)
    assert math.isnan(M.fractal_dimension(np.ones((15, 15), bool)))  # one box size only


def test_fov_of_another_size_is_refused():
    with pytest.raises(ValueError, match="differ in size"):
        M.measure(np.zeros((20, 20), bool), np.ones((20, 21), bool))


def test_as_row_has_the_cli_columns_in_order():
    m = M.measure(np.eye(64, dtype=bool))
    row = m.as_row("a.png")
    assert list(row) == [
        "image",
        "vessel_density",
        "fractal_dimension",
        "tortuosity",
        "width_px",
        "segments",
        "branch_points",
        "end_points",
    ]
    assert row["image"] == "a.png" and row["segments"] == 1


# --- DRIVE ------------------------------------------------------------------------------------------------------


@pytest.mark.data
def test_drive_test_references_have_retinal_fractal_dimension(shared_data):
    masks = sorted((shared_data / "drive" / "test" / "masks").glob("*.png"))
    if not masks:
        pytest.skip("DRIVE test references are not present")
    for path in masks:
        fov = read_mask(shared_data / "drive" / "test" / "fov" / path.name)
        m = M.measure(read_mask(path), fov)
        assert 1.4 <= m.fractal_dimension <= 1.7, path.name
        assert 0.05 < m.vessel_density < 0.2 and 1.0 <= m.tortuosity < 1.1 and m.branch_points > 50, path.name


def test_measurements_csv_reads_back_exactly(tmp_path):
    import csv

    line = M.measure(np.eye(64, dtype=bool))
    empty = M.measure(np.zeros((64, 64), bool))
    path = M.write_measurements_csv(tmp_path / "sub" / "m.csv", [("a.png", line), ("b, with comma.png", empty)])
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(M.CSV_COLUMNS)
    assert rows[0]["image"] == "a.png" and rows[1]["image"] == "b, with comma.png"
    assert float(rows[0]["vessel_density"]) == line.vessel_density  # exact, not rounded
    assert int(rows[0]["segments"]) == 1 and rows[1]["fractal_dimension"] == "nan"
