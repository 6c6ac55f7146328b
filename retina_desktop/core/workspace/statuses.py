"""Each image's status, uncertainty and known mask versions, and the workspace's settings: read from the records,
the one place they live, and changed through the RecordKeeper. Qt-free."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from .common import _now
from .keeper import Change, RecordKeeper
from .records import STATUSES, ImageRow, clean_fraction, clean_threshold
from .shared import SharedRecords


class StatusBook:
    """A read cache of the records' image rows, dropped at every change and ``refresh()`` (it never holds a change
    the records do not: the records stay the one owner of the statuses)."""

    def __init__(
        self,
        keeper: RecordKeeper,
        shared: SharedRecords,
        lock: threading.RLock,
        approved_content: Callable[[str], str | None],
    ):
        self._keeper = keeper
        self._shared = shared
        self._lock = lock
        self._approved_content = approved_content  # the sha256 of an image's mask file now, for an approval
        self._rows: dict[str, ImageRow] | None = None

    def refresh(self) -> None:
        with self._lock:
            self._rows = None

    def row(self, key: str) -> ImageRow:
        with self._lock:
            if self._rows is None:
                try:
                    self._rows = self._keeper.records.images()
                except sqlite3.Error:  # nothing known: every image reads "new"
                    self._rows = {}
            own = self._rows.get(key)
        theirs = self._shared.images.get(key)
        if own is None or theirs is None:
            return own or theirs or ImageRow(key)
        # A read-only share's own review shows through what this user only looked at (an uncertainty, "new").
        return (
            own
            if own.status != "new"
            else ImageRow(
                key, theirs.status, own.uncertainty, theirs.current_sha, theirs.approved_sha, theirs.reference_sha
            )
        )

    def change(self, what: str, change: Change, key: str | None = None) -> None:
        """Make ``change``; the cached row of ``key`` is read again from the records (the one row, not the table:
        "Predict all" changes every image once), any other change drops the cache."""
        with self._lock:
            self._keeper.apply(what, change)
            if key is None or self._rows is None:
                self._rows = None
                return
            try:
                self._rows[key] = self._keeper.records.image(key)
            except sqlite3.Error:
                self._rows = None

    def set_status(self, key: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        fields: dict[str, object] = {"status": status}
        if status == "approved":
            fields["approved_sha"] = self._approved_content(key)
        now = _now()
        self.change(f"the status of {key}", lambda r: r.update_image(key, now, **fields), key)

    def set_prediction_info(self, key: str, uncertainty: float) -> None:
        """Record a prediction's uncertainty; an image nobody looked at becomes "predicted". Viewing never changes
        a status anybody set (a read-only workspace's own "approved" stays approved)."""
        fields: dict[str, object] = {"uncertainty": clean_fraction(uncertainty)}
        if self.row(key).status == "new":
            fields["status"] = "predicted"
        now = _now()
        self.change(f"the prediction of {key}", lambda r: r.update_image(key, now, **fields), key)

    def setting(self, name: str) -> Any:
        try:
            return self._keeper.records.setting(name)
        except sqlite3.Error:
            return None

    def set_setting(self, name: str, value: object) -> None:
        self.change(f"the setting {name}", lambda r: r.set_setting(name, value))

    @property
    def threshold(self) -> float | None:
        return clean_threshold(self.setting("threshold"))

    def set_threshold(self, value: float) -> None:
        checked = clean_threshold(value)
        if checked is None:
            raise ValueError("the threshold must be a number between 0 and 1")
        self.set_setting("threshold", checked)
