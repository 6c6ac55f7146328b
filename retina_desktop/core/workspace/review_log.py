"""The review log: who saved, approved or restored what, when, with which model. Qt-free.

The records database holds it; ``review_log.jsonl`` beside it is an append-only copy for other tools and the
source a rebuild reads when the database is lost.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model_core.atomic import write_bytes_atomic

from .common import _now, _short, _user, read_regular
from .keeper import RecordKeeper


def mirror(path: Path, record: dict[str, Any]) -> str | None:
    """Append ``record`` to the JSONL copy; returns a notice when it could not be."""
    line = (json.dumps(record, default=str) + "\n").encode("utf-8")
    try:
        with open(path, "ab+") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = b"\n" + line  # a line cut by a crash must not swallow this one
            fh.write(line)
    except OSError as exc:
        return f"{path}: the JSONL copy of the review log could not be updated ({_short(exc)})"
    return None


def read_log_file(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a JSONL review log and how many lines could not be read. A line an older app glued onto one
    cut by a crash still gives its record."""
    try:
        lines = read_regular(path).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return [], 0
    out, skipped = [], 0
    for line in lines:
        if not line.strip():
            continue
        rec = _record(line)
        if rec is None:
            skipped += 1
            i = line.find("{", 1)
            while i > 0 and rec is None:
                rec = _record(line[i:])
                i = line.find("{", i + 1)
        if rec is not None:
            out.append(rec)
    return out, skipped


def _record(text: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(text)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("image"), str) else None


def export(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write the log as ``.csv`` (by suffix) or JSONL."""
    if path.suffix.lower() == ".csv":
        cols = ["time", "image", "action", "reviewer", "model", "pixels_added", "pixels_removed"]
        cols += sorted({k for r in rows for k in r} - set(cols))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        data = buf.getvalue().encode("utf-8")
    else:
        data = "".join(json.dumps(r, default=str) + "\n" for r in rows).encode("utf-8")
    return write_bytes_atomic(path, data)


class ReviewLog:
    """The log as the workspace keeps it: each record written through the RecordKeeper, then mirrored to JSONL."""

    def __init__(
        self,
        keeper: RecordKeeper,
        path: Path,
        notices: list[str],
        approval_counts: Callable[[str], dict[str, Any] | None],
    ):
        self._keeper = keeper
        self.path = path  # the JSONL copy for other tools (the records database is the reference)
        self._notices = notices
        self._approval_counts = approval_counts  # pixel counts of an approval logged without them

    def mirror(self, record: dict[str, Any]) -> None:
        notice = mirror(self.path, record)
        if notice is not None and notice not in self._notices:
            self._notices.append(notice)

    def add(
        self,
        key: str,
        action: str,
        model: str | None = None,
        added: int | None = None,
        removed: int | None = None,
        reviewer: str | None = None,
        **extra: Any,
    ) -> None:
        """Append a record. An "approve" without pixel counts is measured against the previous approved version (or
        the first version). Never raises for a record that cannot be written."""
        counts = self._approval_counts(key) if action == "approve" and added is None and removed is None else None
        if counts is not None:
            added, removed = counts["pixels_added"], counts["pixels_removed"]
            extra = {**counts, **extra}
        record = {
            "time": _now(),
            "image": key,
            "action": action,
            "reviewer": reviewer or _user(),
            "model": model,
            "pixels_added": int(added or 0),
            "pixels_removed": int(removed or 0),
            **extra,
        }
        if (
            self._keeper.apply(f"the review of {key}", lambda r: r.add_log(record))
            or self._keeper.unavailable is not None
        ):
            self.mirror(record)

    def rows(self, key: str | None = None) -> list[dict[str, Any]]:
        try:
            return self._keeper.records.log(key)
        except sqlite3.Error:
            return []
