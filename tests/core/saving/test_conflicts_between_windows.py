"""Two windows (or a window and a script) on one workspace: a second window is told who has it open, a save is
checked against the version this window loaded, and one that would overwrite a version saved elsewhere raises
SaveConflict with both versions kept; "mine", "theirs", a refresh and approving after the other save each
leave both in the history."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import read_mask
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import SaveConflict, Workspace

from .helpers import child_env, open_image, paint, predict, session_on, sha256_of

OPENER = textwrap.dedent("""
    import sys
    from retina_desktop.core.workspace import Workspace
    ws = Workspace(sys.argv[1])
    print("open", flush=True)
    sys.stdin.readline()
""")


def test_a_second_window_is_told_who_has_the_workspace_open_and_stale_ones_are_ignored(tmp_path):
    root = make_workspace(tmp_path / "w", 1)
    proc = subprocess.Popen(
        [sys.executable, "-c", OPENER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env()
    )
    try:
        assert proc.stdout.readline().strip() == b"open"
        ws = Workspace(root)
        (other,) = ws.other_windows()
        assert other.pid == proc.pid and other.user and other.machine and other.since
        assert other.machine in other.text()
    finally:
        proc.kill()  # killed: it never removes its own record
        proc.wait()
        proc.stdout.close()
        proc.stdin.close()
    assert ws.other_windows() == []
    second = Workspace(root)
    assert [s.pid for s in ws.other_windows()] == [os.getpid()]
    second.close()
    assert ws.other_windows() == []


def test_a_version_saved_elsewhere_since_loading_raises_a_conflict_and_keeps_both(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 1)
    mine_ws, their_ws = Workspace(root), Workspace(root)
    e = mine_ws.entries[0]
    base, theirs, mine = (rng.random((160, 150)) > 0.7 for _ in range(3))
    mine_ws.save_ground_truth(e, base)
    assert np.array_equal(mine_ws.load_ground_truth(e, (160, 150)), base)
    their_ws.load_ground_truth(e, (160, 150))
    their_ws.save_ground_truth(e, theirs, reviewer="bob")
    with pytest.raises(SaveConflict) as info:
        mine_ws.save_ground_truth(e, mine, reviewer="ann")
    c = info.value
    assert np.array_equal(read_mask(e.gt_path), theirs)  # nothing overwritten
    assert np.array_equal(read_mask(c.mine.path), mine) and np.array_equal(read_mask(c.theirs.path), theirs)
    assert c.theirs.reviewer == "bob" and "bob" in str(c) and "\n" not in str(c)
    mine_ws.resolve_conflict(c, "mine", reviewer="ann")
    assert np.array_equal(read_mask(e.gt_path), mine)
    kept = {v.sha256 for v in mine_ws.versions(e)}
    assert {sha256_of(c.mine.path), sha256_of(c.theirs.path)} <= kept
    # Their window now holds a stale version: its next save is refused the same way.
    with pytest.raises(SaveConflict):
        their_ws.save_ground_truth(e, base)
    assert their_ws.resolve_conflict(info.value, "theirs") is None


def test_after_a_conflict_a_refresh_takes_the_file_on_disk_as_seen(tmp_path, rng):
    """A script without a window: its save meets another writer's version; after refresh() it saves over it."""
    root = make_workspace(tmp_path / "w", 1)
    script, other = Workspace(root), Workspace(root)
    e = script.entries[0]
    a, b, c = (rng.random((160, 150)) > 0.7 for _ in range(3))
    script.save_ground_truth(e, a)
    other.save_ground_truth(other.entries[0], b)
    with pytest.raises(SaveConflict):
        script.save_ground_truth(e, c)
    assert np.array_equal(read_mask(e.gt_path), b)
    with pytest.raises(SaveConflict):  # the same conflict, until the script refreshes
        script.save_ground_truth(e, c)
    script.refresh()
    assert script.loaded_sha(e) == script.current_sha(e)
    script.save_ground_truth(e, c)
    assert np.array_equal(read_mask(e.gt_path), c)
    assert {read_mask(v.path).tobytes() for v in script.versions(e)} >= {a.tobytes(), b.tobytes()}


def test_two_windows_saving_one_image_raise_a_conflict_and_either_choice_keeps_both(root):
    a, b = session_on(root), session_on(root)
    sa, sb = open_image(a, "img_00"), open_image(b, "img_00")
    paint(sb.document, (10, 10), (10, 100))
    b.save(auto=False, model=None, reviewer="bob")
    theirs = sb.document.mask.copy()
    paint(sa.document, (100, 10), (100, 100))
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
    a, b = session_on(root), session_on(root)
    sa, sb = open_image(a, "img_01"), open_image(b, "img_01")
    paint(sb.document, (10, 10), (10, 100))
    b.save(auto=False, model=None, reviewer="bob")
    paint(sa.document, (100, 10), (100, 100))
    mine = sa.document.mask.copy()
    with pytest.raises(SaveConflict) as info:
        a.save(auto=False, model=None, reviewer="ann")
    a.resolve_conflict(info.value, "mine", reviewer="ann")
    assert np.array_equal(read_mask(sa.entry.gt_path), mine) and not sa.document.unsaved
    assert a.workspace.status("img_01") == "edited"


@pytest.mark.parametrize("synchronous", [True, False])
def test_keep_mine_is_logged_with_model_threshold_and_pixels_against_the_prediction(root, synchronous):
    a, b = session_on(root), session_on(root)
    sa, sb = open_image(a, "img_02"), open_image(b, "img_02")
    prob = predict(a, "img_02")
    paint(sb.document, (10, 10), (10, 100))
    b.save(auto=False, model=None, reviewer="bob")
    paint(sa.document, (100, 10), (100, 100))
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


def test_approving_after_another_window_saved_goes_through_the_conflict_first(root):
    a, b = session_on(root), session_on(root)
    sa, sb = open_image(a, "img_00"), open_image(b, "img_00")
    paint(sa.document, (100, 10), (100, 100))
    a.save(auto=False, model=None, reviewer="ann")
    assert not a.needs_save_before_approve()
    sb.disk_sha = b.workspace.current_sha(sb.entry)  # b reloads what a saved, edits, saves
    paint(sb.document, (10, 10), (10, 100))
    b.save(auto=False, model=None, reviewer="bob")
    assert a.needs_save_before_approve()  # the mask on disk is not the one on a's screen
    with pytest.raises(SaveConflict):
        a.save(auto=False, model=None, reviewer="ann")
