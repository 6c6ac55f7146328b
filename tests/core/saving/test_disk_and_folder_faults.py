"""Saves that the disk or the folder refuses: a full disk, a read-only folder and a workspace folder renamed or
removed while open each give a typed one-line message and leave the mask on disk as it was; a retry after space
is freed saves, and keeps the previous version once."""

from __future__ import annotations

import errno
import os
import subprocess

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core import atomic
from model_core.imageio import read_mask
from retina_desktop.core.workspace import (
    DiskFullError,
    ReadOnlyWorkspaceError,
    Workspace,
    WorkspaceGoneError,
    masks as mask_versions_mod,
    workspace as workspace_mod,
)


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


@pytest.mark.parametrize(
    "code, error, words",
    [
        (errno.ENOSPC, DiskFullError, "disk full"),
        (errno.EROFS, ReadOnlyWorkspaceError, "read-only"),
        (errno.EACCES, ReadOnlyWorkspaceError, "read-only"),
    ],
)
def test_write_failures_are_typed_one_line_messages(tmp_path, rng, monkeypatch, code, error, words):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (e,) = ws.entries
    first = rng.random((160, 150)) > 0.7
    ws.save_ground_truth(e, first)
    real = atomic.os.replace

    def failing(src, dst):
        if str(dst).endswith("img_00.png") and "ground_truth" in str(dst):
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing)
    with pytest.raises(error) as info:
        ws.save_ground_truth(e, ~first)
    assert words in str(info.value) and "\n" not in str(info.value)
    if error is ReadOnlyWorkspaceError:
        assert "disk full" not in str(info.value)
    assert np.array_equal(read_mask(e.gt_path), first)
    assert not [p for p in e.gt_dir.iterdir() if p.name.endswith(".tmp")]


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


def test_a_renamed_workspace_refuses_to_save_and_is_not_recreated(tmp_path, rng):
    root = make_workspace(tmp_path / "w", 1)
    ws = Workspace(root)
    ws.save_ground_truth(ws.entries[0], rng.random((160, 150)) > 0.7)
    root.rename(tmp_path / "moved")
    with pytest.raises(WorkspaceGoneError, match="has gone") as info:
        ws.save_ground_truth(ws.entries[0], rng.random((160, 150)) > 0.7)
    assert "\n" not in str(info.value) and not root.exists()
    assert ws.predictions.store(ws.entries[0], "m1", rng.random((160, 150))) is None  # "Predict all" goes on
    assert not root.exists()
    # Also when the folder vanishes between the check and the write.
    (tmp_path / "moved").rename(root)
    ws2 = Workspace(root)
    with pytest.raises(FileNotFoundError):
        atomic.write_bytes_atomic(root / "ground_truth" / "x" / "y.png", b"x", within=tmp_path / "gone")
    root.rename(tmp_path / "moved2")
    with pytest.raises(WorkspaceGoneError):
        ws2.save_ground_truth(ws2.entries[0], rng.random((160, 150)) > 0.7)
    assert not root.exists()
