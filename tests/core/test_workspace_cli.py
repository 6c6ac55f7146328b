"""``retina-desktop workspace {status,import,history,restore,verify}``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
from sample_workspaces import make_workspace

from model_core.imageio import encode_png, mask_to_png, read_mask
from retina_desktop.__main__ import main
from retina_desktop.core.workspace import Workspace


def _write_mask(path: Path, mask) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(path, mask_to_png(mask, 255)))
    return path


def test_import_then_history_restore_status_and_verify(tmp_path, rng, capsys):
    ws_root = make_workspace(tmp_path / "w", 3)
    masks = tmp_path / "incoming"
    a, b = rng.random((160, 150)) > 0.7, rng.random((160, 150)) > 0.7
    _write_mask(masks / "img_00.png", a)
    _write_mask(masks / "img_01.png", b)
    _write_mask(masks / "stranger.png", a)
    _write_mask(masks / "img_02.png", np.zeros((20, 20), bool))
    (masks / "notes.txt").write_text("ignored")
    assert main(["workspace", "import", str(ws_root), str(masks), "--reviewer", "ann"]) == 1
    out, err = capsys.readouterr()
    assert "2 mask(s) imported" in out
    refused = [line for line in err.splitlines() if line.startswith("refused:")]
    assert len(refused) == 2 and any("stranger.png" in r and "no image named" in r for r in refused)
    assert any("img_02.png" in r and "20x20" in r for r in refused)
    assert np.array_equal(read_mask(ws_root / "ground_truth" / "img_00.png"), a)

    _write_mask(masks / "img_00.png", b)
    for name in ("stranger.png", "img_02.png", "img_01.png"):
        (masks / name).unlink()
    assert main(["workspace", "import", str(ws_root), str(masks), "--reviewer", "bob"]) == 0
    capsys.readouterr()

    assert main(["workspace", "history", str(ws_root), "img_00", "--json"]) == 0
    hist = json.loads(capsys.readouterr().out)
    assert [(v["reviewer"], v["source"]) for v in hist["versions"]] == [("ann", "import"), ("bob", "import")]
    assert all({"sha256", "time", "reviewer", "source", "path"} <= set(v) for v in hist["versions"])
    first = hist["versions"][0]
    assert np.array_equal(read_mask(first["path"]), a) and hist["current"] == hist["versions"][1]["sha256"]

    assert main(["workspace", "restore", str(ws_root), "img_00", first["sha256"]]) == 0
    assert "restored" in capsys.readouterr().out
    assert np.array_equal(read_mask(ws_root / "ground_truth" / "img_00.png"), a)

    assert main(["workspace", "status", str(ws_root), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    by_key = {i["key"]: i for i in status["images"]}
    assert by_key["img_00"]["status"] == "edited" and by_key["img_00"]["versions"] == 2
    assert by_key["img_02"]["mask"] is None and status["counts"]["new"] == 1
    assert main(["workspace", "status", str(ws_root)]) == 0
    assert "img_01" in capsys.readouterr().out

    assert main(["workspace", "verify", str(ws_root)]) == 0
    assert "ok" in capsys.readouterr().out


def test_verify_finds_missing_and_damaged_versions(tmp_path, rng, capsys):
    root = make_workspace(tmp_path / "w", 2)
    ws = Workspace(root)
    for e in ws.entries:
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.7)
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.7)
    ws.close()
    v0, v1 = Workspace(root).versions("img_00")[:2]
    v0.path.unlink()
    v1.path.write_bytes(b"not a png")
    assert main(["workspace", "verify", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{v0.path}: recorded version of img_00 is missing" in out
    assert str(v1.path) in out and "2 problem(s)" in out


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    root = make_workspace(tmp_path / "w", 1)
    assert main(["workspace", "history", str(root), "nope"]) == 1
    assert "no image 'nope'" in capsys.readouterr().err
    assert main(["workspace", "status", str(tmp_path / "missing")]) == 2
    assert "folder not found" in capsys.readouterr().err
    assert main(["workspace", "restore", str(root), "img_00", "abc"]) == 1
    assert "'abc' is too short to name a version: give at least 6 characters" in capsys.readouterr().err


def test_restore_refuses_a_damaged_swapped_or_misplaced_history_file_and_keeps_the_mask(tmp_path, rng, capsys):
    root = make_workspace(tmp_path / "w", 2)
    ws = Workspace(root)
    e0, e1 = ws.entries
    old0, now0 = rng.random((160, 150)) > 0.7, rng.random((160, 150)) > 0.7
    ws.save_ground_truth(e0, old0)
    ws.save_ground_truth(e0, now0)
    ws.save_ground_truth(e1, rng.random((160, 150)) > 0.7)
    ws.close()
    v_old = Workspace(root).versions("img_00")[0]
    gt = root / "ground_truth" / "img_00.png"
    on_disk = gt.read_bytes()
    original = v_old.path.read_bytes()

    def refused(expected):
        assert main(["workspace", "restore", str(root), "img_00", v_old.sha256]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0], err
        assert gt.read_bytes() == on_disk  # the mask on disk is untouched

    _write_mask(v_old.path, rng.random((160, 150)) > 0.5)  # another mask under this version's name
    refused("content differs from version")
    v_old.path.write_bytes(b"garbage")
    refused("content differs from version")
    _write_mask(v_old.path, np.zeros((20, 30), bool))
    refused("content differs from version")  # a mask of another size is caught by its content first
    v_old.path.write_bytes(original)
    con = sqlite3.connect(root / ".retina" / "records.sqlite")  # a record pointing outside the history
    outside = _write_mask(tmp_path / "elsewhere.png", old0)
    con.execute("UPDATE versions SET path = ? WHERE sha256 = ?", (str(outside), v_old.sha256))
    con.commit()
    con.close()
    refused("points outside the workspace's history")


def test_restore_refuses_a_version_of_another_size_than_the_photo(tmp_path, capsys):
    import hashlib

    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    ws.save_ground_truth(ws.entries[0], np.ones((160, 150), bool))
    hist = ws.history_dir(ws.entries[0])
    small = _write_mask(tmp_path / "small.png", np.ones((20, 30), bool))
    sha = hashlib.sha256(small.read_bytes()).hexdigest()
    (hist / f"{sha}.png").write_bytes(small.read_bytes())  # a file in the history under its own sha, unrecorded
    ws.close()
    assert main(["workspace", "restore", str(root), "img_00", sha]) == 1
    err = capsys.readouterr().err.strip()
    assert "is 30x20 but the photo img_00.png is 150x160; nothing was restored" in err
    assert read_mask(root / "ground_truth" / "img_00.png").all()


def test_the_command_runs_headless_from_the_entry_point(tmp_path):
    root = make_workspace(tmp_path / "w", 1)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    probe = (
        "import sys, runpy; sys.argv = ['retina-desktop', 'workspace', 'verify', sys.argv[1]];"
        "\ntry:\n    runpy.run_module('retina_desktop', run_name='__main__')\n"
        "finally:\n    print('qt loaded' if 'PySide6' in sys.modules else 'no qt', file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", probe, str(root)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout and "no qt" in r.stderr
    con = sqlite3.connect(root / ".retina" / "records.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_status_into_a_reader_that_stops_early_prints_no_traceback(tmp_path):
    ws_root = make_workspace(tmp_path / "w", 3)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "retina_desktop", "workspace", "status", str(ws_root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # like `| head -0`: closed before the command writes its first line
    err = proc.stderr.read().decode()
    # 141 (128 + SIGPIPE, as git and coreutils end) when the reader left before the command had its verdict;
    # the command's own code when it had one. Never 1 with a traceback.
    assert proc.wait(60) in (0, 141)
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_import_refuses_photos_and_leaves_unchanged_masks_alone(tmp_path, rng, capsys):
    from model_core.imageio import write_png_atomic
    from model_core.synthetic import make_fundus

    root = make_workspace(tmp_path / "w", 3)
    incoming = tmp_path / "incoming"
    write_png_atomic(incoming / "img_00.png", make_fundus(160, 150, seed=3).image)  # a photo, not a mask
    green = np.zeros((160, 150, 3), np.uint8)
    vessels = rng.random((160, 150)) > 0.8
    green[vessels] = (0, 255, 0)  # one colour on black: a mask
    write_png_atomic(incoming / "img_01.png", green)
    assert main(["workspace", "import", str(root), str(incoming), "--reviewer", "ann"]) == 1
    out, err = capsys.readouterr()
    assert "1 mask(s) imported" in out
    assert f"refused: {incoming / 'img_00.png'}: is a colour picture, not a mask" in err
    assert not (root / "ground_truth" / "img_00.png").exists()
    assert np.array_equal(read_mask(root / "ground_truth" / "img_01.png"), vessels)
    # The workspace's own folder: its photos are refused, never thresholded into ground truth.
    assert main(["workspace", "import", str(root), str(root), "--reviewer", "ann"]) == 1
    out, err = capsys.readouterr()
    assert "0 mask(s) imported" in out and err.count("is the workspace's photo itself") == 3
    # The same masks again change nothing and say so.
    (incoming / "img_00.png").unlink()
    versions = len(Workspace(root).versions("img_01"))
    assert main(["workspace", "import", str(root), str(incoming), "--reviewer", "ann"]) == 0
    out = capsys.readouterr().out
    assert "0 mask(s) imported" in out and "1 already the current version, left as they are" in out
    assert len(Workspace(root).versions("img_01")) == versions


def test_verify_flags_a_mask_of_the_wrong_size_and_unreadable_records(tmp_path, rng, capsys):
    root = make_workspace(tmp_path / "w", 2)
    ws = Workspace(root)
    for e in ws.entries:
        ws.save_ground_truth(e, rng.random((160, 150)) > 0.7)
    ws.close()
    assert main(["workspace", "verify", str(root)]) == 0
    capsys.readouterr()
    _write_mask(root / "ground_truth" / "img_00.png", np.ones((20, 30), bool))  # written by another program
    assert main(["workspace", "verify", str(root)]) == 1
    out = capsys.readouterr().out
    assert "img_00.png: mask is 30x20 but the photo img_00.png is 150x160" in out and "img_01.png" not in out

    other = make_workspace(tmp_path / "v", 1)
    (other / ".retina").mkdir(exist_ok=True)
    (other / ".retina" / "records.sqlite").mkdir()  # a folder where the records file should be
    assert main(["workspace", "verify", str(other)]) == 1
    out = capsys.readouterr().out
    assert "could not be opened" in out and "no recorded version could be checked" in out


def test_text_history_marks_one_row_on_disk_after_a_restore(tmp_path, rng, capsys):
    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    e = ws.entries[0]
    ws.save_ground_truth(e, rng.random((160, 150)) > 0.7, reviewer="ann")
    first = ws.versions(e)[0]
    ws.save_ground_truth(e, rng.random((160, 150)) > 0.7, reviewer="ann")
    ws.restore(e, first.sha256, reviewer="ann")  # the first content is on disk again, as a third version
    ws.close()
    assert main(["workspace", "history", str(root), "img_00"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 3 and [r[0] for r in rows] == [" ", " ", "*"]
    assert first.sha256[:12] in rows[0] and first.sha256[:12] in rows[2] and "T" not in rows[2].split()[1]


def test_import_of_another_graders_export_brings_masks_labels_and_discs_as_new_versions(tmp_path, rng, capsys):
    """Two graders on copies of one folder: B imports A's export; B's own versions stay in B's history."""
    from model_core.calibre import Disc
    from retina_desktop.core.review.export import ExportOptions, export_masks

    a_root = make_workspace(tmp_path / "a", 3)
    b_root = tmp_path / "b"
    b_root.mkdir()
    for p in a_root.glob("img_*.png"):
        (b_root / p.name).write_bytes(p.read_bytes())
    shape = (160, 150)
    mask, labels = rng.random(shape) > 0.7, rng.integers(0, 4, shape).astype(np.uint8)
    a = Workspace(a_root)
    for e in a.entries[:2]:
        a.save_ground_truth(e, mask, reviewer="ann")
        a.calibre.save_labels(e.key, labels, reviewer="ann")
        a.calibre.save_disc(e.key, Disc(70.25, 80.5, 30.125), reviewer="ann")
    export_masks(a, ExportOptions(tmp_path / "export"))
    a.close()
    b = Workspace(b_root)
    b.calibre.save_labels("img_00", np.zeros(shape, np.uint8), reviewer="bob")  # B's own work first
    b.calibre.save_disc("img_00", Disc(10.0, 10.0, 20.0), reviewer="bob")
    b.close()

    assert main(["workspace", "import", str(b_root), str(tmp_path / "export"), "--reviewer", "ann"]) == 0
    out = capsys.readouterr().out
    assert "2 mask(s), 2 artery/vein label set(s), 2 disc(s) imported" in out
    b = Workspace(b_root)
    for key in ("img_00", "img_01"):
        assert np.array_equal(b.calibre.read_labels(key, shape), labels)
        assert b.calibre.read_disc(key) == Disc(70.25, 80.5, 30.125)  # exactly, through the CSV
        assert np.array_equal(read_mask(b_root / "ground_truth" / f"{key}.png") > 0, mask)
    kept = [(v.reviewer, v.note) for v in b.calibre.versions("img_00", "av")]
    assert kept == [("bob", "grader"), ("ann", "import")]
    assert b.calibre.version_bytes("img_00", "av", b.calibre.versions("img_00", "av")[0].sha256)  # B's copy kept
    assert [v.reviewer for v in b.calibre.versions("img_00", "disc")] == ["bob", "ann"]
    b.close()

    # Again: nothing new. Then a wrong-size A/V mask and a damaged disc file: one line each, the rest imported.
    assert main(["workspace", "import", str(b_root), str(tmp_path / "export"), "--reviewer", "ann"]) == 0
    assert "6 already the current version" in capsys.readouterr().out
    av = tmp_path / "export" / "av"
    (av / "img_01.png").write_bytes(encode_png(av / "img_01.png", np.zeros((20, 20), np.uint8)))
    (tmp_path / "export" / "disc.csv").write_text("image,x,y\nimg_00,1,2\n")
    assert main(["workspace", "import", str(b_root), str(tmp_path / "export"), "--reviewer", "ann"]) == 1
    _out, err = capsys.readouterr()
    refused = [line for line in err.splitlines() if line.startswith("refused:")]
    assert len(refused) == 2 and "Traceback" not in err
    assert any("img_01.png" in r and "20x20" in r for r in refused)
    assert any("disc.csv" in r and "image,x,y,diameter" in r for r in refused)
    b = Workspace(b_root)
    assert np.array_equal(b.calibre.read_labels("img_01", shape), labels)  # nothing replaced by the refused file
    assert b.verify() == []
    b.close()


