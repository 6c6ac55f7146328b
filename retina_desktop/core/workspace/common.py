"""What every part of the workspace store shares: its error types, the records' names and small helpers.

The package re-exports the public names; this module is Qt-free."""

from __future__ import annotations

import datetime as _dt
import errno
import getpass
import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from model_core.errors import ImageReadError
from model_core.imageio import read_mask

RECORDS_NAME = "records.sqlite"
META_DIR_NAME = ".retina"
HISTORY_DIR_NAME = "history"
# The largest file a store reads whole: far above any mask (a 6000x4000 uncompressed TIFF is 24 MB), far below
# what would exhaust memory (a record pointing at /dev/zero).
MAX_FILE_BYTES = 256 * 1024 * 1024


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class WorkspaceError(ValueError):
    """A folder cannot be used as a workspace; the message names the folder and the problem."""


class ReadOnlyWorkspaceError(WorkspaceError):
    pass


class DiskFullError(WorkspaceError):
    """The disk is full: the message says "disk full"; the window offers retry and Export elsewhere."""


class WorkspaceGoneError(WorkspaceError):
    """The workspace folder was renamed, moved or unmounted while open: nothing is written (or re-created)."""


class RecordError(WorkspaceError):
    """The mask file was written (and kept in the history) but its record was not; ``retry()`` records it."""

    def __init__(self, message: str, retry: Callable[[], object]):
        super().__init__(message)
        self._retry = retry

    def retry(self) -> None:
        try:
            self._retry()
        except sqlite3.Error as exc:
            raise RecordError(f"{self.args[0].split(' (')[0]} ({exc}); retry again", self._retry) from None


class UnsafeFileError(OSError):
    """Not a regular file of a readable size (a FIFO, a device, a folder, a huge file): never read whole."""


def found_file_version(path: Path) -> tuple[str, str] | None:
    """(sha256, modification time) of a history file found on disk that no record names, for the row that
    indexes it; None when it cannot be read (it is left for verify to report)."""
    try:
        sha = hashlib.sha256(read_regular(path)).hexdigest()
        stamp = _dt.datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="milliseconds")
    except OSError:
        return None
    return sha, stamp


def read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes, refusing FIFOs (a read would hang), devices (/dev/zero would fill memory), folders
    and files over ``limit``, each with an OSError whose text says which."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)  # non-blocking: opening a FIFO with no writer must not wait for one
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = (
                "a FIFO"
                if stat.S_ISFIFO(st.st_mode)
                else "a device"
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a folder"
                if stat.S_ISDIR(st.st_mode)
                else "not a file"
            )
            raise UnsafeFileError(f"{kind}, not a regular file")
        if st.st_size > limit:
            raise UnsafeFileError(f"{st.st_size} bytes, larger than any mask ({limit} at most)")
        chunks, left = [], st.st_size + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > st.st_size:  # grew while read
            raise UnsafeFileError("changed size while being read")
        return data
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def read_mask_or_none(path: Path, data: bytes | None = None) -> np.ndarray | None:
    try:
        return read_mask(path, data)
    except (ImageReadError, OSError):
        return None


def _file_sha(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(read_regular(path)).hexdigest()
    except OSError:
        return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def parse_time(stamp: object) -> _dt.datetime | None:
    """A record's ISO time in this computer's time zone (one without a zone is taken as local); None if it is
    not a time."""
    try:
        return _dt.datetime.fromisoformat(str(stamp)).astimezone()
    except ValueError:
        return None


def readable_time(stamp: str | None) -> str:
    """A record's ISO time as a grader reads it, in this computer's time zone: "2026-12-01 21:14:05"."""
    if not stamp:
        return "an unknown time"
    when = parse_time(stamp)
    return when.strftime("%Y-%m-%d %H:%M:%S") if when is not None else str(stamp)


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0] if text else type(exc).__name__


def _db_text(exc: sqlite3.Error) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return "disk full" if "full" in text.lower() else text


def _os_error(exc: OSError, path: Path, consequence: str) -> WorkspaceError:
    """The typed, one-line error for a failed write: a full disk is not a read-only folder."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DiskFullError(
            f"{path}: disk full ({why}); {consequence}. Free some space and retry, or export the masks elsewhere"
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ReadOnlyWorkspaceError(f"{path}: read-only ({why}); {consequence}")
    return WorkspaceError(f"{path}: could not be written ({why}); {consequence}")


def _db_error(exc: sqlite3.Error, path: Path, consequence: str) -> WorkspaceError:
    text = _db_text(exc)
    if text == "disk full":
        return DiskFullError(f"{path}: disk full; {consequence}. Free some space and retry, or export elsewhere")
    if "readonly" in text.lower() or "read-only" in text.lower():
        return ReadOnlyWorkspaceError(f"{path}: read-only ({text}); {consequence}")
    return WorkspaceError(f"{path}: the records could not be written ({text}); {consequence}")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name on some systems
        return "unknown"
