"""Who has a workspace open: this window's row in the records' ``sessions`` table, refreshed with each save, and
the other windows (this machine or another) for an "already open by ..." notice. A courtesy: nothing here ever
stops a save. Qt-free."""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref

from .common import _now, _user
from .keeper import RecordKeeper
from .records import OpenRecord, Records

SESSION_STALE_S = 12 * 3600  # another machine's "open" record not refreshed for this long is stale


def _close(records: Records, session_id: int) -> None:
    try:
        records.close_session(session_id)
    except sqlite3.Error:  # at exit
        pass


class OpenWindows:
    def __init__(self, keeper: RecordKeeper, lock: threading.RLock):
        self._keeper = keeper
        self._lock = lock
        self._id: int | None = None
        if keeper.unavailable is not None or keeper.records.newer:
            return
        try:
            self._id = keeper.records.open_session(_user(), _now(), time.time())
            weakref.finalize(self, _close, keeper.records, self._id)
        except sqlite3.Error:
            pass

    def touch(self, records: Records) -> None:
        """This window is still here (run inside a save's transaction)."""
        if self._id is not None and records is self._keeper.records:
            records.touch_session(self._id, time.time())

    def others(self) -> list[OpenRecord]:
        """Other windows that have the workspace open now; stale entries of killed processes are ignored."""
        try:
            return self._keeper.records.other_sessions(self._id, time.time(), SESSION_STALE_S)
        except sqlite3.Error:
            return []

    def close(self) -> None:
        with self._lock:
            if self._id is not None:
                _close(self._keeper.records, self._id)
                self._id = None
