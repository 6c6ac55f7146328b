"""Opening a workspace's records: the SQLite file, or a rebuild when it is damaged, the one-time import of
an older ``state.json`` / ``review_log.jsonl``, a read-only share's own records, and the clean-up of
temporary files left by killed saves. Functions of the ``Workspace`` being opened; Qt-free."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

from .records import (SOURCES, Records, RecordsDamaged, clean_fraction, clean_status, clean_threshold,
                      versions_of)
from .workspace_common import META_DIR_NAME, RECORDS_NAME, _file_sha, _now, _short, _timestamp, parse_time


def open_records(ws) -> Records:
    path = ws.records_path
    if path.is_dir():  # SQLite would retry "unable to open" for 15 s before giving up
        return _records_in_memory(ws, f"{path} could not be opened (a folder is in its place)")
    try:
        if _truncated(path):
            # SQLite would take an empty file for a new database and every status would silently read "new".
            raise RecordsDamaged("the file is empty (cut to 0 bytes)")
        records = Records(path)
    except RecordsDamaged as exc:
        if not exc.damaged:  # busy or no access: the file is fine, and must stay where it is
            return _records_in_memory(ws, f"{path} could not be opened ({exc})")
        aside = _set_aside(ws, path, f"records.corrupt-{_timestamp()}.sqlite")
        if aside is None:
            return _records_in_memory(ws, f"{path} could not be opened ({exc})")
        try:
            records = Records(path)
        except RecordsDamaged as again:
            return _records_in_memory(ws, f"{path} could not be created ({again})")
        rebuilt = _rebuild(ws, records)
        ws.notices.append(f"The workspace records were damaged and were kept aside as {aside.name}; "
                            f"statuses were rebuilt from {rebuilt}.")
        records.add_migration(_now(), "rebuilt", f"damaged records kept as {aside.name} ({exc}); from {rebuilt}")
        return records
    if records.created:
        try:
            _migrate(ws, records)
        except sqlite3.Error as exc:
            ws.notices.append(f"The old records of this workspace could not be imported ({exc}); "
                                "they are kept as they are.")
    return records


def _truncated(path: Path) -> bool:
    """An empty records file that is not being created right now (another window may have just made it)."""
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == 0 and time.time() - st.st_mtime > 10


def _records_in_memory(ws, why: str) -> Records:
    ws.notices.append(f"{why}; this session's statuses are not kept.")
    ws.records_unavailable = why  # `verify` must not call a workspace whose records it could not read "ok"
    return Records(Path(":memory:"))


def _set_aside(ws, path: Path, name: str) -> Path | None:
    aside = path.with_name(name)
    try:
        os.replace(path, aside)
    except OSError:
        return None
    for suffix in ("-wal", "-shm"):
        try:
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        except OSError:
            pass
    return aside


def _migrate(ws, records: Records) -> None:
    """First open with SQLite records: import state.json and review_log.jsonl (both files stay)."""
    state_path, log_path = ws.meta_dir / "state.json", ws.review_log_path
    rebuilt = False
    with records.write():
        if records.migrations():
            return  # another window opening at the same moment did it (this one waited for its lock)
        records.add_migration(_now(), "created", f"{RECORDS_NAME} created")
        if state_path.is_file():
            try:
                state = json.loads(state_path.read_text(encoding="utf-8"))
                if not isinstance(state, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                aside = _set_aside(ws, state_path, f"state.corrupt-{_timestamp()}.json")
                kept = aside.name if aside is not None else state_path.name
                ws.notices.append(f"{state_path.name} was damaged ({_short(exc)}) and was kept aside as {kept}; "
                                    "statuses were rebuilt from the masks and the review log.")
                records.add_migration(_now(), "state.json damaged", f"kept as {kept}")
                _rebuild(ws, records)
                rebuilt = True
            else:
                dropped = _import_state(ws, records, state)
                records.add_migration(_now(), "state.json", f"imported; {dropped} unusable record(s) left out")
                if dropped:
                    ws.notices.append(f"{state_path.name}: {dropped} unusable record(s) were left out "
                                        "(kept in the file as they are).")
        if log_path.is_file() and not rebuilt:
            added, skipped = _import_log(ws, records, log_path)
            if added or skipped:
                records.add_migration(_now(), "review_log.jsonl",
                                      f"{added} record(s) imported, {skipped} unreadable line(s) skipped")
        _index_history_files(ws, records)


def _import_state(ws, records: Records, state: dict) -> int:
    now, dropped = _now(), 0
    threshold = clean_threshold(state.get("threshold"))
    if threshold is not None:
        records.set_setting("threshold", threshold)
    elif state.get("threshold") is not None:
        dropped += 1
    images = state.get("images")
    if not isinstance(images, dict):
        return dropped + (images is not None)
    for key, rec in images.items():
        if not isinstance(key, str) or not isinstance(rec, dict):
            dropped += 1
            continue
        # A legacy uncertainty used the older whole-FOV measure (1.8-2.2 % on every DRIVE photo); mixing it
        # with the vessel-area measure would mis-sort the list, so it is left out and comes back with the
        # next prediction.
        records.update_image(key, now, status=clean_status(rec.get("status")))
    return dropped


def _import_log(ws, records: Records, path: Path) -> tuple[int, int]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 0, 0
    added = skipped = 0
    for line in lines:
        if not line.strip():
            continue
        rec = _log_line(line)
        if rec is None:
            skipped += 1
            continue
        if rec is not _log_line.GLUED:
            records.add_log(rec)
            added += 1
            continue
        # An older app appended after a line cut by a crash, gluing a whole record onto it: keep that one.
        skipped += 1
        rec = _log_line(line, salvage=True)
        if rec is not None:
            records.add_log(rec)
            added += 1
    return added, skipped


def _index_history_files(ws, records: Records) -> int:
    """Register history files that no record mentions (an older app's timestamped copies, or files kept
    by a save whose record was lost) as versions, so they show in the History and survive verify."""
    base = ws.meta_dir / "history"
    if not base.is_dir():
        return 0
    known = {(v["image"], v["path"]) for v in records.versions()}
    # Who made each content, when and how, from the review log (read in before this): a rebuilt history keeps
    # the grader's name and time instead of "import" at the file's date.
    made: dict[tuple[str, str], dict] = {}
    for rec in records.log():  # the first record of a content is the save that made it (a restore repeats it)
        if isinstance(rec.get("sha256"), str) and rec["action"] in ("save", "autosave", "restore", "import"):
            made.setdefault((rec["image"], rec["sha256"]), rec)
    count = 0
    for e in ws.entries:
        d = base / e.key
        try:
            files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
        except OSError:
            continue
        found = []
        for p in files:
            rel = p.relative_to(ws.meta_dir).as_posix()
            if (e.key, rel) in known:
                continue
            try:
                data = p.read_bytes()
                mtime = _dt.datetime.fromtimestamp(p.stat().st_mtime)
                stamp = mtime.astimezone().isoformat(timespec="milliseconds")
            except OSError:
                continue
            sha = hashlib.sha256(data).hexdigest()
            rec = made.get((e.key, sha))
            when = str(rec["time"]) if rec is not None else stamp
            parsed = parse_time(when)
            found.append((parsed.timestamp() if parsed is not None else float("inf"), when, sha, rel, rec))
        for _, when, sha, rel, rec in sorted(found, key=lambda f: f[0]):  # oldest first, as saved
            if rec is not None:
                source = rec.get("source") if rec.get("source") in SOURCES else "import"
                records.add_version(e.key, sha, when, rel, source, reviewer=rec.get("reviewer"),
                                    model=rec.get("model"), note="indexed")
            else:
                records.add_version(e.key, sha, when, rel, "import", note="indexed")
            count += 1
    return count


def _rebuild(ws, records: Records) -> str:
    """Statuses from what survives: the mask files, the history folder and the review log's JSONL copy."""
    now = _now()
    with records.write():
        masks = 0
        for e in ws.entries:
            gt = e.existing_gt()
            if gt is None:
                continue
            sha = _file_sha(gt)
            if sha is None:
                continue
            records.update_image(e.key, now, status="edited", current_sha=sha)
            masks += 1
        added, _ = _import_log(ws, records, ws.review_log_path)
        versions = _index_history_files(ws, records)
        last: dict[str, str] = {}
        for rec in records.log():
            if rec["action"] in ("approve", "save", "autosave", "restore", "import"):
                last[rec["image"]] = rec["action"]
        approved = [k for k, a in last.items() if a == "approve" and k in ws._by_key
                    and ws._by_key[k].existing_gt() is not None]
        for k in approved:
            records.update_image(k, now, status="approved", approved_sha=records.image(k)["current_sha"])
    return (f"{masks} mask file(s), {versions} history file(s) and {added} review-log record(s)"
            f" ({len(approved)} approved)")


