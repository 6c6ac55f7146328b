"""Faults the way they happen, against the workspace store: kills mid-rebuild and mid-migration, damaged history
copies, empty and newer records, a read-only share, a full disk at open, folders renamed while open, FIFOs and
devices where files should be, network folders. Each counts what was lost; the answer is 0."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import read_mask
from retina_desktop.core.workspace import (
    ReadOnlyWorkspaceError,
    Workspace,
    WorkspaceGoneError,
    filesystem,
    records as records_mod,
    workspace as workspace_mod,
)

ROOT = Path(__file__).resolve().parents[2]


def _tiny_workspace(root: Path, count: int) -> Path:
    """``count`` 16x16 photos: a workspace the size of a study, cheap to make."""
    root.mkdir(parents=True)
    _ok, png = cv2.imencode(".png", np.full((16, 16, 3), 90, np.uint8))
    for i in range(count):
        (root / f"p{i:04d}.png").write_bytes(png.tobytes())
    return root


def _shas_in(folder: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def _damage(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[:100] = b"garbage!" * 12 + b"junk"
    db.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """2,000 photos, 300 approved masks (100 of them with a second version), records closed cleanly."""
    root = _tiny_workspace(tmp_path_factory.mktemp("study") / "w", 2000)
    ws = Workspace(root)
    rng = np.random.default_rng(0)
    for i, e in enumerate(ws.entries[:300]):
        ws.save_ground_truth(e, rng.random((16, 16)) > 0.5, reviewer="ann", action="save")
        if i < 100:
            ws.save_ground_truth(e, rng.random((16, 16)) > 0.5, reviewer="bob", action="save")
        ws.approve(e)
    versions = {e.key: {v.sha256 for v in ws.versions(e)} for e in ws.entries[:300]}
    ws.close()
    db = root / ".retina" / "records.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return root, versions, db.read_bytes()


def _lost(root: Path, versions: dict[str, set[str]]) -> tuple[int, int]:
    ws = Workspace(root)
    try:
        approvals = sum(ws.status(k) != "approved" for k in versions)
        missing = sum(len(shas - {v.sha256 for v in ws.versions(k)}) for k, shas in versions.items())
        return approvals, missing
    finally:
        ws.close()


def _open_in_child(root: Path) -> subprocess.Popen:
    code = f"from retina_desktop.core.workspace import Workspace; Workspace({str(root)!r})"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)


def _reset(db: Path, content: bytes) -> None:
    for p in db.parent.glob("records*"):
        if p.name != "records.lock":
            p.unlink()
    db.write_bytes(content)


@pytest.mark.slow
def test_twelve_kills_during_a_rebuild_lose_no_approval_and_no_version(study):
    root, versions, good = study
    db = root / ".retina" / "records.sqlite"
    _reset(db, good)
    _damage(db)
    damaged = db.read_bytes()
    started = time.monotonic()
    assert _lost(root, versions) == (0, 0)  # a rebuild that runs to the end loses nothing
    took = time.monotonic() - started
    rng = random.Random(12)
    for _ in range(12):
        _reset(db, damaged)
        child = _open_in_child(root)
        time.sleep(rng.uniform(0.0, took + 0.5))  # the moment of the kill, anywhere in the rebuild
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert _lost(root, versions) == (0, 0)
    ws = Workspace(root)
    assert ws.verify() == []


@pytest.mark.slow
def test_kills_during_a_migration_lose_nothing(study, tmp_path):
    root, versions, good = study
    db = root / ".retina" / "records.sqlite"
    rng = random.Random(8)
    for _ in range(8):
        _reset(db, good)
        con = sqlite3.connect(db)  # a file of schema 1, as the first SQLite release left it
        con.executescript(
            "PRAGMA user_version=0; DROP INDEX IF EXISTS review_log_image; "
            "ALTER TABLE images DROP COLUMN reference_sha;"
        )
        con.close()
        child = _open_in_child(root)
        time.sleep(rng.uniform(0.0, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert _lost(root, versions) == (0, 0)
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA user_version").fetchone()[0] == records_mod.SCHEMA_VERSION
        con.close()


def test_each_migration_step_keeps_the_rows(tmp_path):
    db = tmp_path / "r.sqlite"
    con = sqlite3.connect(db, isolation_level=None)
    assert records_mod.migrate(con, to=1) == [1]
    con.execute("INSERT INTO images (key, status, current_sha) VALUES ('a', 'approved', 'abc')")
    assert records_mod.schema_version(con) == 1
    assert records_mod.migrate(con, to=2) == [2]
    assert con.execute("SELECT key, status, current_sha, reference_sha FROM images").fetchall() == [
        ("a", "approved", "abc", None)
    ]
    con.execute("INSERT INTO sessions (user, machine, pid, since, seen) VALUES ('ann', 'lab', 7, 't', 1.0)")
    assert records_mod.migrate(con, to=3) == [3]
    assert con.execute("SELECT user, machine, pid, since, seen FROM open_windows").fetchall() == [
        ("ann", "lab", 7, "t", 1.0)
    ]
    assert records_mod.migrate(con) == [4]
    assert con.execute("SELECT user, machine, pid, since, seen FROM open_windows").fetchall() == [
        ("ann", "lab", 7, "t", 1.0)
    ]
    assert con.execute("SELECT COUNT(*) FROM calibre_versions").fetchone() == (0,)
    assert records_mod.schema_version(con) == 4 == records_mod.SCHEMA_VERSION
    assert records_mod.migrate(con) == []  # nothing twice
    con.close()


def _one_approved(tmp_path: Path, rng, count: int = 2) -> Path:
    """A workspace whose first image has a saved, approved mask; its records closed, no WAL beside them."""
    root = make_workspace(tmp_path / "w", count)
    ws = Workspace(root)
    ws.save_ground_truth(ws.entries[0], rng.random((160, 150)) > 0.5, action="save")
    ws.approve(ws.entries[0])
    ws.close()
    db = root / ".retina" / "records.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return root


def test_a_valid_but_empty_records_file_beside_history_is_rebuilt_not_trusted(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 2)
    ws = Workspace(root)
    e = ws.entries[0]
    ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    ws.approve(e)
    ws.close()
    db = root / ".retina" / "records.sqlite"
    for p in db.parent.glob("records.sqlite*"):
        p.unlink()
    records_mod.Records(db).close()  # what a rebuild killed after creating its tables left
    again = Workspace(root)
    assert again.status(e.key) == "approved" and len(again.versions(e)) == 1
    assert any("damaged" in n and "held no record" in n for n in again.notices)


def test_a_records_file_cut_to_zero_bytes_just_now_is_rebuilt(tmp_path, rng):
    """The old 10-s "being created" window took a fresh 0-byte file for a new one; the creation lock proves it."""
    root = _one_approved(tmp_path, rng)
    db = root / ".retina" / "records.sqlite"
    db.write_bytes(b"")
    again = Workspace(root)
    assert again.status("img_00") == "approved"
    assert len(list(db.parent.glob("records.corrupt-*"))) == 1


def test_a_rebuild_marks_the_data_sets_own_masks_as_references_not_edits(tmp_path, rng):
    root = tmp_path / "set"
    (root / "images").mkdir(parents=True)
    (root / "mask").mkdir()
    for i in range(20):
        cv2.imwrite(str(root / "images" / f"im{i:02d}.png"), np.full((16, 16, 3), 80, np.uint8))
        cv2.imwrite(str(root / "mask" / f"im{i:02d}.png"), ((rng.random((16, 16)) > 0.5) * 255).astype(np.uint8))
    ws = Workspace(root)
    ws.save_ground_truth(ws.entries[0], rng.random((16, 16)) > 0.5, action="save")
    ws.close()
    db = root / ".retina" / "records.sqlite"
    _damage(db)
    again = Workspace(root)
    statuses = [again.status(e.key) for e in again.entries]
    assert statuses.count("edited") == 1 and statuses.count("new") == 19
    assert all(again.reference_sha(e.key) is not None for e in again.entries[1:])


@pytest.mark.parametrize("damage", ["missing", "same-size garbage"])
@pytest.mark.parametrize("then", ["save", "restore"])
def test_a_damaged_history_copy_is_rewritten_before_the_mask_is_replaced(tmp_path, rng, damage, then):
    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    e = ws.entries[0]
    first, second = rng.random((160, 150)) > 0.5, rng.random((160, 150)) > 0.5
    ws.save_ground_truth(e, first, action="save")
    ws.save_ground_truth(e, second, action="save")
    ws.approve(e)
    approved = ws.current_sha(e)
    (kept,) = [v.path for v in ws.versions(e) if v.sha256 == approved]
    if damage == "missing":
        kept.unlink()
    else:
        kept.write_bytes(os.urandom(kept.stat().st_size))
    if then == "save":
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    else:
        ws.restore(e, ws.versions(e)[0].sha256)
    assert approved in _shas_in(root / ".retina" / "history")  # the approved version exists, byte for byte
    assert ws.verify() == []


def test_a_history_copy_that_cannot_be_made_refuses_the_save(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    e = ws.entries[0]
    ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    on_disk = e.gt_path.read_bytes()
    history = ws.history_dir(e)
    for p in history.iterdir():
        p.unlink()
    history.rmdir()
    history.write_bytes(b"a file where the history folder should be")
    with pytest.raises(Exception) as info:
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    assert "\n" not in str(info.value) and str(history) in str(info.value)
    assert e.gt_path.read_bytes() == on_disk  # the only copy stays where it was


def test_a_history_folder_linked_outside_the_workspace_is_not_written_through(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    e = ws.entries[0]
    ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    history = ws.history_dir(e)
    for p in history.iterdir():
        (outside / p.name).write_bytes(p.read_bytes())
        p.unlink()
    history.rmdir()
    history.symlink_to(outside)
    before = sorted(p.name for p in outside.iterdir())
    with pytest.raises(Exception, match="outside"):
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    assert sorted(p.name for p in outside.iterdir()) == before
    assert any("link" in p for p in ws.verify())


def test_every_edit_undone_withdraws_the_file_inside_the_records(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    e = ws.entries[0]
    ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="autosave", source="autosave", status="edited")
    sha = ws.current_sha(e)
    assert not ws.withdraw(e, "0" * 64, status="predicted")  # not the file this window wrote: left alone
    assert e.gt_path.exists()
    assert ws.withdraw(e, sha, status="predicted")
    assert not e.gt_path.exists() and ws.status(e.key) == "predicted"
    assert sha in {v.sha256 for v in ws.versions(e)} and sha in _shas_in(ws.history_dir(e))
    assert [r["action"] for r in ws.review_log()][-1] == "undo all"


def test_a_newer_records_file_opens_read_only_and_is_never_changed(tmp_path, rng):
    root = _one_approved(tmp_path, rng)
    db = root / ".retina" / "records.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        f"PRAGMA user_version={records_mod.SCHEMA_VERSION + 1};"
        "ALTER TABLE images ADD COLUMN grade TEXT NOT NULL DEFAULT 'R0';"
    )
    con.close()
    before = db.read_bytes()
    again = Workspace(root)
    assert any("made by a newer Retina Desktop; open it with that version" in n for n in again.notices)
    assert again.status("img_00") == "approved"
    again.set_prediction_info("img_01", 0.2)
    again.threshold = 0.4
    with pytest.raises(ReadOnlyWorkspaceError, match="newer"):
        again.save_ground_truth(again.entries[1], rng.random((160, 150)) > 0.5)
    again.close()
    assert db.read_bytes() == before and not list(db.parent.glob("records.corrupt-*"))


def test_viewing_a_read_only_workspace_never_changes_its_statuses(tmp_path, rng, monkeypatch):
    root = _one_approved(tmp_path, rng)
    real = workspace_mod.probe_writable
    monkeypatch.setattr(workspace_mod, "probe_writable", lambda d: real(d) and root not in [d, *d.parents])
    viewer = Workspace(root)  # a second user who may not write the share
    assert viewer.status("img_00") == "approved"
    viewer.set_prediction_info("img_00", 0.3)  # opening the image predicts it
    viewer.set_prediction_info("img_01", 0.3)
    assert viewer.status("img_00") == "approved" and viewer.status("img_01") == "predicted"
    from retina_desktop.core.review.export import ExportOptions, export_masks

    summary = export_masks(viewer, ExportOptions(tmp_path / "out", approved_only=True))
    assert summary.written == ["img_00"]


def test_a_full_disk_at_open_says_so_and_keeps_the_approvals_until_space_is_freed(tmp_path, rng, monkeypatch):
    root = make_workspace(tmp_path / "w", 2)
    ws = Workspace(root)
    ws.save_ground_truth(ws.entries[0], rng.random((160, 150)) > 0.5, action="save")
    ws.close()
    real = records_mod.Records._open
    full = {"on": True}

    def disk_full(self, *args):
        if full["on"] and str(self.path) != ":memory:":
            raise records_mod.RecordsDamaged("disk I/O error", damaged=False)
        real(self, *args)

    monkeypatch.setattr(records_mod.Records, "_open", disk_full)
    monkeypatch.setattr("shutil.disk_usage", lambda p: type("U", (), {"free": 0})())
    again = Workspace(root)
    assert any("disk full" in n for n in again.notices) and not any("I/O" in n for n in again.notices)
    again.approve(again.entries[0])
    assert again.status("img_00") == "approved" and again.pending_records == 1
    assert "not yet in the records" in again.notices[-1]
    full["on"] = False  # space freed
    again.flush()
    assert again.pending_records == 0
    again.close()
    monkeypatch.undo()
    assert Workspace(root).status("img_00") == "approved"


@pytest.mark.parametrize("folder", [".retina", "ground_truth"])
def test_a_folder_renamed_while_open_is_refused_like_a_renamed_workspace(tmp_path, rng, folder):
    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    e = ws.entries[0]
    ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    (root / folder).rename(root / f"{folder}-renamed")
    with pytest.raises(WorkspaceGoneError, match="has gone or was replaced"):
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    assert not (root / folder).exists()  # no ghost folder at the old path
    assert any("has gone or was replaced" in p for p in ws.verify())


def test_a_long_file_name_opens_and_verifies_without_a_traceback(tmp_path):
    root = _tiny_workspace(tmp_path / "w", 1)
    (root / f"{'x' * 250}.png").write_bytes((root / "p0000.png").read_bytes())
    ws = Workspace(root)
    assert len(ws.entries) == 2 and ws.verify() == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_verify_names_a_fifo_and_a_device_in_the_records_and_finishes(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 2)
    ws = Workspace(root)
    for e in ws.entries:
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
    fifo_version, dev_version = (ws.versions(e)[0].path for e in ws.entries)
    fifo_version.unlink()
    os.mkfifo(fifo_version)
    dev_version.unlink()
    dev_version.symlink_to("/dev/zero")
    started = time.monotonic()
    problems = Workspace(root).verify()
    assert time.monotonic() - started < 10
    assert any(str(fifo_version) in p and "FIFO" in p for p in problems)
    assert any(str(dev_version) in p and "link" in p for p in problems)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_where_the_records_file_should_be_is_one_line(tmp_path):
    root = make_workspace(tmp_path / "w", 1)
    (root / ".retina").mkdir()
    os.mkfifo(root / ".retina" / "records.sqlite")
    ws = Workspace(root)
    assert any("FIFO" in n for n in ws.notices) and all("\n" not in n for n in ws.notices)


def test_the_mount_table_names_network_filesystems():
    mounts = (
        "/dev/sda1 / ext4 rw 0 0\nserver:/export /mnt/nfs nfs4 rw 0 0\n"
        "//nas/share /mnt/my\\040share cifs rw 0 0\nme@host: /home/me/remote fuse.sshfs rw 0 0\n"
    )
    assert filesystem.mount_type(Path("/mnt/nfs/study"), mounts) == "nfs4"
    assert filesystem.mount_type(Path("/mnt/my share/w"), mounts) == "cifs"
    assert filesystem.mount_type(Path("/home/me/remote/x"), mounts) == "fuse.sshfs"
    assert filesystem.mount_type(Path("/home/me/local"), mounts) == "ext4"
    assert filesystem.mount_type(Path("/mnt/nfsother"), mounts) == "ext4"


def test_a_network_folder_uses_the_rollback_journal_and_says_so_once(tmp_path, monkeypatch):
    root = make_workspace(tmp_path / "w", 1)
    monkeypatch.setattr(workspace_mod, "is_network_folder", lambda p: True)
    ws = Workspace(root)
    ws.set_status("img_00", "edited")
    mode = ws.records.query("PRAGMA journal_mode")[0][0]
    assert mode == "delete"
    assert sum("network folder" in n and "two machines must not write" in n for n in ws.notices) == 1
    assert not Path(f"{ws.records_path}-wal").exists()


def test_two_processes_rebuilding_at_once_make_one_file(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 3)
    ws = Workspace(root)
    for e in ws.entries:
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, action="save")
        ws.approve(e)
    ws.close()
    _damage(root / ".retina" / "records.sqlite")
    children = [_open_in_child(root) for _ in range(2)]
    assert [c.wait(timeout=60) for c in children] == [0, 0]
    again = Workspace(root)
    assert [again.status(e.key) for e in again.entries] == ["approved"] * 3
    assert len(list((root / ".retina").glob("records.corrupt-*.sqlite"))) == 1


def _reference_set(root: Path, rng, count: int = 2) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "mask").mkdir()
    for i in range(count):
        cv2.imwrite(str(root / "images" / f"im{i:02d}.png"), np.full((16, 16, 3), 80, np.uint8))
        cv2.imwrite(str(root / "mask" / f"im{i:02d}.png"), ((rng.random((16, 16)) > 0.5) * 255).astype(np.uint8))
    return root


def test_corrections_kept_apart_go_to_corrected_and_the_data_sets_masks_stay(tmp_path, rng):
    root = _reference_set(tmp_path / "set", rng)
    originals = {p.name: p.read_bytes() for p in (root / "mask").iterdir()}
    ws = Workspace(root)
    e = ws.entries[0]
    assert ws.replaces_dataset_mask(e) and ws.dataset_masks is None
    ws.set_dataset_masks("corrected")
    assert not ws.replaces_dataset_mask(e)
    own = ws.load_ground_truth(e, (16, 16))  # the data set's mask is what the grader starts from
    assert np.array_equal(own, read_mask(root / "mask" / "im00.png"))
    fixed = rng.random((16, 16)) > 0.5
    ws.save_ground_truth(e, fixed, action="save")
    ws.approve(e)
    assert {p.name: p.read_bytes() for p in (root / "mask").iterdir()} == originals
    assert np.array_equal(read_mask(root / "corrected" / "mask" / "im00.png"), fixed)
    again = Workspace(root)  # the choice is remembered
    assert again.dataset_masks == "corrected" and again.status("im00") == "approved"
    assert np.array_equal(again.load_ground_truth(again.entry("im00"), (16, 16)), fixed)


def test_saving_over_the_data_sets_masks_keeps_the_originals_in_history(tmp_path, rng):
    root = _reference_set(tmp_path / "set", rng)
    original = (root / "mask" / "im00.png").read_bytes()
    ws = Workspace(root)
    ws.set_dataset_masks("overwrite")
    ws.save_ground_truth(ws.entries[0], rng.random((16, 16)) > 0.5, action="save")
    assert hashlib.sha256(original).hexdigest() in _shas_in(root / ".retina" / "history")
    assert not ws.replaces_dataset_mask(ws.entries[1])  # asked once per workspace
