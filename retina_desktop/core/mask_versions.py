"""Mask versions: loading and saving ground truth (one transaction, every version kept in the history,
``SaveConflict`` instead of an overwrite), approving, restoring, resolving conflicts and ``verify()``.
Functions of a ``Workspace``, which delegates to them; Qt-free."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model_core.atomic import write_bytes_atomic, write_bytes_unique
from model_core.errors import ImageReadError
from model_core.imageio import encode_png, read_mask

from . import workspace_open
from .records import SOURCES, STATUSES
from .workspace_common import (_UNSET, META_DIR_NAME, ReadOnlyWorkspaceError, RecordError, WorkspaceError, WorkspaceGoneError,
                               _db_error, _db_text, _file_sha, _identity, _now, _os_error, _short, _user,
                               read_mask_or_none, readable_time)

if TYPE_CHECKING:
    from .workspace import ImageEntry

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


def load_ground_truth(ws, entry: ImageEntry, shape: tuple[int, int], remember: bool = True) -> np.ndarray | None:
    """The saved mask for ``entry`` or None; raises ImageReadError (one line) when unusable.

    Remembers the version loaded (``loaded_sha``): a later save of this entry that finds another
    version on disk raises SaveConflict instead of overwriting it. Readers that do not edit (export)
    pass ``remember=False``, so they never vouch for a version the editor has not seen."""
    path = entry.existing_gt()
    if path is None:
        if remember:
            ws._loaded[entry.key] = None
        return None
    try:
        data = path.read_bytes()  # read once: hashed for the conflict check and decoded
    except OSError:
        data = None  # read_mask names the file and the problem
    sha = hashlib.sha256(data).hexdigest() if data is not None else None
    if remember:
        ws._loaded[entry.key] = sha
    mask = read_mask(path, data)
    if mask.shape != tuple(shape):
        raise ImageReadError(path, f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                   f"{shape[1]}x{shape[0]}; it was not loaded (kept as it is on disk)")
    if remember and sha is not None:  # export and comparisons read without filling the editor's cache
        _remember(ws, entry.key, sha, mask.copy())  # the caller paints into its array in place
    return mask


def loaded_sha(ws, entry: ImageEntry | str) -> str | None:
    """The sha256 of the mask file this Workspace last loaded or saved for the image (None: none)."""
    return ws._loaded.get(ws._entry(entry).key)


def current_sha(ws, entry: ImageEntry | str) -> str | None:
    """The sha256 of the mask file on disk now (None: no mask)."""
    return _file_sha(ws._entry(entry).existing_gt())


def history_dir(ws, entry: ImageEntry) -> Path:
    return ws.meta_dir / "history" / entry.key


def history(ws, entry: ImageEntry) -> list[Path]:
    """Files of the earlier versions (not the one on disk now), oldest first, each once."""
    current = ws.current_sha(entry)
    seen, out = {current}, []
    for v in ws.versions(entry):
        if v.sha256 not in seen and v.path.is_file():
            seen.add(v.sha256)
            out.append(v.path)
    return out


def versions(ws, entry: ImageEntry | str) -> list[Version]:
    """Every version recorded for the image, oldest first (a version saved twice appears twice)."""
    key = ws._entry(entry).key
    try:
        rows = ws._records.versions(key)
    except sqlite3.Error:
        rows = []
    # A read-only workspace: the versions recorded in its own folder come first (they were made before this
    # user's, which live in the fallback folder).
    shared = [Version.from_row(r, ws.root / META_DIR_NAME) for r in workspace_open.shared_versions(ws, key)]
    return shared + [Version.from_row(r, ws.meta_dir) for r in rows]


def version_count(ws) -> int:
    """How many versions the records hold, all images together (a read-only workspace's own included)."""
    try:
        own = int(ws._records.query("SELECT COUNT(*) FROM versions")[0][0])
    except sqlite3.Error:
        own = 0
    return own + len(workspace_open.shared_versions(ws))


def _history_file(ws, entry: ImageEntry, sha: str, suffix: str) -> Path:
    return ws.history_dir(entry) / f"{sha}{suffix}"


def check_root(ws) -> None:
    if _identity(ws.root) != ws._root_id:
        raise WorkspaceGoneError(f"{ws.root}: the workspace folder has gone (renamed, moved or unmounted); "
                                 "nothing was saved. Open it again where it is now.")


def _remember(ws, key: str, sha: str, mask: np.ndarray) -> None:
    with ws._lock:  # a background save and an image loading on another thread may both remember a mask
        ws._masks[key] = (sha, mask)
        ws._masks.move_to_end(key)
        while len(ws._masks) > MASK_CACHE_SIZE:
            ws._masks.popitem(last=False)


def _mask_of(ws, key: str, sha: str | None, path: Path | None, data: bytes | None = None) -> np.ndarray | None:
    if sha is None or path is None:
        return None
    cached = ws._masks.get(key)
    if cached is not None and cached[0] == sha:
        return cached[1]
    try:
        return read_mask(path, data)
    except ImageReadError:
        return None


def _keep_file(ws, entry: ImageEntry, data: bytes, sha: str, suffix: str) -> str:
    """Store ``data`` in the content-addressed history; returns its path relative to the records folder."""
    path = _history_file(ws, entry, sha, suffix)
    try:
        write_bytes_unique(path, data, within=ws.root if ws.meta_in_workspace else None)
    except OSError as exc:
        raise _os_error(exc, path, "the version could not be kept in the history; the mask was not saved") from None
    return path.relative_to(ws.meta_dir).as_posix()


def save_ground_truth(ws, entry: ImageEntry, mask: np.ndarray, *, expected_sha=_UNSET, source: str = "brush",
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
    if not ws.gt_writable:
        raise ReadOnlyWorkspaceError(f"{entry.gt_dir}: the workspace is read-only, ground truth cannot be "
                                     "saved here (export the masks to another folder instead)")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    check_root(ws)
    mask = _clean_bool(mask)  # also a copy: the caller goes on painting into its own array
    encoding = _encoder_pool().submit(_encode_mask, entry.gt_path, mask)
    try:
        # Counted while the PNG is encoded: against the prediction, and against the version this window last
        # loaded or saved (almost always the one on disk; checked under the lock, recounted if not).
        pred_counts = (_changes(_bool(prediction), mask)
                       if prediction is not None and np.shape(prediction) == mask.shape else None)
        cached = ws._masks.get(entry.key)
        prev_counts = ((cached[0], _changes(cached[1], mask))
                       if cached is not None and cached[1].shape == mask.shape else None)
    finally:
        data = encoding.result()
    sha = hashlib.sha256(data).hexdigest()
    if expected_sha is _UNSET:
        expected_sha = ws._loaded.get(entry.key, _UNSET)
    reviewer = reviewer or _user()
    with ws._lock:
        ws._retry_pending()
        conflict, record = None, None
        try:
            with ws._records.write():
                conflict, record = _save_locked(ws, entry, mask, data, sha, expected_sha, source, reviewer,
                                                model, status, action, log_extra, pred_counts, prev_counts)
                if record is not None:
                    _commit_record(ws, record)
        except sqlite3.Error as exc:
            if record is None:
                raise _db_error(exc, ws.records_path, "nothing was saved") from None
            # The mask is on disk and in the history; only its record is missing.
            ws._loaded[entry.key] = sha
            raise RecordError(f"{entry.gt_path} was saved, but its record could not be written to "
                              f"{ws.records_path} ({_db_text(exc)}); retry to record it",
                              retry=lambda: _commit_record(ws, record)) from None
        if conflict is not None:
            raise conflict
        ws._loaded[entry.key] = sha
        _remember(ws, entry.key, sha, mask)
        if record.get("log") is not None:
            ws._mirror_log(record["log"])
    return entry.gt_path


def _save_locked(ws, entry, mask, data, sha, expected_sha, source, reviewer, model, status, action, log_extra,
                 pred_counts, prev_counts):
    now = _now()
    existing = entry.existing_gt()
    disk = None
    if existing is not None:
        try:
            disk = existing.read_bytes()
        except OSError as exc:
            raise _os_error(exc, existing, "the mask on disk could not be read; nothing was saved") from None
    disk_sha = hashlib.sha256(disk).hexdigest() if disk is not None else None
    if disk is not None and disk_sha != sha and not ws._records.has_version(entry.key, disk_sha):
        # A mask from elsewhere (another tool, DRIVE's GIF, a 0/1 label image) is kept byte for byte.
        rel = _keep_file(ws, entry, disk, disk_sha, existing.suffix.lower())
        ws._records.add_version(entry.key, disk_sha, now, rel, "import", note="found on disk")
    if (expected_sha is not _UNSET and disk_sha is not None and disk_sha != expected_sha and disk_sha != sha):
        rel = _keep_file(ws, entry, data, sha, ".png")
        ws._records.add_version(entry.key, sha, now, rel, source, reviewer, model, note="conflict")
        theirs = [v for v in ws._records.versions(entry.key) if v["sha256"] == disk_sha][-1]
        mine = {"image": entry.key, "sha256": sha, "time": now, "reviewer": reviewer, "source": source,
                "model": model, "path": rel, "note": "conflict"}
        return SaveConflict(entry.key, expected_sha, Version.from_row(mine, ws.meta_dir),
                            Version.from_row(theirs, ws.meta_dir)), None
    rel = _keep_file(ws, entry, data, sha, ".png")
    if not (disk_sha == sha and existing == entry.gt_path):
        try:
            write_bytes_atomic(entry.gt_path, data, within=ws.root)
        except OSError as exc:
            if not _identity(ws.root) == ws._root_id:
                raise WorkspaceGoneError(f"{ws.root}: the workspace folder has gone (renamed, moved or "
                                         "unmounted); nothing was saved") from None
            raise _os_error(exc, entry.gt_path, "the mask was not saved") from None
        if existing is not None and existing != entry.gt_path:
            try:  # a mask in another format (e.g. DRIVE's GIF) is superseded; its copy is in the history
                existing.unlink()
            except OSError:
                pass
    counts = {}
    if disk_sha == sha:
        counts["added_prev"], counts["removed_prev"] = 0, 0
    elif prev_counts is not None and prev_counts[0] == disk_sha:
        counts["added_prev"], counts["removed_prev"] = prev_counts[1]
    else:
        previous = _mask_of(ws, entry.key, disk_sha, existing, disk)
        if previous is not None and previous.shape == mask.shape:
            counts["added_prev"], counts["removed_prev"] = _changes(previous, mask)
    if pred_counts is not None:
        counts["added_pred"], counts["removed_pred"] = pred_counts
    record = {"entry": entry, "sha": sha, "time": now, "rel": rel, "source": source, "reviewer": reviewer,
              "model": model, "counts": counts, "status": status,
              "new_version": disk_sha != sha or not ws._records.has_version(entry.key, sha), "log": None}
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


def _commit_record(ws, record: dict) -> None:
    entry, sha, now = record["entry"], record["sha"], record["time"]
    with ws._records.write():
        if record["new_version"]:
            ws._records.add_version(entry.key, sha, now, record["rel"], record["source"], record["reviewer"],
                                      record["model"], **record["counts"])
        fields = {"current_sha": sha}
        if record["status"] is not None:
            fields["status"] = record["status"]
            if record["status"] == "approved":
                fields["approved_sha"] = sha
        ws._records.update_image(entry.key, now, **fields)
        if record["log"] is not None:
            ws._records.add_log(record["log"])
        if ws._session_id is not None:
            ws._records.touch_session(ws._session_id, time.time())
    rec = ws._images.setdefault(entry.key, {"status": "new", "uncertainty": None})
    rec.update(fields)


def approve(ws, entry: ImageEntry, *, reviewer: str | None = None, model: str | None = None,
            prediction: np.ndarray | None = None) -> dict:
    """Mark the mask on disk approved and log it with the pixels added/removed against the prediction
    (if given) and against the previously approved version (or the first version). Returns the counts.
    Raises WorkspaceError when there is no mask to approve, RecordError when it cannot be recorded."""
    counts = approval_counts(ws, entry, prediction)  # hashes the file on disk once, for both
    sha = counts["sha256"]
    if sha is None:
        raise WorkspaceError(f"{entry.gt_path}: there is no saved mask to approve; save it first")
    record = {"time": _now(), "image": entry.key, "action": "approve", "reviewer": reviewer or _user(),
              "model": model, **counts}
    with ws._lock:
        try:
            with ws._records.write():
                ws._records.update_image(entry.key, record["time"], status="approved", approved_sha=sha)
                ws._records.add_log(record)
        except sqlite3.Error as exc:
            def again():
                ws.approve(entry, reviewer=reviewer, model=model, prediction=prediction)
            raise RecordError(f"{entry.key}: the approval could not be recorded in {ws.records_path} "
                              f"({_db_text(exc)})", retry=again) from None
        ws._images.setdefault(entry.key, {"uncertainty": None}).update(status="approved", approved_sha=sha)
        ws._mirror_log(record)
    return counts


def approval_counts(ws, entry: ImageEntry, prediction: np.ndarray | None) -> dict:
    path = entry.existing_gt()
    sha = _file_sha(path)
    counts: dict = {"sha256": sha}
    current = _mask_of(ws, entry.key, sha, path)
    if current is None:
        return {**counts, "pixels_added": 0, "pixels_removed": 0}
    approved = [r.get("sha256") for r in ws.review_log(entry.key) if r.get("action") == "approve"
                and isinstance(r.get("sha256"), str)]
    kept = ws.versions(entry)
    base_sha = approved[-1] if approved else (kept[0].sha256 if kept else None)
    base = next((read_mask_or_none(v.path) for v in kept if v.sha256 == base_sha and v.path.is_file()), None)
    if base is not None and base.shape == current.shape:
        counts["added_vs_approved" if approved else "added_vs_first"], \
            counts["removed_vs_approved" if approved else "removed_vs_first"] = _changes(base, current)
    if prediction is not None and np.shape(prediction) == current.shape:
        counts["added_vs_prediction"], counts["removed_vs_prediction"] = _changes(_bool(prediction), current)
    added = counts.get("added_vs_prediction", counts.get("added_vs_approved", counts.get("added_vs_first", 0)))
    removed = counts.get("removed_vs_prediction",
                         counts.get("removed_vs_approved", counts.get("removed_vs_first", 0)))
    return {**counts, "pixels_added": added, "pixels_removed": removed}


def restore(ws, entry: ImageEntry | str, sha256: str, *, reviewer: str | None = None,
            expected_sha=_UNSET) -> Path:
    """Save an earlier version as a new version (source "restore"), so a restore can itself be undone."""
    entry = ws._entry(entry)
    version = next((v for v in reversed(ws.versions(entry)) if v.sha256 == sha256 and v.path.is_file()), None)
    if version is None:
        matches = sorted(ws.history_dir(entry).glob(f"{sha256}.*")) if len(sha256) == 64 else []
        if not matches:
            raise WorkspaceError(f"{entry.key}: no version {sha256} in {ws.history_dir(entry)}")
        path = matches[0]
    else:
        path = version.path
    mask = _checked_version(ws, entry, path, sha256)
    if expected_sha is _UNSET:
        expected_sha = ws._loaded.get(entry.key, _UNSET)
    return ws.save_ground_truth(entry, mask, expected_sha=expected_sha, source="restore", reviewer=reviewer,
                                  status="edited", action="restore", restored_from=sha256)


def _checked_version(ws, entry: ImageEntry, path: Path, sha256: str) -> np.ndarray:
    """The mask of a history file about to become the ground truth, checked as ``verify`` would: inside this
    workspace's records, the content its name and record promise, a decodable mask of its photo's size. A
    damaged or swapped file is refused in one line; the mask on disk stays as it is."""
    roots = {ws.meta_dir.resolve(), ws.history_dir(entry).resolve(), (ws.root / META_DIR_NAME).resolve()}
    inside = any(root in path.resolve().parents for root in roots)
    if not inside:
        raise WorkspaceError(f"{entry.key}: the record of version {sha256[:12]} points outside the workspace's "
                             f"history ({path}); nothing was restored (`workspace verify` lists such problems)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WorkspaceError(f"{path}: version {sha256[:12]} of {entry.key} cannot be read ({_short(exc)}); "
                             "nothing was restored") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise WorkspaceError(f"{path}: content differs from version {sha256[:12]} of {entry.key} (damaged or "
                             "replaced); nothing was restored")
    mask = read_mask_or_none(path, data)
    if mask is None:
        raise WorkspaceError(f"{path}: version {sha256[:12]} of {entry.key} cannot be decoded as a mask; "
                             "nothing was restored")
    size = _photo_size(entry.path)
    if size is not None and mask.shape != size:
        raise WorkspaceError(f"{path}: version {sha256[:12]} is {mask.shape[1]}x{mask.shape[0]} but the photo "
                             f"{entry.name} is {size[1]}x{size[0]}; nothing was restored")
    return mask


def _photo_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of the photo as the app reads it; None when it cannot be read (that is reported where
    the photo is opened)."""
    from model_core.imageio import image_size

    try:
        return image_size(path)
    except (ImageReadError, OSError):
        return None


def resolve_conflict(ws, conflict: SaveConflict, keep: str, *, reviewer: str | None = None,
                     model: str | None = None, prediction: np.ndarray | None = None, **log_extra) -> Path | None:
    """After SaveConflict: ``keep="mine"`` saves this window's version over theirs (theirs stays in the
    history); ``keep="theirs"`` leaves theirs on disk and returns None (the caller reloads it). ``model``,
    ``prediction`` and ``log_extra`` go into the review log as for any save, so a collision leaves no gap
    in who saved what with which model."""
    entry = ws._by_key[conflict.key]
    if keep == "theirs":
        ws._loaded[entry.key] = conflict.theirs.sha256
        return None
    if keep != "mine":
        raise ValueError("keep must be 'mine' or 'theirs'")
    return ws.save_ground_truth(entry, read_mask(conflict.mine.path), expected_sha=conflict.theirs.sha256,
                                  source=conflict.mine.source, reviewer=reviewer or conflict.mine.reviewer,
                                  action="save", model=model, prediction=prediction,
                                  resolved_conflict_with=conflict.theirs.sha256, **log_extra)


def verify(ws) -> list[str]:
    """Problems found, like ``git fsck``: the database's integrity check, every recorded version's file
    exists with its recorded content, every history and mask file decodes. Empty: all is well."""
    problems: list[str] = []
    unavailable = ws.records_unavailable
    if unavailable:
        problems.append(f"{unavailable}: no recorded version could be checked")
    try:
        check = ws._records.integrity()
        if check != "ok":
            problems.append(f"{ws.records_path}: integrity check failed ({check})")
        rows = ws._records.versions()
    except sqlite3.Error as exc:
        return problems + [f"{ws.records_path}: cannot be read ({_db_text(exc)})"]
    checked: set[Path] = set()
    for r in rows:
        path = ws.meta_dir / str(r["path"])
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
        elif read_mask_or_none(path, data) is None:
            problems.append(f"{path}: cannot be decoded as a mask")
    base = ws.meta_dir / "history"
    if base.is_dir():
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.startswith(".") and p not in checked and read_mask_or_none(p) is None:
                problems.append(f"{p}: history file cannot be decoded as a mask")
    # A mask on disk that no record names is no problem: the masks a data set comes with, or a save whose
    # process was killed before its record; the next save keeps it in the history before replacing it.
    for e in ws.entries:
        gt = e.existing_gt()
        if gt is None:
            continue
        try:
            data = gt.read_bytes()
        except OSError as exc:
            problems.append(f"{gt}: mask file cannot be read ({_short(exc)})")
            continue
        mask = read_mask_or_none(gt, data)
        if mask is None:
            problems.append(f"{gt}: mask file cannot be decoded")
            continue
        size = _photo_size(e.path)
        if size is not None and mask.shape != size:
            problems.append(f"{gt}: mask is {mask.shape[1]}x{mask.shape[0]} but the photo {e.name} is "
                            f"{size[1]}x{size[0]}")
    return problems


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

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in ("sha256", "time", "reviewer", "source", "model", "added_prev",
                                            "removed_prev", "added_pred", "removed_pred", "note")}
        d["path"] = str(self.path)
        return d


class SaveConflict(WorkspaceError):
    """Another window or grader saved this image since it was loaded. Nothing was overwritten: ``theirs``
    is on disk, ``mine`` is in the history. Offer: keep mine / take theirs / view both
    (``Workspace.resolve_conflict``)."""

    def __init__(self, key: str, expected_sha, mine: Version, theirs: Version):
        when = readable_time(theirs.time)
        who = f"{theirs.reviewer} at {when}" if theirs.reviewer else f"at {when}"
        super().__init__(f"{key}: another window or grader saved this mask ({who}) since it was opened; nothing "
                         "was overwritten, both versions are in the history")
        self.key, self.expected_sha, self.mine, self.theirs = key, expected_sha, mine, theirs


def _encode_mask(path: Path, mask: np.ndarray) -> bytes:
    """PNG bytes (0/255) of a clean bool mask, as ``mask_to_png`` writes them but without its cleaning pass."""
    return encode_png(path, mask.view(np.uint8) * np.uint8(255))


def _clean_bool(mask) -> np.ndarray:
    """A new C-contiguous bool array whose bytes are 0/1 (a bool view of 0/255 bytes is not), for byte counting.
    (``!= 0`` is one vectorised pass; ``np.minimum(u8, 1)`` took 7-11 ms on a 3504x2336 mask.)"""
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        m = m.view(np.uint8)
    return np.not_equal(m, 0, order="C")


def _bool(mask) -> np.ndarray:
    """A prediction mask (``prob >= t``): already clean 0/1 bytes, so only made contiguous (no extra pass)."""
    m = np.asarray(mask)
    return np.ascontiguousarray(m) if m.dtype == np.bool_ else _clean_bool(m)


_WORDS = 1 << 15  # 256 KiB of a mask per step: the temporaries stay in the cache instead of paging in 8 MB


def _changes(before: np.ndarray, after: np.ndarray) -> tuple[int, int]:
    """(pixels added, pixels removed) going from ``before`` to ``after`` (clean bool masks, see _clean_bool)."""
    b = np.ascontiguousarray(before).reshape(-1).view(np.uint8)
    a = np.ascontiguousarray(after).reshape(-1).view(np.uint8)
    n = b.size // 8 * 8
    # Eight pixels per word; the XOR of 0/1 bytes is 0/1 bytes again, so counting non-zero bytes counts pixels.
    b64, a64 = b[:n].view(np.uint64), a[:n].view(np.uint64)
    buf = np.empty(min(_WORDS, b64.size), np.uint64)
    changed = added = 0
    for i in range(0, b64.size, _WORDS):
        d = buf[:min(_WORDS, b64.size - i)]
        np.bitwise_xor(b64[i:i + _WORDS], a64[i:i + _WORDS], out=d)
        changed += int(np.count_nonzero(d.view(np.uint8)))
        np.bitwise_and(d, a64[i:i + _WORDS], out=d)
        added += int(np.count_nonzero(d.view(np.uint8)))
    tail = b[n:] ^ a[n:]
    changed += int(np.count_nonzero(tail))
    added += int(np.count_nonzero(tail & a[n:]))
    return added, changed - added
