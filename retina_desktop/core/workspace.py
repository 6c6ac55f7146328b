"""A workspace: a folder of fundus photos, where their ground truth goes, and the app's records.

Layouts understood:

* flat: photos directly in the folder; ground truth goes to ``<folder>/ground_truth/``;
* reference: ``images/`` + ``mask/`` (or ``masks/``, ...), optionally under ``train/`` and ``test/``;
  ground truth goes into the mask folder beside each ``images/`` folder, paired by file stem.

The command line reads folders by the same rule: ``model_core.data.image_folders``.

The app's own records live in ``<workspace>/.retina/``: ``records.sqlite`` (statuses, threshold, review
log, mask versions, prediction-cache index, who has it open; see ``records.py``), ``history/<image>/
<sha256>.png`` (every mask version ever saved, content-addressed: written once, never twice),
``predictions/`` (cache) and ``review_log.jsonl`` (a copy of the log for other tools). An older
``state.json`` / ``review_log.jsonl`` is imported on first open and kept. If the workspace cannot be
written, records go to a per-workspace folder under the user data folder and saving ground truth is
refused with a clear message. This module is Qt-free.

Nothing a grader saved is lost:

* ``save_ground_truth(entry, mask, expected_sha=..., source=..., reviewer=..., model=..., prediction=...,
  status=..., action=...)`` is one transaction. It raises only ``WorkspaceError`` subclasses, each with a
  one-line message for the window: ``SaveConflict`` (another window/grader saved this image since it was
  loaded; ``.mine`` and ``.theirs`` are ``Version`` objects, both in the history; resolve with
  ``resolve_conflict(conflict, "mine" | "theirs")``, "view both" = read ``.mine.path`` and
  ``.theirs.path``), ``DiskFullError`` ("disk full": offer retry and Export elsewhere),
  ``ReadOnlyWorkspaceError``, ``WorkspaceGoneError`` (folder renamed/unmounted: nothing is re-created)
  and ``RecordError`` (the mask is saved, its record is not: ``exc.retry()``).
* ``load_ground_truth`` remembers the version loaded (``loaded_sha``), which a later save checks.
* History panel: ``versions(entry)`` lists ``Version`` (sha256, time, reviewer, source, model, pixels
  added/removed vs the previous version and vs the prediction, path), ``restore(entry, sha256)`` saves
  an old version as a new one (so it can be undone the same way).
* ``approve(entry, prediction=...)`` logs pixels changed against the prediction and the last approval.
* ``other_sessions()`` says who else has the workspace open (user, machine, since) for an
  "already open" notice; ``close()`` ends this window's session.
* ``notices`` holds one-line messages from opening (damaged records kept aside and rebuilt, ...);
  ``verify()`` checks everything like ``git fsck``.
"""

from __future__ import annotations

import datetime as _dt
import errno
import getpass
import hashlib
import json
import os
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.atomic import check_writable, write_bytes_atomic, write_bytes_unique, write_json_atomic
from model_core.data import find_mask, image_folders
from model_core.data import list_images as _list_images
from model_core.errors import ImageReadError
from model_core.imageio import IMAGE_SUFFIXES, encode_png, png16_to_prob, prob_to_png16, read_mask, read_raw

from .paths import file_signature, user_data_dir
from .records import (SOURCES, STATUSES, OpenRecord, Records, RecordsDamaged, clean_fraction, clean_status,
                      clean_threshold)

RECORDS_NAME = "records.sqlite"
SESSION_STALE_S = 12 * 3600  # another machine's "open" record not refreshed for this long is stale
MASK_CACHE_SIZE = 4  # recent masks kept decoded, so a save measures its changes without reading the file
_UNSET = object()
META_DIR_NAME = ".retina"


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


@dataclass(frozen=True)
class ImageEntry:
    key: str  # the image's path relative to the workspace, without suffix ("train/images/21_training")
    path: Path
    gt_dir: Path
    split: str = ""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def gt_path(self) -> Path:
        return self.gt_dir / f"{self.stem}.png"

    def existing_gt(self) -> Path | None:
        """The ground-truth file paired by stem (``<stem>.png`` first), whatever its format or suffix."""
        return find_mask(self.gt_dir, self.stem)


def _images_in(folder: Path) -> list[Path]:
    try:
        return _list_images(folder, natural=True)
    except OSError:
        return []


def discover(root: Path) -> tuple[str, list[ImageEntry]]:
    """The layout name and the images of a folder (no image is decoded here: thousands stay fast)."""
    entries: list[ImageEntry] = []
    folders = image_folders(root)
    for f in folders:
        prefix = f"{f.split}/" if f.split else ""
        entries += [ImageEntry(f"{prefix}{p.stem}", p, f.masks, f.split) for p in _images_in(f.images)]
    return folders[0].layout, entries


def _probe_writable(folder: Path) -> bool:
    """Really try to create a file: permission bits lie on network shares and for root."""
    try:
        check_writable(folder / ".retina-probe")
        return True
    except OSError:
        return False


def _write_json_atomic(path: Path, data: dict) -> None:
    write_json_atomic(path, data, indent=1, sort_keys=True)


def _timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


