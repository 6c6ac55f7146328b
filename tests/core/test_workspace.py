"""The Qt-free workspace apart from saving (tests/core/saving/): how a folder's photos are paired with their
masks, one-line messages for folders that are not workspaces, records that persist and show in a read-only copy,
the prediction cache, export, record times."""

from __future__ import annotations

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import mask_to_png, read_mask, read_raw, write_png_atomic
from retina_desktop.core.review.export import ExportOptions, export_masks
from retina_desktop.core.workspace import Workspace, WorkspaceError, workspace as workspace_mod


def test_flat_folder_layout(tmp_path):
    root = make_workspace(tmp_path / "flat", 3)
    (root / "notes.txt").write_text("not an image")
    ws = Workspace(root)
    assert ws.layout == "flat" and [e.key for e in ws.entries] == ["img_00", "img_01", "img_02"]
    assert ws.entries[0].gt_path == root.resolve() / "ground_truth" / "img_00.png"
    assert ws.meta_dir == root.resolve() / ".retina"


def test_photos_sharing_a_stem_are_not_paired_with_one_mask(tmp_path):
    import shutil

    root = make_workspace(tmp_path / "flat", 2)
    shutil.copy(root / "img_00.png", root / "img_00.tif")
    ws = Workspace(root)
    assert [e.path.name for e in ws.entries] == ["img_00.png", "img_01.png"]
    assert ws.duplicates == ["img_00.tif (same name as img_00.png)"]


def test_reference_layout_with_splits(tmp_path):
    root = tmp_path / "ds"
    for split in ("train", "test"):
        make_workspace(root / split / "images", 2)
        (root / split / "masks").mkdir()
    ws = Workspace(root)
    assert ws.layout == "reference"
    assert {e.key for e in ws.entries} == {"train/img_00", "train/img_01", "test/img_00", "test/img_01"}
    e = ws.entry("test/img_01")
    assert e.gt_path == root.resolve() / "test" / "masks" / "img_01.png"


def test_reference_layout_single(tmp_path):
    root = tmp_path / "ds"
    make_workspace(root / "images", 2)
    ws = Workspace(root)
    assert ws.entries[0].gt_dir == root.resolve() / "mask"


def test_app_and_command_line_pair_files_by_one_rule(tmp_path):
    # DRIVE as distributed: training/images/21_training, vessels 1st_manual/21_manual1, FOV discs mask/21_training_mask.
    from model_core.data import discover
    from model_core.synthetic import make_fundus

    root = tmp_path / "DRIVE" / "training"
    for n in ("21", "22"):
        f = make_fundus(160, 150, seed=int(n))
        write_png_atomic(root / "images" / f"{n}_training.png", f.image)
        write_png_atomic(root / "1st_manual" / f"{n}_manual1.png", mask_to_png(f.vessels, 255))
        write_png_atomic(root / "mask" / f"{n}_training_mask.png", mask_to_png(f.fov, 255))
    ws = Workspace(tmp_path / "DRIVE")
    assert [e.key for e in ws.entries] == ["training/21_training", "training/22_training"]
    gt = [e.existing_gt() for e in ws.entries]
    assert gt == [s.mask.resolve() for s in discover(tmp_path / "DRIVE", split="train")]
    assert [p.name for p in gt] == ["21_manual1.png", "22_manual1.png"]
    # Saving writes <stem>.png into the vessel folder, and the command line still pairs it with its photo.
    ws.save_ground_truth(ws.entries[0], np.zeros((160, 150), bool))
    assert ws.entries[0].existing_gt() == ws.root / "training" / "1st_manual" / "21_training.png"
    assert [s.mask.name for s in discover(tmp_path / "DRIVE", split="train")] == ["21_training.png", "22_manual1.png"]


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: None, "folder not found"),
        (lambda p: p.mkdir(), "no images found"),
        (lambda p: p.write_text("x"), "not a folder"),
    ],
)
def test_bad_folders_give_one_line_messages(tmp_path, make, problem):
    p = tmp_path / "thing"
    make(p)
    with pytest.raises(WorkspaceError) as info:
        Workspace(p)
    assert str(p.name) in str(info.value) and problem in str(info.value) and "\n" not in str(info.value)


def test_wrong_size_mask_is_reported_not_loaded(tmp_path):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    e = ws.entries[0]
    write_png_atomic(e.gt_path, np.zeros((10, 12), np.uint8))
    with pytest.raises(ValueError) as info:
        ws.load_ground_truth(e, (160, 150))
    assert "img_00.png" in str(info.value) and "12x10" in str(info.value)


def test_a_read_only_copy_of_a_reviewed_folder_shows_its_review(tmp_path, monkeypatch):
    root = make_workspace(tmp_path / "shared", 3)
    colleague = Workspace(root)  # writable: records go to root/.retina
    assert colleague.meta_in_workspace
    colleague.set_status("img_00", "approved")
    colleague.set_status("img_01", "edited")
    colleague.flush()
    real = workspace_mod.probe_writable
    monkeypatch.setattr(workspace_mod, "probe_writable", lambda d: real(d) and root not in [d, *d.parents])
    ws = Workspace(root)
    assert not ws.meta_in_workspace
    assert [ws.status(k) for k in ("img_00", "img_01", "img_02")] == ["approved", "edited", "new"]
    ws.set_status("img_01", "approved")  # this user's own record, kept in the fallback folder, wins
    assert Workspace(root).status("img_01") == "approved" and Workspace(root).status("img_00") == "approved"


