"""A workspace's records in one SQLite database, ``<meta>/records.sqlite``. Qt-free.

Tables:

* ``images``: per image key its status, uncertainty and current mask version (``current_sha``) and the
  version last approved (``approved_sha``);
* ``settings``: the workspace's threshold and other small values (JSON text);
* ``review_log``: one row per save/approve/... (the old ``review_log.jsonl`` is kept as a mirror for
  people who read it with other tools, and ``export_log`` writes JSONL or CSV);
* ``versions``: every mask version the app kept: sha256 of the file bytes, time, reviewer, source
  (prediction, brush, import, restore), model, pixels added/removed against the previous version and
  against the prediction, the history file (relative to the records folder) and a note ("conflict");
* ``predictions``: the prediction-cache index (image, model key, file);
* ``migrations``: what was imported or repaired, when;
* ``sessions``: who has the workspace open (user, machine, pid, since), for "already open" notices.

WAL mode with a busy timeout: two windows or two graders wait for each other instead of failing, and a
reader never blocks a writer. Every change is one transaction (``write()``); a process killed in the
middle leaves the previous state. ``synchronous=NORMAL``: a power cut may lose the last few records, never
the database (the mask files themselves are fsynced before their record is written).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 15000
STATUSES = ("new", "predicted", "edited", "approved")
SOURCES = ("prediction", "brush", "eraser", "trace", "segment", "topology", "fill", "cleanup", "import", "restore", "autosave")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    key TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'new', uncertainty REAL,
    current_sha TEXT, approved_sha TEXT, updated TEXT);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS review_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, image TEXT NOT NULL, action TEXT NOT NULL,
    reviewer TEXT, model TEXT, pixels_added INTEGER NOT NULL DEFAULT 0, pixels_removed INTEGER NOT NULL DEFAULT 0,
    extra TEXT);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, image TEXT NOT NULL, sha256 TEXT NOT NULL, time TEXT NOT NULL,
    reviewer TEXT, source TEXT NOT NULL, model TEXT, path TEXT NOT NULL,
    added_prev INTEGER, removed_prev INTEGER, added_pred INTEGER, removed_pred INTEGER, note TEXT);
CREATE INDEX IF NOT EXISTS versions_image ON versions (image, sha256);
CREATE TABLE IF NOT EXISTS predictions (
    image TEXT NOT NULL, model_key TEXT NOT NULL, path TEXT NOT NULL, time TEXT NOT NULL,
    PRIMARY KEY (image, model_key));
CREATE TABLE IF NOT EXISTS migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, what TEXT NOT NULL,
    detail TEXT);
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT, machine TEXT, pid INTEGER,
    since TEXT, seen REAL);
"""
_TABLES = {"images", "settings", "review_log", "versions", "predictions", "migrations", "sessions"}


class RecordsDamaged(Exception):
    """The database file is not a usable records database (``damaged``), or could not be opened now
    (busy, locked, no access: ``damaged`` is False, and the file must not be set aside)."""

    def __init__(self, message: str, damaged: bool = True):
        super().__init__(message)
        self.damaged = damaged


# Only what names corruption sets a database aside; anything else (locked, busy, schema changed by another
# window creating it at the same moment, no access) is retried and never moves a good file.
_DAMAGE = ("not a database", "malformed", "corrupt", "integrity check", "tables are missing", "no such column",
           "no such table", "encrypted")


def _failure(exc: BaseException) -> RecordsDamaged:
    text = str(exc) or type(exc).__name__
    return RecordsDamaged(text, damaged=any(w in text.lower() for w in _DAMAGE))


@dataclass(frozen=True)
class OpenRecord:
    """Someone (maybe this user in another window) who has the workspace open."""

    user: str
    machine: str
    pid: int
    since: str

    def text(self) -> str:
        return f"{self.user} on {self.machine} (since {self.since})"


def clean_status(value) -> str:
    return value if isinstance(value, str) and value in STATUSES else "new"


