"""The masks of a workspace and every version of them: load, save, approve, restore, withdraw. Qt-free.

Keep before replace: no write replaces or removes a mask file until its exact content is readable in the
history (``history.py``), checked by its sha256 (not by its record): a missing or damaged history copy is rewritten
from the file on disk first; where that is impossible the write is refused with one line and the mask stays as it is.

A save is one transaction: the file on disk is read and kept, the new version is kept, then written over the mask
file, and its record (pixels added/removed against the previous version and the prediction), the status and a
review-log entry are committed together. ``SaveConflict`` instead of an overwrite when another window or grader
saved since this one loaded.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model_core.atomic import write_bytes_atomic
from model_core.errors import ImageReadError
from model_core.imageio import read_mask

from .common import (
    _UNSET,
    RecordError,
    WorkspaceError,
    _db_error,
    _db_text,
    _file_sha,
    _now,
    _os_error,
    _short,
    read_regular,
)
from .filesystem import FolderGuard
from .history import MaskHistory, Op
from .keeper import RecordKeeper
from .layout import ImageEntry
from .pixels import as_bool, changes, clean_bool, encode_mask
from .records import SOURCES, STATUSES, Records, VersionRow
from .shared import SharedRecords
from .versions import SaveConflict, Version

MASK_CACHE_SIZE = 4  # recent masks kept decoded, so a save measures its changes without reading the file
_encoder: ThreadPoolExecutor | None = None


def _encoder_pool() -> ThreadPoolExecutor:
    """cv2.imencode releases the GIL: a save encodes its PNG here while the calling thread counts the changed
    pixels. Made on first use, and again in a forked child (which inherits the pool but none of its threads)."""
    global _encoder
    if _encoder is None:
        _encoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mask-png")
    return _encoder


def _forget_encoder() -> None:
    global _encoder
    _encoder = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_encoder)


@dataclass
class SaveRequest:
    """What a save writes and how it is logged."""

    entry: ImageEntry
    mask: np.ndarray
    expected_sha: Any = _UNSET
    source: str = "brush"
    reviewer: str = ""
    model: str | None = None
    status: str | None = None
    action: str | None = None
    log_extra: dict[str, Any] = field(default_factory=dict)
    pred_counts: tuple[int, int] | None = None
    prev_counts: tuple[str, tuple[int, int]] | None = None


class MaskStore:
    """Owns the mask files' versions: the history folder, the decoded-mask cache and which version each image was
    loaded at (``loaded_sha``, which a later save checks)."""

    def __init__(
        self,
        meta_dir: Path,
        root: Path,
        keeper: RecordKeeper,
        shared: SharedRecords,
        guard: FolderGuard,
        lock: threading.RLock,
        on_logged: Callable[[dict[str, Any]], None],
        within: Path | None,
        touch: Op,
    ):
        self.meta_dir = meta_dir
        self.root = root
        self._keeper = keeper
        self._guard = guard
        self._lock = lock
        self._on_logged = on_logged  # the review log's JSONL mirror
        self.history = MaskHistory(meta_dir, keeper, shared, guard, within)
        self._touch = touch  # refreshes this window's "open" record with each save
        self._loaded: dict[str, str | None] = {}
        self._masks: OrderedDict[str, tuple[str, np.ndarray]] = OrderedDict()

    # -- reading ------------------------------------------------------------------------------
    def load(self, entry: ImageEntry, shape: tuple[int, int], remember: bool = True) -> np.ndarray | None:
        """The saved mask or None; raises ImageReadError (one line) when unusable. ``remember``: this is the
        version the editor starts from (readers that do not edit, like export, pass False)."""
        path = entry.existing_gt()
        if path is None:
            if remember:
                self._loaded[entry.key] = None
            return None
        try:
            data: bytes | None = read_regular(path)  # read once: hashed for the conflict check and decoded
        except OSError as exc:
            raise ImageReadError(path, _short(exc)) from None
        sha = hashlib.sha256(data).hexdigest() if data is not None else None
        if remember:
            self._loaded[entry.key] = sha
        mask = read_mask(path, data)
        if mask.shape != tuple(shape):
            raise ImageReadError(
                path,
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{shape[1]}x{shape[0]}; it was not loaded (kept as it is on disk)",
            )
        if remember and sha is not None:
            self._remember(entry.key, sha, mask.copy())  # the caller paints into its array in place
        return mask

    def loaded_sha(self, key: str) -> str | None:
        return self._loaded.get(key)

    def take_loaded(self, key: str, sha: str | None) -> None:
        """The caller's editor now holds version ``sha`` of the image (after "take theirs")."""
        self._loaded[key] = sha

    def take_disk_as_loaded(self, entries: dict[str, ImageEntry]) -> None:
        """A caller that met a SaveConflict and refreshed has seen the other writer's version."""
        for key in list(self._loaded):
            self._loaded[key] = _file_sha(entries[key].existing_gt()) if key in entries else None

    def _remember(self, key: str, sha: str, mask: np.ndarray) -> None:
        with self._lock:  # a background save and an image loading on another thread may both remember a mask
            self._masks[key] = (sha, mask)
            self._masks.move_to_end(key)
            while len(self._masks) > MASK_CACHE_SIZE:
                self._masks.popitem(last=False)

    def cached(self, key: str, sha: str | None, path: Path | None, data: bytes | None = None) -> np.ndarray | None:
        if sha is None or path is None:
            return None
        hit = self._masks.get(key)
        if hit is not None and hit[0] == sha:
            return hit[1]
        try:
            return read_mask(path, data)
        except (ImageReadError, OSError):
            return None

    # -- saving -------------------------------------------------------------------------------------
    def save(self, req: SaveRequest, prediction: np.ndarray | None) -> Path:
        """Write ``req.mask`` as ``<gt_dir>/<stem>.png`` (0/255) atomically, keeping every version. Thread-safe.

        Errors (all WorkspaceError, one line): ReadOnlyWorkspaceError, DiskFullError ("disk full"),
        WorkspaceGoneError (a folder was renamed or unmounted), SaveConflict, and RecordError when the mask was
        written but its record was not (``.retry()`` writes it)."""
        if req.source not in SOURCES:
            raise ValueError(f"unknown source {req.source!r}")
        if req.status is not None and req.status not in STATUSES:
            raise ValueError(f"unknown status {req.status!r}")
        entry = req.entry
        self._guard.check(entry.gt_dir, self.meta_dir)
        req.mask = clean_bool(req.mask)  # also a copy: the caller goes on painting into its own array
        encoding = _encoder_pool().submit(encode_mask, entry.gt_path, req.mask)
        try:  # counted while the PNG is encoded
            if prediction is not None and np.shape(prediction) == req.mask.shape:
                req.pred_counts = changes(as_bool(prediction), req.mask)
            hit = self._masks.get(entry.key)
            if hit is not None and hit[1].shape == req.mask.shape:
                req.prev_counts = (hit[0], changes(hit[1], req.mask))
        finally:
            data = encoding.result()
        sha = hashlib.sha256(data).hexdigest()
        if req.expected_sha is _UNSET:
            req.expected_sha = self._loaded.get(entry.key, _UNSET)
        with self._lock:
            self._keeper.retry()
            records = self._keeper.records
            ops: list[Op] = []
            try:
                with records.write():
                    conflict, record = self._save_locked(req, data, sha, ops)
                    for op in ops:
                        op(records)
            except sqlite3.Error as exc:
                if not any(o for o in ops if getattr(o, "after_write", False)):
                    raise _db_error(exc, records.path, "nothing was saved") from None
                self._loaded[entry.key] = sha
                raise RecordError(
                    f"{entry.gt_path} was saved, but its record could not be written to "
                    f"{records.path} ({_db_text(exc)}); retry to record it",
                    retry=lambda: self._apply_now(ops),
                ) from None
            if self._keeper.unavailable is not None:
                self._keeper.apply(f"the save of {entry.key}", lambda r: _run(ops, r), already_made=True)
            if conflict is not None:
                raise conflict
            self._loaded[entry.key] = sha
            self._remember(entry.key, sha, req.mask)
            if record is not None:
                self._on_logged(record)
        return entry.gt_path

    def _apply_now(self, ops: list[Op]) -> None:
        with self._lock, self._keeper.records.write():
            _run(ops, self._keeper.records)

    def _disk(self, entry: ImageEntry) -> tuple[Path | None, bytes | None, str | None]:
        existing = entry.existing_gt()
        if existing is None:
            return None, None, None
        try:
            disk = read_regular(existing)
        except OSError as exc:
            raise _os_error(exc, existing, "the mask on disk could not be read; nothing was saved") from None
        return existing, disk, hashlib.sha256(disk).hexdigest()

    def _save_locked(
        self, req: SaveRequest, data: bytes, sha: str, ops: list[Op]
    ) -> tuple[SaveConflict | None, dict[str, Any] | None]:
        entry, now = req.entry, _now()
        existing, disk, disk_sha = self._disk(entry)
        if existing is not None and disk is not None and disk_sha is not None and disk_sha != sha:
            # The file on disk (a mask from elsewhere, another tool, DRIVE's GIF) is kept byte for byte first.
            self.history.keep(entry, disk, disk_sha, existing.suffix.lower(), ops, note="found on disk")
        if req.expected_sha is not _UNSET and disk_sha is not None and disk_sha not in (req.expected_sha, sha):
            return self._conflict(req, data, sha, disk_sha, now, ops), None
        rel = self.history.keep(entry, data, sha, ".png", [])
        if not (disk_sha == sha and existing == entry.gt_path):
            self._replace_file(entry, data, existing)
        needs_previous = disk_sha != sha and not (req.prev_counts is not None and req.prev_counts[0] == disk_sha)
        previous = self.cached(entry.key, disk_sha, existing, disk) if needs_previous else None
        counts = _counts(req, disk_sha, sha, previous)
        log = _log_record(req, counts, sha, now) if req.action is not None else None
        new_version = disk_sha != sha or not self._keeper.records.has_version(entry.key, sha)
        fields: dict[str, object] = {"current_sha": sha}
        if req.status is not None:
            fields["status"] = req.status
            if req.status == "approved":
                fields["approved_sha"] = sha
        touch_window = self._touch

        def commit(r: Records) -> None:
            if new_version:
                r.add_version(
                    VersionRow(
                        entry.key,
                        sha,
                        now,
                        req.reviewer,
                        req.source,
                        req.model,
                        rel,
                        counts.get("added_prev"),
                        counts.get("removed_prev"),
                        counts.get("added_pred"),
                        counts.get("removed_pred"),
                    )
                )
            r.update_image(entry.key, now, **fields)
            if log is not None:
                r.add_log(log)
            touch_window(r)

        commit.after_write = True  # type: ignore[attr-defined]  # the mask is on disk once this op runs
        ops.append(commit)
        return None, log

    def _replace_file(self, entry: ImageEntry, data: bytes, existing: Path | None) -> None:
        """Write the new version over the mask file; both it and the file it replaces are in the history."""
        self._guard.check(entry.gt_dir, self.meta_dir)
        try:
            write_bytes_atomic(entry.gt_path, data, within=self.root)
        except OSError as exc:
            self._guard.check(entry.gt_dir)
            raise _os_error(exc, entry.gt_path, "the mask was not saved") from None
        self._guard.created(entry.gt_dir)
        if existing is not None and existing != entry.gt_path and existing.parent == entry.gt_dir:
            try:  # a mask in another format (e.g. DRIVE's GIF) is superseded; its copy is in the history
                existing.unlink()
            except OSError:
                pass

    def _conflict(
        self, req: SaveRequest, data: bytes, sha: str, disk_sha: str, now: str, ops: list[Op]
    ) -> SaveConflict:
        entry = req.entry
        rel = self.history.keep(entry, data, sha, ".png", [])
        mine = VersionRow(entry.key, sha, now, req.reviewer, req.source, req.model, rel, note="conflict")
        ops.append(lambda r: r.add_version(mine))
        recorded = [v for v in self.history.versions(entry.key) if v.sha256 == disk_sha]
        theirs = (
            recorded[-1]
            if recorded
            else Version(
                entry.key, disk_sha, now, None, "import", None, self.history.dir(entry) / disk_sha, note="found on disk"
            )
        )
        return SaveConflict(entry.key, req.expected_sha, Version.from_row(mine, self.meta_dir), theirs)

    # -- withdrawing ----------------------------------------------------------------------------------
    def withdraw(self, entry: ImageEntry, expected_sha: str | None, status: str, log: dict[str, Any]) -> bool:
        """Remove the mask file this window wrote (every edit undone), inside the records transaction and after its
        content is checked in the history. False (nothing done) when the file on disk is not ``expected_sha``:
        somebody saved since, which a save then meets as a conflict."""
        with self._lock:
            self._keeper.retry()
            records = self._keeper.records
            ops: list[Op] = []
            try:
                with records.write():
                    self._guard.check(entry.gt_dir, self.meta_dir)
                    existing, disk, disk_sha = self._disk(entry)
                    if (
                        existing is None
                        or disk is None
                        or disk_sha is None
                        or disk_sha != expected_sha
                        or existing.parent != entry.gt_dir
                    ):  # never a data set's own mask read beside it
                        return False
                    self.history.keep(entry, disk, disk_sha, existing.suffix.lower(), ops, note="withdrawn")
                    try:
                        existing.unlink()
                    except OSError as exc:
                        raise _os_error(exc, existing, "the mask was not withdrawn") from None
                    now = _now()
                    record = {
                        **log,
                        "time": now,
                        "image": entry.key,
                        "action": "undo all",
                        "sha256": disk_sha,
                        "removed_file": str(existing),
                    }
                    ops.append(lambda r: r.update_image(entry.key, now, status=status, current_sha=None))
                    ops.append(lambda r: r.add_log(record))
                    _run(ops, records)
            except sqlite3.Error as exc:
                raise _db_error(exc, records.path, "the withdrawal was not recorded") from None
            if self._keeper.unavailable is not None:
                self._keeper.apply(f"the withdrawal of {entry.key}", lambda r: _run(ops, r), already_made=True)
            self._loaded[entry.key] = None
            self._on_logged(record)
            return True