def test_a_read_only_copy_of_a_reviewed_folder_shows_its_history_and_verifies(tmp_path, monkeypatch, rng):
    root = make_workspace(tmp_path / "shared", 2)
    colleague = Workspace(root)
    first, second = rng.random((160, 150)) > 0.7, rng.random((160, 150)) > 0.7
    colleague.save_ground_truth(colleague.entries[0], first, reviewer="ann")
    colleague.save_ground_truth(colleague.entries[0], second, reviewer="ann")
    colleague.close()
    real = workspace_mod.probe_writable
    monkeypatch.setattr(workspace_mod, "probe_writable", lambda d: real(d) and root not in [d, *d.parents])
    ws = Workspace(root)
    assert not ws.meta_in_workspace
    versions = ws.versions("img_00")  # the colleague's history is in the folder's own records
    assert [v.reviewer for v in versions] == ["ann", "ann"] and all(v.path.is_file() for v in versions)
    assert np.array_equal(read_mask(versions[0].path), first)
    assert ws.current_sha(ws.entries[0]) == versions[-1].sha256
    assert ws.version_count() == 2 and ws.verify() == []


def test_prediction_cache_round_trip(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    e = ws.entries[0]
    prob = rng.random((160, 150)).astype(np.float32)
    assert ws.predictions.load(e, "m1") is None
    ws.predictions.store(e, "m1", prob)
    back = ws.predictions.load(e, "m1", (160, 150))
    assert np.abs(back - prob).max() < 1e-4
    assert ws.predictions.load(e, "other-model") is None


def test_review_log_and_status_persist(tmp_path):
    root = make_workspace(tmp_path / "w", 2)
    ws = Workspace(root)
    ws.set_prediction_info("img_01", 0.25)
    ws.log_review("img_01", "save", model="m v1", added=5, removed=2, reviewer="ann")
    with open(ws.review_log_path, "a") as fh:
        fh.write('{"broken')  # a crash mid-line must not hide earlier records
    again = Workspace(root)
    assert again.status("img_01") == "predicted" and again.uncertainty("img_01") == 0.25
    (rec,) = again.review_log()
    assert rec["reviewer"] == "ann" and rec["pixels_added"] == 5 and rec["model"] == "m v1"


def test_export_writes_reference_layout(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 3))
    masks = {}
    for e in ws.entries[:2]:
        masks[e.stem] = rng.random((160, 150)) > 0.6
        ws.save_ground_truth(e, masks[e.stem])
    dest = tmp_path / "export"
    progress = []
    s = export_masks(ws, ExportOptions(dest, one_value=1, overlays=True), progress=lambda d, t, m: progress.append(d))
    assert sorted(s.written) == ["img_00", "img_01"] and s.skipped_no_mask == ["img_02"]
    for stem, m in masks.items():
        assert (dest / "images" / f"{stem}.png").is_file()
        raw = read_raw(dest / "mask" / f"{stem}.png")
        assert set(np.unique(raw)) <= {0, 1} and np.array_equal(raw == 1, m)
        assert (dest / "overlays" / f"{stem}.png").is_file()
    again = export_masks(ws, ExportOptions(dest))
    assert again.written == [] and len(again.skipped_existing) == 2  # nothing is silently replaced
    with pytest.raises(WorkspaceError):
        export_masks(ws, ExportOptions(ws.root / "ground_truth"))


def test_export_of_approved_only_names_why_each_image_was_left_out(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 3))
    for e in ws.entries[:2]:
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.6)
    ws.set_status("img_00", "approved")
    s = export_masks(ws, ExportOptions(tmp_path / "export", approved_only=True))
    # img_01 has saved work that is only not approved: it must not be reported as missing ground truth.
    assert s.written == ["img_00"] and s.skipped_not_approved == ["img_01"] and s.skipped_no_mask == ["img_02"]
    text = s.text()
    assert "1 image(s) skipped: not approved" in text and "1 image(s) skipped: no saved ground truth" in text
    assert not (tmp_path / "export" / "mask" / "img_01.png").exists()


def test_prediction_records_persist_at_once(tmp_path):
    root = make_workspace(tmp_path / "w", 3)
    ws = Workspace(root)
    for e in ws.entries:
        ws.set_prediction_info(e.key, 0.1)
    again = Workspace(root)  # no flush: each record is its own transaction
    assert all(again.status(e.key) == "predicted" and again.uncertainty(e.key) == 0.1 for e in again.entries)


def test_record_times_are_shown_in_local_time_without_iso_punctuation(monkeypatch):
    import time as _time

    from retina_desktop.core.workspace import readable_time

    monkeypatch.setenv("TZ", "Europe/Berlin")
    _time.tzset()
    try:
        assert readable_time("2026-12-01T20:14:05.187+00:00") == "2026-12-01 21:14:05"
        assert readable_time("2026-07-01T20:14:05+00:00") == "2026-07-01 22:14:05"  # summer time
        assert readable_time("2026-12-01T20:14:05") == "2026-12-01 20:14:05"  # no zone: as written
        assert readable_time("garbage") == "garbage" and readable_time(None) == "an unknown time"
    finally:
        monkeypatch.undo()
        _time.tzset()