def test_import_takes_an_av_folder_and_a_disc_file_named_on_the_command_line(tmp_path, capsys):
    ws_root = make_workspace(tmp_path / "w", 2)
    av = tmp_path / "labels"
    av.mkdir()
    labels = np.zeros((160, 150), np.uint8)
    labels[40:50, :] = 1
    (av / "img_01.png").write_bytes(encode_png(av / "img_01.png", labels))
    discs = tmp_path / "d.csv"
    discs.write_text("image,x,y,diameter\nimg_01.png,75,80,30\nnobody,1,1,1\n")
    args = ["workspace", "import", str(ws_root), str(tmp_path / "empty"), "--reviewer", "ann"]
    (tmp_path / "empty").mkdir()
    assert main(args) == 2 and "no mask images found" in capsys.readouterr().err  # nothing to import at all
    assert main([*args, "--av", str(av), "--disc", str(discs)]) == 1
    out, err = capsys.readouterr()
    assert "0 mask(s), 1 artery/vein label set(s), 1 disc(s) imported" in out
    assert "refused:" in err and "nobody" in err
    ws = Workspace(ws_root)
    assert np.array_equal(ws.calibre.read_labels("img_01", labels.shape), labels)
    assert ws.calibre.versions("img_01", "disc")[0].note == "import"
    ws.close()