def _run(ops: list[Op], records: Records) -> None:
    with records.write():
        for op in ops:
            op(records)


def _counts(req: SaveRequest, disk_sha: str | None, sha: str, previous: np.ndarray | None) -> dict[str, int]:
    """Pixels added and removed against the version on disk and against the prediction."""
    counts: dict[str, int] = {}
    if disk_sha == sha:
        counts["added_prev"], counts["removed_prev"] = 0, 0
    elif req.prev_counts is not None and req.prev_counts[0] == disk_sha:
        counts["added_prev"], counts["removed_prev"] = req.prev_counts[1]
    elif previous is not None and previous.shape == req.mask.shape:
        counts["added_prev"], counts["removed_prev"] = changes(clean_bool(previous), req.mask)
    if req.pred_counts is not None:
        counts["added_pred"], counts["removed_pred"] = req.pred_counts
    return counts


def _log_record(req: SaveRequest, counts: dict[str, int], sha: str, now: str) -> dict[str, Any]:
    # pixels_added/removed are the grader's changes: against the version saved before, or, on the first save of
    # an image that had no mask file, against the prediction the mask started from. The difference to the
    # prediction is logged apart, so "removed 18,847" never reads as the grader's.
    added = counts.get("added_prev", counts.get("added_pred", 0))
    removed = counts.get("removed_prev", counts.get("removed_pred", 0))
    vs_prediction = (
        {}
        if "added_pred" not in counts
        else {"added_vs_prediction": counts["added_pred"], "removed_vs_prediction": counts["removed_pred"]}
    )
    return {
        "time": now,
        "image": req.entry.key,
        "action": req.action,
        "reviewer": req.reviewer,
        "model": req.model,
        "pixels_added": added,
        "pixels_removed": removed,
        "sha256": sha,
        "source": req.source,
        **vs_prediction,
        **req.log_extra,
    }