def _read_shared(ws, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of the read-only workspace's own records file (empty when there is none or it cannot be read)."""
    db = ws.root / META_DIR_NAME / RECORDS_NAME
    # mode=ro sees a live writer's WAL; on a truly read-only medium only immutable=1 opens at all.
    for query in ("mode=ro", "immutable=1"):
        if not db.is_file():
            break
        try:
            con = sqlite3.connect(f"{db.as_uri()}?{query}", uri=True)
            try:
                return con.execute(sql, params).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            continue
    return []


def shared_versions(ws, key: str | None = None) -> list[dict]:
    """The versions a read-only workspace recorded in its own folder, as ``Records.versions`` gives them
    (paths relative to ``<workspace>/.retina``): its history stays visible and restorable."""
    if ws.meta_in_workspace:
        return []
    return versions_of(lambda sql, params: _read_shared(ws, sql, params), key)


def shared_images(ws) -> dict[str, dict]:
    """A reviewed folder on a read-only share: its own records (a colleague's approvals) show through,
    and what this user records in the fallback folder wins for the images it covers."""
    shared: dict[str, dict] = {}
    state = ws._read_json(ws.root / META_DIR_NAME / "state.json") or {}
    images = state.get("images")
    if isinstance(images, dict):
        for k, v in images.items():
            if isinstance(k, str) and isinstance(v, dict):
                shared[k] = {"status": clean_status(v.get("status")),
                             "uncertainty": clean_fraction(v.get("uncertainty"))}
    for k, st, u in _read_shared(ws, "SELECT key, status, uncertainty FROM images"):
        if isinstance(k, str):
            shared[k] = {"status": clean_status(st), "uncertainty": clean_fraction(u)}
    return shared


def remove_orphan_temporaries(ws, older_than_s: float = 60.0) -> int:
    """Temporary files of saves killed midway (``.<name>.<random>.tmp``). A younger one may belong to a
    save in progress in another window, so it is left alone."""
    folders = {e.gt_dir for e in ws.entries} | {ws.meta_dir}
    for sub in ("history", "predictions"):
        base = ws.meta_dir / sub
        if base.is_dir():
            for dirpath, _dirs, _files in os.walk(base):
                folders.add(Path(dirpath))
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


def _log_line(line: str, salvage: bool = False):
    """A review-log record, None, or ``_log_line.GLUED`` (unreadable, but a later '{' may start a record)."""
    def usable(text):
        try:
            rec = json.loads(text)
        except ValueError:
            return None
        return rec if isinstance(rec, dict) and isinstance(rec.get("image"), str) else None

    if not salvage:
        rec = usable(line)
        return rec if rec is not None else (_log_line.GLUED if line.find("{", 1) > 0 else None)
    i = line.find("{", 1)
    while i > 0:
        rec = usable(line[i:])
        if rec is not None:
            return rec
        i = line.find("{", i + 1)
    return None


_log_line.GLUED = object()