def clean_fraction(value) -> float | None:
    """A float in [0, 1] or None: anything else read from records (1e308, "abc", NaN) is dropped."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and 0.0 <= v <= 1.0 else None


def clean_threshold(value) -> float | None:
    v = clean_fraction(value)
    return v if v is not None and 0.0 < v < 1.0 else None


def clean_count(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return max(0, min(int(value), 2**53))


def clean_text(value, limit: int = 500) -> str | None:
    return value[:limit] if isinstance(value, str) else None


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


VERSION_COLUMNS = ("image", "sha256", "time", "reviewer", "source", "model", "path", "added_prev", "removed_prev",
                   "added_pred", "removed_pred", "note")


def versions_of(query, image: str | None = None) -> list[dict]:
    """The versions table as dicts, oldest first (``query(sql, params)``: this records file's, or a read-only
    workspace's own)."""
    sql = (f"SELECT {', '.join(VERSION_COLUMNS)} FROM versions" + (" WHERE image=?" if image is not None else "")
           + " ORDER BY id")
    return [dict(zip(VERSION_COLUMNS, row)) for row in query(sql, () if image is None else (image,))]


class Records:
    """One connection, shared by the app's threads under a lock (writers in other processes wait)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.created = not self.path.exists() or self.path.stat().st_size == 0
        except OSError as exc:
            raise RecordsDamaged(str(exc), damaged=False) from None
        self._lock = threading.RLock()
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._open()
                return
            except RecordsDamaged as exc:
                # Two windows creating the database at the same moment can get SQLITE_BUSY without the busy
                # handler (changing the journal mode); the later one waits and opens what the first made.
                if exc.damaged or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _open(self) -> None:
        try:
            self._con = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                        check_same_thread=False)
        except sqlite3.Error as exc:
            raise _failure(exc) from None
        try:
            self._con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = self._con.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":  # persistent: only the first opening changes it
                mode = self._con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self.wal = str(mode).lower() == "wal"
            self._con.execute("PRAGMA synchronous=NORMAL")
            check = self._con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise RecordsDamaged(f"integrity check: {check}")
            self._con.executescript(_SCHEMA)  # idempotent; executescript commits on its own
            tables = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not _TABLES <= tables:
                raise RecordsDamaged("tables are missing")
            for table, columns in (("images", "key,status,uncertainty,current_sha,approved_sha"),
                                   ("versions", "image,sha256,time,reviewer,source,model,path,note")):
                self._con.execute(f"SELECT {columns} FROM {table} LIMIT 1").fetchall()
        except RecordsDamaged:
            self._con.close()
            raise
        except sqlite3.Error as exc:
            self._con.close()
            raise _failure(exc) from None

    def close(self) -> None:
        with self._lock:
            try:
                self._con.close()
            except sqlite3.Error:
                pass

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. BEGIN IMMEDIATE takes the database's write lock at once, so it also
        serialises the file writes done inside it between processes (the lock dies with a killed process)."""
        with self._lock:
            if self._con.in_transaction:  # nested use joins the outer transaction
                yield self._con
                return
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
            except BaseException:
                try:
                    self._con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise
            try:
                self._con.execute("COMMIT")
            except sqlite3.Error:
                try:
                    self._con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise

    def query(self, sql: str, args=()) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()

    # -- images --------------------------------------------------------------------------------
    def images(self) -> dict[str, dict]:
        """Validated image records: a damaged row gives 'new' / no uncertainty, never an exception."""
        out: dict[str, dict] = {}
        for key, status, unc, cur, appr in self.query(
                "SELECT key, status, uncertainty, current_sha, approved_sha FROM images"):
            if not isinstance(key, str):
                continue
            out[key] = {"status": clean_status(status), "uncertainty": clean_fraction(unc),
                        "current_sha": clean_text(cur, 64), "approved_sha": clean_text(appr, 64)}
        return out

    def image(self, key: str) -> dict:
        rows = self.query("SELECT status, uncertainty, current_sha, approved_sha FROM images WHERE key=?", (key,))
        if not rows:
            return {"status": "new", "uncertainty": None, "current_sha": None, "approved_sha": None}
        status, unc, cur, appr = rows[0]
        return {"status": clean_status(status), "uncertainty": clean_fraction(unc),
                "current_sha": clean_text(cur, 64), "approved_sha": clean_text(appr, 64)}

    def update_image(self, key: str, now: str, **fields) -> None:
        allowed = {"status", "uncertainty", "current_sha", "approved_sha"}
        assert set(fields) <= allowed, fields
        with self.write() as con:
            con.execute("INSERT OR IGNORE INTO images (key, status, updated) VALUES (?, 'new', ?)", (key, now))
            if fields:
                sets = ", ".join(f"{k}=?" for k in fields)
                con.execute(f"UPDATE images SET {sets}, updated=? WHERE key=?", (*fields.values(), now, key))

    # -- settings ------------------------------------------------------------------------------
    def setting(self, name: str):
        rows = self.query("SELECT value FROM settings WHERE name=?", (name,))
        if not rows:
            return None
        try:
            return json.loads(rows[0][0])
        except (TypeError, ValueError):
            return None

    def set_setting(self, name: str, value) -> None:
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, json.dumps(value)))

    # -- review log ----------------------------------------------------------------------------
    def add_log(self, record: dict) -> None:
        known = ("time", "image", "action", "reviewer", "model", "pixels_added", "pixels_removed")
        extra = {k: v for k, v in record.items() if k not in known}
        with self.write() as con:
            con.execute("INSERT INTO review_log (time, image, action, reviewer, model, pixels_added, pixels_removed,"
                        " extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (str(record.get("time", "")), str(record.get("image", "")), str(record.get("action", "")),
                         clean_text(record.get("reviewer")), clean_text(record.get("model")),
                         clean_count(record.get("pixels_added")), clean_count(record.get("pixels_removed")),
                         json.dumps(extra, default=str) if extra else None))

    def log(self, image: str | None = None) -> list[dict]:
        sql = ("SELECT time, image, action, reviewer, model, pixels_added, pixels_removed, extra FROM review_log"
               + (" WHERE image=?" if image is not None else "") + " ORDER BY id")
        out = []
        rows = self.query(sql, () if image is None else (image,))
        for t, img, action, reviewer, model, added, removed, extra in rows:
            rec = {"time": t, "image": img, "action": action, "reviewer": reviewer, "model": model,
                   "pixels_added": clean_count(added), "pixels_removed": clean_count(removed)}
            try:
                more = json.loads(extra) if extra else {}
            except (TypeError, ValueError):
                more = {}
            if isinstance(more, dict):
                rec.update({k: v for k, v in more.items() if k not in rec})
            out.append(rec)
        return out

    # -- versions ------------------------------------------------------------------------------
    def add_version(self, image: str, sha256: str, time: str, path: str, source: str, reviewer: str | None = None,
                    model: str | None = None, added_prev: int | None = None, removed_prev: int | None = None,
                    added_pred: int | None = None, removed_pred: int | None = None, note: str | None = None) -> None:
        with self.write() as con:
            con.execute("INSERT INTO versions (image, sha256, time, reviewer, source, model, path, added_prev,"
                        " removed_prev, added_pred, removed_pred, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (image, sha256, time, reviewer, source, model, path, added_prev, removed_prev, added_pred,
                         removed_pred, note))

    def has_version(self, image: str, sha256: str) -> bool:
        return bool(self.query("SELECT 1 FROM versions WHERE image=? AND sha256=? LIMIT 1", (image, sha256)))

    def versions(self, image: str | None = None) -> list[dict]:
        return versions_of(self.query, image)

    # -- prediction cache index ----------------------------------------------------------------
    def index_prediction(self, image: str, model_key: str, path: str, time: str) -> None:
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO predictions (image, model_key, path, time) VALUES (?, ?, ?, ?)",
                        (image, model_key, path, time))

    def predictions(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self.query("SELECT image, model_key, path FROM predictions ORDER BY image")]

    # -- migrations ----------------------------------------------------------------------------
    def add_migration(self, time: str, what: str, detail: str = "") -> None:
        with self.write() as con:
            con.execute("INSERT INTO migrations (time, what, detail) VALUES (?, ?, ?)", (time, what, detail))

    def migrations(self) -> list[dict]:
        return [{"time": t, "what": w, "detail": d} for t, w, d in
                self.query("SELECT time, what, detail FROM migrations ORDER BY id")]

    # -- sessions ("already open") ---------------------------------------------------------------
    def open_session(self, user: str, since: str, seen: float) -> int:
        with self.write() as con:
            cur = con.execute("INSERT INTO sessions (user, machine, pid, since, seen) VALUES (?, ?, ?, ?, ?)",
                              (user, socket.gethostname(), os.getpid(), since, seen))
            return int(cur.lastrowid)

    def close_session(self, session_id: int) -> None:
        with self.write() as con:
            con.execute("DELETE FROM sessions WHERE id=?", (session_id,))

    def touch_session(self, session_id: int, seen: float) -> None:
        with self.write() as con:
            con.execute("UPDATE sessions SET seen=? WHERE id=?", (seen, session_id))

    def other_sessions(self, own_id: int | None, now: float, stale_after_s: float) -> list[OpenRecord]:
        """Live sessions other than ``own_id``. On this machine a dead pid is stale (its row is dropped);
        from another machine, a session not seen for ``stale_after_s`` is."""
        host = socket.gethostname()
        out, stale = [], []
        for sid, user, machine, pid, since, seen in self.query(
                "SELECT id, user, machine, pid, since, seen FROM sessions ORDER BY id"):
            if sid == own_id:
                continue
            pid = pid if isinstance(pid, int) else -1
            dead = (not pid_alive(pid)) if machine == host else (not isinstance(seen, (int, float))
                                                                  or now - seen > stale_after_s)
            if dead:
                stale.append(sid)
            else:
                out.append(OpenRecord(str(user), str(machine), pid, str(since)))
        if stale:
            try:
                with self.write() as con:
                    con.executemany("DELETE FROM sessions WHERE id=?", [(s,) for s in stale])
            except sqlite3.Error:
                pass  # only tidying
        return out

    def integrity(self) -> str:
        return str(self.query("PRAGMA integrity_check")[0][0])
