"""Export compares content: a changed mask replaces the stale file in the destination, identical ones are skipped."""

from __future__ import annotations

import numpy as np
from sample_workspaces import make_workspace

from model_core.imageio import read_raw
from retina_desktop.core.review.export import ExportOptions, export_masks
from retina_desktop.core.workspace import Workspace


def test_export_replaces_a_stale_mask_and_skips_identical_ones(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 3))
    a, b, c = (rng.random((160, 150)) > 0.6 for _ in range(3))
    ws.save_ground_truth(ws.entries[0], a)
    ws.save_ground_truth(ws.entries[1], b)
    dest = tmp_path / "export"
    first = export_masks(ws, ExportOptions(dest))
    assert sorted(first.written) == ["img_00", "img_01"]
    mtime = (dest / "mask" / "img_01.png").stat().st_mtime_ns
    ws.save_ground_truth(ws.entries[0], c)  # corrected after the first export
    again = export_masks(ws, ExportOptions(dest))
    assert again.replaced == ["img_00"] and again.skipped_existing == ["img_01"] and again.written == []
    assert np.array_equal(read_raw(dest / "mask" / "img_00.png") == 255, c)
    assert (dest / "mask" / "img_01.png").stat().st_mtime_ns == mtime  # identical: not rewritten
    assert "1 older mask(s) in the destination replaced" in again.text()


def test_export_can_list_stale_masks_instead_of_replacing_them(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    a, b = rng.random((160, 150)) > 0.6, rng.random((160, 150)) > 0.6
    ws.save_ground_truth(ws.entries[0], a)
    dest = tmp_path / "export"
    export_masks(ws, ExportOptions(dest))
    ws.save_ground_truth(ws.entries[0], b)
    s = export_masks(ws, ExportOptions(dest, replace_stale=False))
    assert s.stale == ["img_00"] and "differ from the workspace" in s.text()
    assert np.array_equal(read_raw(dest / "mask" / "img_00.png") == 255, a)


def test_exporting_does_not_vouch_for_a_version_the_editor_has_not_seen(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 1)
    editor, other = Workspace(root), Workspace(root)
    e = editor.entries[0]
    editor.save_ground_truth(e, rng.random((160, 150)) > 0.6)
    other.save_ground_truth(e, rng.random((160, 150)) > 0.6, expected_sha=editor.loaded_sha(e))
    export_masks(editor, ExportOptions(tmp_path / "export"))
    assert editor.loaded_sha(e) != editor.current_sha(e)
