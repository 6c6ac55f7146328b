"""What a save and an approval write beside the mask: a clean 0/255 PNG, the status and the review log in one call,
and pixel counts (against the previous version, the prediction and the last approval) equal to a plain count,
made against the file on disk when another writer changed it."""

from __future__ import annotations

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import mask_to_png, read_mask
from retina_desktop.core.workspace import Workspace, pixels

from .helpers import open_image, paint, predict, session_on


def test_mask_to_png_cleans_bool_views_of_other_bytes():
    raw = np.array([[0, 255, 1]], np.uint8)
    assert mask_to_png(raw.view(bool)).tolist() == [[0, 255, 255]]
    assert mask_to_png(np.array([[0.0, 0.3, 2.0]]), 1).tolist() == [[0, 1, 1]]


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (160, 150), (517, 509)])  # 517x509: past one 256 KiB step
def test_pixel_counts_equal_a_plain_count_for_any_size_and_layout(rng, shape):
    before, after = rng.random(shape) > 0.6, rng.random(shape) > 0.6
    expected = (int(np.count_nonzero(after & ~before)), int(np.count_nonzero(before & ~after)))
    assert pixels.changes(before, after) == expected
    # A bool view of 0/255 bytes and a transposed (non-contiguous) array are cleaned first, as a save does.
    dirty = (after.view(np.uint8) * np.uint8(255)).view(bool)
    assert pixels.changes(before, pixels.clean_bool(dirty)) == expected
    t_before, t_after = pixels.clean_bool(before.T), pixels.clean_bool(after.T)
    assert t_after.flags.c_contiguous and pixels.changes(t_before, t_after) == expected


def test_a_save_writes_mask_status_and_log_in_one_call_with_pixels_against_the_prediction(root):
    r = session_on(root)
    s = open_image(r, "img_00")
    prob = predict(r, "img_00")
    paint(s.document, (5, 5), (60, 60))
    path = r.save(auto=False, model="test v0", reviewer="rk")
    ws = r.workspace
    assert np.array_equal(read_mask(path), s.document.mask) and ws.status("img_00") == "edited"
    v = ws.versions("img_00")[-1]
    assert (v.reviewer, v.source, v.model) == ("rk", "brush", "test v0")
    pred = prob >= 0.5
    assert v.added_pred == int(np.count_nonzero(s.document.mask & ~pred)) and v.removed_pred == 0
    assert [x["action"] for x in ws.review_log("img_00")] == ["save"]
    counts = r.approve(model="test v0", reviewer="rk")
    assert ws.status("img_00") == "approved" and counts["pixels_added"] == v.added_pred


def test_a_save_counts_changes_against_the_file_on_disk_not_the_mask_this_window_saved(tmp_path, rng):
    """The counts are made while the PNG is encoded, against the mask this window saved last; when another
    writer changed the file since, they must be made again against that file."""
    root = make_workspace(tmp_path / "w", 1)
    mine, theirs = Workspace(root), Workspace(root)
    e = mine.entries[0]
    a, b, c = (rng.random((160, 150)) > 0.7 for _ in range(3))
    mine.save_ground_truth(e, a)
    theirs.save_ground_truth(theirs.entries[0], b, expected_sha=mine.loaded_sha(e))
    mine.save_ground_truth(e, c, expected_sha=theirs.loaded_sha(e), prediction=a)
    v = mine.versions(e)[-1]
    assert (v.added_prev, v.removed_prev) == (int(np.count_nonzero(c & ~b)), int(np.count_nonzero(b & ~c)))
    assert (v.added_pred, v.removed_pred) == (int(np.count_nonzero(c & ~a)), int(np.count_nonzero(a & ~c)))
    assert np.array_equal(read_mask(e.gt_path), c)


def test_approval_records_pixels_against_the_prediction_and_the_last_approval(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (e,) = ws.entries
    pred = rng.random((160, 150)) > 0.7
    edited = pred.copy()
    edited[:10] = True
    ws.save_ground_truth(e, pred, source="prediction")
    ws.save_ground_truth(e, edited, prediction=pred, action="save")
    counts = ws.approve(e, reviewer="ann", prediction=pred)
    assert ws.approved_sha(e.key) == ws.current_sha(e) == Workspace(ws.root).approved_sha(e.key)
    added = int(np.count_nonzero(edited & ~pred))
    assert counts["pixels_added"] == added > 0 and counts["pixels_removed"] == 0
    assert counts["added_vs_first"] == added
    again = edited.copy()
    again[20:25] = False
    ws.save_ground_truth(e, again)
    ws.set_status(e.key, "approved")
    ws.log_review(e.key, "approve", reviewer="ann")  # the current window's call, without counts
    last = ws.review_log()[-1]
    assert last["pixels_added"] == 0 and last["pixels_removed"] == int(np.count_nonzero(edited & ~again)) > 0
    assert ws.status(e.key) == "approved"
