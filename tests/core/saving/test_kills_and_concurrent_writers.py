"""Saves interrupted or doubled: a process killed with SIGKILL inside a save leaves the old mask or the new one and
loses no version it reported done, two writer processes at once lose no version, and the temporary files a killed
save leaves behind are removed when the workspace next opens (but not a save still in progress)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import read_mask, write_png_atomic
from retina_desktop.core.workspace import Workspace

from .helpers import child_env, kill_inside_saves

WRITER = textwrap.dedent("""
    import sys, numpy as np
    from retina_desktop.core.workspace import SaveConflict, Workspace
    ws = Workspace(sys.argv[1])
    seed, count = int(sys.argv[2]), int(sys.argv[3])
    e = ws.entries[0]
    rng = np.random.default_rng(seed)
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        mask = rng.random((160, 150)) > 0.7
        try:
            ws.save_ground_truth(e, mask, reviewer=f"w{seed}")
        except SaveConflict as c:
            # Not overwritten, kept in the history: done as far as "nothing is lost" goes. The window would ask;
            # this writer takes theirs and goes on from it.
            ws.resolve_conflict(c, "theirs")
            print("conflict", c.mine.sha256, flush=True)
            continue
        print("saved", ws.loaded_sha(e), flush=True)
""")


def test_two_writers_lose_no_version(tmp_path):
    root = make_workspace(tmp_path / "w", 1)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(seed), "100"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for seed in (1, 2)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:  # both start together
        p.stdin.write("go\n")
        p.stdin.flush()
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    done = [line.split() for out in outputs for line in out.splitlines()]
    # Usually they collide (conflicts); a loaded machine may run them one after the other: nothing is lost either way.
    assert len(done) == 200
    ws = Workspace(root)
    e = ws.entries[0]
    recorded = {v.sha256 for v in ws.versions(e)}
    for _, sha in done:
        path = ws.history_dir(e) / f"{sha}.png"
        assert sha in recorded and hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert ws.current_sha(e) in recorded and ws.verify() == []


def _saver(root: Path, fd: int, seed: int) -> None:
    """The body of a forked child: save new masks for ever, reporting each one done."""
    try:
        ws = Workspace(root)
        e = ws.entries[0]
        rng = np.random.default_rng(seed)
        while True:
            ws.save_ground_truth(e, rng.random((400, 380)) > 0.7, expected_sha=ws.current_sha(e))
            os.write(fd, (ws.loaded_sha(e) + "\n").encode())
    finally:
        os._exit(1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to start 30 savers quickly")
def test_thirty_kills_during_saves_lose_nothing_reported_done(tmp_path):
    root = make_workspace(tmp_path / "w", 1, size=(400, 380))
    Workspace(root).close()
    lines = kill_inside_saves(_saver, root, rounds=30, seed=14, most_done=3, wait_s=30)
    reported = [line for line in lines if len(line) == 64]
    ws = Workspace(root)
    e = ws.entries[0]
    assert ws.verify() == []
    recorded = {v.sha256 for v in ws.versions(e)}
    missing = [sha for sha in reported if sha not in recorded or not (ws.history_dir(e) / f"{sha}.png").is_file()]
    assert len(reported) >= 30 and missing == []
    on_disk = hashlib.sha256(e.gt_path.read_bytes()).hexdigest()
    assert on_disk in recorded or (ws.history_dir(e) / f"{on_disk}.png").is_file()
    assert read_mask(e.gt_path).shape == (400, 380)


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
    env = child_env()
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
