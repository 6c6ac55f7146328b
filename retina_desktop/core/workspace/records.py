"""A workspace's records in one SQLite database, ``<meta>/records.sqlite``. Qt-free.

Tables:

* ``images``: per image key its status, uncertainty, current mask version (``current_sha``), the version last
  approved (``approved_sha``) and the data set's own mask as first found (``reference_sha``, schema 2);
* ``settings``: the workspace's threshold and other small values (JSON text);
* ``review_log``: one row per save/approve/... (``review_log.jsonl`` beside it is a mirror for other tools, and
  the source a rebuild reads);
* ``versions``: every mask version the app kept: sha256 of the file bytes, time, reviewer, source, model, pixels
  added/removed against the previous version and against the prediction, the history file (relative to the
  records folder) and a note;
* ``predictions``: the prediction-cache index; ``migrations``: what was migrated or rebuilt, when;
* ``open_windows`` (schema 3; ``sessions`` before): who has the workspace open (user, machine, pid, since), for
  "already open" notices (``windows.py``);
* ``calibre_versions`` (schema 4): every optic disc and artery/vein labels version kept (``calibre_records.py``):
  image, kind ("disc" or "av"), sha256 of the file bytes, time, reviewer, the history file (relative to the records
  folder) and a note ("auto", "grader", "restore", "import", "found on disk", "indexed").

The schema version is ``PRAGMA user_version``. An older file is migrated step by step, each step (its changes and
its new version number) one transaction, so a kill leaves the file at the last whole step. A file of a newer
version is opened read-only and never changed (``newer``).

Every change is one transaction (``write()``). WAL with a busy timeout on a local disk; on a network filesystem,
where SQLite's WAL does not work, the rollback journal (``journal="delete"``).
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 15000
Status = Literal["new", "predicted", "edited", "approved"]
STATUSES: tuple[Status, ...] = ("new", "predicted", "edited", "approved")
# How a version came to be: the tool of the editing stretch that made it, or how it arrived.
SOURCES = (
    "prediction",
    "brush",
    "eraser",
    "trace",
    "segment",
    "topology",
    "fill",
    "cleanup",
    "restore",
    "import",
    "autosave",
)
Journal = Literal["wal", "delete"]

# Schema 1: the tables as the first SQLite release of the app made them (that release set no user_version).
_SCHEMA_1 = """
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
# Schema 2: the data set's own mask of each image, so a status can say "has reference" and the first save over it
# can ask; the review log indexed by image (the History and approvals read it per image).
_SCHEMA_2 = """
ALTER TABLE images ADD COLUMN reference_sha TEXT;
CREATE INDEX IF NOT EXISTS review_log_image ON review_log (image);
"""
# Schema 3: the table of who has the workspace open is named for what it holds, one row per open window ("session"
# is the review of a workspace, ``ReviewSession``).
_SCHEMA_3 = """
ALTER TABLE sessions RENAME TO open_windows;
"""
# Schema 4: the optic disc and artery/vein labels of each image are versions like the masks', so the History lists
# them, a rebuild finds them and a restore takes an older one back (before: files under calibre/ only).
_SCHEMA_4 = """
CREATE TABLE IF NOT EXISTS calibre_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, image TEXT NOT NULL, kind TEXT NOT NULL, sha256 TEXT NOT NULL,
    time TEXT NOT NULL, reviewer TEXT, path TEXT NOT NULL, note TEXT);
CREATE INDEX IF NOT EXISTS calibre_versions_image ON calibre_versions (image, kind);
"""
# MIGRATIONS[n] takes a file from version n - 1 to n.
MIGRATIONS: dict[int, str] = {1: _SCHEMA_1, 2: _SCHEMA_2, 3: _SCHEMA_3, 4: _SCHEMA_4}
_TABLES = {
    "images",
    "settings",
    "review_log",
    "versions",
    "predictions",
    "migrations",
    "open_windows",
    "calibre_versions",
}
CALIBRE_KINDS = ("disc", "av")
NEWER_FILE = "made by a newer Retina Desktop; open it with that version"


