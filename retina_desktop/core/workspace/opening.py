"""Opening a workspace's records: trust, migrate, or rebuild them, never half of one. Qt-free.

The decision is taken under an exclusive lock on ``records.lock`` beside the file, held by whoever creates,
migrates or rebuilds it, so a file seen under the lock is never one being made (an empty file is damage, not
"another window is creating it"). A new or rebuilt file is built as a temporary file beside the old one, synced,
then renamed over it: a process killed at any moment leaves the old file (or none, with history and log intact,
which the next open rebuilds from), never an empty file that later opens trust.

A file is rebuilt, with the damaged one kept aside as ``records.corrupt-<time>.sqlite``, when it is not a
database, fails its integrity check, is empty (0 bytes or no tables), or holds no image, version or log record
while history files or review-log lines exist. A file of a newer schema is opened read-only and never changed.
A file that cannot be opened for now (busy, no access, disk full) stays where it is; ``RecordKeeper`` keeps
this window's records until it can be opened.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .calibre_records import CALIBRE_DIR_NAME, index_calibre_files
from .common import (
    HISTORY_DIR_NAME,
    RECORDS_NAME,
    _file_sha,
    _now,
    _short,
    _timestamp,
    found_file_version,
    parse_time,
)
from .layout import ImageEntry
from .records import NEWER_FILE, SOURCES, Journal, Records, RecordsDamaged, VersionRow
from .review_log import read_log_file

LOCK_NAME = "records.lock"
LOCK_WAIT_S = 30.0
_SAVES = ("save", "autosave", "restore", "import")


@dataclass
class Opened:
    """What opening found: the records to use, and the one-line notices for the window."""

    records: Records
    notices: list[str] = field(default_factory=list)
    unavailable: str | None = None  # why the real file could not be opened (records are kept in memory)


@contextlib.contextmanager
def creation_lock(meta_dir: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[bool]:
    """Hold ``records.lock`` exclusively (True), or go on without it where locks are not available (False). Another
    process that holds it is creating or rebuilding the records: wait for it."""
    try:
        fd = os.open(meta_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield False
        return
    try:
        try:
            import fcntl
        except ImportError:  # Windows: SQLite's own locks and the temporary-file build still hold
            yield False
            return
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{meta_dir / LOCK_NAME}: another window has been opening the records for over {wait_s:.0f} s"
                    ) from None
                time.sleep(0.05)
            except OSError:  # a filesystem without flock
                yield False
                return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def open_records(meta_dir: Path, entries: Sequence[ImageEntry], journal: Journal) -> Opened:
    path = meta_dir / RECORDS_NAME
    try:
        with creation_lock(meta_dir):
            return _open_locked(path, meta_dir, entries, journal)
    except TimeoutError as exc:
        return _in_memory(path, str(exc))


def _open_locked(path: Path, meta_dir: Path, entries: Sequence[ImageEntry], journal: Journal) -> Opened:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return _in_memory(path, f"{path} could not be opened ({_short(exc)})")
    if st is None:
        if _earlier_work(meta_dir):
            return _rebuild(path, meta_dir, entries, journal, None, "the file was missing")
        _build(path, meta_dir, entries, journal, rebuild=False)
        return Opened(Records(path, journal))
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(st.st_mode)
            else "a link"
            if stat.S_ISLNK(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "not a regular file"
        )
        return _in_memory(path, f"{path} could not be opened ({kind} is in its place)")
    if st.st_size == 0:
        return _rebuild(path, meta_dir, entries, journal, path, "the file is empty (0 bytes)")
    try:
        records = Records(path, journal, create=False)
    except RecordsDamaged as exc:
        if not exc.damaged:  # busy, no access, disk full: the file is fine, and must stay where it is
            return _in_memory(path, f"{path} could not be opened ({_why(exc, meta_dir)})")
        return _rebuild(path, meta_dir, entries, journal, path, str(exc))
    if records.newer:
        return Opened(records, [f"{path}: {NEWER_FILE}. It was opened read-only: nothing is saved in this workspace."])
    if _holds_nothing(records) and _earlier_work(meta_dir, calibre=False):
        records.close()
        return _rebuild(
            path,
            meta_dir,
            entries,
            journal,
            path,
            "it held no record although the history and review log did (a rebuild or import killed half-way)",
        )
    indexing: list[str] = []
    # The calibre history files no row names become rows, in one transaction: those of the last release (which kept
    # the disc and A/V versions it replaced as numbered files only, before schema 4), and those of a save killed
    # between its copy and its row. Killed half-way, none is written, and the next open does it again.
    try:
        indexed = index_calibre_files(records, meta_dir)
    except sqlite3.Error as exc:
        indexed = 0
        indexing.append(f"{path}: the calibre history is not indexed yet ({exc})")
    if indexed:
        indexing.append(f"{path}: {indexed} optic disc / artery-vein version(s) found in the calibre history.")
    notices = [f"{path}: migrated to schema {records.migrated[-1]}."] if records.migrated else []
    return Opened(records, notices + indexing)


def _why(exc: BaseException, meta_dir: Path) -> str:
    """SQLite says "disk I/O error" when it cannot grow a file on a full disk: say what the grader can act on."""
    try:
        full = shutil.disk_usage(meta_dir).free < 1024 * 1024
    except OSError:
        full = False
    return "disk full" if full or "full" in str(exc).lower() else str(exc)


def _in_memory(path: Path, why: str) -> Opened:
    notice = f"{why}; statuses are kept in memory and written to the records once they can be."
    return Opened(Records(Path(":memory:")), [notice], unavailable=why)


def _holds_nothing(records: Records) -> bool:
    return all(records.count(t) == 0 for t in ("images", "versions", "review_log", "calibre_versions"))


def _earlier_work(meta_dir: Path, calibre: bool = True) -> bool:
    """Files that only a workspace with records makes: kept versions or review-log lines (``calibre``: the disc and
    A/V history too; a records file that holds nothing beside them is the last release's, which had no rows for
    them: migrated and indexed, not rebuilt)."""
    log = meta_dir / "review_log.jsonl"
    try:
        if log.is_file() and log.stat().st_size > 0:
            return True
    except OSError:
        pass
    history = meta_dir / HISTORY_DIR_NAME
    try:
        if any(p.is_file() for p in history.rglob("*") if not p.name.startswith(".")):
            return True
        # The disc and A/V versions: calibre/<key>/history/
        return calibre and any(p.is_file() for p in (meta_dir / CALIBRE_DIR_NAME).glob(f"*/{HISTORY_DIR_NAME}/[!.]*"))
    except OSError:
        return False


def _rebuild(
    path: Path, meta_dir: Path, entries: Sequence[ImageEntry], journal: Journal, damaged: Path | None, why: str
) -> Opened:
    try:
        summary = _build(path, meta_dir, entries, journal, rebuild=True, damaged=damaged, why=why)
        records = Records(path, journal)
    except (OSError, sqlite3.Error, RecordsDamaged) as exc:
        return _in_memory(
            path, f"{path} could not be rebuilt ({why}; {_why(exc, meta_dir)}); the old file is kept as it was"
        )
    if summary.get("aside"):
        text = f"The workspace records were damaged ({why}) and were kept aside as {summary['aside']}"
    else:
        text = f"The workspace records were missing ({why})"
    return Opened(records, [f"{text}; statuses were rebuilt from {summary['text']}."])


def _build(
    path: Path,
    meta_dir: Path,
    entries: Sequence[ImageEntry],
    journal: Journal,
    *,
    rebuild: bool,
    damaged: Path | None = None,
    why: str = "",
) -> dict[str, str]:
    """Make the records in a temporary file beside ``path``, sync it, then rename it over ``path`` (the damaged file,
    if any, first moved aside). Nothing at ``path`` is ever a half-built file."""
    tmp = meta_dir / f".{RECORDS_NAME}.{secrets.token_hex(4)}.tmp"
    summary: dict[str, str] = {"text": "nothing (a new workspace)"}
    try:
        build = Records(tmp, "delete")
        try:
            with build.write():
                build.add_migration(_now(), "created", f"{RECORDS_NAME} created")
                if rebuild:
                    summary["text"] = fill_from_files(build, meta_dir, entries)
                    build.add_migration(_now(), "rebuilt", f"{why}; from {summary['text']}")
        finally:
            build.close()
        _fsync(tmp)
        aside = path.with_name(f"records.corrupt-{_timestamp()}.sqlite")
        if damaged is not None:
            os.replace(damaged, aside)
            summary["aside"] = aside.name
        for suffix in ("-wal", "-shm", "-journal"):  # a stale journal would be applied to the new file
            stale = Path(f"{path}{suffix}")
            if stale.exists():
                os.replace(stale, Path(f"{aside}{suffix}"))
        os.replace(tmp, path)
        _fsync(meta_dir)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return summary


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # folders cannot be synced on some systems
    finally:
        os.close(fd)


def fill_from_files(records: Records, meta_dir: Path, entries: Sequence[ImageEntry]) -> str:
    """Records from what survives: the review log's JSONL copy, the history folder and the mask files. Each
    version is credited to the save that made it; a mask this app did not write is the data set's own reference
    ("new" with ``reference_sha``), not "edited"."""
    log, skipped = read_log_file(meta_dir / "review_log.jsonl")
    for rec in log:
        records.add_log(rec)
    versions = index_history_files(records, meta_dir, entries, log)
    calibre = index_calibre_files(records, meta_dir)  # the disc and A/V versions, from calibre/<key>/history/
    # A content the app wrote is in the review log's saves or in the history (a data set's own mask enters the
    # history only when a save replaces it, so the one on disk now is not there).
    made = {(r["image"], r.get("sha256")) for r in log if r.get("action") in _SAVES}
    made |= {(v.image, v.sha256) for v in records.versions()}
    last_approved = {r["image"]: r.get("sha256") for r in log if r.get("action") == "approve"}
    now, masks, approved, references = _now(), 0, 0, 0
    for e in entries:
        sha = _file_sha(e.existing_gt())
        if sha is None:
            continue
        masks += 1
        if last_approved.get(e.key) == sha:
            records.update_image(e.key, now, status="approved", current_sha=sha, approved_sha=sha)
            approved += 1
        elif (e.key, sha) in made:
            records.update_image(e.key, now, status="edited", current_sha=sha)
        else:
            records.update_image(e.key, now, current_sha=sha, reference_sha=sha)
            references += 1
    threshold = next((r["threshold"] for r in reversed(log) if isinstance(r.get("threshold"), (int, float))), None)
    if threshold is not None and 0 < float(threshold) < 1:
        records.set_setting("threshold", float(threshold))
    return (
        f"{masks} mask file(s) ({approved} approved, {references} the data set's own), {versions} history "
        f"file(s), {calibre} optic disc / artery-vein history file(s) and {len(log)} review-log record(s)"
        + (f", {skipped} unreadable line(s) skipped" if skipped else "")
    )


def index_history_files(
    records: Records, meta_dir: Path, entries: Sequence[ImageEntry], log: Sequence[dict[str, Any]]
) -> int:
    """Register the history files as versions, oldest first, each credited to the log record of the save that
    made its content (who, when, how, with which model); a file no record names is an "import" at its date."""
    base = meta_dir / HISTORY_DIR_NAME
    if not base.is_dir():
        return 0
    known = {(v.image, v.path) for v in records.versions()}
    made: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in log:  # the first record of a content is the save that made it (a restore repeats it)
        if isinstance(rec.get("sha256"), str) and rec.get("action") in _SAVES:
            made.setdefault((rec["image"], rec["sha256"]), rec)
    count = 0
    for e in entries:
        found = []
        for p, rel in _history_files(base / e.key, meta_dir):
            if (e.key, rel) in known:
                continue
            facts = found_file_version(p)
            if facts is None:
                continue
            sha, stamp = facts
            found_rec = made.get((e.key, sha))
            when = str(found_rec["time"]) if found_rec is not None else stamp
            parsed = parse_time(when)
            found.append((parsed.timestamp() if parsed is not None else float("inf"), when, sha, rel, found_rec))
        for _, when, sha, rel, credit in sorted(found, key=lambda f: f[0]):
            source = credit.get("source") if credit is not None and credit.get("source") in SOURCES else "import"
            records.add_version(
                VersionRow(
                    e.key,
                    sha,
                    when,
                    credit.get("reviewer") if credit else None,
                    str(source),
                    credit.get("model") if credit else None,
                    rel,
                    note="indexed",
                )
            )
            count += 1
    return count


def _history_files(folder: Path, meta_dir: Path) -> list[tuple[Path, str]]:
    try:
        files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file() and not p.is_symlink())
    except OSError:
        return []
    return [(p, p.relative_to(meta_dir).as_posix()) for p in files]


def remove_orphan_temporaries(folders: set[Path], older_than_s: float = 60.0) -> int:
    """Temporary files of saves killed midway (``.<name>.<random>.tmp``). A younger one may belong to a save in
    progress in another window, so it is left alone."""
    cutoff, removed = time.time() - older_than_s, 0
    for folder in folders:
        try:
            with os.scandir(folder) as it:
                for de in it:
                    if de.name.startswith(".") and de.name.endswith(".tmp") and de.is_file(follow_symlinks=False):
                        try:
                            if de.stat(follow_symlinks=False).st_mtime < cutoff:
                                os.unlink(de.path)
                                removed += 1
                        except OSError:
                            pass
        except OSError:
            continue
    return removed
