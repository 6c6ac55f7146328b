"""Saving ground truth without ever losing a version: content-addressed history, conflicts between windows,
"already open" records, a vanished workspace folder, a full disk, stray temporary files, approval counts."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core import atomic
from model_core.imageio import read_mask
from retina_desktop.core.workspace import (
    DiskFullError,
    ReadOnlyWorkspaceError,
    SaveConflict,
    Workspace,
    WorkspaceGoneError,
)

ENV = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), OMP_NUM_THREADS="1")


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_history_is_content_addressed_and_never_stored_twice(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (e,) = ws.entries
    a, b = rng.random((160, 150)) > 0.7, rng.random((160, 150)) > 0.7
    for m in (a, b, a, b, a):
        ws.save_ground_truth(e, m, reviewer="ann")
    files = sorted(p.name for p in ws.history_dir(e).iterdir())
    assert len(files) == 2 and all(p == f"{_sha(ws.history_dir(e) / p)}.png" for p in files)
    versions = ws.versions(e)
    first, second = versions[0].path, versions[1].path
    assert [v.path for v in versions] == [first, second, first, second, first]
    assert [v.sha256 for v in versions] == [_sha(p) for p in (first, second, first, second, first)]
    assert versions[1].added_prev == int(np.count_nonzero(b & ~a))
    assert versions[1].removed_prev == int(np.count_nonzero(a & ~b))
    assert [np.array_equal(read_mask(p), m) for p, m in zip(ws.history(e), [b], strict=False)] == [True]


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
    assert {_sha(c.mine.path), _sha(c.theirs.path)} <= kept
    # Their window now holds a stale version: its next save is refused the same way.
    with pytest.raises(SaveConflict):
        their_ws.save_ground_truth(e, base)
    assert their_ws.resolve_conflict(info.value, "theirs") is None


def test_restore_saves_an_old_version_as_a_new_one(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (e,) = ws.entries
    a, b = rng.random((160, 150)) > 0.7, rng.random((160, 150)) > 0.7
    ws.save_ground_truth(e, a)
    ws.save_ground_truth(e, b)
    first = ws.versions(e)[0].sha256
    ws.restore(e, first, reviewer="ann")
    assert np.array_equal(read_mask(e.gt_path), a)
    assert [v.source for v in ws.versions(e)][-1] == "restore" and ws.status(e.key) == "edited"
    assert [r["action"] for r in ws.review_log()] == ["restore"]
    with pytest.raises(ValueError, match="no version"):
        ws.restore(e, "0" * 64)


def test_a_renamed_workspace_refuses_to_save_and_is_not_recreated(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    ws.save_ground_truth(ws.entries[0], rng.random((160, 150)) > 0.7)
    root.rename(tmp_path / "moved")
    with pytest.raises(WorkspaceGoneError, match="has gone") as info:
        ws.save_ground_truth(ws.entries[0], rng.random((160, 150)) > 0.7)
    assert "\n" not in str(info.value) and not root.exists()
    assert ws.predictions.store(ws.entries[0], "m1", rng.random((160, 150))) is None  # "Predict all" goes on
    assert not root.exists()
    # Also when the folder vanishes between the check and the write.
    (tmp_path / "moved").rename(root)
    ws2 = Workspace(root)
    with pytest.raises(FileNotFoundError):
        atomic.write_bytes_atomic(root / "ground_truth" / "x" / "y.png", b"x", within=tmp_path / "gone")
    root.rename(tmp_path / "moved2")
    with pytest.raises(WorkspaceGoneError):
        ws2.save_ground_truth(ws2.entries[0], rng.random((160, 150)) > 0.7)
    assert not root.exists()


@pytest.mark.parametrize(
    "code, error, words",
    [
        (errno.ENOSPC, DiskFullError, "disk full"),
        (errno.EROFS, ReadOnlyWorkspaceError, "read-only"),
        (errno.EACCES, ReadOnlyWorkspaceError, "read-only"),
    ],
)
def test_write_failures_are_typed_one_line_messages(tmp_path, rng, monkeypatch, code, error, words):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (e,) = ws.entries
    first = rng.random((160, 150)) > 0.7
    ws.save_ground_truth(e, first)
    real = atomic.os.replace

    def failing(src, dst):
        if str(dst).endswith("img_00.png") and "ground_truth" in str(dst):
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing)
    with pytest.raises(error) as info:
        ws.save_ground_truth(e, ~first)
    assert words in str(info.value) and "\n" not in str(info.value)
    if error is ReadOnlyWorkspaceError:
        assert "disk full" not in str(info.value)
    assert np.array_equal(read_mask(e.gt_path), first)
    assert not [p for p in e.gt_dir.iterdir() if p.name.endswith(".tmp")]


def test_stray_temporary_files_are_removed_when_a_workspace_opens(tmp_path):
    root = make_workspace(tmp_path / "w", 2)
    Workspace(root).close()
    gt = root / "ground_truth"
    gt.mkdir()
    hist = root / ".retina" / "history" / "img_00"
    hist.mkdir(parents=True)
    old = [gt / ".img_00.png.abc123.tmp", hist / f".{'0' * 64}.png.x1y2.tmp", root / ".retina" / ".state.json.tmp"]
    young = gt / ".img_01.png.zz9.tmp"  # may be another window's save in progress
    for p in [*old, young]:
        p.write_bytes(b"partial")
    past = time.time() - 3600
    for p in old:
        os.utime(p, (past, past))
    ws = Workspace(root)
    assert ws.removed_temporaries == 3 and not any(p.exists() for p in old) and young.exists()


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
        [sys.executable, "-c", OPENER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV
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
