"""A workspace: a folder of fundus photos, where their ground truth goes, and the app's records.

Layouts understood:

* flat: photos directly in the folder; ground truth goes to ``<folder>/ground_truth/``;
* reference: ``images/`` + ``mask/`` (or ``masks/``, ...), optionally under ``train/`` and ``test/``;
  ground truth goes into the mask folder beside each ``images/`` folder, paired by file stem.

The command line reads folders by the same rule: ``model_core.data.image_folders``.

The app's own records (review status, review log, prediction cache, previous ground-truth versions)
live in ``<workspace>/.retina/``. If the workspace cannot be written, records go to a per-workspace
folder under the user data folder and saving ground truth is refused with a clear message.
This module is Qt-free.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.atomic import check_writable, write_bytes_atomic, write_json_atomic
from model_core.data import find_mask, image_folders
from model_core.data import list_images as _list_images
from model_core.errors import ImageReadError
from model_core.imageio import (IMAGE_SUFFIXES, encode_png, mask_to_png, png16_to_prob, prob_to_png16,
                                read_mask, read_raw, write_png_atomic)

from .paths import file_signature, user_data_dir

STATUSES = ("new", "predicted", "edited", "approved")
META_DIR_NAME = ".retina"


class WorkspaceError(ValueError):
    """A folder cannot be used as a workspace; the message names the folder and the problem."""


class ReadOnlyWorkspaceError(WorkspaceError):
    pass


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
        self._lock = threading.Lock()
        self._state_dirty = False
        self._last_state_write = float("-inf")
        self._state = self._load_state()
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

    # -- state -----------------------------------------------------------------------------
    @staticmethod
    def _read_json(path: Path) -> dict | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def _load_state(self) -> dict:
        state = self._read_json(self.meta_dir / "state.json") or {}
        state.setdefault("version", 1)
        if not isinstance(state.get("images"), dict):
            state["images"] = {}
        if not self.meta_in_workspace:
            # A reviewed folder on a read-only share: its own records (a colleague's approvals) show through,
            # and what this user records in the fallback folder wins for the images it covers.
            shared = (self._read_json(self.root / META_DIR_NAME / "state.json") or {}).get("images")
            if isinstance(shared, dict):
                state["images"] = {**{k: v for k, v in shared.items() if isinstance(v, dict)}, **state["images"]}
        return state

    def _save_state(self) -> None:
        self._state_dirty = False
        self._last_state_write = time.monotonic()
        try:
            _write_json_atomic(self.meta_dir / "state.json", self._state)
        except OSError:
            pass  # the records are a convenience; the masks themselves are never at stake here

    def _record(self, key: str) -> dict:
        return self._state["images"].setdefault(key, {})

    def status(self, key: str) -> str:
        s = self._state["images"].get(key, {}).get("status", "new")
        return s if s in STATUSES else "new"

    def set_status(self, key: str, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._lock:
            self._record(key)["status"] = status
            self._save_state()

    def uncertainty(self, key: str) -> float | None:
        v = self._state["images"].get(key, {}).get("uncertainty")
        return float(v) if isinstance(v, (int, float)) else None

    STATE_WRITE_INTERVAL_S = 2.0

    def set_prediction_info(self, key: str, uncertainty: float) -> None:
        # Called once per predicted image on the UI thread: during "Predict all" over thousands of photos,
        # rewriting and fsyncing state.json every time would stall the window, so writes are spaced out
        # (flush() writes the rest; a crash costs at most recomputable uncertainty figures).
        with self._lock:
            rec = self._record(key)
            rec["uncertainty"] = float(uncertainty)
            if rec.get("status", "new") == "new":
                rec["status"] = "predicted"
            now = time.monotonic()
            if now - self._last_state_write >= self.STATE_WRITE_INTERVAL_S:
                self._save_state()
            else:
                self._state_dirty = True

    def flush(self) -> None:
        with self._lock:
            if self._state_dirty:
                self._save_state()

    @property
    def threshold(self) -> float | None:
        v = self._state.get("threshold")
        return float(v) if isinstance(v, (int, float)) else None

    @threshold.setter
    def threshold(self, value: float) -> None:
        with self._lock:
            self._state["threshold"] = float(value)
            self._save_state()

    def write_info(self, **info) -> None:
        _write_json_atomic(self.meta_dir / "workspace.json", info)
        self.synthetic = bool(info.get("synthetic", False))
        self.title = info.get("title") or self.root.name

    # -- review log ------------------------------------------------------------------------
    @property
    def review_log_path(self) -> Path:
        return self.meta_dir / "review_log.jsonl"

    def log_review(self, key: str, action: str, model: str | None = None, added: int = 0, removed: int = 0,
                   reviewer: str | None = None, **extra) -> None:
        record = {"time": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "image": key,
                  "action": action, "reviewer": reviewer or _user(), "model": model,
                  "pixels_added": int(added), "pixels_removed": int(removed), **extra}
        with self._lock, open(self.review_log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def review_log(self) -> list[dict]:
        try:
            lines = self.review_log_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash must not hide the others
        return out

    # -- ground truth ----------------------------------------------------------------------
    def load_ground_truth(self, entry: ImageEntry, shape: tuple[int, int]) -> np.ndarray | None:
        """The saved mask for ``entry`` or None; raises ImageReadError (one line) when unusable."""
        path = entry.existing_gt()
        if path is None:
            return None
        mask = read_mask(path)
        if mask.shape != tuple(shape):
            raise ImageReadError(path, f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                       f"{shape[1]}x{shape[0]}; it was not loaded (kept as it is on disk)")
        return mask

    def history_dir(self, entry: ImageEntry) -> Path:
        return self.meta_dir / "history" / entry.key

    def history(self, entry: ImageEntry) -> list[Path]:
        d = self.history_dir(entry)
        return sorted(d.iterdir()) if d.is_dir() else []

    def save_ground_truth(self, entry: ImageEntry, mask: np.ndarray) -> Path:
        """Write ``mask`` as ``<gt_dir>/<stem>.png`` (0/255) atomically, keeping the previous version.

        A previous file that is not byte-identical to the new one is copied into the history first, so
        no ground truth is ever lost; if that copy fails, nothing is overwritten.
        """
        mask = np.asarray(mask, dtype=bool)
        if not self.gt_writable:
            raise ReadOnlyWorkspaceError(f"{entry.gt_dir}: the workspace is read-only, ground truth cannot be "
                                         "saved here (export the masks to another folder instead)")
        existing = entry.existing_gt()
        data = encode_png(entry.gt_path, mask_to_png(mask, 255))
        if existing is not None:
            self._keep_previous(entry, existing, data)
        try:
            path = write_bytes_atomic(entry.gt_path, data)
        except OSError as exc:
            raise WorkspaceError(f"{entry.gt_path}: could not be written ({exc.strerror or exc})") from None
        if existing is not None and existing != entry.gt_path:
            try:  # a mask in another format (e.g. DRIVE's GIF) is superseded; its copy is in the history
                existing.unlink()
            except OSError:
                pass
        return path

    def _keep_previous(self, entry: ImageEntry, existing: Path, new_png: bytes) -> None:
        # Only a byte-identical file is skipped. Anything else is kept, byte for byte: a file from elsewhere
        # (DRIVE's GIF, a 0/1 or colour-labelled mask) may hold more than the binary mask read from it, and
        # an unreadable one is kept as it is.
        try:
            old = existing.read_bytes()
            if old == new_png:
                return
            kept = [p for p in self.history(entry) if p.suffix.lower() == existing.suffix.lower()]
            if kept and kept[-1].read_bytes() == old:
                return  # already kept (a save that failed after keeping it is being retried)
        except OSError:
            pass
        d = self.history_dir(entry)
        try:
            d.mkdir(parents=True, exist_ok=True)
            stamp, suffix = _timestamp(), existing.suffix.lower()
            target, n = d / f"{stamp}{suffix}", 1
            while target.exists():  # two saves within one clock tick (Windows) must not share a name
                target, n = d / f"{stamp}-{n}{suffix}", n + 1
            tmp = target.with_name("." + target.name + ".tmp")
            shutil.copyfile(existing, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            raise WorkspaceError(f"{existing}: the previous version could not be kept in {d} "
                                 f"({exc.strerror or exc}); the mask was not saved") from None
        # Every previous version is kept: a binary vessel PNG is tens of kilobytes, a lost correction is not.

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
            return write_png_atomic(path, prob_to_png16(prob))
        except OSError:
            return None  # a cache that cannot be written only costs time


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