class RecordsDamaged(Exception):
    """The database file is not a usable records database (``damaged``), or could not be opened now
    (busy, locked, no access, disk full: ``damaged`` is False, and the file must not be set aside)."""

    def __init__(self, message: str, damaged: bool = True):
        super().__init__(message)
        self.damaged = damaged


class RecordsReadOnly(sqlite3.OperationalError):
    """A write to records that must not change (made by a newer app); every writer already handles sqlite3.Error."""


# Only what names corruption sets a database aside; anything else (locked, busy, schema changed by another
# window creating it at the same moment, no access) is retried and never moves a good file.
_DAMAGE = (
    "not a database",
    "malformed",
    "corrupt",
    "integrity check",
    "tables are missing",
    "no such column",
    "no such table",
    "encrypted",
)


def failure(exc: BaseException) -> RecordsDamaged:
    text = str(exc) or type(exc).__name__
    return RecordsDamaged(text, damaged=any(w in text.lower() for w in _DAMAGE))


def clean_status(value: object) -> Status:
    for s in STATUSES:
        if value == s:
            return s
    return "new"


def clean_fraction(value: object) -> float | None:
    """A float in [0, 1] or None: anything else read from records (1e308, "abc", NaN) is dropped."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) and 0.0 <= v <= 1.0 else None


def clean_threshold(value: object) -> float | None:
    v = clean_fraction(value)
    return v if v is not None and 0.0 < v < 1.0 else None


def clean_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return max(0, min(int(value), 2**53))


def clean_text(value: object, limit: int = 500) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _clean_int(value: object) -> int | None:
    return clean_count(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class ImageRow:
    """One image's record, validated: a damaged row reads as "new" with nothing known."""

    key: str
    status: Status = "new"
    uncertainty: float | None = None
    current_sha: str | None = None
    approved_sha: str | None = None
    reference_sha: str | None = None


@dataclass(frozen=True)
class VersionRow:
    """One kept mask version; ``path`` is relative to the records folder that holds the row."""

    image: str
    sha256: str
    time: str
    reviewer: str | None
    source: str
    model: str | None
    path: str
    added_prev: int | None = None
    removed_prev: int | None = None
    added_pred: int | None = None
    removed_pred: int | None = None
    note: str | None = None


VERSION_COLUMNS = tuple(f.name for f in fields(VersionRow))


@dataclass(frozen=True)
class CalibreVersionRow:
    """One kept optic disc ("disc") or artery/vein labels ("av") version; ``path`` relative to the records folder."""

    image: str
    kind: str
    sha256: str
    time: str
    reviewer: str | None
    path: str
    note: str | None = None


CALIBRE_VERSION_COLUMNS = tuple(f.name for f in fields(CalibreVersionRow))


def _version_row(row: tuple[Any, ...]) -> VersionRow | None:
    v = dict(zip(VERSION_COLUMNS, row, strict=True))
    if not all(isinstance(v[k], str) for k in ("image", "sha256", "path")):
        return None
    return VersionRow(
        v["image"],
        v["sha256"],
        str(v["time"] or ""),
        clean_text(v["reviewer"]),
        str(v["source"] or "import"),
        clean_text(v["model"]),
        v["path"],
        _clean_int(v["added_prev"]),
        _clean_int(v["removed_prev"]),
        _clean_int(v["added_pred"]),
        _clean_int(v["removed_pred"]),
        clean_text(v["note"]),
    )


Query = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


def versions_of(query: Query, image: str | None = None) -> list[VersionRow]:
    """The versions table, oldest first (``query(sql, params)``: this records file's, or a read-only workspace's
    own)."""
    sql = (
        f"SELECT {', '.join(VERSION_COLUMNS)} FROM versions"
        + (" WHERE image=?" if image is not None else "")
        + " ORDER BY id"
    )
    rows = (_version_row(r) for r in query(sql, () if image is None else (image,)))
    return [r for r in rows if r is not None]


