"""The review session's side of "a grader's work is never lost" (issue 14): one-call saves checked against the
version loaded, the conflict choice, undo that survives switching images, statuses that come back when every
edit is undone, restore as a new version."""

from __future__ import annotations

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import read_mask
from retina_desktop.core.model.tasks import PredictionResult, load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import SaveConflict, Workspace


def _session(root) -> ReviewSession:
    r = ReviewSession()
    r.set_workspace(Workspace(root))
    return r


def _open(r: ReviewSession, key: str):
    request, entry = r.begin_load(key)
    return r.finish_load(request, load_image(None, r.workspace, entry, "m"))


def _paint(doc, p0, p1, value=True, radius=3.0):
    doc.stroke_to(p0, p1, radius, value)
    doc.end_stroke()


def _predict(r, key, seed=0):
    s = r.image
    prob = np.random.default_rng(seed).random(s.document.shape, dtype=np.float32)
    r.prediction_arrived(PredictionResult(key, prob, np.ones(prob.shape, bool), 0.1, "test v0"))
    return prob


@pytest.fixture
def root(tmp_path):
    return make_workspace(tmp_path / "w", 3)


def test_a_save_writes_mask_status_and_log_in_one_call_with_pixels_against_the_prediction(root):
    r = _session(root)
    s = _open(r, "img_00")
    prob = _predict(r, "img_00")
    _paint(s.document, (5, 5), (60, 60))
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


def test_two_windows_saving_one_image_raise_a_conflict_and_either_choice_keeps_both(root):
    a, b = _session(root), _session(root)
    sa, sb = _open(a, "img_00"), _open(b, "img_00")
    _paint(sb.document, (10, 10), (10, 100))
    b.save(auto=False, model=None, reviewer="bob")
    theirs = sb.document.mask.copy()
    _paint(sa.document, (100, 10), (100, 100))
    mine = sa.document.mask.copy()
    with pytest.raises(SaveConflict) as info:
        a.save(auto=True, model=None, reviewer="ann")
    conflict = info.value
    path = sb.entry.gt_path
    assert np.array_equal(read_mask(path), theirs)  # nothing overwritten
    assert np.array_equal(read_mask(conflict.mine.path), mine) and conflict.theirs.reviewer == "bob"

    assert a.resolve_conflict(conflict, "theirs", reviewer="ann") is None
    assert np.array_equal(sa.document.mask, theirs) and not sa.document.unsaved
    sa.document.undo()  # Ctrl+Z brings mine back, and saving it is no conflict any more
    assert np.array_equal(sa.document.mask, mine)
    a.save(auto=False, model=None, reviewer="ann")
    assert np.array_equal(read_mask(path), mine)
    shas = {v.sha256 for v in a.workspace.versions("img_00")}
    assert {conflict.mine.sha256, conflict.theirs.sha256} <= shas


def test_keep_mine_writes_mine_over_theirs(root):
    a, b = _session(root), _session(root)
    sa, sb = _open(a, "img_01"), _open(b, "img_01")
    _paint(sb.document, (10, 10), (10, 100))
    b.save(auto=False, model=None, reviewer="bob")
    _paint(sa.document, (100, 10), (100, 100))
    mine = sa.document.mask.copy()
    with pytest.raises(SaveConflict) as info:
        a.save(auto=False, model=None, reviewer="ann")
    a.resolve_conflict(info.value, "mine", reviewer="ann")
    assert np.array_equal(read_mask(sa.entry.gt_path), mine) and not sa.document.unsaved
    assert a.workspace.status("img_01") == "edited"


@pytest.mark.parametrize("synchronous", [True, False])
def test_keep_mine_is_logged_with_model_threshold_and_pixels_against_the_prediction(root, synchronous):
    a, b = _session(root), _session(root)
    sa, sb = _open(a, "img_02"), _open(b, "img_02")
    prob = _predict(a, "img_02")
    _paint(sb.document, (10, 10), (10, 100))
    b.save(auto=False, model=None, reviewer="bob")
    _paint(sa.document, (100, 10), (100, 100))
    if synchronous:
        with pytest.raises(SaveConflict) as info:
            a.save(auto=False, model="test v0", reviewer="ann")
        conflict, model = info.value, None  # the failed save knows its model
    else:
        # The conflict reached from elsewhere (a restore, the History): the window names the model.
        conflict, model = _conflict_of(a, sa), "test v0"
    a.resolve_conflict(conflict, "mine", reviewer="ann", model=model)
    rec = a.workspace.review_log("img_02")[-1]
    pred = prob >= 0.5
    mine = sa.document.mask
    assert (rec["action"], rec["model"], rec["threshold"]) == ("save", "test v0", 0.5)
    assert rec["added_vs_prediction"] == int(np.count_nonzero(mine & ~pred))
    assert rec["removed_vs_prediction"] == int(np.count_nonzero(pred & ~mine))
    assert rec["resolved_conflict_with"] == conflict.theirs.sha256


def _conflict_of(r: ReviewSession, s):
    """A SaveConflict raised by the workspace directly, so the session holds no failed save of its own."""
    with pytest.raises(SaveConflict) as info:
        r.workspace.save_ground_truth(s.entry, s.document.mask, expected_sha=s.disk_sha, reviewer="ann")
    return info.value


