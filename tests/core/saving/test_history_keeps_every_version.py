"""Every version of a mask stays in the history: the mask on disk is copied there before a save replaces it, the
copies are named by their content (never stored twice, never colliding within one clock tick), and a restore
brings an old version back as a new one, which can itself be undone."""

from __future__ import annotations

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import read_mask, read_raw
from retina_desktop.core.workspace import Workspace

from .helpers import open_image, paint, session_on, sha256_of


def test_save_keeps_previous_versions_and_is_paired_by_stem(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    e = ws.entries[0]
    first = rng.random((160, 150)) > 0.7
    second = rng.random((160, 150)) > 0.7
    path = ws.save_ground_truth(e, first)
    assert path.name == "img_00.png"
    raw = read_raw(path)
    assert raw.dtype == np.uint8 and raw.shape == (160, 150) and set(np.unique(raw)) <= {0, 255}
    assert np.array_equal(read_mask(path), first)
    assert ws.history(e) == []
    ws.save_ground_truth(e, first)  # same content: nothing to keep
    assert ws.history(e) == []
    ws.save_ground_truth(e, second)
    (old,) = ws.history(e)
    assert np.array_equal(read_mask(old), first)
    assert np.array_equal(read_mask(path), second)


def test_history_is_content_addressed_and_never_stored_twice(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (e,) = ws.entries
    a, b = rng.random((160, 150)) > 0.7, rng.random((160, 150)) > 0.7
    for m in (a, b, a, b, a):
        ws.save_ground_truth(e, m, reviewer="ann")
    files = sorted(p.name for p in ws.history_dir(e).iterdir())
    assert len(files) == 2 and all(p == f"{sha256_of(ws.history_dir(e) / p)}.png" for p in files)
    versions = ws.versions(e)
    first, second = versions[0].path, versions[1].path
    assert [v.path for v in versions] == [first, second, first, second, first]
    assert [v.sha256 for v in versions] == [sha256_of(p) for p in (first, second, first, second, first)]
    assert versions[1].added_prev == int(np.count_nonzero(b & ~a))
    assert versions[1].removed_prev == int(np.count_nonzero(a & ~b))
    assert [np.array_equal(read_mask(p), m) for p, m in zip(ws.history(e), [b], strict=False)] == [True]


def test_saves_in_quick_succession_keep_every_version(tmp_path, rng):
    """History files are named by content, not by time: saves within one clock tick cannot collide."""
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (entry,) = ws.entries
    masks = [rng.random((160, 150)) > 0.7 for _ in range(4)]
    for m in masks:
        ws.save_ground_truth(entry, m)
    kept = [read_mask(p) for p in ws.history(entry)]
    assert len(kept) == 3 and all(any(np.array_equal(k, m) for k in kept) for m in masks[:3])


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


def test_restore_is_a_new_version_and_can_itself_be_undone(root):
    r = session_on(root)
    s = open_image(r, "img_02")
    paint(s.document, (5, 5), (80, 80))
    r.save(auto=False, model=None, reviewer="rk")
    first = s.document.mask.copy()
    first_sha = r.workspace.current_sha(s.entry)
    paint(s.document, (5, 100), (80, 100))
    r.save(auto=False, model=None, reviewer="rk")
    second = s.document.mask.copy()
    r.restore(first_sha, reviewer="rk")
    assert np.array_equal(s.document.mask, first) and np.array_equal(read_mask(s.entry.gt_path), first)
    versions = r.workspace.versions("img_02")
    assert versions[-1].source == "restore" and len(versions) == 3
    s.document.undo()
    assert np.array_equal(s.document.mask, second) and s.document.unsaved