def image_rows(query: Query) -> dict[str, ImageRow]:
    """Validated image records (a read-only workspace's own file may predate ``reference_sha``)."""
    try:
        rows = query("SELECT key, status, uncertainty, current_sha, approved_sha, reference_sha FROM images", ())
    except sqlite3.OperationalError:
        rows = [(*r, None) for r in query("SELECT key, status, uncertainty, current_sha, approved_sha FROM images", ())]
    return {
        key: ImageRow(key, clean_status(st), clean_fraction(u), clean_text(c, 64), clean_text(a, 64), clean_text(r, 64))
        for key, st, u, c, a, r in rows
        if isinstance(key, str)
    }


def schema_version(con: sqlite3.Connection) -> int:
    """The file's schema version: ``user_version``, or 1 for the first release's files (tables, no version)."""
    version = int(con.execute("PRAGMA user_version").fetchone()[0])
    if version == 0 and con.execute("SELECT 1 FROM sqlite_master WHERE name='images'").fetchone():
        return 1
    return version


def migrate(con: sqlite3.Connection, to: int = SCHEMA_VERSION) -> list[int]:
    """Bring the file up to ``to``, one transaction per step; returns the steps applied."""
    done = []
    while (current := schema_version(con)) < to:
        step = current + 1
        con.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(con) == current:  # another window may have taken this step while we waited
                for statement in filter(str.strip, MIGRATIONS[step].split(";")):
                    con.execute(statement)
                con.execute(f"PRAGMA user_version={step}")
                done.append(step)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return done