class VersionActions:
    """Approve, restore and resolve a conflict: what a grader does with versions the MaskStore keeps."""

    def __init__(
        self,
        store: MaskStore,
        keeper: RecordKeeper,
        lock: threading.RLock,
        on_logged: Callable[[dict[str, Any]], None],
        photo_size: Callable[[Path], tuple[int, int] | None],
    ):
        self._store = store
        self._keeper = keeper
        self._lock = lock
        self._on_logged = on_logged
        self._photo_size = photo_size

    def approve(
        self, entry: ImageEntry, *, reviewer: str, model: str | None, prediction: np.ndarray | None
    ) -> dict[str, Any]:
        """Mark the mask on disk approved and log it with the pixels added/removed against the prediction (if
        given) and against the previously approved version (or the first version). Returns the counts."""
        counts = self.approval_counts(entry, prediction)
        sha = counts["sha256"]
        if sha is None:
            raise WorkspaceError(f"{entry.gt_path}: there is no saved mask to approve; save it first")
        now = _now()
        record = {"time": now, "image": entry.key, "action": "approve", "reviewer": reviewer, "model": model, **counts}

        def change(r: Records) -> None:
            with r.write():
                r.update_image(entry.key, now, status="approved", approved_sha=sha)
                r.add_log(record)

        with self._lock:
            self._keeper.retry()
            if self._keeper.unavailable is not None or self._keeper.waiting:
                self._keeper.apply(f"the approval of {entry.key}", change)
            else:
                try:
                    change(self._keeper.records)
                except sqlite3.Error as exc:
                    raise RecordError(
                        f"{entry.key}: the approval could not be recorded in "
                        f"{self._keeper.records.path} ({_db_text(exc)})",
                        retry=lambda: self._apply(change),
                    ) from None
            self._on_logged(record)
        return counts

    def _apply(self, change: Op) -> None:
        with self._lock:
            change(self._keeper.records)

    def approval_counts(self, entry: ImageEntry, prediction: np.ndarray | None) -> dict[str, Any]:
        path = entry.existing_gt()
        sha = _file_sha(path)
        counts: dict[str, Any] = {"sha256": sha}
        current = self._store.cached(entry.key, sha, path)
        if current is None:
            return {**counts, "pixels_added": 0, "pixels_removed": 0}
        current = clean_bool(current)
        try:
            log = self._keeper.records.log(entry.key)
        except sqlite3.Error:
            log = []
        approved = [r.get("sha256") for r in log if r.get("action") == "approve" and isinstance(r.get("sha256"), str)]
        kept = self._store.history.versions(entry.key)
        base_sha = approved[-1] if approved else (kept[0].sha256 if kept else None)
        base = next(
            (self._store.cached("", v.sha256, v.path) for v in kept if v.sha256 == base_sha and v.path.is_file()), None
        )
        which = "approved" if approved else "first"
        if base is not None and base.shape == current.shape:
            counts[f"added_vs_{which}"], counts[f"removed_vs_{which}"] = changes(clean_bool(base), current)
        if prediction is not None and np.shape(prediction) == current.shape:
            counts["added_vs_prediction"], counts["removed_vs_prediction"] = changes(as_bool(prediction), current)
        added = counts.get("added_vs_prediction", counts.get(f"added_vs_{which}", 0))
        removed = counts.get("removed_vs_prediction", counts.get(f"removed_vs_{which}", 0))
        return {**counts, "pixels_added": added, "pixels_removed": removed}

    def checked_version(self, entry: ImageEntry, sha256: str) -> np.ndarray:
        """The mask of a history file about to become the ground truth, checked as ``verify`` would: inside the
        workspace's history, the content its name and record promise, a decodable mask of its photo's size. A
        damaged or swapped file is refused in one line; the mask on disk stays as it is."""
        versions = [v for v in reversed(self._store.history.versions(entry.key)) if v.sha256 == sha256]
        paths = [v.path for v in versions]
        if not paths and len(sha256) == 64:
            paths = sorted(self._store.history.dir(entry).glob(f"{sha256}.*"))
        if not paths:
            raise WorkspaceError(f"{entry.key}: no version {sha256} in {self._store.history.dir(entry)}")
        path = next((p for p in paths if p.exists()), paths[0])
        if path.is_symlink() or not self._store.history.inside(path):
            raise WorkspaceError(
                f"{entry.key}: the record of version {sha256[:12]} points outside the workspace's "
                f"history ({path}); nothing was restored (`workspace verify` lists such problems)"
            )
        try:
            data = read_regular(path)
        except OSError as exc:
            raise WorkspaceError(
                f"{path}: version {sha256[:12]} of {entry.key} cannot be read ({_short(exc)}); nothing was restored"
            ) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise WorkspaceError(
                f"{path}: content differs from version {sha256[:12]} of {entry.key} (damaged or "
                "replaced); nothing was restored"
            )
        try:
            mask = read_mask(path, data)
        except ImageReadError:
            raise WorkspaceError(
                f"{path}: version {sha256[:12]} of {entry.key} cannot be decoded as a mask; nothing was restored"
            ) from None
        size = self._photo_size(entry.path)
        if size is not None and mask.shape != size:
            raise WorkspaceError(
                f"{path}: version {sha256[:12]} is {mask.shape[1]}x{mask.shape[0]} but the photo "
                f"{entry.name} is {size[1]}x{size[0]}; nothing was restored"
            )
        return mask
