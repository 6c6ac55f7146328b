"""Fault injection: two writer processes at once, and saves killed with SIGKILL. Nothing may be lost."""

from __future__ import annotations

import hashlib
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import read_mask
from retina_desktop.core.workspace import Workspace

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


def _env():
    return dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), OMP_NUM_THREADS="1")


def test_two_writers_lose_no_version(tmp_path):
    root = make_workspace(tmp_path / "w", 1)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(root), str(seed), "100"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_env(),
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
    reported: list[str] = []
    rnd = random.Random(14)
    for round_ in range(30):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(r)
            _saver(root, w, round_)
        os.close(w)
        buf = b""
        wanted = rnd.randint(1, 3)
        while buf.count(b"\n") < wanted:  # let it finish a few saves, then kill it inside the next one
            ready, _, _ = select.select([r], [], [], 30)
            assert ready, "the saver made no progress"
            chunk = os.read(r, 4096)
            assert chunk, "the saver died on its own"
            buf += chunk
        select.select([], [], [], rnd.random() * 0.02)  # a random point inside the following save
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            buf += chunk
        os.close(r)
        reported += [line for line in buf.decode().splitlines() if len(line) == 64]
    ws = Workspace(root)
    e = ws.entries[0]
    assert ws.verify() == []
    recorded = {v.sha256 for v in ws.versions(e)}
    missing = [sha for sha in reported if sha not in recorded or not (ws.history_dir(e) / f"{sha}.png").is_file()]
    assert len(reported) >= 30 and missing == []
    on_disk = hashlib.sha256(e.gt_path.read_bytes()).hexdigest()
    assert on_disk in recorded or (ws.history_dir(e) / f"{on_disk}.png").is_file()
    assert read_mask(e.gt_path).shape == (400, 380)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs, where the system lets the tests mount one (root in a container usually can)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("cannot run mount")
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def test_a_really_full_disk_says_disk_full_and_loses_nothing(small_disk, rng):
    from retina_desktop.core.workspace import DiskFullError, RecordError

    root = make_workspace(small_disk / "w", 1)
    ws = Workspace(root)
    e = ws.entries[0]
    first = rng.random((160, 150)) > 0.7
    ws.save_ground_truth(e, first, action="save")
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as fh:  # fill the disk to the last block
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    second = rng.random((160, 150)) > 0.7
    with pytest.raises((DiskFullError, RecordError)) as info:
        ws.save_ground_truth(e, second, action="save")
    assert "disk full" in str(info.value) and "\n" not in str(info.value)
    on_disk = read_mask(e.gt_path)
    assert np.array_equal(on_disk, first) or np.array_equal(on_disk, second)
    filler.unlink()
    if isinstance(info.value, RecordError):
        info.value.retry()
    else:
        ws.save_ground_truth(e, second, action="save")
    assert np.array_equal(read_mask(e.gt_path), second)
    again = Workspace(root)
    assert again.verify() == [] and {v.sha256 for v in again.versions(e)} >= {again.current_sha(e)}