def test_undo_survives_switching_images_while_the_mask_on_disk_is_unchanged(root):
    r = _session(root)
    s = _open(r, "img_00")
    original = s.document.mask.copy()
    _paint(s.document, (5, 5), (80, 80))
    r.save(auto=True, model=None, reviewer="rk")
    doc = s.document
    _open(r, "img_01")
    assert r.kept_keys() == ["img_00"]
    back = _open(r, "img_00")
    assert back.document is doc and back.document.can_undo
    back.document.undo()
    assert np.array_equal(back.document.mask, original) and back.document.unsaved

    # Another window saves img_00 while it is closed here: the kept undo history no longer applies.
    r.save(auto=True, model=None, reviewer="rk")
    _paint(back.document, (5, 100), (80, 100))
    r.save(auto=True, model=None, reviewer="rk")
    _open(r, "img_01")
    other = _session(root)
    so = _open(other, "img_00")
    _paint(so.document, (120, 5), (120, 80))
    other.save(auto=False, model=None, reviewer="bob")
    again = _open(r, "img_00")
    assert again.document is not doc and not again.document.can_undo
    assert np.array_equal(again.document.mask, so.document.mask)


def test_kept_undo_histories_stay_within_the_byte_cap(root, monkeypatch):
    import retina_desktop.core.review.review_session as rs

    r = _session(root)
    for key in ("img_00", "img_01", "img_02"):
        s = _open(r, key)
        _paint(s.document, (5, 5), (140, 140), radius=8.0)
        r.save(auto=True, model=None, reviewer="rk")
    _open(r, "img_00")
    assert r.kept_keys() == ["img_01", "img_02"]
    one = r._kept["img_01"].document.history_bytes
    monkeypatch.setattr(rs, "KEEP_HISTORY_BYTES", one + 1)
    _open(r, "img_01")  # keeps img_00; img_02 + img_00 exceed the cap, so the oldest (img_02) goes
    assert r.kept_keys() == ["img_00"]


def test_every_edit_undone_gives_back_the_status_and_removes_the_autosaved_file(root):
    r = _session(root)
    s = _open(r, "img_00")
    _predict(r, "img_00")
    ws = r.workspace
    assert ws.status("img_00") == "predicted" and s.entry.existing_gt() is None
    _paint(s.document, (5, 5), (80, 80), value=False)
    r.save(auto=True, model=None, reviewer="rk")
    saved_sha = ws.current_sha(s.entry)
    assert ws.status("img_00") == "edited" and s.entry.existing_gt() is not None
    s.document.undo()
    assert r.save(auto=True, model=None, reviewer="rk") is None
    assert ws.status("img_00") == "predicted" and s.entry.existing_gt() is None  # not exported as a correction
    assert saved_sha in {v.sha256 for v in ws.versions("img_00")}  # the history keeps it

    # An approved image edited and then undone is approved again.
    _paint(s.document, (5, 5), (80, 80))
    r.save(auto=False, model=None, reviewer="rk")
    r.approve(model=None, reviewer="rk")
    assert r.needs_edit_confirmation()
    r.confirm_edit()
    assert not r.needs_edit_confirmation()
    _paint(s.document, (100, 5), (100, 80))
    r.save(auto=True, model=None, reviewer="rk")
    assert ws.status("img_00") == "edited"
    s.document.undo()
    r.save(auto=True, model=None, reviewer="rk")
    assert ws.status("img_00") == "approved" and s.entry.existing_gt() is not None


def test_restore_is_a_new_version_and_can_itself_be_undone(root):
    r = _session(root)
    s = _open(r, "img_02")
    _paint(s.document, (5, 5), (80, 80))
    r.save(auto=False, model=None, reviewer="rk")
    first = s.document.mask.copy()
    first_sha = r.workspace.current_sha(s.entry)
    _paint(s.document, (5, 100), (80, 100))
    r.save(auto=False, model=None, reviewer="rk")
    second = s.document.mask.copy()
    r.restore(first_sha, reviewer="rk")
    assert np.array_equal(s.document.mask, first) and np.array_equal(read_mask(s.entry.gt_path), first)
    versions = r.workspace.versions("img_02")
    assert versions[-1].source == "restore" and len(versions) == 3
    s.document.undo()
    assert np.array_equal(s.document.mask, second) and s.document.unsaved


def test_approving_after_another_window_saved_goes_through_the_conflict_first(root):
    a, b = _session(root), _session(root)
    sa, sb = _open(a, "img_00"), _open(b, "img_00")
    _paint(sa.document, (100, 10), (100, 100))
    a.save(auto=False, model=None, reviewer="ann")
    assert not a.needs_save_before_approve()
    sb.disk_sha = b.workspace.current_sha(sb.entry)  # b reloads what a saved, edits, saves
    _paint(sb.document, (10, 10), (10, 100))
    b.save(auto=False, model=None, reviewer="bob")
    assert a.needs_save_before_approve()  # the mask on disk is not the one on a's screen
    with pytest.raises(SaveConflict):
        a.save(auto=False, model=None, reviewer="ann")
