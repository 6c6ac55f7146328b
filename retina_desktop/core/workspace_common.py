"""What every part of the workspace shares: its error types, the records' names and small helpers.

``workspace.py`` re-exports the public names; this module is Qt-free."""

from __future__ import annotations

import datetime as _dt
import errno
import getpass
import hashlib
import json
import os
import sqlite3
from pathlib import Path

import numpy as np

from model_core.errors import ImageReadError
from model_core.imageio import read_mask

from .records import Records

RECORDS_NAME = "records.sqlite"
META_DIR_NAME = ".retina"
_UNSET = object()


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

    def __init__(self, message: str, retry):
        super().__init__(message)
        self._retry = retry

    def retry(self) -> None:
        try:
            self._retry()
        except sqlite3.Error as exc:
            raise RecordError(f"{self.args[0].split(' (')[0]} ({exc}); retry again", self._retry) from None


def read_json(path: Path) -> dict | None:
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
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _close_session(records: Records, session_id: int) -> None:
    try:
        records.close_session(session_id)
    except sqlite3.Error:
        pass


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="milliseconds")


def parse_time(stamp) -> _dt.datetime | None:
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
    return (getattr(exc, "strerror", None) or str(exc)).splitlines()[0] if str(exc) or getattr(exc, "strerror", None) \
        else type(exc).__name__


def _db_text(exc: sqlite3.Error) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return "disk full" if "full" in text.lower() else text


def _os_error(exc: OSError, path: Path, consequence: str) -> WorkspaceError:
    """The typed, one-line error for a failed write: a full disk is not a read-only folder."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DiskFullError(f"{path}: disk full ({why}); {consequence}. Free some space and retry, or export "
                             "the masks elsewhere")
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
