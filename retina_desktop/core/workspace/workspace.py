"""A workspace: a folder of fundus photos, where their ground truth goes, and the app's records. Qt-free.

``Workspace`` composes the store's parts and is what the rest of the app holds:

* ``layout``: the images (``ImageEntry``) and where their masks go;
* ``Records``: statuses, threshold, review log, versions, open windows, in one SQLite file (``records.py``), opened,
  migrated or rebuilt by ``opening.py`` and written through a ``RecordKeeper`` that loses no change;
* ``MaskStore``: load, save, withdraw, and the history (``MaskHistory``, ``history.py``); ``VersionActions``:
  approve, restore, resolve a conflict; ``GroundTruthWriter`` (``writes.py``): every change of the ground truth,
  refused on a read-only workspace, the statuses re-read after it;
* ``CalibreStore`` (``calibre_records.py``): each image's optic disc and artery/vein labels, versioned the same way;
* ``PredictionCache``; ``verify`` (``verify.py``).

The app's own records live in ``<workspace>/.retina/`` (a per-workspace folder under the user data folder when the
workspace cannot be written; a read-only workspace's own records then show through, never changed).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model_core.atomic import write_json_atomic
from model_core.errors import ImageReadError
from model_core.imageio import IMAGE_SUFFIXES

from ..paths import user_data_dir
from . import review_log
from .calibre_records import CalibreStore, calibre_problems
from .common import (
    _UNSET,
    META_DIR_NAME,
    RECORDS_NAME,
    WorkspaceError,
    _file_sha,
    read_json,
)
from .filesystem import FolderGuard, is_network_folder
from .keeper import RecordKeeper
from .layout import ImageEntry, discover, probe_writable
from .masks import MaskStore, VersionActions
from .opening import Opened, open_records, remove_orphan_temporaries
from .predictions import PredictionCache
from .records import NEWER_FILE, Journal, Records
from .shared import SharedRecords
from .statuses import StatusBook
from .verify import verify
from .versions import SaveConflict, Version, earlier_files
from .windows import OpenRecord, OpenWindows
from .writes import GroundTruthWriter

DatasetMasks = Literal["overwrite", "corrected"]
NETWORK_NOTICE = (
    "{root} is on a network folder: the records use SQLite's rollback journal there, and two machines "
    "must not write this workspace at once (two windows on this machine are fine; graders on separate "
    "copies merge them with `retina-desktop workspace import`)."
)


def photo_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of the photo as the app reads it; None when it cannot be read (reported where it opens)."""
    from model_core.imageio import image_size

    try:
        return image_size(path)
    except (ImageReadError, OSError):
        return None


def _checked_root(root: Path) -> Path:
    if not root.exists():
        raise WorkspaceError(f"{root}: folder not found")
    if not root.is_dir():
        raise WorkspaceError(f"{root}: not a folder")
    return root.resolve()


def _fallback_meta_dir(root: Path) -> Path:
    """Where a workspace that cannot be written keeps this user's records: under the user data folder."""
    folder = user_data_dir() / "workspaces" / hashlib.sha1(str(root).encode("utf-8")).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _images(root: Path) -> tuple[str, list[ImageEntry], dict[str, ImageEntry], list[str]]:
    """The layout, the images (each key once), them by key, and the duplicates left out."""
    layout, entries = discover(root)
    if not entries:
        raise WorkspaceError(
            f"{root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} "
            "directly in the folder or in images/, train/images/, test/images/)"
        )
    return (layout, *_unique(entries))


def _gt_writable(entries: list[ImageEntry]) -> bool:
    return all(probe_writable(d) if d.is_dir() else probe_writable(d.parent) for d in {e.gt_dir for e in entries})


def _written_folders(entries: list[ImageEntry], meta_dir: Path) -> set[Path]:
    """The folders this app writes into, where a killed write may have left a temporary file."""
    folders = {e.gt_dir for e in entries} | {meta_dir}
    for sub in ("history", "predictions", "calibre"):
        for dirpath, _dirs, _files in os.walk(meta_dir / sub):
            folders.add(Path(dirpath))
    return folders