class Workspace:
    def __init__(self, root: str | os.PathLike):
        root = Path(root).expanduser()
        if not root.exists():
            raise WorkspaceError(f"{root}: folder not found")
        if not root.is_dir():
            raise WorkspaceError(f"{root}: not a folder")
        self.root = root.resolve()
        self.layout, self.entries = discover(self.root)
        if not self.entries:
            raise WorkspaceError(f"{self.root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} "
                                 "directly in the folder or in images/, train/images/, test/images/)")
        # Ground truth is paired by stem, so a.jpg and a.tif would share one mask file: list the first only.
        self._by_key, kept, self.duplicates = {}, [], []
        for e in self.entries:
            if e.key in self._by_key:
                self.duplicates.append(f"{e.path.name} (same name as {self._by_key[e.key].path.name})")
            else:
                self._by_key[e.key] = e
                kept.append(e)
        self.entries = kept
        gt_dirs = {e.gt_dir for e in self.entries}
        self.gt_writable = all(_probe_writable(d) if d.is_dir() else _probe_writable(d.parent) for d in gt_dirs)
        in_place = self.root / META_DIR_NAME
        if _probe_writable(in_place):
            self.meta_dir = in_place
            self.meta_in_workspace = True
        else:
            digest = hashlib.sha1(str(self.root).encode("utf-8")).hexdigest()[:16]
            self.meta_dir = user_data_dir() / "workspaces" / digest
            self.meta_dir.mkdir(parents=True, exist_ok=True)
            self.meta_in_workspace = False
        self._lock = threading.RLock()
        self.notices: list[str] = []  # one-line messages for the window (damaged records set aside, ...)
        self._root_id = _identity(self.root)
        self._loaded: dict[str, str | None] = {}  # key -> sha256 of the mask file this process loaded/saved last
        self._masks: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()  # recent masks by sha, for pixel counts
        self._pending: list = []  # record writes that failed; retried by flush() and the next write
        self._records = self._open_records()
        self._images = self._records.images()
        self._threshold = clean_threshold(self._records.setting("threshold"))
        self._shared = {} if self.meta_in_workspace else self._shared_images()
        self._session_id: int | None = None
        try:
            self._session_id = self._records.open_session(_user(), _now(), time.time())
            weakref.finalize(self, _close_session, self._records, self._session_id)
        except sqlite3.Error:
            pass  # "already open" notices are a courtesy
        self.removed_temporaries = self._remove_orphan_temporaries()
        info = self._read_json(self.meta_dir / "workspace.json") or self._read_json(self.root / META_DIR_NAME / "workspace.json")
        self.synthetic = bool(info.get("synthetic", False)) if info else False
        self.title = (info or {}).get("title") or self.root.name

    # -- entries ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, key: str) -> ImageEntry:
        return self._by_key[key]

    def index_of(self, key: str) -> int:
        return self.entries.index(self._by_key[key])

    def _entry(self, entry_or_key: ImageEntry | str) -> ImageEntry:
        return entry_or_key if isinstance(entry_or_key, ImageEntry) else self._by_key[entry_or_key]

    # -- opening the records -----------------------------------------------------------------
    @staticmethod
    def _read_json(path: Path) -> dict | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    @property
    def records_path(self) -> Path:
        return self.meta_dir / RECORDS_NAME

    def _open_records(self) -> Records:
        path = self.records_path
        try:
            records = Records(path)
        except RecordsDamaged as exc:
            if not exc.damaged:  # busy or no access: the file is fine, and must stay where it is
                return self._records_in_memory(f"{path} could not be opened ({exc})")
            aside = self._set_aside(path, f"records.corrupt-{_timestamp()}.sqlite")
            if aside is None:
                return self._records_in_memory(f"{path} could not be opened ({exc})")
            try:
                records = Records(path)
            except RecordsDamaged as again:
                return self._records_in_memory(f"{path} could not be created ({again})")
            rebuilt = self._rebuild(records)
            self.notices.append(f"The workspace records were damaged and were kept aside as {aside.name}; "
                                f"statuses were rebuilt from {rebuilt}.")
            records.add_migration(_now(), "rebuilt", f"damaged records kept as {aside.name} ({exc}); from {rebuilt}")
            return records
        if records.created:
            try:
                self._migrate(records)
            except sqlite3.Error as exc:
                self.notices.append(f"The old records of this workspace could not be imported ({exc}); "
                                    "they are kept as they are.")
        return records

    def _records_in_memory(self, why: str) -> Records:
        self.notices.append(f"{why}; this session's statuses are not kept.")
        return Records(Path(":memory:"))

    def _set_aside(self, path: Path, name: str) -> Path | None:
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

    def _migrate(self, records: Records) -> None:
        """First open with SQLite records: import state.json and review_log.jsonl (both files stay)."""
        state_path, log_path = self.meta_dir / "state.json", self.review_log_path
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
                    aside = self._set_aside(state_path, f"state.corrupt-{_timestamp()}.json")
                    kept = aside.name if aside is not None else state_path.name
                    self.notices.append(f"{state_path.name} was damaged ({_short(exc)}) and was kept aside as {kept}; "
                                        "statuses were rebuilt from the masks and the review log.")
                    records.add_migration(_now(), "state.json damaged", f"kept as {kept}")
                    self._rebuild(records)
                    rebuilt = True
                else:
                    dropped = self._import_state(records, state)
                    records.add_migration(_now(), "state.json", f"imported; {dropped} unusable record(s) left out")
                    if dropped:
                        self.notices.append(f"{state_path.name}: {dropped} unusable record(s) were left out "
                                            "(kept in the file as they are).")
            if log_path.is_file() and not rebuilt:
                added, skipped = self._import_log(records, log_path)
                if added or skipped:
                    records.add_migration(_now(), "review_log.jsonl",
                                          f"{added} record(s) imported, {skipped} unreadable line(s) skipped")
            self._index_history_files(records)

    def _import_state(self, records: Records, state: dict) -> int:
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

    def _import_log(self, records: Records, path: Path) -> tuple[int, int]:
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

    def _index_history_files(self, records: Records) -> int:
        """Register history files that no record mentions (an older app's timestamped copies, or files kept
        by a save whose record was lost) as versions, so they show in the History and survive verify."""
        base = self.meta_dir / "history"
        if not base.is_dir():
            return 0
        known = {(v["image"], v["path"]) for v in records.versions()}
        count = 0
        for e in self.entries:
            d = base / e.key
            try:
                files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
            except OSError:
                continue
            for p in files:
                rel = p.relative_to(self.meta_dir).as_posix()
                if (e.key, rel) in known:
                    continue
                try:
                    data = p.read_bytes()
                    mtime = _dt.datetime.fromtimestamp(p.stat().st_mtime)
                    stamp = mtime.astimezone().isoformat(timespec="milliseconds")
                except OSError:
                    continue
                records.add_version(e.key, hashlib.sha256(data).hexdigest(), stamp, rel, "import", note="indexed")
                count += 1
        return count

    def _rebuild(self, records: Records) -> str:
        """Statuses from what survives: the mask files, the history folder and the review log's JSONL copy."""
        now = _now()
        with records.write():
            masks = 0
            for e in self.entries:
                gt = e.existing_gt()
                if gt is None:
                    continue
                try:
                    sha = hashlib.sha256(gt.read_bytes()).hexdigest()
                except OSError:
                    continue
                records.update_image(e.key, now, status="edited", current_sha=sha)
                masks += 1
            versions = self._index_history_files(records)
            added, _ = self._import_log(records, self.review_log_path)
            last: dict[str, str] = {}
            for rec in records.log():
                if rec["action"] in ("approve", "save", "autosave", "restore", "import"):
                    last[rec["image"]] = rec["action"]
            approved = [k for k, a in last.items() if a == "approve" and k in self._by_key
                        and self._by_key[k].existing_gt() is not None]
            for k in approved:
                records.update_image(k, now, status="approved", approved_sha=records.image(k)["current_sha"])
        return (f"{masks} mask file(s), {versions} history file(s) and {added} review-log record(s)"
                f" ({len(approved)} approved)")

    def _shared_images(self) -> dict[str, dict]:
        """A reviewed folder on a read-only share: its own records (a colleague's approvals) show through,
        and what this user records in the fallback folder wins for the images it covers."""
        shared: dict[str, dict] = {}
        state = self._read_json(self.root / META_DIR_NAME / "state.json") or {}
        images = state.get("images")
        if isinstance(images, dict):
            for k, v in images.items():
                if isinstance(k, str) and isinstance(v, dict):
                    shared[k] = {"status": clean_status(v.get("status")),
                                 "uncertainty": clean_fraction(v.get("uncertainty"))}
        db = self.root / META_DIR_NAME / RECORDS_NAME
        # mode=ro sees a live writer's WAL; on a truly read-only medium only immutable=1 opens at all.
        for query in ("mode=ro", "immutable=1"):
            if not db.is_file():
                break
            try:
                con = sqlite3.connect(f"{db.as_uri()}?{query}", uri=True)
                try:
                    rows = con.execute("SELECT key, status, uncertainty FROM images").fetchall()
                finally:
                    con.close()
            except sqlite3.Error:
                continue
            for k, st, u in rows:
                if isinstance(k, str):
                    shared[k] = {"status": clean_status(st), "uncertainty": clean_fraction(u)}
            break
        return shared

    def _remove_orphan_temporaries(self, older_than_s: float = 60.0) -> int:
        """Temporary files of saves killed midway (``.<name>.<random>.tmp``). A younger one may belong to a
        save in progress in another window, so it is left alone."""
        folders = {e.gt_dir for e in self.entries} | {self.meta_dir}
        for sub in ("history", "predictions"):
            base = self.meta_dir / sub
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

    # -- writing records -----------------------------------------------------------------------
    def _write_record(self, what: str, fn) -> None:
        """Run one record write; a failure becomes a notice and a retry (by flush() or the next write)."""
        with self._lock:
            self._retry_pending()
            try:
                fn()
            except sqlite3.Error as exc:
                self._pending.append(fn)
                self.notices.append(f"{self.records_path}: {what} could not be recorded ({_db_text(exc)}); "
                                    "it will be retried")

    def _retry_pending(self) -> None:
        while self._pending:
            try:
                self._pending[0]()
            except sqlite3.Error:
                return
            self._pending.pop(0)

    @property
    def pending_records(self) -> int:
        """Record writes that failed and wait for a retry (flush() retries them)."""
        return len(self._pending)

    def refresh(self) -> None:
        """Re-read statuses (another window or grader may have changed them)."""
        with self._lock:
            try:
                self._images = self._records.images()
            except sqlite3.Error:
                pass

    # -- state -----------------------------------------------------------------------------
    def _image(self, key: str) -> dict:
        rec = self._images.get(key)
        if rec is None:
            return self._shared.get(key) or {}
        return rec

    def status(self, key: str) -> str:
        return clean_status(self._image(key).get("status"))

    def set_status(self, key: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        fields = {"status": status}
        if status == "approved" and key in self._by_key:
            fields["approved_sha"] = _file_sha(self._by_key[key].existing_gt())
        with self._lock:
            self._images.setdefault(key, {"status": "new", "uncertainty": None}).update(fields)
            self._write_record(f"the status of {key}", lambda: self._records.update_image(key, _now(), **fields))

    def approved_sha(self, key: str) -> str | None:
        """The sha256 of the mask version last approved (None: never approved). An approved image whose
        edits are all undone has this content again, so its status can go back to "approved"."""
        v = self._image(key).get("approved_sha")
        return v if isinstance(v, str) else None

    def uncertainty(self, key: str) -> float | None:
        return clean_fraction(self._image(key).get("uncertainty"))

    def set_prediction_info(self, key: str, uncertainty: float) -> None:
        with self._lock:
            rec = self._images.setdefault(key, {"status": "new", "uncertainty": None})
            rec["uncertainty"] = clean_fraction(uncertainty)
            fields = {"uncertainty": rec["uncertainty"]}
            if rec.get("status", "new") == "new":
                rec["status"] = fields["status"] = "predicted"
            self._write_record(f"the prediction of {key}", lambda: self._records.update_image(key, _now(), **fields))

    def flush(self) -> None:
        """Retry record writes that failed (every record is otherwise written at once); refresh this
        window's "open" record."""
        with self._lock:
            self._retry_pending()
            if self._session_id is not None:
                try:
                    self._records.touch_session(self._session_id, time.time())
                except sqlite3.Error:
                    pass

    @property
    def threshold(self) -> float | None:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        value = clean_threshold(value)
        if value is None:
            raise ValueError("the threshold must be a number between 0 and 1")
        with self._lock:
            self._threshold = value
            self._write_record("the threshold", lambda: self._records.set_setting("threshold", value))

    def write_info(self, **info) -> None:
        _write_json_atomic(self.meta_dir / "workspace.json", info)
        self.synthetic = bool(info.get("synthetic", False))
        self.title = info.get("title") or self.root.name

    # -- who else has it open ------------------------------------------------------------------
    def other_sessions(self) -> list[OpenRecord]:
        """Other windows (this or another machine) that have this workspace open now; stale entries of
        killed processes are ignored. For an "already open by ... on ... since ..." notice."""
        try:
            return self._records.other_sessions(self._session_id, time.time(), SESSION_STALE_S)
        except sqlite3.Error:
            return []

    def close(self) -> None:
        """Drop this window's "open" record and close the database (the workspace can't be used after)."""
        with self._lock:
            self._retry_pending()
            if self._session_id is not None:
                _close_session(self._records, self._session_id)
                self._session_id = None
            self._records.close()

    # -- review log ------------------------------------------------------------------------
    @property
    def review_log_path(self) -> Path:
        """A JSONL copy of the review log for other tools (the records database is the reference)."""
        return self.meta_dir / "review_log.jsonl"

    def log_review(self, key: str, action: str, model: str | None = None, added: int | None = None,
                   removed: int | None = None, reviewer: str | None = None, **extra) -> None:
        """Append to the review log. An "approve" without pixel counts is measured here against the
        previous approved version (or the first version) of the image. Never raises for a record that
        cannot be written: that becomes a notice and a retry."""
        if action == "approve" and added is None and removed is None and key in self._by_key:
            counts = self._approval_counts(self._by_key[key], None)
            added, removed = counts["pixels_added"], counts["pixels_removed"]
            extra = {**counts, **extra}
        record = {"time": _now(), "image": key, "action": action, "reviewer": reviewer or _user(), "model": model,
                  "pixels_added": int(added or 0), "pixels_removed": int(removed or 0), **extra}

        def write():
            self._records.add_log(record)
            self._mirror_log(record)
        self._write_record(f"the review of {key}", write)

    def _mirror_log(self, record: dict) -> None:
        line = (json.dumps(record, default=str) + "\n").encode("utf-8")
        try:
            with open(self.review_log_path, "ab+") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        line = b"\n" + line  # a line cut by a crash must not swallow this one
                fh.write(line)
        except OSError as exc:
            msg = f"{self.review_log_path}: the JSONL copy of the review log could not be updated ({_short(exc)})"
            if msg not in self.notices:
                self.notices.append(msg)

    def review_log(self, key: str | None = None) -> list[dict]:
        try:
            return self._records.log(key)
        except sqlite3.Error:
            return []

    def export_review_log(self, path: str | os.PathLike) -> Path:
        """Write the whole review log as ``.csv`` (by suffix) or JSONL."""
        path = Path(path)
        rows = self.review_log()
        if path.suffix.lower() == ".csv":
            import csv
            import io

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

    # -- ground truth ----------------------------------------------------------------------
    def load_ground_truth(self, entry: ImageEntry, shape: tuple[int, int], remember: bool = True) -> np.ndarray | None:
        """The saved mask for ``entry`` or None; raises ImageReadError (one line) when unusable.

        Remembers the version loaded (``loaded_sha``): a later save of this entry that finds another
        version on disk raises SaveConflict instead of overwriting it. Readers that do not edit (export)
        pass ``remember=False``, so they never vouch for a version the editor has not seen."""
        path = entry.existing_gt()
        if path is None:
            if remember:
                self._loaded[entry.key] = None
            return None
        sha = _file_sha(path)
        if remember:
            self._loaded[entry.key] = sha
        mask = read_mask(path)
        if mask.shape != tuple(shape):
            raise ImageReadError(path, f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                       f"{shape[1]}x{shape[0]}; it was not loaded (kept as it is on disk)")
        if sha is not None:
            self._remember(entry.key, sha, mask.copy())  # the caller paints into its array in place
        return mask

    def loaded_sha(self, entry: ImageEntry | str) -> str | None:
        """The sha256 of the mask file this Workspace last loaded or saved for the image (None: none)."""
        return self._loaded.get(self._entry(entry).key)

    def current_sha(self, entry: ImageEntry | str) -> str | None:
        """The sha256 of the mask file on disk now (None: no mask)."""
        return _file_sha(self._entry(entry).existing_gt())

    def history_dir(self, entry: ImageEntry) -> Path:
        return self.meta_dir / "history" / entry.key

    def history(self, entry: ImageEntry) -> list[Path]:
        """Files of the earlier versions (not the one on disk now), oldest first, each once."""
        current = self.current_sha(entry)
        seen, out = {current}, []
        for v in self.versions(entry):
            if v.sha256 not in seen and v.path.is_file():
                seen.add(v.sha256)
                out.append(v.path)
        return out

    def versions(self, entry: ImageEntry | str) -> list[Version]:
        """Every version recorded for the image, oldest first (a version saved twice appears twice)."""
        key = self._entry(entry).key
        try:
            rows = self._records.versions(key)
        except sqlite3.Error:
            rows = []
        return [Version.from_row(r, self.meta_dir) for r in rows]

    def version_count(self) -> int:
        """How many versions the records hold, all images together."""
        try:
            return int(self._records.query("SELECT COUNT(*) FROM versions")[0][0])
        except sqlite3.Error:
            return 0

    def _history_file(self, entry: ImageEntry, sha: str, suffix: str) -> Path:
        return self.history_dir(entry) / f"{sha}{suffix}"

    def _check_root(self) -> None:
        if _identity(self.root) != self._root_id:
            raise WorkspaceGoneError(f"{self.root}: the workspace folder has gone (renamed, moved or unmounted); "
                                     "nothing was saved. Open it again where it is now.")

    def _remember(self, key: str, sha: str, mask: np.ndarray) -> None:
        self._masks[key] = (sha, mask)
        self._masks.move_to_end(key)
        while len(self._masks) > MASK_CACHE_SIZE:
            self._masks.popitem(last=False)

    def _mask_of(self, key: str, sha: str | None, path: Path | None) -> np.ndarray | None:
        if sha is None or path is None:
            return None
        cached = self._masks.get(key)
        if cached is not None and cached[0] == sha:
            return cached[1]
        try:
            return read_mask(path)
        except ImageReadError:
            return None

    def _keep_file(self, entry: ImageEntry, data: bytes, sha: str, suffix: str) -> str:
        """Store ``data`` in the content-addressed history; returns its path relative to the records folder."""
        path = self._history_file(entry, sha, suffix)
        try:
            write_bytes_unique(path, data, within=self.root if self.meta_in_workspace else None)
        except OSError as exc:
            raise _os_error(exc, path, "the version could not be kept in the history; the mask was not saved") from None
        return path.relative_to(self.meta_dir).as_posix()

    def save_ground_truth(self, entry: ImageEntry, mask: np.ndarray, *, expected_sha=_UNSET, source: str = "brush",
                          reviewer: str | None = None, model: str | None = None,
                          prediction: np.ndarray | None = None, status: str | None = None,
                          action: str | None = None, **log_extra) -> Path:
        """Write ``mask`` as ``<gt_dir>/<stem>.png`` (0/255) atomically; every version is kept in the history.

        One transaction: the mask file on disk is read, kept in the history if it is not there yet, the new
        version is written to the history and then over the mask file, and its record (with pixels added and
        removed against the previous version and against ``prediction``), the status (``status``, if given)
        and a review-log entry (``action``, if given) are committed together.

        ``expected_sha`` is the version the caller loaded (default: the one this Workspace loaded or saved
        last for the image; None: "there was no mask"). If another window or grader saved a different mask
        since, nothing is overwritten: both versions are in the history and SaveConflict is raised.

        Thread-safe: a window may run it on a worker thread to keep painting smooth, handing over a copy of
        the mask (it is copied here too, but only once the call starts).

        Errors (all WorkspaceError, one line): ReadOnlyWorkspaceError, DiskFullError ("disk full"),
        WorkspaceGoneError (the folder was renamed or unmounted), SaveConflict, and RecordError when the mask
        was written but its record was not (``.retry()`` writes the record).
        """
        if not self.gt_writable:
            raise ReadOnlyWorkspaceError(f"{entry.gt_dir}: the workspace is read-only, ground truth cannot be "
                                         "saved here (export the masks to another folder instead)")
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self._check_root()
        mask = _clean_bool(mask)  # also a copy: the caller goes on painting into its own array
        data = encode_png(entry.gt_path, mask.view(np.uint8) * np.uint8(255))  # mask_to_png, reusing the clean bytes
        sha = hashlib.sha256(data).hexdigest()
        if expected_sha is _UNSET:
            expected_sha = self._loaded.get(entry.key, _UNSET)
        reviewer = reviewer or _user()
        with self._lock:
            self._retry_pending()
            conflict, record = None, None
            try:
                with self._records.write():
                    conflict, record = self._save_locked(entry, mask, data, sha, expected_sha, source, reviewer,
                                                         model, prediction, status, action, log_extra)
                    if record is not None:
                        self._commit_record(record)
            except sqlite3.Error as exc:
                if record is None:
                    raise _db_error(exc, self.records_path, "nothing was saved") from None
                # The mask is on disk and in the history; only its record is missing.
                self._loaded[entry.key] = sha
                raise RecordError(f"{entry.gt_path} was saved, but its record could not be written to "
                                  f"{self.records_path} ({_db_text(exc)}); retry to record it",
                                  retry=lambda: self._commit_record(record)) from None
            if conflict is not None:
                raise conflict
            self._loaded[entry.key] = sha
            self._remember(entry.key, sha, mask)
            if record.get("log") is not None:
                self._mirror_log(record["log"])
        return entry.gt_path

    def _save_locked(self, entry, mask, data, sha, expected_sha, source, reviewer, model, prediction, status,
                     action, log_extra):
        now = _now()
        existing = entry.existing_gt()
        disk = None
        if existing is not None:
            try:
                disk = existing.read_bytes()
            except OSError as exc:
                raise _os_error(exc, existing, "the mask on disk could not be read; nothing was saved") from None
        disk_sha = hashlib.sha256(disk).hexdigest() if disk is not None else None
        if disk is not None and disk_sha != sha and not self._records.has_version(entry.key, disk_sha):
            # A mask from elsewhere (another tool, DRIVE's GIF, a 0/1 label image) is kept byte for byte.
            rel = self._keep_file(entry, disk, disk_sha, existing.suffix.lower())
            self._records.add_version(entry.key, disk_sha, now, rel, "import", note="found on disk")
        if (expected_sha is not _UNSET and disk_sha is not None and disk_sha != expected_sha and disk_sha != sha):
            rel = self._keep_file(entry, data, sha, ".png")
            self._records.add_version(entry.key, sha, now, rel, source, reviewer, model, note="conflict")
            theirs = [v for v in self._records.versions(entry.key) if v["sha256"] == disk_sha][-1]
            mine = {"image": entry.key, "sha256": sha, "time": now, "reviewer": reviewer, "source": source,
                    "model": model, "path": rel, "note": "conflict"}
            return SaveConflict(entry.key, expected_sha, Version.from_row(mine, self.meta_dir),
                                Version.from_row(theirs, self.meta_dir)), None
        previous = self._mask_of(entry.key, disk_sha, existing) if disk_sha != sha else mask
        rel = self._keep_file(entry, data, sha, ".png")
        if not (disk_sha == sha and existing == entry.gt_path):
            try:
                write_bytes_atomic(entry.gt_path, data, within=self.root)
            except OSError as exc:
                if not _identity(self.root) == self._root_id:
                    raise WorkspaceGoneError(f"{self.root}: the workspace folder has gone (renamed, moved or "
                                             "unmounted); nothing was saved") from None
                raise _os_error(exc, entry.gt_path, "the mask was not saved") from None
            if existing is not None and existing != entry.gt_path:
                try:  # a mask in another format (e.g. DRIVE's GIF) is superseded; its copy is in the history
                    existing.unlink()
                except OSError:
                    pass
        counts = {}
        if previous is not None and previous.shape == mask.shape:
            counts["added_prev"], counts["removed_prev"] = _changes(previous, mask)
        if prediction is not None and np.shape(prediction) == mask.shape:
            counts["added_pred"], counts["removed_pred"] = _changes(_bool(prediction), mask)
        record = {"entry": entry, "sha": sha, "time": now, "rel": rel, "source": source, "reviewer": reviewer,
                  "model": model, "counts": counts, "status": status,
                  "new_version": disk_sha != sha or not self._records.has_version(entry.key, sha), "log": None}
        if action is not None:
            # pixels_added/removed are the grader's changes: against the version saved before, or, on the first
            # save of an image that had no mask file, against the prediction the mask started from. The
            # difference to the prediction is logged apart, so "removed 18,847" never reads as the grader's.
            added = counts.get("added_prev", counts.get("added_pred", 0))
            removed = counts.get("removed_prev", counts.get("removed_pred", 0))
            vs_prediction = {} if "added_pred" not in counts else {"added_vs_prediction": counts["added_pred"],
                                                                   "removed_vs_prediction": counts["removed_pred"]}
            record["log"] = {"time": now, "image": entry.key, "action": action, "reviewer": reviewer, "model": model,
                             "pixels_added": added, "pixels_removed": removed, "sha256": sha, "source": source,
                             **vs_prediction, **log_extra}
        return None, record

    def _commit_record(self, record: dict) -> None:
        entry, sha, now = record["entry"], record["sha"], record["time"]
        with self._records.write():
            if record["new_version"]:
                self._records.add_version(entry.key, sha, now, record["rel"], record["source"], record["reviewer"],
                                          record["model"], **record["counts"])
            fields = {"current_sha": sha}
            if record["status"] is not None:
                fields["status"] = record["status"]
                if record["status"] == "approved":
                    fields["approved_sha"] = sha
            self._records.update_image(entry.key, now, **fields)
            if record["log"] is not None:
                self._records.add_log(record["log"])
            if self._session_id is not None:
                self._records.touch_session(self._session_id, time.time())
        rec = self._images.setdefault(entry.key, {"status": "new", "uncertainty": None})
        rec.update(fields)

    def approve(self, entry: ImageEntry, *, reviewer: str | None = None, model: str | None = None,
                prediction: np.ndarray | None = None) -> dict:
        """Mark the mask on disk approved and log it with the pixels added/removed against the prediction
        (if given) and against the previously approved version (or the first version). Returns the counts.
        Raises WorkspaceError when there is no mask to approve, RecordError when it cannot be recorded."""
        sha = self.current_sha(entry)
        if sha is None:
            raise WorkspaceError(f"{entry.gt_path}: there is no saved mask to approve; save it first")
        counts = self._approval_counts(entry, prediction)
        record = {"time": _now(), "image": entry.key, "action": "approve", "reviewer": reviewer or _user(),
                  "model": model, **counts}
        with self._lock:
            try:
                with self._records.write():
                    self._records.update_image(entry.key, record["time"], status="approved", approved_sha=sha)
                    self._records.add_log(record)
            except sqlite3.Error as exc:
                def again():
                    self.approve(entry, reviewer=reviewer, model=model, prediction=prediction)
                raise RecordError(f"{entry.key}: the approval could not be recorded in {self.records_path} "
                                  f"({_db_text(exc)})", retry=again) from None
            self._images.setdefault(entry.key, {"uncertainty": None}).update(status="approved", approved_sha=sha)
            self._mirror_log(record)
        return counts

    def _approval_counts(self, entry: ImageEntry, prediction: np.ndarray | None) -> dict:
        path = entry.existing_gt()
        sha = _file_sha(path)
        counts: dict = {"sha256": sha}
        current = self._mask_of(entry.key, sha, path)
        if current is None:
            return {**counts, "pixels_added": 0, "pixels_removed": 0}
        approved = [r.get("sha256") for r in self.review_log(entry.key) if r.get("action") == "approve"
                    and isinstance(r.get("sha256"), str)]
        versions = self.versions(entry)
        base_sha = approved[-1] if approved else (versions[0].sha256 if versions else None)
        base = next((read_mask_or_none(v.path) for v in versions if v.sha256 == base_sha and v.path.is_file()), None)
        if base is not None and base.shape == current.shape:
            counts["added_vs_approved" if approved else "added_vs_first"], \
                counts["removed_vs_approved" if approved else "removed_vs_first"] = _changes(base, current)
        if prediction is not None and np.shape(prediction) == current.shape:
            counts["added_vs_prediction"], counts["removed_vs_prediction"] = _changes(_bool(prediction), current)
        added = counts.get("added_vs_prediction", counts.get("added_vs_approved", counts.get("added_vs_first", 0)))
        removed = counts.get("removed_vs_prediction",
                             counts.get("removed_vs_approved", counts.get("removed_vs_first", 0)))
        return {**counts, "pixels_added": added, "pixels_removed": removed}

    def restore(self, entry: ImageEntry | str, sha256: str, *, reviewer: str | None = None,
                expected_sha=_UNSET) -> Path:
        """Save an earlier version as a new version (source "restore"), so a restore can itself be undone."""
        entry = self._entry(entry)
        version = next((v for v in reversed(self.versions(entry)) if v.sha256 == sha256 and v.path.is_file()), None)
        if version is None:
            matches = sorted(self.history_dir(entry).glob(f"{sha256}.*")) if len(sha256) == 64 else []
            if not matches:
                raise WorkspaceError(f"{entry.key}: no version {sha256} in {self.history_dir(entry)}")
            path = matches[0]
        else:
            path = version.path
        mask = read_mask(path)
        if expected_sha is _UNSET:
            expected_sha = self._loaded.get(entry.key, _UNSET)
        return self.save_ground_truth(entry, mask, expected_sha=expected_sha, source="restore", reviewer=reviewer,
                                      status="edited", action="restore", restored_from=sha256)

    def resolve_conflict(self, conflict: SaveConflict, keep: str, *, reviewer: str | None = None) -> Path | None:
        """After SaveConflict: ``keep="mine"`` saves this window's version over theirs (theirs stays in the
        history); ``keep="theirs"`` leaves theirs on disk and returns None (the caller reloads it)."""
        entry = self._by_key[conflict.key]
        if keep == "theirs":
            self._loaded[entry.key] = conflict.theirs.sha256
            return None
        if keep != "mine":
            raise ValueError("keep must be 'mine' or 'theirs'")
        return self.save_ground_truth(entry, read_mask(conflict.mine.path), expected_sha=conflict.theirs.sha256,
                                      source=conflict.mine.source, reviewer=reviewer or conflict.mine.reviewer,
                                      action="save", resolved_conflict_with=conflict.theirs.sha256)

    # -- checking ----------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Problems found, like ``git fsck``: the database's integrity check, every recorded version's file
        exists with its recorded content, every history and mask file decodes. Empty: all is well."""
        problems: list[str] = []
        try:
            check = self._records.integrity()
            if check != "ok":
                problems.append(f"{self.records_path}: integrity check failed ({check})")
            rows = self._records.versions()
        except sqlite3.Error as exc:
            return problems + [f"{self.records_path}: cannot be read ({_db_text(exc)})"]
        checked: set[Path] = set()
        for r in rows:
            path = self.meta_dir / str(r["path"])
            if path in checked:
                continue
            checked.add(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(f"{path}: recorded version of {r['image']} is missing ({_short(exc)})")
                continue
            if r["note"] != "indexed" and hashlib.sha256(data).hexdigest() != r["sha256"]:
                problems.append(f"{path}: content differs from the recorded sha256 {r['sha256']}")
            elif read_mask_or_none(path) is None:
                problems.append(f"{path}: cannot be decoded as a mask")
        base = self.meta_dir / "history"
        if base.is_dir():
            for p in sorted(base.rglob("*")):
                if p.is_file() and not p.name.startswith(".") and p not in checked and read_mask_or_none(p) is None:
                    problems.append(f"{p}: history file cannot be decoded as a mask")
        for e in self.entries:
            gt = e.existing_gt()
            if gt is not None and read_mask_or_none(gt) is None:
                problems.append(f"{gt}: mask file cannot be decoded")
        return problems

    # -- prediction cache ------------------------------------------------------------------
    def prediction_path(self, entry: ImageEntry, model_key: str) -> Path:
        digest = file_signature(entry.path, label=entry.key)  # the key, not the path: a moved workspace keeps its cache
        return self.meta_dir / "predictions" / model_key / f"{entry.stem}-{digest}.png"

    def load_prediction(self, entry: ImageEntry, model_key: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        path = self.prediction_path(entry, model_key)
        if not path.is_file():
            return None
        try:
            raw = read_raw(path)
        except ImageReadError:
            return None
        if raw.dtype != np.uint16 or raw.ndim != 2 or (shape is not None and raw.shape != tuple(shape)):
            return None
        return png16_to_prob(raw)

    def has_prediction(self, entry: ImageEntry, model_key: str) -> bool:
        return self.prediction_path(entry, model_key).is_file()

    def store_prediction(self, entry: ImageEntry, model_key: str, prob: np.ndarray) -> Path | None:
        path = self.prediction_path(entry, model_key)
        try:
            # Never below a workspace folder that has gone: "Predict all" must not re-create it at the old path.
            write_bytes_atomic(path, encode_png(path, prob_to_png16(prob)),
                               within=self.root if self.meta_in_workspace else None)
        except (OSError, ValueError):
            return None  # a cache that cannot be written only costs time
        rel = path.relative_to(self.meta_dir).as_posix()
        try:
            with self._lock:
                self._records.index_prediction(entry.key, model_key, rel, _now())
        except sqlite3.Error:
            pass  # the index only lists the cache; the file is what counts
        return path


@dataclass(frozen=True)
class Version:
    """One recorded mask version; ``path`` is its file in the history."""

    image: str
    sha256: str
    time: str
    reviewer: str | None
    source: str
    model: str | None
    path: Path
    added_prev: int | None = None
    removed_prev: int | None = None
    added_pred: int | None = None
    removed_pred: int | None = None
    note: str | None = None

    @classmethod
    def from_row(cls, row: dict, meta_dir: Path) -> "Version":
        return cls(row["image"], row["sha256"], row["time"], row.get("reviewer"), row["source"], row.get("model"),
                   meta_dir / str(row["path"]), *(row.get(k) for k in ("added_prev", "removed_prev", "added_pred",
                                                                         "removed_pred", "note")))

    def to_json(self, root: Path | None = None) -> dict:
        d = {k: getattr(self, k) for k in ("sha256", "time", "reviewer", "source", "model", "added_prev",
                                            "removed_prev", "added_pred", "removed_pred", "note")}
        d["path"] = str(self.path)
        return d


class SaveConflict(WorkspaceError):
    """Another window or grader saved this image since it was loaded. Nothing was overwritten: ``theirs``
    is on disk, ``mine`` is in the history. Offer: keep mine / take theirs / view both
    (``Workspace.resolve_conflict``)."""

    def __init__(self, key: str, expected_sha, mine: Version, theirs: Version):
        who = f"{theirs.reviewer} at {theirs.time}" if theirs.reviewer else f"at {theirs.time}"
        super().__init__(f"{key}: another window or grader saved this mask ({who}) since it was opened; nothing "
                         "was overwritten, both versions are in the history")
        self.key, self.expected_sha, self.mine, self.theirs = key, expected_sha, mine, theirs


def read_mask_or_none(path: Path) -> np.ndarray | None:
    try:
        return read_mask(path)
    except (ImageReadError, OSError):
        return None


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


def _clean_bool(mask) -> np.ndarray:
    """A C-contiguous bool array whose bytes are 0/1 (a bool view of 0/255 bytes is not), for byte counting."""
    u8 = np.ascontiguousarray(np.asarray(mask, dtype=bool)).view(np.uint8)
    return np.minimum(u8, 1).view(bool)


def _bool(mask) -> np.ndarray:
    """A prediction mask (``prob >= t``): already clean 0/1 bytes, so only made contiguous (no extra pass)."""
    m = np.asarray(mask)
    return np.ascontiguousarray(m) if m.dtype == np.bool_ else _clean_bool(m)


def _changes(before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """(pixels added, pixels removed) going from ``before`` to ``after`` (clean bool masks, see _clean_bool)."""
    if before.size % 8 == 0 and hasattr(np, "bitwise_count") and before.flags.c_contiguous and after.flags.c_contiguous:
        # Eight pixels per word: 0/1 bytes make a word's popcount its number of set pixels.
        b64, a64 = before.reshape(-1).view(np.uint64), after.reshape(-1).view(np.uint64)
        diff = b64 ^ a64
        changed = int(np.bitwise_count(diff).sum(dtype=np.int64))
        np.bitwise_and(diff, a64, out=diff)
        added = int(np.bitwise_count(diff).sum(dtype=np.int64))
        return added, changed - added
    diff = before ^ after
    changed = int(np.count_nonzero(diff))
    added = int(np.count_nonzero(diff & after))
    return added, changed - added


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


def uncertainty_of(prob: np.ndarray, fov: np.ndarray | None = None) -> float:
    """Share of the vessel area the model is unsure about: of the field-of-view pixels with probability
    above 0.25 (the predicted vessels with their rim), those below 0.75.

    Relative to the vessels, not to the whole field of view: unsure pixels line every vessel's edge, so as
    a share of the field of view they mostly measured how much vessel a photo has (1.8-2.2 % on all 20
    DRIVE test photos, unrelated to the errors). As a share of the vessel area they span 12.6-15.6 % there
    and rank the photos by their error (Pearson 0.63 with 1 - Dice; the old figure: -0.13).
    """
    p = prob if fov is None else prob[fov]
    area = np.count_nonzero(p > 0.25)
    return float(np.count_nonzero(p[p > 0.25] < 0.75)) / float(area) if area else 0.0
