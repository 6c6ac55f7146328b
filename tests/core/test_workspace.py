"""Unit tests of the Qt-free workspace: layouts, ground-truth saving with history, crash safety,
read-only fallback, prediction cache, export."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import mask_to_png, read_mask, read_raw, write_png_atomic
from retina_desktop.core.review.export import ExportOptions, export_masks
from retina_desktop.core.workspace import (
    DiskFullError,
    ReadOnlyWorkspaceError,
    SaveConflict,
    Workspace,
    WorkspaceError,
    masks as mask_versions_mod,
    pixels,
    workspace as workspace_mod,
)


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


def test_retrying_a_failed_save_keeps_the_previous_version_once(tmp_path, rng, monkeypatch):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    e = ws.entries[0]
    first, second = rng.random((160, 150)) > 0.7, rng.random((160, 150)) > 0.7
    ws.save_ground_truth(e, first)
    real = mask_versions_mod.write_bytes_atomic

    def full_disk(path, data, **kw):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(mask_versions_mod, "write_bytes_atomic", full_disk)
    for _ in range(3):
        with pytest.raises(DiskFullError, match="disk full"):
            ws.save_ground_truth(e, second)
    monkeypatch.setattr(mask_versions_mod, "write_bytes_atomic", real)
    ws.save_ground_truth(e, second)
    (kept,) = ws.history(e)  # one copy of the first version, not one per failed attempt
    assert np.array_equal(read_mask(kept), first) and np.array_equal(read_mask(e.gt_path), second)


def test_wrong_size_mask_is_reported_not_loaded(tmp_path):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    e = ws.entries[0]
    write_png_atomic(e.gt_path, np.zeros((10, 12), np.uint8))
    with pytest.raises(ValueError) as info:
        ws.load_ground_truth(e, (160, 150))
    assert "img_00.png" in str(info.value) and "12x10" in str(info.value)


def test_read_only_workspace_falls_back_and_refuses_to_save(tmp_path, monkeypatch):
    root = make_workspace(tmp_path / "ro", 1)
    real = workspace_mod.probe_writable
    monkeypatch.setattr(workspace_mod, "probe_writable", lambda d: real(d) and root not in [d, *d.parents])
    ws = Workspace(root)
    assert not ws.gt_writable and not ws.meta_in_workspace
    assert str(ws.meta_dir).startswith(os.environ["RETINA_DESKTOP_HOME"])
    ws.set_status("img_00", "edited")
    assert Workspace(root).status("img_00") == "edited"  # records persist in the fallback folder
    with pytest.raises(ReadOnlyWorkspaceError, match="read-only"):
        ws.save_ground_truth(ws.entries[0], np.zeros((160, 150), bool))
    assert not (root / "ground_truth").exists()


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


SAVER = textwrap.dedent("""
    import sys, numpy as np
    from retina_desktop.core.workspace import Workspace
    ws = Workspace(sys.argv[1])
    e = ws.entries[0]
    a = np.zeros((600, 700), bool); a[::3] = True
    b = np.zeros((600, 700), bool); b[:, ::5] = True
    ws.save_ground_truth(e, a)
    print("ready", flush=True)
    i = 0
    while True:
        ws.save_ground_truth(e, b if i % 2 else a)
        i += 1
""")


@pytest.mark.slow
def test_killing_the_app_while_saving_leaves_old_or_new_mask(tmp_path):
    root = tmp_path / "crash"
    root.mkdir()
    write_png_atomic(root / "photo.png", np.full((600, 700, 3), 90, np.uint8))
    a = np.zeros((600, 700), bool)
    a[::3] = True
    b = np.zeros((600, 700), bool)
    b[:, ::5] = True
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), OMP_NUM_THREADS="1")
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(root)], stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)  # let it be somewhere inside a save loop; the kill is the point, not a wait for a signal
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        m = read_mask(root / "ground_truth" / "photo.png")
        assert np.array_equal(m, a) or np.array_equal(m, b)
        history = root / ".retina" / "history" / "photo"
        for old in history.iterdir() if history.is_dir() else []:  # a slow machine may not have got that far
            if not old.name.startswith("."):
                hm = read_mask(old)
                assert np.array_equal(hm, a) or np.array_equal(hm, b)


def test_prediction_records_persist_at_once(tmp_path):
    root = make_workspace(tmp_path / "w", 3)
    ws = Workspace(root)
    for e in ws.entries:
        ws.set_prediction_info(e.key, 0.1)
    again = Workspace(root)  # no flush: each record is its own transaction
    assert all(again.status(e.key) == "predicted" and again.uncertainty(e.key) == 0.1 for e in again.entries)


def test_a_mask_from_elsewhere_is_always_kept_before_it_is_replaced(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (entry,) = ws.entries
    mask = rng.random((160, 150)) > 0.7
    # A 0/1/2 label image from another tool reads as the same binary mask, yet holds more: it is kept.
    labels = mask.astype(np.uint8) * 2
    entry.gt_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(entry.gt_dir / f"{entry.stem}.tif"), labels)
    assert ws.save_ground_truth(entry, mask).suffix == ".png"
    (kept,) = ws.history(entry)
    assert kept.suffix == ".tif" and np.array_equal(read_raw(kept), labels)
    assert not (entry.gt_dir / f"{entry.stem}.tif").exists()
    # Saving the same mask again writes identical bytes: nothing more to keep.
    ws.save_ground_truth(entry, mask)
    assert len(ws.history(entry)) == 1


def test_saves_in_quick_succession_keep_every_version(tmp_path, rng):
    """History files are named by content, not by time: saves within one clock tick cannot collide."""
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (entry,) = ws.entries
    masks = [rng.random((160, 150)) > 0.7 for _ in range(4)]
    for m in masks:
        ws.save_ground_truth(entry, m)
    kept = [read_mask(p) for p in ws.history(entry)]
    assert len(kept) == 3 and all(any(np.array_equal(k, m) for k in kept) for m in masks[:3])


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
