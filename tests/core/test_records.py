"""The workspace's SQLite records: validation, damaged records set aside and rebuilt, failures that become typed
messages with a retry."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import read_mask
from retina_desktop.core.workspace import RecordError, Workspace, records as records_mod


def _log(image, action, reviewer="ann", added=0):
    return (
        json.dumps(
            {
                "time": "2026-01-01T10:00:00+00:00",
                "image": image,
                "action": action,
                "reviewer": reviewer,
                "model": "m v1",
                "pixels_added": added,
                "pixels_removed": 0,
            }
        )
        + "\n"
    )


def test_damaged_database_is_kept_aside_and_rebuilt(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 3)
    ws = Workspace(root)
    for e in ws.entries[:2]:
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.5, reviewer="alice", model="m v1", action="save")
    for i in range(3):  # more versions of img_01, then the first content again by a restore
        ws.save_ground_truth(ws.entries[1], rng.random((160, 150)) > 0.5, reviewer=f"r{i}", model="m v1", action="save")
    ws.restore(ws.entries[1], ws.versions("img_01")[0].sha256, reviewer="bob")
    ws.set_status("img_00", "approved")
    ws.log_review("img_00", "approve")
    before = {}
    for v in ws.versions("img_01"):  # each content as first saved
        before.setdefault((v.image, v.sha256), (v.time, v.reviewer, v.source, v.model))
    ws.close()
    db = root / ".retina" / "records.sqlite"
    data = bytearray(db.read_bytes())
    data[:100] = b"garbage!" * 12 + b"junk"
    db.write_bytes(bytes(data))
    again = Workspace(root)
    (aside,) = (root / ".retina").glob("records.corrupt-*.sqlite")
    assert aside.read_bytes()[:8] == b"garbage!"
    assert [again.status(k) for k in ("img_00", "img_01", "img_02")] == ["approved", "edited", "new"]
    assert len(again.notices) == 1 and "damaged" in again.notices[0] and aside.name in again.notices[0]
    assert again.verify() == []
    assert len(again.history(again.entries[0])) == 0 and len(again.versions(again.entries[0])) >= 1
    # The review log still knows who made each content, and when: the rebuilt history says so, oldest first
    # (one row per history file: the restore's content is the first save's file).
    rebuilt = [(v.sha256, v.time, v.reviewer, v.source) for v in again.versions("img_01")]
    assert [r[2] for r in rebuilt] == ["alice", "r0", "r1", "r2"]
    assert [r[1] for r in rebuilt] == sorted(r[1] for r in rebuilt)
    assert all(before[("img_01", sha)][:3] == (t, who, src) for sha, t, who, src in rebuilt)


def test_a_database_cut_to_zero_bytes_is_kept_aside_and_rebuilt(tmp_path, rng):
    """SQLite takes an empty file for a new database: every approval read "new" without a word."""
    import os

    root = make_workspace(tmp_path / "w", 3)
    ws = Workspace(root)
    for e in ws.entries[:2]:
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.5)
    ws.set_status("img_00", "approved")
    ws.log_review("img_00", "approve")
    ws.close()
    db = root / ".retina" / "records.sqlite"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    db.write_bytes(b"")
    os.utime(db, (db.stat().st_atime - 60, db.stat().st_mtime - 60))  # cut a while ago, not being created now
    again = Workspace(root)
    assert len(list((root / ".retina").glob("records.corrupt-*.sqlite"))) == 1
    assert [again.status(k) for k in ("img_00", "img_01", "img_02")] == ["approved", "edited", "new"]
    assert len(again.notices) == 1 and "damaged" in again.notices[0]


def test_garbage_rows_in_the_database_are_validated(tmp_path):
    root = make_workspace(tmp_path / "w", 2)
    Workspace(root).close()
    con = sqlite3.connect(root / ".retina" / "records.sqlite")
    con.execute("INSERT INTO images (key, status, uncertainty) VALUES ('img_00', 'zzz', 'abc'), ('img_01', 5, 1e308)")
    con.execute("INSERT INTO settings (name, value) VALUES ('threshold', '1e308')")
    con.commit()
    con.close()
    ws = Workspace(root)
    assert [ws.status("img_00"), ws.status("img_01")] == ["new", "new"]
    assert ws.uncertainty("img_00") is None and ws.uncertainty("img_01") is None and ws.threshold is None


def test_two_windows_do_not_erase_each_others_statuses(tmp_path):
    root = make_workspace(tmp_path / "w", 3)
    a, b = Workspace(root), Workspace(root)
    a.set_status("img_00", "approved")
    b.set_prediction_info("img_01", 0.3)  # used to rewrite the whole state from b's stale copy
    b.threshold = 0.6
    a.set_status("img_02", "edited")
    fresh = Workspace(root)
    assert [fresh.status(k) for k in ("img_00", "img_01", "img_02")] == ["approved", "predicted", "edited"]
    assert fresh.threshold == 0.6
    b.refresh()
    assert b.status("img_00") == "approved"


def test_a_record_failure_after_the_mask_was_written_is_a_message_with_a_retry(tmp_path, rng, monkeypatch):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (e,) = ws.entries
    mask = rng.random((160, 150)) > 0.5
    real = records_mod.Records.add_log

    def broken(self, record):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(records_mod.Records, "add_log", broken)
    with pytest.raises(RecordError) as info:
        ws.save_ground_truth(e, mask, action="save", status="edited", reviewer="ann")
    assert "was saved" in str(info.value) and "retry" in str(info.value) and "\n" not in str(info.value)
    assert np.array_equal(read_mask(e.gt_path), mask)  # the mask itself is safe
    assert ws.review_log() == [] and ws.versions(e) == []
    monkeypatch.setattr(records_mod.Records, "add_log", real)
    info.value.retry()
    (v,) = ws.versions(e)
    assert v.reviewer == "ann" and v.path.is_file() and ws.status(e.key) == "edited"
    assert [r["action"] for r in ws.review_log()] == ["save"]


def test_a_log_that_cannot_be_written_is_retried_not_a_traceback(tmp_path, monkeypatch):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    real = records_mod.Records.add_log
    monkeypatch.setattr(
        records_mod.Records,
        "add_log",
        lambda self, r: (_ for _ in ()).throw(sqlite3.OperationalError("attempt to write a readonly database")),
    )
    ws.log_review("img_00", "approve", added=1, removed=2)
    assert ws.pending_records == 1 and "could not be recorded" in ws.notices[-1]
    monkeypatch.setattr(records_mod.Records, "add_log", real)
    ws.flush()
    assert ws.pending_records == 0 and [r["action"] for r in ws.review_log()] == ["approve"]


def test_review_log_exports_as_csv_and_jsonl(tmp_path):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    ws.log_review("img_00", "save", model="m v1", added=5, removed=2, reviewer="ann", threshold=0.5)
    csv_text = ws.export_review_log(tmp_path / "log.csv").read_text().splitlines()
    assert csv_text[0].startswith("time,image,action,reviewer,model,pixels_added,pixels_removed")
    assert ",img_00,save,ann,m v1,5,2," in csv_text[1]
    (rec,) = [json.loads(x) for x in ws.export_review_log(tmp_path / "log.jsonl").read_text().splitlines()]
    assert rec["threshold"] == 0.5 and rec["pixels_removed"] == 2


def _png(mask):
    from model_core.imageio import encode_png, mask_to_png

    return encode_png("x.png", mask_to_png(mask, 255))


def test_a_full_disk_under_the_records_says_disk_full(tmp_path, rng, monkeypatch):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (e,) = ws.entries
    monkeypatch.setattr(
        records_mod.Records,
        "add_version",
        lambda self, *a, **k: (_ for _ in ()).throw(sqlite3.OperationalError("database or disk is full")),
    )
    mask = rng.random((160, 150)) > 0.5
    with pytest.raises(RecordError, match="disk full") as info:
        ws.save_ground_truth(e, mask)
    assert np.array_equal(read_mask(e.gt_path), mask)
    monkeypatch.undo()
    info.value.retry()
    assert len(ws.versions(e)) == 1


def test_the_prediction_cache_is_indexed(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 2))
    for e in ws.entries:
        ws.predictions.store(e, "m1", rng.random((160, 150)).astype(np.float32))
    rows = ws.records.predictions()
    assert [(img, key) for img, key, _ in rows] == [("img_00", "m1"), ("img_01", "m1")]
    assert all((ws.meta_dir / rel) == ws.predictions.path(ws.entry(img), key) for img, key, rel in rows)


def test_a_busy_database_is_not_mistaken_for_a_damaged_one(tmp_path, monkeypatch):
    root = make_workspace(tmp_path / "w", 2)
    ws = Workspace(root)
    ws.set_status("img_00", "approved")
    ws.close()
    monkeypatch.setattr(records_mod, "BUSY_TIMEOUT_MS", 200)
    blocker = sqlite3.connect(root / ".retina" / "records.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another program holding the database longer than the busy timeout
    blocker.execute("UPDATE settings SET value = value")
    try:
        again = Workspace(root)  # reads still work; the database is not set aside
        assert again.status("img_00") == "approved"
        again.set_status("img_01", "edited")  # the write waits, then becomes a retry, not a traceback
        assert again.pending_records == 1 and "retried" in again.notices[-1]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert not list((root / ".retina").glob("records.corrupt-*"))
    again.flush()
    assert again.pending_records == 0 and Workspace(root).status("img_01") == "edited"
    assert records_mod.failure(sqlite3.OperationalError("database is locked")).damaged is False
    assert records_mod.failure(sqlite3.DatabaseError("file is not a database")).damaged is True
    assert records_mod.failure(sqlite3.OperationalError("database schema has changed")).damaged is False


def test_opening_while_another_window_creates_the_database_waits_for_it(tmp_path, monkeypatch):
    root = make_workspace(tmp_path / "w", 1)
    real, calls = records_mod.Records._open, []

    def busy_at_first(self, *args):
        calls.append(1)
        if len(calls) <= 2:  # what SQLite answers while the other window switches the new file to WAL
            raise records_mod.RecordsDamaged("database is locked", damaged=False)
        real(self, *args)

    monkeypatch.setattr(records_mod.Records, "_open", busy_at_first)
    ws = Workspace(root)
    assert len(calls) >= 3 and ws.notices == [] and ws.records_path.is_file()
    ws.set_status("img_00", "edited")
    monkeypatch.undo()
    assert Workspace(root).status("img_00") == "edited"


def _schema_2_file(path):
    """A records file as schema 2 left it: an image, a version, a review-log entry and an "open" row."""
    con = sqlite3.connect(path, isolation_level=None)
    assert records_mod.migrate(con, to=2) == [1, 2]
    con.executescript(
        "INSERT INTO images (key, status, current_sha, reference_sha) VALUES ('a', 'approved', 'abc', 'ref');"
        "INSERT INTO versions (image, sha256, time, source, path) VALUES ('a', 'abc', 't', 'brush', 'history/a/abc');"
        "INSERT INTO review_log (time, image, action) VALUES ('t', 'a', 'save');"
        "INSERT INTO sessions (user, machine, pid, since, seen) VALUES ('ann', 'lab', 7, 't', 1.0);"
    )
    con.close()


def test_a_schema_2_file_migrates_to_open_windows_keeping_its_rows(tmp_path):
    db = tmp_path / "records.sqlite"
    _schema_2_file(db)
    records = records_mod.Records(db)
    assert records.migrated == [3, 4] and not records.newer
    assert records.calibre_versions() == []  # schema 4: the table of disc and A/V versions, empty
    assert records.image("a") == records_mod.ImageRow("a", "approved", None, "abc", None, "ref")
    assert [(v.image, v.sha256, v.path) for v in records.versions("a")] == [("a", "abc", "history/a/abc")]
    assert [r["action"] for r in records.log("a")] == ["save"]
    assert records.query("SELECT user, machine, pid, since, seen FROM open_windows") == [("ann", "lab", 7, "t", 1.0)]
    assert not records.query("SELECT 1 FROM sqlite_master WHERE name='sessions'")
    assert records.query("PRAGMA user_version") == [(records_mod.SCHEMA_VERSION,)]
    records.close()


def test_a_file_of_a_newer_schema_opens_read_only_and_stays_as_it_is(tmp_path):
    db = tmp_path / "records.sqlite"
    con = sqlite3.connect(db, isolation_level=None)
    records_mod.migrate(con)
    con.executescript(
        f"INSERT INTO images (key, status) VALUES ('a', 'edited');PRAGMA user_version={records_mod.SCHEMA_VERSION + 1};"
    )
    con.close()
    before = db.read_bytes()
    records = records_mod.Records(db)
    assert records.newer and records.migrated == []
    assert records.image("a").status == "edited"
    with pytest.raises(records_mod.RecordsReadOnly, match="newer"):
        records.update_image("a", "t", status="approved")
    records.close()
    assert db.read_bytes() == before
