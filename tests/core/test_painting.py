"""Unit tests of the Qt-free editing core: painting operations and the diff-based undo history."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from retina_desktop.core.painting import LargePieceFill, OpenRegionFill, flood_fill, paint_segment, remove_small_pieces
from retina_desktop.core.review.mask_document import MaskDocument


def _distance_to_segment(shape, p0, p1):
    """Distance from every pixel centre to the segment p0-p1 (x, y)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    a, b = np.array(p0, float), np.array(p1, float)
    d = b - a
    L2 = float(d @ d)
    t = np.zeros(shape) if L2 == 0 else np.clip(((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / L2, 0, 1)
    return np.hypot(xx - (a[0] + t * d[0]), yy - (a[1] + t * d[1]))


@pytest.mark.parametrize("radius", [0.5, 1.5, 3.0, 7.5])
def test_segment_paints_the_pixels_under_the_brush(radius):
    mask = np.zeros((60, 80), bool)
    p0, p1 = (10.3, 12.7), (65.2, 40.1)
    bbox = paint_segment(mask, p0, p1, radius, True)
    dist = _distance_to_segment(mask.shape, p0, p1)
    # Everything well inside the brush is painted, nothing clearly outside it.
    assert mask[dist <= radius - 0.75].all()
    assert not mask[dist > radius + 0.75].any()
    y0, y1, x0, x1 = bbox
    outside = mask.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any(), "the returned bbox covers every changed pixel"


def test_fast_drag_leaves_no_gaps():
    mask = np.zeros((100, 300), bool)
    pts = [(5.0, 50.0), (120.0, 20.0), (290.0, 80.0)]  # huge jumps between mouse events
    for a, b in itertools.pairwise(pts):
        paint_segment(mask, a, b, 2.0, True)
    dist = np.minimum(
        _distance_to_segment(mask.shape, pts[0], pts[1]), _distance_to_segment(mask.shape, pts[1], pts[2])
    )
    assert mask[dist <= 1.25].all()


def test_eraser_clears_and_painting_outside_the_image_is_clipped():
    mask = np.ones((20, 20), bool)
    assert paint_segment(mask, (-50, -50), (-40, -40), 3, False) is None
    paint_segment(mask, (-5, 10.5), (25, 10.5), 0.5, False)
    assert not mask[10].any() and mask[9].all() and mask[11].all()


def test_flood_fill_fills_a_hole_and_erases_a_piece():
    mask = np.zeros((30, 30), bool)
    mask[5:15, 5:15] = True
    mask[8:12, 8:12] = False  # a hole
    mask[20:25, 20:25] = True  # a separate piece
    before = mask.copy()
    bbox = flood_fill(mask, (9, 9))
    assert mask[5:15, 5:15].all() and bbox == (8, 12, 8, 12)
    flood_fill(mask, (22, 22))
    assert not mask[20:25, 20:25].any()
    expected = before.copy()
    expected[8:12, 8:12] = True
    expected[20:25, 20:25] = False
    assert np.array_equal(mask, expected)


def test_guarded_fill_refuses_open_background_and_leaves_the_mask_as_it_was():
    mask = np.zeros((100, 100), bool)
    mask[20:40, 20:40] = True
    mask[22:38, 22:38] = False  # an enclosed hole of 256 px (2.6 % of the image)
    mask[60:99, 50:99] = True
    mask[61:98, 51:98] = False  # an enclosed gap of 37 x 47 = 1739 px (17 %): too big to be a vessel hole
    before = mask.copy()
    with pytest.raises(OpenRegionFill, match="reach the image edge"):
        flood_fill(mask, (5, 5), guard=True)  # the background around everything
    with pytest.raises(OpenRegionFill, match="over 5% of the image"):
        flood_fill(mask, (70, 70), guard=True)
    assert np.array_equal(mask, before)
    assert flood_fill(mask, (30, 30), guard=True) == (22, 38, 22, 38) and mask[20:40, 20:40].all()
    # Erasing a piece over 2 % of the vessel pixels is refused: one click must not erase the vessel tree.
    vessels = int(mask.sum())  # 400 + 172
    with_piece = mask.copy()
    with pytest.raises(LargePieceFill, match=f"172 of the image's {vessels} vessel pixels"):
        flood_fill(mask, (50, 60), guard=True)
    assert np.array_equal(mask, with_piece)
    assert flood_fill(mask, (50, 60)) is not None and not mask[60:99, 50:99].any()  # unguarded: erased


def test_guarded_fill_erases_a_speck_under_2_percent_of_the_vessels():
    mask = np.zeros((200, 200), bool)
    mask[10:190, 100:110] = True  # a vessel of 1800 px
    mask[50:55, 20:26] = True  # a speck of 30 px: 1.6 % of 1830
    assert flood_fill(mask, (22, 52), guard=True) == (50, 55, 20, 26)
    assert int(mask.sum()) == 1800
    mask[50:56, 20:26] = True  # 36 px: 1.96 %, still allowed
    assert flood_fill(mask, (22, 52), guard=True) is not None
    mask[50:57, 20:26] = True  # 42 px: 2.3 %, refused
    with pytest.raises(LargePieceFill):
        flood_fill(mask, (22, 52), guard=True)
    assert int(mask.sum()) == 1842


def test_remove_small_pieces_keeps_big_ones():
    mask = np.zeros((40, 40), bool)
    mask[2:30, 3:6] = True  # 84 px
    mask[35, 35] = True
    mask[10:12, 20:22] = True  # 4 px
    bbox, n = remove_small_pieces(mask, 10)
    assert n == 2 and mask[2:30, 3:6].all() and mask.sum() == 84
    assert bbox == (10, 36, 20, 36)


def _random_strokes(doc, rng, n):
    h, w = doc.shape
    for _ in range(n):
        doc.begin_stroke()
        p = (rng.uniform(0, w), rng.uniform(0, h))
        value = bool(rng.integers(0, 2))
        for _ in range(5):
            q = (p[0] + rng.normal(0, 15), p[1] + rng.normal(0, 15))
            doc.stroke_to(p, q, rng.uniform(0.5, 6), value)
            p = q
        doc.end_stroke()


def test_undo_redo_is_bit_exact(rng):
    start = rng.random((120, 130)) > 0.8
    doc = MaskDocument(start)
    states = [doc.mask.copy()]
    _random_strokes(doc, rng, 1)
    states.append(doc.mask.copy())
    doc.apply("Clean", lambda m: remove_small_pieces(m, 20)[0])
    states.append(doc.mask.copy())
    doc.apply("Fill", lambda m: flood_fill(m, (3, 3)))
    states.append(doc.mask.copy())
    assert doc.undo_count == len(states) - 1
    for expected in reversed(states[:-1]):
        assert doc.undo()
        assert np.array_equal(doc.mask, expected)
    assert np.array_equal(doc.mask, start)
    while doc.redo():
        pass
    assert np.array_equal(doc.mask, states[-1])


def test_one_undo_step_per_stroke_and_dirty_tracking(rng):
    doc = MaskDocument(np.zeros((50, 50), bool))
    assert not doc.unsaved and not doc.edited
    doc.begin_stroke()
    for i in range(10):
        doc.stroke_to((i * 4, 10), (i * 4 + 4, 12), 2, True)
    doc.end_stroke()
    assert doc.undo_count == 1 and doc.unsaved
    doc.mark_saved()
    assert not doc.unsaved
    doc.undo()
    assert doc.unsaved and not doc.mask.any()
    doc.redo()
    assert not doc.unsaved


def test_history_is_bounded_and_stores_diffs_not_copies(rng):
    big = np.zeros((2336, 3504), bool)
    doc = MaskDocument(big, max_history_bytes=2_000_000)
    _random_strokes(doc, rng, 200)
    assert doc.history_bytes < 2_000_000
    # 200 full copies would be 1.6 GB; the diffs are tiny.
    per_step = doc.history_bytes / max(1, doc.undo_count)
    assert per_step < 20_000
    doc.max_history_bytes = 5_000
    _random_strokes(doc, rng, 5)
    assert doc.history_bytes <= 5_000 or doc.undo_count == 1
    assert doc.edited  # dropped history still counts as edits


def test_changed_events_carry_the_dirty_rectangle():
    doc = MaskDocument(np.zeros((40, 40), bool))
    seen = []
    doc.changed.connect(seen.append)
    doc.stroke_to((10, 10), (12, 10), 1.5, True)
    doc.end_stroke()
    y0, y1, x0, x1 = seen[0]
    assert y0 <= 9 and y1 >= 11 and x0 <= 9 and x1 >= 13 and (y1 - y0) < 10


@pytest.mark.parametrize(
    "p0,p1,radius",
    [((10.3, 20.0), (30.7, 24.2), 3.0), ((0.0, 0.0), (6.0, 1.0), 5.0), ((39.5, 39.5), (39.5, 39.5), 0.5)],
)
def test_copy_stroke_takes_the_source_pixels_under_the_brush_as_one_open_stroke(rng, p0, p1, radius):
    before = rng.random((40, 40)) < 0.5
    source = rng.random((40, 40)) < 0.5
    doc = MaskDocument(before.copy())
    doc.begin_stroke("Brush from the second grader")
    doc.copy_stroke_to(p0, p1, radius, source)
    # Mid-gesture the document knows a stroke is open: nothing to undo yet, and it is not clean.
    assert doc.unsaved and not doc.can_undo
    footprint = np.zeros((40, 40), bool)
    paint_segment(footprint, p0, p1, radius, True)
    assert footprint.any()
    assert np.array_equal(doc.mask, np.where(footprint, source, before))
    doc.end_stroke()
    assert doc.undo_count == 1
    doc.undo()
    assert np.array_equal(doc.mask, before)


def test_copy_stroke_refuses_a_source_of_another_size():
    doc = MaskDocument(np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match="does not match"):
        doc.copy_stroke_to((1, 1), (2, 2), 1, np.zeros((10, 11), bool))