class Workspace:
    def __init__(self, root: str | os.PathLike[str]):
        self.root = _checked_root(Path(root).expanduser())
        self.layout, self.entries, self._by_key, self.duplicates = _images(self.root)
        self.gt_writable = _gt_writable(self.entries)
        self.meta_in_workspace = probe_writable(self.root / META_DIR_NAME)
        self.meta_dir = self.root / META_DIR_NAME if self.meta_in_workspace else _fallback_meta_dir(self.root)
        self.records_path = self.meta_dir / RECORDS_NAME
        self.network = is_network_folder(self.root)
        self.journal: Journal = "delete" if self.network else "wal"
        self.notices: list[str] = []
        self._lock = threading.RLock()
        self._guard = FolderGuard(self.root)
        for folder in {e.gt_dir for e in self.entries} | {self.meta_dir}:
            self._guard.watch(folder)
        opened = open_records(self.meta_dir, self.entries, self.journal)
        self.notices += opened.notices
        self._keeper = RecordKeeper(opened, self._reopen, self.notices, self._lock)
        if self.network:
            self.notices.append(NETWORK_NOTICE.format(root=self.root))
        self._shared = SharedRecords(self.root, active=not self.meta_in_workspace)
        self.statuses = StatusBook(
            self._keeper,
            self._shared,
            self._lock,
            lambda key: _file_sha(self._by_key[key].existing_gt()) if key in self._by_key else None,
        )
        within = self.root if self.meta_in_workspace else None
        self.log = review_log.ReviewLog(
            self._keeper, self.meta_dir / "review_log.jsonl", self.notices, self._approval_counts
        )
        self.masks = MaskStore(
            self.meta_dir,
            self.root,
            self._keeper,
            self._shared,
            self._guard,
            self._lock,
            self.log.mirror,
            within,
            lambda records: self.windows.touch(records),
        )
        self.actions = VersionActions(self.masks, self._keeper, self._lock, self.log.mirror, photo_size)
        self.writer = GroundTruthWriter(
            self.masks,
            self.actions,
            self.statuses,
            self._entry,
            lambda: self.gt_writable,
            lambda: self.read_only_records,
        )
        # The optic disc and A/V labels: versions kept like the masks', in the same records (schema 4).
        self.calibre = CalibreStore(self.meta_dir, self._keeper, self._lock, lambda: self.read_only_records)
        self.predictions = PredictionCache(self.meta_dir, within, self._keeper.try_quietly)
        self._use_dataset_masks_choice()
        self.windows = OpenWindows(self._keeper, self._lock)
        self.removed_temporaries = remove_orphan_temporaries(_written_folders(self.entries, self.meta_dir))
        info = read_json(self.meta_dir / "workspace.json") or read_json(self.root / META_DIR_NAME / "workspace.json")
        self.synthetic = bool(info.get("synthetic", False)) if info else False
        self.title = str((info or {}).get("title") or self.root.name)

    def _approval_counts(self, key: str) -> dict[str, Any] | None:
        return self.actions.approval_counts(self._by_key[key], None) if key in self._by_key else None

    def _reopen(self) -> Opened:
        return open_records(self.meta_dir, self.entries, self.journal)

    # -- the data set's own masks ----------------------------------------------------------------
    @property
    def dataset_masks(self) -> DatasetMasks | None:
        """Where corrections go when the workspace came with masks: "overwrite" (over them; the originals stay in
        History), "corrected" (into ``corrected/``), None: not asked yet."""
        value = self.setting("dataset_masks")
        return "overwrite" if value == "overwrite" else "corrected" if value == "corrected" else None

    def set_dataset_masks(self, choice: DatasetMasks) -> None:
        """Remember the grader's choice for this workspace; "corrected" sends every later save to ``corrected/``."""
        if choice not in ("overwrite", "corrected"):
            raise ValueError(f"unknown choice {choice!r}")
        self.set_setting("dataset_masks", choice)
        self._use_dataset_masks_choice()

    def _use_dataset_masks_choice(self) -> None:
        if self.dataset_masks == "corrected":
            self.entries = [e if e.reference_dir else e.corrected(self.root) for e in self.entries]
            self._by_key = {e.key: e for e in self.entries}

    def replaces_dataset_mask(self, entry: ImageEntry | str) -> bool:
        """Whether saving this image would replace a mask the workspace came with (not one this app wrote) while the
        grader has not yet said where corrections go."""
        if self.dataset_masks is not None:
            return False  # asked once: no file read or records query on every save after that
        sha = self.current_sha(entry)
        if sha is None:
            return False
        return sha not in {v.sha256 for v in self.versions(entry) if v.note not in ("found on disk", "withdrawn")}

    # -- entries ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, key: str) -> ImageEntry:
        return self._by_key[key]

    def _entry(self, entry_or_key: ImageEntry | str) -> ImageEntry:
        """The workspace's own entry of that key (with corrections kept apart, the one that writes there)."""
        key = entry_or_key if isinstance(entry_or_key, str) else entry_or_key.key
        found = self._by_key.get(key)
        if found is not None:
            return found
        if isinstance(entry_or_key, str):
            raise KeyError(key)
        return entry_or_key  # an entry this workspace does not list

    @property
    def records(self) -> Records:
        """The records in use now (read-only use: changes go through the workspace's methods)."""
        return self._keeper.records

    @property
    def read_only_records(self) -> str | None:
        """Why nothing may be recorded (a records file made by a newer app); None: records can be written."""
        return f"{self.records_path}: {NEWER_FILE}" if self._keeper.records.newer else None

    @property
    def pending_records(self) -> int:
        """Record writes that wait for the records file (flush() and the next write retry them)."""
        return self._keeper.waiting

    def refresh(self) -> None:
        """Re-read statuses (another window or grader may have changed them), and take the mask files on disk now
        as the versions loaded: a caller without a window that met a SaveConflict and refreshed has seen the other
        writer's version, so its next save replaces it instead of meeting the same conflict for ever."""
        with self._lock:
            self.statuses.refresh()
            self.masks.take_disk_as_loaded(self._by_key)

    # -- state (StatusBook) ----------------------------------------------------------------------
    def status(self, key: str) -> str:
        return self.statuses.row(key).status

    def reference_sha(self, key: str) -> str | None:
        """The sha256 of the data set's own mask of the image, as the records first found it (None: unknown)."""
        return self.statuses.row(key).reference_sha

    def approved_sha(self, key: str) -> str | None:
        """The sha256 of the mask version last approved (None: never approved)."""
        return self.statuses.row(key).approved_sha

    def uncertainty(self, key: str) -> float | None:
        return self.statuses.row(key).uncertainty

    def set_status(self, key: str, status: str) -> None:
        self.statuses.set_status(key, status)

    def set_prediction_info(self, key: str, uncertainty: float) -> None:
        self.statuses.set_prediction_info(key, uncertainty)

    @property
    def threshold(self) -> float | None:
        return self.statuses.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.statuses.set_threshold(value)

    def setting(self, name: str) -> Any:
        return self.statuses.setting(name)

    def set_setting(self, name: str, value: object) -> None:
        self.statuses.set_setting(name, value)

    def flush(self) -> None:
        """Retry record writes that wait; refresh this window's "open" record."""
        with self._lock:
            self._keeper.retry()
            with contextlib.suppress(sqlite3.Error):
                self.windows.touch(self._keeper.records)

    # -- who else has it open ------------------------------------------------------------------
    def other_windows(self) -> list[OpenRecord]:
        return self.windows.others()

    def close(self) -> None:
        """Drop this window's "open" record and close the database (the workspace can't be used after)."""
        with self._lock:
            self._keeper.retry()
            self.windows.close()
            self._keeper.records.close()

    # -- review log (ReviewLog) --------------------------------------------------------------
    @property
    def review_log_path(self) -> Path:
        return self.log.path

    def log_review(self, key: str, action: str, **fields: Any) -> None:
        """Append to the review log (``ReviewLog.add``: model, added, removed, reviewer and any extra fields)."""
        self.log.add(key, action, **fields)

    def review_log(self, key: str | None = None) -> list[dict[str, Any]]:
        return self.log.rows(key)

    def export_review_log(self, path: str | os.PathLike[str]) -> Path:
        """Write the whole review log as ``.csv`` (by suffix) or JSONL."""
        return review_log.export(self.log.rows(), Path(path))

    # -- ground truth and its versions ----------------------------------------------------------
    def load_ground_truth(self, entry: ImageEntry, shape: tuple[int, int], remember: bool = True) -> np.ndarray | None:
        """The saved mask or None; remembers the version loaded (``loaded_sha``) unless ``remember=False``."""
        return self.masks.load(self._entry(entry.key), shape, remember)

    def loaded_sha(self, entry: ImageEntry | str) -> str | None:
        """The sha256 of the mask file this Workspace last loaded or saved for the image (None: none)."""
        return self.masks.loaded_sha(self._entry(entry).key)

    def current_sha(self, entry: ImageEntry | str) -> str | None:
        """The sha256 of the mask file on disk now (None: no mask)."""
        return _file_sha(self._entry(entry).existing_gt())

    def history_dir(self, entry: ImageEntry) -> Path:
        return self.masks.history.dir(entry)

    def history(self, entry: ImageEntry) -> list[Path]:
        """Files of the earlier versions (not the one on disk now), oldest first, each once."""
        return earlier_files(self.versions(entry), self.current_sha(entry))

    def versions(self, entry: ImageEntry | str) -> list[Version]:
        """Every version recorded for the image, oldest first (a version saved twice appears twice)."""
        return self.masks.history.versions(self._entry(entry).key)

    def version_count(self) -> int:
        """How many versions the records hold, all images together (a read-only workspace's own included)."""
        try:
            own = self._keeper.records.count("versions")
        except sqlite3.Error:
            own = 0
        return own + len(self._shared.versions())

    # -- changes of the ground truth (GroundTruthWriter, writes.py) --------------------------------
    def save_ground_truth(self, entry: ImageEntry, mask: np.ndarray, **options: Any) -> Path:
        """Save ``mask`` as the image's ground truth, keeping every version (``GroundTruthWriter.save``: its options
        are expected_sha, source, reviewer, model, prediction, status, action and log fields)."""
        return self.writer.save(entry, mask, **options)

    def withdraw(
        self,
        entry: ImageEntry,
        expected_sha: str | None,
        *,
        status: str,
        reviewer: str | None = None,
        model: str | None = None,
    ) -> bool:
        """Every edit undone: remove the mask file this window wrote, if it is still ``expected_sha``
        (``GroundTruthWriter.withdraw``). False: somebody saved since (nothing done)."""
        return self.writer.withdraw(entry, expected_sha, status=status, reviewer=reviewer, model=model)

    def approve(
        self,
        entry: ImageEntry,
        *,
        reviewer: str | None = None,
        model: str | None = None,
        prediction: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Mark the mask on disk approved and log its pixel counts."""
        return self.writer.approve(entry, reviewer=reviewer, model=model, prediction=prediction)

    def restore(
        self, entry: ImageEntry | str, sha256: str, *, reviewer: str | None = None, expected_sha: Any = _UNSET
    ) -> Path:
        """Save an earlier version as a new version (source "restore"), so a restore can itself be undone."""
        return self.writer.restore(entry, sha256, reviewer=reviewer, expected_sha=expected_sha)

    def resolve_conflict(self, conflict: SaveConflict, keep: str, **options: Any) -> Path | None:
        """After SaveConflict: keep "mine" or "theirs" (``GroundTruthWriter.resolve_conflict``)."""
        return self.writer.resolve_conflict(conflict, keep, **options)

    def verify(self) -> list[str]:
        """Problems found, like ``git fsck``. Empty: all is well."""
        problems = verify(
            self._keeper.records, self._keeper.unavailable, self.meta_dir, self.entries, self._guard, photo_size
        )
        return problems + calibre_problems(self._keeper.records, self.meta_dir)


def _unique(entries: Sequence[ImageEntry]) -> tuple[list[ImageEntry], dict[str, ImageEntry], list[str]]:
    """Ground truth is paired by stem, so a.jpg and a.tif would share one mask file: list the first only."""
    by_key: dict[str, ImageEntry] = {}
    kept, duplicates = [], []
    for e in entries:
        if e.key in by_key:
            duplicates.append(f"{e.path.name} (same name as {by_key[e.key].path.name})")
        else:
            by_key[e.key] = e
            kept.append(e)
    return kept, by_key, duplicates


def write_workspace_info(meta_dir: Path, data: dict[str, Any]) -> None:
    write_json_atomic(meta_dir / "workspace.json", data, indent=1, sort_keys=True)


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
