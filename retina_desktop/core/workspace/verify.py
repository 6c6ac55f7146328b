"""``verify``: everything a workspace keeps, checked like ``git fsck``. Qt-free.

Only regular files inside the workspace's records are read, each with a size bound: a record or history entry that
is a FIFO (a read would hang), a device (/dev/zero would fill memory), a link or a path leading outside is named,
not followed. Each problem is one line naming the file.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from model_core.errors import ImageReadError
from model_core.imageio import read_mask

from .common import HISTORY_DIR_NAME, WorkspaceError, _db_text, _short, read_regular
from .filesystem import FolderGuard
from .layout import ImageEntry
from .records import Records


def _kind(path: Path) -> str | None:
    """Why ``path`` must not be read (None: a regular file)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"is missing ({_short(exc)})"
    if stat.S_ISLNK(st.st_mode):
        return "is a link, not a file the app wrote"
    if stat.S_ISFIFO(st.st_mode):
        return "is a FIFO, not a file"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "is a device, not a file"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    return None


def _decodes(path: Path, data: bytes) -> bool:
    try:
        read_mask(path, data)
        return True
    except (ImageReadError, OSError, ValueError):
        return False


def verify(
    records: Records,
    unavailable: str | None,
    meta_dir: Path,
    entries: Sequence[ImageEntry],
    guard: FolderGuard,
    photo_size: Callable[[Path], tuple[int, int] | None],
) -> list[str]:
    problems: list[str] = []
    if unavailable:
        problems.append(f"{unavailable}: no recorded version could be checked")
    try:
        guard.check(*{e.gt_dir for e in entries}, meta_dir)
    except WorkspaceError as exc:
        problems.append(str(exc))
    try:
        check = records.integrity()
        if check != "ok":
            problems.append(f"{records.path}: integrity check failed ({check})")
        rows = records.versions()
    except sqlite3.Error as exc:
        return [*problems, f"{records.path}: cannot be read ({_db_text(exc)})"]
    history = (meta_dir / HISTORY_DIR_NAME).resolve()
    checked: set[Path] = set()
    for r in rows:
        path = meta_dir / r.path
        if path in checked:
            continue
        checked.add(path)
        why = _kind(path)
        if why is not None:
            problems.append(f"{path}: recorded version of {r.image} {why}")
            continue
        if Path(r.path).is_absolute() or history not in path.resolve().parents:
            problems.append(f"{path}: the record of a version of {r.image} points outside the workspace's history")
            continue
        try:
            data = read_regular(path)
        except OSError as exc:
            problems.append(f"{path}: recorded version of {r.image} cannot be read ({_short(exc)})")
            continue
        if r.note != "indexed" and hashlib.sha256(data).hexdigest() != r.sha256:
            problems.append(f"{path}: content differs from the recorded sha256 {r.sha256}")
        elif r.note == "indexed" and not _decodes(path, data):
            problems.append(f"{path}: cannot be decoded as a mask")
    problems += _unrecorded_history(meta_dir / HISTORY_DIR_NAME, checked)
    for e in entries:
        problems += _mask_problems(e, photo_size)
    return problems


def _unrecorded_history(base: Path, checked: set[Path]) -> list[str]:
    problems: list[str] = []
    if base.is_symlink():
        return [f"{base}: the history folder is a link (it may lead outside the workspace)"]
    if not base.is_dir():
        return problems
    for dirpath, dirs, files in os.walk(base):
        for name in dirs:
            if (Path(dirpath) / name).is_symlink():
                problems.append(f"{Path(dirpath) / name}: a link inside the history (not followed)")
        for name in files:
            p = Path(dirpath) / name
            if name.startswith(".") or p in checked:
                continue
            why = _kind(p)
            if why is not None:
                problems.append(f"{p}: history file {why}")
                continue
            try:
                data = read_regular(p)
            except OSError as exc:
                problems.append(f"{p}: history file cannot be read ({_short(exc)})")
                continue
            if not _decodes(p, data):
                problems.append(f"{p}: history file cannot be decoded as a mask")
    return problems


def _mask_problems(e: ImageEntry, photo_size: Callable[[Path], tuple[int, int] | None]) -> list[str]:
    """A mask on disk that no record names is no problem (a data set's own, a save killed before its record: the
    next save keeps it in the history before replacing it)."""
    gt = e.existing_gt()
    if gt is None:
        return []
    why = _kind(gt)
    if why is not None and not why.startswith("is a link"):
        return [f"{gt}: mask file {why}"]
    try:
        data = read_regular(gt)
    except OSError as exc:
        return [f"{gt}: mask file cannot be read ({_short(exc)})"]
    try:
        mask = read_mask(gt, data)
    except (ImageReadError, OSError, ValueError):
        return [f"{gt}: mask file cannot be decoded"]
    size = photo_size(e.path)
    if size is not None and mask.shape != size:
        return [f"{gt}: mask is {mask.shape[1]}x{mask.shape[0]} but the photo {e.name} is {size[1]}x{size[0]}"]
    return []
