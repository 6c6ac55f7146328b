"""Who has a workspace open: this window's row in the records' ``open_windows`` table, refreshed with each save,
and the other windows (this machine or another) for an "already open by ..." notice. A courtesy: nothing here ever
stops a save. Qt-free."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass

from .common import _now, _user
from .keeper import RecordKeeper
from .records import Records

OPEN_WINDOW_STALE_S = 12 * 3600  # another machine's "open" record not refreshed for this long is stale


@dataclass(frozen=True)
class OpenRecord:
    """Someone (maybe this user in another window) who has the workspace open."""

    user: str
    machine: str
    pid: int
    since: str

    def text(self) -> str:
        return f"{self.user} on {self.machine} (since {self.since})"


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    return True


class OpenWindowsTable:
    """The ``open_windows`` table of one records file: a row per window (user, machine, pid, since, last seen)."""

    def __init__(self, records: Records):
        self.records = records

    def add(self, user: str, since: str, seen: float) -> int:
        with self.records.write() as con:
            cur = con.execute(
                "INSERT INTO open_windows (user, machine, pid, since, seen) VALUES (?, ?, ?, ?, ?)",
                (user, socket.gethostname(), os.getpid(), since, seen),
            )
            return int(cur.lastrowid or 0)

    def remove(self, row_id: int) -> None:
        with self.records.write() as con:
            con.execute("DELETE FROM open_windows WHERE id=?", (row_id,))

    def touch(self, row_id: int, seen: float) -> None:
        with self.records.write() as con:
            con.execute("UPDATE open_windows SET seen=? WHERE id=?", (seen, row_id))

    def others(self, own_id: int | None, now: float, stale_after_s: float) -> list[OpenRecord]:
        """Live windows other than ``own_id``. On this machine a dead pid is stale (its row is dropped); from
        another machine, a window not seen for ``stale_after_s`` is."""
        host = socket.gethostname()
        out, stale = [], []
        for row_id, user, machine, pid, since, seen in self.records.query(
            "SELECT id, user, machine, pid, since, seen FROM open_windows ORDER BY id"
        ):
            if row_id == own_id:
                continue
            pid = pid if isinstance(pid, int) else -1
            dead = (
                (not pid_alive(pid))
                if machine == host
                else (not isinstance(seen, (int, float)) or now - seen > stale_after_s)
            )
            if dead:
                stale.append(row_id)
            else:
                out.append(OpenRecord(str(user), str(machine), pid, str(since)))
        if stale and not self.records.newer:
            try:
                with self.records.write() as con:
                    con.executemany("DELETE FROM open_windows WHERE id=?", [(s,) for s in stale])
            except sqlite3.Error:
                pass  # only tidying
        return out


def _close(records: Records, row_id: int) -> None:
    try:
        OpenWindowsTable(records).remove(row_id)
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
            self._id = OpenWindowsTable(keeper.records).add(_user(), _now(), time.time())
            weakref.finalize(self, _close, keeper.records, self._id)
        except sqlite3.Error:
            pass

    def touch(self, records: Records) -> None:
        """This window is still here (run inside a save's transaction)."""
        if self._id is not None and records is self._keeper.records:
            OpenWindowsTable(records).touch(self._id, time.time())

    def others(self) -> list[OpenRecord]:
        """Other windows that have the workspace open now; stale entries of killed processes are ignored."""
        try:
            return OpenWindowsTable(self._keeper.records).others(self._id, time.time(), OPEN_WINDOW_STALE_S)
        except sqlite3.Error:
            return []

    def close(self) -> None:
        with self._lock:
            if self._id is not None:
                _close(self._keeper.records, self._id)
                self._id = None
