"""The optic disc and artery/vein labels are versions in the records (schema 4), kept before they are replaced: every
save adds a row and a history copy, a restore is a new version, a rebuild and a migration from the last release find
the history files again, and a kill, a damaged file, a read-only folder or a newer records file lose no version."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_core import atomic
from model_core.calibre import Disc
from model_core.calibre_inputs import read_av_mask
from retina_desktop.core.workspace import ReadOnlyWorkspaceError, Workspace, WorkspaceError, records as records_mod
from retina_desktop.core.workspace.calibre_records import CalibreFileDamaged

from .helpers import child_env, kill_inside_saves

SHAPE = (160, 150)  # make_workspace's photos


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _labels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, SHAPE).astype(np.uint8)


def _all_kept(ws: Workspace, key: str, kind: str) -> set[str]:
    """The contents recorded for the image whose history file holds exactly that content."""
    return {v.sha256 for v in ws.calibre.versions(key, kind) if v.path.is_file() and _sha(v.path) == v.sha256}


def test_each_save_keeps_the_new_version_in_the_history_and_records_a_row(root):
    ws = Workspace(root)
    first, second = Disc(50.0, 60.0, 30.0), Disc(52.0, 61.0, 31.0)
    ws.calibre.save_disc("img_00", first, reviewer="ann", note="auto")
    ws.calibre.save_disc("img_00", second, reviewer="bob")
    ws.calibre.save_disc("img_00", second, reviewer="bob")  # the same bytes again: no new version
    ws.calibre.save_labels("img_00", _labels(1), reviewer="bob")
    rows = ws.records.calibre_versions("img_00")
    assert [(r.kind, r.reviewer, r.note) for r in rows] == [
        ("disc", "ann", "auto"),
        ("disc", "bob", "grader"),
        ("av", "bob", "grader"),
    ]
    disc_file = ws.meta_dir / "calibre" / "img_00" / "disc.json"
    assert rows[1].sha256 == _sha(disc_file) and ws.calibre.read_disc("img_00") == second
    for r in rows:  # each row's file is in the history, relative to the records folder, with its bytes
        assert not Path(r.path).is_absolute() and _sha(ws.meta_dir / r.path) == r.sha256
    assert json.loads((ws.meta_dir / rows[0].path).read_text())["diameter"] == 30.0
    assert np.array_equal(ws.calibre.read_labels("img_00", SHAPE), _labels(1))
    assert ws.records.query("PRAGMA user_version") == [(4,)] and ws.verify() == []


def test_restoring_an_older_labels_version_is_itself_a_version(root):
    ws = Workspace(root)
    ws.calibre.save_labels("img_00", _labels(1))
    ws.calibre.save_labels("img_00", _labels(2))
    old = ws.calibre.versions("img_00", "av")[0]
    ws.calibre.restore("img_00", "av", old.sha256, reviewer="cy")
    assert np.array_equal(ws.calibre.read_labels("img_00", SHAPE), _labels(1))
    rows = ws.records.calibre_versions("img_00", "av")
    assert [r.note for r in rows] == ["grader", "grader", "restore"] and rows[-1].sha256 == old.sha256
    newer = rows[1]
    ws.calibre.restore("img_00", "av", newer.sha256)  # restoring the other one takes the restore back
    assert np.array_equal(ws.calibre.read_labels("img_00", SHAPE), _labels(2))
    assert len(list((ws.meta_dir / "calibre" / "img_00" / "history").iterdir())) == 2  # no copy made twice


def test_a_workspace_of_the_last_release_migrates_and_its_calibre_history_becomes_rows(root):
    ws = Workspace(root)
    ws.close()
    db = root / ".retina" / "records.sqlite"
    con = sqlite3.connect(db)  # what the last release left: schema 3, no calibre table
    con.executescript("DROP TABLE calibre_versions; PRAGMA user_version=3;")
    con.close()
    folder = root / ".retina" / "calibre" / "img_00"
    (folder / "history").mkdir(parents=True)
    (folder / "disc.json").write_text(json.dumps({"x": 70, "y": 80, "diameter": 33}, indent=2))
    (folder / "history" / "disc-0001.json").write_text(json.dumps({"x": 60, "y": 80, "diameter": 33}, indent=2))
    ws = Workspace(root)
    assert any("migrated to schema 4" in n for n in ws.notices)
    assert ws.calibre.read_disc("img_00") == Disc(70.0, 80.0, 33.0)
    (indexed,) = ws.calibre.versions("img_00", "disc")
    assert indexed.note == "indexed" and indexed.path.name == "disc-0001.json"
    ws.calibre.save_disc("img_00", Disc(71.0, 80.0, 33.0))
    notes = [v.note for v in ws.calibre.versions("img_00", "disc")]
    assert notes == ["indexed", "found on disk", "grader"]  # the release's current disc kept before replaced
    kept = {json.loads(v.path.read_text())["x"] for v in ws.calibre.versions("img_00", "disc")}
    assert kept == {60, 70, 71} and ws.verify() == []


def test_a_lost_records_file_is_rebuilt_with_the_calibre_versions(root):
    ws = Workspace(root)
    ws.calibre.save_disc("img_01", Disc(40.0, 40.0, 20.0))
    ws.calibre.save_disc("img_01", Disc(41.0, 40.0, 20.0))
    ws.calibre.save_labels("img_01", _labels(3))
    before = {(v.kind, v.sha256, v.path) for v in ws.calibre.versions("img_01")}
    ws.close()
    for p in (root / ".retina").glob("records.sqlite*"):
        p.unlink()
    again = Workspace(root)
    assert any("rebuilt" in n and "optic disc / artery-vein history file(s)" in n for n in again.notices)
    assert {(v.kind, v.sha256, v.path) for v in again.calibre.versions("img_01")} == before
    assert again.verify() == []


def test_a_garbage_disc_file_is_named_in_one_line_and_its_history_copy_restores(root):
    ws = Workspace(root)
    ws.calibre.save_disc("img_00", Disc(50.0, 50.0, 25.0))
    good = ws.calibre.versions("img_00", "disc")[0]
    disc_file = ws.meta_dir / "calibre" / "img_00" / "disc.json"
    disc_file.write_bytes(b"\x00garbage{")
    labels_file = ws.meta_dir / "calibre" / "img_00" / "av.png"
    labels_file.write_bytes(b"not a png")
    with pytest.raises(CalibreFileDamaged) as info:
        ws.calibre.read_disc("img_00")
    assert "disc.json" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(CalibreFileDamaged) as info:
        ws.calibre.read_labels("img_00", SHAPE)
    assert "av.png" in str(info.value) and "\n" not in str(info.value)
    problems = ws.verify()
    assert any("disc.json: the optic disc file is damaged" in p for p in problems)
    ws.calibre.restore("img_00", "disc", good.sha256)
    assert ws.calibre.read_disc("img_00") == Disc(50.0, 50.0, 25.0)
    garbage = [v for v in ws.calibre.versions("img_00", "disc") if v.note == "found on disk"]
    assert len(garbage) == 1 and garbage[0].path.read_bytes() == b"\x00garbage{"  # even the garbage is kept


def test_a_damaged_history_copy_is_refused_and_nothing_changes(root):
    ws = Workspace(root)
    ws.calibre.save_disc("img_00", Disc(50.0, 50.0, 25.0))
    ws.calibre.save_disc("img_00", Disc(60.0, 50.0, 25.0))
    old = ws.calibre.versions("img_00", "disc")[0]
    old.path.write_bytes(b"{}")
    before = (ws.meta_dir / "calibre" / "img_00" / "disc.json").read_bytes()
    with pytest.raises(WorkspaceError, match="damaged") as info:
        ws.calibre.restore("img_00", "disc", old.sha256)
    assert "\n" not in str(info.value)
    assert (ws.meta_dir / "calibre" / "img_00" / "disc.json").read_bytes() == before


def test_verify_names_a_current_version_whose_history_copy_is_garbled_and_the_next_save_rewrites_it(root):
    ws = Workspace(root)
    ws.calibre.save_labels("img_00", _labels(1))
    ws.calibre.save_labels("img_00", _labels(2))
    current = ws.calibre.current_sha("img_00", "av")
    copy = next(v for v in ws.calibre.versions("img_00", "av") if v.sha256 == current)
    copy.path.write_bytes(b"garbage")
    problems = [p for p in ws.verify() if p.endswith("has no readable copy in the history (the next save of img_00 "
                                                       "writes one)")]  # fmt: skip
    assert len(problems) == 1 and "av.png" in problems[0]
    ws.calibre.save_labels("img_00", _labels(3))  # keeps the current bytes again before replacing them
    readable = {_sha(p) for p in ws.calibre.history_of("img_00", "av")}
    assert current in readable and ws.calibre.current_sha("img_00", "av") in readable


def test_a_read_only_records_folder_refuses_the_save_in_one_line_and_loses_nothing(root, monkeypatch):
    ws = Workspace(root)
    ws.calibre.save_labels("img_00", _labels(1))
    rows_before = ws.records.calibre_versions()
    real = atomic.os.replace

    def read_only(src, dst):  # root ignores chmod: the folder's refusal as the kernel gives it
        if "calibre" in str(dst):
            raise OSError(30, os.strerror(30), str(dst))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", read_only)
    with pytest.raises(ReadOnlyWorkspaceError, match="read-only") as info:
        ws.calibre.save_labels("img_00", _labels(2))
    assert "\n" not in str(info.value) and "nothing was saved" in str(info.value)
    monkeypatch.setattr(atomic.os, "replace", real)
    assert np.array_equal(ws.calibre.read_labels("img_00", SHAPE), _labels(1))
    assert ws.records.calibre_versions() == rows_before
    assert not [p for p in (ws.meta_dir / "calibre").rglob("*") if p.name.endswith(".tmp")]
    ws.calibre.save_labels("img_00", _labels(2))  # once writable again, the save goes through
    assert _all_kept(ws, "img_00", "av") == {_sha(p) for p in ws.calibre.history_of("img_00", "av")}
    assert len(_all_kept(ws, "img_00", "av")) == 2 and ws.verify() == []


def test_a_newer_records_file_refuses_calibre_saves_with_the_one_line_message(root):
    ws = Workspace(root)
    ws.calibre.save_disc("img_00", Disc(50.0, 50.0, 25.0))
    ws.close()
    db = root / ".retina" / "records.sqlite"
    con = sqlite3.connect(db)
    con.executescript(f"PRAGMA user_version={records_mod.SCHEMA_VERSION + 1};")
    con.close()
    before = db.read_bytes()
    disc_before = (root / ".retina" / "calibre" / "img_00" / "disc.json").read_bytes()
    again = Workspace(root)
    assert again.records.newer and again.calibre.read_disc("img_00") == Disc(50.0, 50.0, 25.0)
    with pytest.raises(ReadOnlyWorkspaceError) as info:
        again.calibre.save_disc("img_00", Disc(1.0, 1.0, 5.0))
    assert str(info.value).endswith(f"{records_mod.NEWER_FILE}; nothing was saved") and "\n" not in str(info.value)
    again.close()
    assert db.read_bytes() == before
    assert (root / ".retina" / "calibre" / "img_00" / "disc.json").read_bytes() == disc_before


def _saver(root: Path, fd: int, seed: int) -> None:
    """The body of a forked child: save new A/V labels and discs for ever, reporting each one done."""
    try:
        ws = Workspace(root)
        rng = np.random.default_rng(seed)
        while True:
            labels = rng.integers(0, 4, SHAPE).astype(np.uint8)
            ws.calibre.save_labels("img_00", labels)
            os.write(fd, f"av {hashlib.sha256(ws.calibre.path('img_00', 'av').read_bytes()).hexdigest()}\n".encode())
            ws.calibre.save_disc("img_00", Disc(float(rng.integers(20, 120)), 70.0, 30.0))
            os.write(fd, f"disc {ws.calibre.current_sha('img_00', 'disc')}\n".encode())
    finally:
        os._exit(1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to start the savers quickly")
def test_sigkill_inside_calibre_saves_leaves_old_or_new_and_loses_no_version(root):
    Workspace(root).close()
    lines = kill_inside_saves(_saver, root, rounds=12, seed=31, most_done=4, wait_s=60)
    reported = [tuple(line.split()) for line in lines if len(line.split()) == 2]
    ws = Workspace(root)
    # Old or new on disk, whole (each decodes), and its content in the history.
    assert ws.calibre.read_disc("img_00") is not None and ws.calibre.read_labels("img_00", SHAPE) is not None
    for kind in ("disc", "av"):
        history = {_sha(p) for p in ws.calibre.history_of("img_00", kind)}
        assert ws.calibre.current_sha("img_00", kind) in history
    # A save killed between its copy and its row left a history file no row names; the next save records it.
    ws.calibre.save_disc("img_00", Disc(1.0, 2.0, 3.0))
    ws.calibre.save_labels("img_00", _labels(99))
    kept = {kind: _all_kept(ws, "img_00", kind) for kind in ("disc", "av")}
    lost = [(kind, sha) for kind, sha in reported if sha not in kept[kind]]
    assert len(reported) >= 12 and lost == []  # lost versions: 0
    assert ws.verify() == []
    assert read_av_mask(ws.calibre.path("img_00", "av")).shape == SHAPE


KILLED_BEFORE_ROW = """
import os, signal, sys
from model_core.calibre import Disc
from retina_desktop.core.workspace import Workspace
from retina_desktop.core.workspace.records import Records
ws = Workspace(sys.argv[1])
ws.calibre.save_disc("img_00", Disc(10.0, 20.0, 30.0))
# Killed at the worst point: the new disc is in the history and on disk, its row not yet written.
Records.add_calibre_version = lambda self, row: os.kill(os.getpid(), signal.SIGKILL)
ws.calibre.save_disc("img_00", Disc(11.0, 20.0, 30.0))
"""


def test_a_sigkill_between_the_history_copy_and_its_row_loses_no_version(root):
    Workspace(root).close()
    proc = subprocess.run([sys.executable, "-c", KILLED_BEFORE_ROW, str(root)], env=child_env(), timeout=120)
    assert proc.returncode == -signal.SIGKILL
    ws = Workspace(root)
    assert ws.calibre.read_disc("img_00") == Disc(11.0, 20.0, 30.0)  # the new one, whole
    assert any("found in the calibre history" in n for n in ws.notices)  # the open registered its copy
    kept = {json.loads(v.path.read_text())["x"] for v in ws.calibre.versions("img_00", "disc")}
    assert kept == {10.0, 11.0} and ws.verify() == []  # lost versions: 0


def test_records_emptied_by_a_killed_rebuild_are_rebuilt_with_the_calibre_versions(root):
    ws = Workspace(root)
    ws.save_ground_truth(ws.entries[0], np.ones(SHAPE, bool))
    ws.calibre.save_disc("img_00", Disc(40.0, 40.0, 20.0))
    ws.close()
    con = sqlite3.connect(root / ".retina" / "records.sqlite")
    con.executescript("DELETE FROM images; DELETE FROM versions; DELETE FROM review_log; DELETE FROM calibre_versions;")
    con.close()
    (root / ".retina" / "review_log.jsonl").unlink(missing_ok=True)
    again = Workspace(root)  # the calibre history alone must not make the empty file pass for a good one
    assert any("rebuilt" in n for n in again.notices)
    assert len(again.versions(again.entries[0])) == 1 and len(again.calibre.versions("img_00")) == 1