class Records:
    """One connection, shared by the app's threads under a lock (writers in other processes wait).

    ``journal``: "wal" on a local disk, "delete" (the rollback journal) on a network filesystem. A file of a newer
    schema opens read-only (``newer`` is True): reads work, every write raises ``RecordsReadOnly``."""

    def __init__(self, path: Path, journal: Journal = "wal", create: bool = True):
        self.path = Path(path)
        self.journal = journal
        self.newer = False
        self.migrated: list[int] = []
        self._lock = threading.RLock()
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._open(create)
                return
            except RecordsDamaged as exc:
                # Two windows changing the journal mode at the same moment can get SQLITE_BUSY without the busy
                # handler; the later one waits and opens what the first made.
                if exc.damaged or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connect(self, read_only: bool) -> sqlite3.Connection:
        if str(self.path) == ":memory:":
            target = ":memory:"
        else:
            target = f"{self.path.absolute().as_uri()}?mode={'ro' if read_only else 'rwc'}"
        return sqlite3.connect(
            target,
            uri=target != ":memory:",
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )

    def _open(self, create: bool) -> None:
        try:
            self._con = self._connect(read_only=False)
        except sqlite3.Error as exc:
            raise failure(exc) from None
        try:
            self._con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            check = self._con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise RecordsDamaged(f"integrity check: {check}")
            version = schema_version(self._con)
            if version > SCHEMA_VERSION:
                self._con.close()
                self._con = self._connect(read_only=True)
                self._con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                self.newer = True
                return
            if version == 0 and not create:
                raise RecordsDamaged("the schema is empty (no tables)")
            self._set_journal()
            self._con.execute("PRAGMA synchronous=NORMAL" if self.journal == "wal" else "PRAGMA synchronous=FULL")
            self.migrated = migrate(self._con)
            tables = {r[0] for r in self._con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables >= _TABLES:
                raise RecordsDamaged("tables are missing")
            self._con.execute(
                "SELECT key,status,uncertainty,current_sha,approved_sha,reference_sha FROM images LIMIT 1"
            ).fetchall()
            self._con.execute(f"SELECT {','.join(VERSION_COLUMNS)} FROM versions LIMIT 1").fetchall()
            self._con.execute(f"SELECT {','.join(CALIBRE_VERSION_COLUMNS)} FROM calibre_versions LIMIT 1").fetchall()
        except RecordsDamaged:
            self._con.close()
            raise
        except sqlite3.Error as exc:
            self._con.close()
            raise failure(exc) from None

    def _set_journal(self) -> None:
        mode = str(self._con.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode != self.journal and str(self.path) != ":memory:":  # persistent: only a change sets it
            mode = str(self._con.execute(f"PRAGMA journal_mode={self.journal.upper()}").fetchone()[0]).lower()
        self.wal = mode == "wal"

    def close(self) -> None:
        with self._lock:
            try:
                self._con.close()
            except sqlite3.Error:
                pass

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (before it is copied or renamed)."""
        with self._lock:
            if self.wal:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- transactions ------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. BEGIN IMMEDIATE takes the database's write lock at once, so it also
        serialises the file writes done inside it between processes (the lock dies with a killed process)."""
        if self.newer:
            raise RecordsReadOnly(f"{self.path}: {NEWER_FILE}")
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

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, args).fetchall()

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT COUNT(*) FROM {table}")[0][0])

    # -- images --------------------------------------------------------------------------------
    def images(self) -> dict[str, ImageRow]:
        return image_rows(self.query)

    def image(self, key: str) -> ImageRow:
        rows = self.query(
            "SELECT key, status, uncertainty, current_sha, approved_sha, reference_sha FROM images WHERE key=?", (key,)
        )
        if not rows:
            return ImageRow(key)
        _, status, unc, cur, appr, ref = rows[0]
        return ImageRow(
            key,
            clean_status(status),
            clean_fraction(unc),
            clean_text(cur, 64),
            clean_text(appr, 64),
            clean_text(ref, 64),
        )

    def update_image(self, key: str, now: str, **changes: object) -> None:
        allowed = {"status", "uncertainty", "current_sha", "approved_sha", "reference_sha"}
        if not set(changes) <= allowed:
            raise ValueError(f"unknown image fields {sorted(set(changes) - allowed)}")
        with self.write() as con:
            con.execute("INSERT OR IGNORE INTO images (key, status, updated) VALUES (?, 'new', ?)", (key, now))
            if changes:
                sets = ", ".join(f"{k}=?" for k in changes)
                con.execute(f"UPDATE images SET {sets}, updated=? WHERE key=?", (*changes.values(), now, key))

    # -- settings ------------------------------------------------------------------------------
    def setting(self, name: str) -> Any:
        rows = self.query("SELECT value FROM settings WHERE name=?", (name,))
        if not rows:
            return None
        try:
            return json.loads(rows[0][0])
        except (TypeError, ValueError):
            return None

    def set_setting(self, name: str, value: object) -> None:
        with self.write() as con:
            con.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, json.dumps(value)))

    # -- review log ----------------------------------------------------------------------------
    def add_log(self, record: dict[str, Any]) -> None:
        known = ("time", "image", "action", "reviewer", "model", "pixels_added", "pixels_removed")
        extra = {k: v for k, v in record.items() if k not in known}
        with self.write() as con:
            con.execute(
                "INSERT INTO review_log (time, image, action, reviewer, model, pixels_added, pixels_removed,"
                " extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(record.get("time", "")),
                    str(record.get("image", "")),
                    str(record.get("action", "")),
                    clean_text(record.get("reviewer")),
                    clean_text(record.get("model")),
                    clean_count(record.get("pixels_added")),
                    clean_count(record.get("pixels_removed")),
                    json.dumps(extra, default=str) if extra else None,
                ),
            )

    def log(self, image: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT time, image, action, reviewer, model, pixels_added, pixels_removed, extra FROM review_log"
            + (" WHERE image=?" if image is not None else "")
            + " ORDER BY id"
        )
        out = []
        for t, img, action, reviewer, model, added, removed, extra in self.query(
            sql, () if image is None else (image,)
        ):
            rec: dict[str, Any] = {
                "time": t,
                "image": img,
                "action": action,
                "reviewer": reviewer,
                "model": model,
                "pixels_added": clean_count(added),
                "pixels_removed": clean_count(removed),
            }
            try:
                more = json.loads(extra) if extra else {}
            except (TypeError, ValueError):
                more = {}
            if isinstance(more, dict):
                rec.update({k: v for k, v in more.items() if k not in rec})
            out.append(rec)
        return out

    # -- versions ------------------------------------------------------------------------------
    def add_version(self, row: VersionRow) -> None:
        with self.write() as con:
            con.execute(
                f"INSERT INTO versions ({', '.join(VERSION_COLUMNS)}) VALUES ({', '.join('?' * 12)})",
                tuple(getattr(row, c) for c in VERSION_COLUMNS),
            )

    def add_calibre_version(self, row: CalibreVersionRow) -> None:
        if row.kind not in CALIBRE_KINDS:
            raise ValueError(f"unknown calibre kind {row.kind!r}")
        with self.write() as con:
            con.execute(
                f"INSERT INTO calibre_versions ({', '.join(CALIBRE_VERSION_COLUMNS)}) VALUES ({', '.join('?' * 7)})",
                tuple(getattr(row, c) for c in CALIBRE_VERSION_COLUMNS),
            )

    def calibre_versions(self, image: str | None = None, kind: str | None = None) -> list[CalibreVersionRow]:
        """The disc and A/V versions, oldest first; a damaged row (not text where text belongs) is left out."""
        where = [c for c, v in (("image", image), ("kind", kind)) if v is not None]
        sql = (
            f"SELECT {', '.join(CALIBRE_VERSION_COLUMNS)} FROM calibre_versions"
            + (" WHERE " + " AND ".join(f"{c}=?" for c in where) if where else "")
            + " ORDER BY id"
        )
        out = []
        for r in self.query(sql, tuple(v for v in (image, kind) if v is not None)):
            image_, kind_, sha, t, reviewer, path, note = r
            if all(isinstance(x, str) for x in (image_, kind_, sha, path)) and kind_ in CALIBRE_KINDS:
                out.append(
                    CalibreVersionRow(image_, kind_, sha, str(t or ""), clean_text(reviewer), path, clean_text(note))
                )
        return out

    def has_version(self, image: str, sha256: str) -> bool:
        return bool(self.query("SELECT 1 FROM versions WHERE image=? AND sha256=? LIMIT 1", (image, sha256)))

    def versions(self, image: str | None = None) -> list[VersionRow]:
        return versions_of(self.query, image)

    # -- prediction cache index ----------------------------------------------------------------
    def index_prediction(self, image: str, model_key: str, path: str, time: str) -> None:
        with self.write() as con:
            con.execute(
                "INSERT OR REPLACE INTO predictions (image, model_key, path, time) VALUES (?, ?, ?, ?)",
                (image, model_key, path, time),
            )

    def predictions(self) -> list[tuple[str, str, str]]:
        return [
            (str(a), str(b), str(c))
            for a, b, c in self.query("SELECT image, model_key, path FROM predictions ORDER BY image")
        ]

    # -- migrations ----------------------------------------------------------------------------
    def add_migration(self, time: str, what: str, detail: str = "") -> None:
        with self.write() as con:
            con.execute("INSERT INTO migrations (time, what, detail) VALUES (?, ?, ?)", (time, what, detail))

    def migrations(self) -> list[dict[str, str]]:
        return [
            {"time": t, "what": w, "detail": d}
            for t, w, d in self.query("SELECT time, what, detail FROM migrations ORDER BY id")
        ]

    def integrity(self) -> str:
        return str(self.query("PRAGMA integrity_check")[0][0])
