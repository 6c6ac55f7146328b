"""Record writes that must not be lost when the records file cannot be written for now. Qt-free.

Every change goes through ``RecordKeeper.apply(what, change)``: ``change(records)`` runs in one transaction. While
the real file could not be opened (a full disk at open, no access, a lock held too long), the change is made in
an in-memory copy, so this window sees it, and kept; each later change and ``flush()`` try the real file again
and, once it opens, replay the kept changes into it in order. A change that fails on the real file (a full disk
now) is kept the same way and retried. Nothing is dropped, and each call says, in a notice, that records wait.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .common import _db_text
from .records import Records

if TYPE_CHECKING:
    from .opening import Opened

Change = Callable[[Records], None]


class RecordKeeper:
    def __init__(self, opened: Opened, reopen: Callable[[], Opened], notices: list[str], lock: threading.RLock):
        self.records = opened.records
        self.unavailable = opened.unavailable  # why the real file is not in use (None: it is)
        self._reopen = reopen
        self._notices = notices
        self._lock = lock
        self._waiting: list[Change] = []  # changes not yet in the real file, oldest first

    @property
    def waiting(self) -> int:
        """How many changes wait to be written to the real records file."""
        return len(self._waiting)

    def apply(self, what: str, change: Change, already_made: bool = False) -> bool:
        """Make ``change`` (True: it is in the real file). Never raises for a records failure: that becomes a
        notice, and the change waits for the next try. ``already_made``: the caller made it in the in-memory
        records itself (with file writes in the same transaction); only its replay is kept."""
        with self._lock:
            if not already_made:
                self.retry()
            if self.unavailable is not None:
                if not already_made:
                    change(self.records)  # in memory: this window sees it
                self._waiting.append(change)
                self._say(f"{self.unavailable}: {what} is kept in memory, not yet in the records")
                return False
            if self._waiting:
                self._waiting.append(change)
                self._say(f"{self.records.path}: {what} waits to be recorded ({self.waiting} change(s) waiting)")
                return False
            try:
                change(self.records)
            except sqlite3.Error as exc:
                self._waiting.append(change)
                self._say(
                    f"{self.records.path}: {what} could not be recorded ({_db_text(exc)}); it is kept and "
                    "retried at the next save"
                )
                return False
            return True

    def retry(self) -> None:
        """Open the real file if it was not in use, and write the changes that wait, in order."""
        with self._lock:
            if self.unavailable is not None:
                opened = self._reopen()
                if opened.unavailable is not None:
                    opened.records.close()
                    return
                self.records.close()
                self.records, self.unavailable = opened.records, None
                self._notices.extend(opened.notices)
            while self._waiting:
                try:
                    self._waiting[0](self.records)
                except sqlite3.Error:
                    return
                self._waiting.pop(0)

    def try_quietly(self, what: str, change: Change) -> bool:
        """A write that only lists files (the prediction cache's index): tried once, never kept and never a notice;
        False when it was not written (the file is what counts)."""
        if self.unavailable is not None:
            return False
        try:
            with self._lock:
                change(self.records)
            return True
        except sqlite3.Error:
            return False

    def _say(self, text: str) -> None:
        if self._notices[-1:] != [text]:
            self._notices.append(text)
