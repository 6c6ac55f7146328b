"""An image's optic disc and artery/vein labels in the workspace's records, versioned. Qt-free.

Beside the mask's records (``.retina/`` or the fallback folder, ``Workspace.meta_dir``), per image key::

    calibre/<key>/disc.json              {"x": ..., "y": ..., "diameter": ...} in pixels
    calibre/<key>/av.png                 8-bit: 0 background, 1 artery, 2 vein, 3 uncertain
    calibre/<key>/history/disc-0001.json every version kept, numbered oldest first
    calibre/<key>/history/av-0001.png

and one row per version in the records' ``calibre_versions`` table (schema 4: image, kind "disc" or "av", sha256,
time, reviewer, the history file relative to the records folder, a note: "auto", "grader", "restore", "import"
(``retina-desktop workspace import``), "found on disk", "indexed").

Keep before replace, as the masks' history does (``masks.py``): inside one records transaction (whose write lock
also serialises the file writes between windows), the bytes on disk are made readable in the history first (a
file the app did not record is kept as "found on disk"), then the new bytes, then they are written over the file
(atomically, ``model_core.atomic``) and their row is added. A copy that cannot be made refuses the save in one line
and the file stays as it was. A process killed between the copy and the row leaves a history file no row names:
the next save of that image, a rebuild of the records and a migration from schema 3 (whose release kept only the
numbered copies of the versions it replaced) register such files (``index_calibre_files``), so no version is lost.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from model_core.atomic import write_bytes_atomic
from model_core.calibre import Disc
from model_core.calibre_inputs import read_av_mask
from model_core.imageio import encode_png

from .common import (
    HISTORY_DIR_NAME,
    ReadOnlyWorkspaceError,
    WorkspaceError,
    _db_error,
    _now,
    _os_error,
    _short,
    _user,
    found_file_version,
    read_regular,
)
from .keeper import RecordKeeper
from .records import CALIBRE_KINDS, CalibreVersionRow, Records

CALIBRE_DIR_NAME = "calibre"
DISC_FILE, LABELS_FILE = "disc.json", "av.png"
FILES = {"disc": DISC_FILE, "av": LABELS_FILE}
WHAT = {"disc": "optic disc", "av": "artery/vein labels"}
NOTES = ("auto", "grader", "restore", "import", "found on disk", "indexed")
# The workspace's scale (its records' settings; neither: pixels): micrometres per pixel, else an assumed disc diameter
# in micrometres (1800 is common). Recorded in every result's calibre_method, so an export says which was used.
UM_PER_PX_SETTING, DISC_UM_SETTING = "calibre_um_per_px", "calibre_disc_um"
DEFAULT_DISC_UM = 1800.0


def scale_of(setting: Callable[[str], object]) -> tuple[float | None, float | None]:
    """(um_per_px, disc_um) from a workspace's ``setting(name)``: at most one of them, a positive finite number."""

    def positive(name: str) -> float | None:
        v = setting(name)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return None
        return float(v) if math.isfinite(v) and v > 0 else None

    um_per_px = positive(UM_PER_PX_SETTING)
    return (um_per_px, None) if um_per_px is not None else (None, positive(DISC_UM_SETTING))


SCALES = ("px", "um_per_px", "disc_um")  # pixels, micrometres per pixel, an assumed disc diameter in micrometres


def checked_scale(choice: str, text: str) -> tuple[float | None, float | None]:
    """(um_per_px, disc_um) for the grader's choice and typed value; ValueError (one line) when the value is not a
    positive finite number."""
    if choice not in SCALES:
        raise ValueError(f"unknown scale {choice!r}")
    if choice == "px":
        return None, None
    what = "µm per pixel" if choice == "um_per_px" else "the disc diameter in µm"
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        raise ValueError(f"{what} must be a number, not {text.strip()[:20]!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive, finite number")
    return (value, None) if choice == "um_per_px" else (None, value)


def scale_settings(um_per_px: float | None, disc_um: float | None) -> dict[str, float | None]:
    """The workspace settings that record a scale (both written, so the one not chosen is cleared)."""
    return {UM_PER_PX_SETTING: um_per_px, DISC_UM_SETTING: disc_um}


class CalibreFileDamaged(WorkspaceError):
    """A saved disc or A/V file that cannot be read as one (one line; its earlier versions are in the history)."""


def disc_bytes(disc: Disc) -> bytes:
    return json.dumps({"x": disc.x, "y": disc.y, "diameter": disc.diameter}, indent=2).encode()


def parse_disc(data: bytes) -> Disc:
    """A disc from the bytes of a ``disc.json``; ValueError when they are not one (garbage, a NaN, no diameter)."""
    try:
        d = json.loads(data.decode("utf-8"))
        disc = Disc(float(d["x"]), float(d["y"]), float(d["diameter"]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not a disc file ({type(exc).__name__})") from None
    if not (math.isfinite(disc.x) and math.isfinite(disc.y) and math.isfinite(disc.diameter) and disc.diameter > 0):
        raise ValueError("not a disc file (x, y must be finite and the diameter positive)")
    return disc


def _decodes(kind: str, path: Path, data: bytes) -> bool:
    try:
        if kind == "disc":
            parse_disc(data)
        else:
            read_av_mask(path)
        return True
    except (OSError, ValueError):  # RetinaInputError is a ValueError
        return False


@dataclass(frozen=True)
class CalibreVersion:
    """One recorded disc or A/V version as the History shows it; ``path`` is its file in the history."""

    image: str
    kind: str
    sha256: str
    time: str
    reviewer: str | None
    path: Path
    note: str | None = None


class CalibreRecords:
    """The files of the layout above (reading only; ``CalibreStore`` writes)."""

    def __init__(self, meta_dir: Path) -> None:
        self.meta_dir = Path(meta_dir)

    def folder(self, key: str) -> Path:
        return self.meta_dir / CALIBRE_DIR_NAME / key

    def path(self, key: str, kind: str) -> Path:
        return self.folder(key) / FILES[kind]

    def history(self, key: str) -> list[Path]:
        """The kept versions of both files, oldest first per file."""
        folder = self.folder(key) / HISTORY_DIR_NAME
        return sorted(folder.glob("*-[0-9][0-9][0-9][0-9].*")) if folder.is_dir() else []

    def history_of(self, key: str, kind: str) -> list[Path]:
        stem = FILES[kind].split(".")[0]
        return [p for p in self.history(key) if p.name.startswith(f"{stem}-") and not p.is_symlink()]

    def image_keys(self) -> list[str]:
        base = self.meta_dir / CALIBRE_DIR_NAME
        try:
            return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            return []

    # ------------------------------------------------------------------------------- disc --
    def read_disc(self, key: str) -> Disc | None:
        """The saved disc, None when none was saved; CalibreFileDamaged (one line) when the file is not a disc."""
        path = self.path(key, "disc")
        try:
            data = read_regular(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CalibreFileDamaged(f"{path}: the optic disc cannot be read ({_short(exc)})") from None
        try:
            return parse_disc(data)
        except ValueError as exc:
            raise CalibreFileDamaged(
                f"{path}: the optic disc is damaged ({exc}); restore an earlier version from the History"
            ) from None

    def load_disc(self, key: str) -> Disc | None:
        """The saved disc, or None when none was saved (or the file is not a disc)."""
        try:
            return self.read_disc(key)
        except CalibreFileDamaged:
            return None

    # ----------------------------------------------------------------------------- labels --
    def read_labels(self, key: str, shape: tuple[int, int]) -> NDArray[np.uint8] | None:
        """The saved A/V labels, None when none were saved; CalibreFileDamaged (one line) when the file is not an
        A/V mask or not of ``shape``."""
        path = self.path(key, "av")
        if not path.is_file():
            return None
        try:
            labels = read_av_mask(path)
        except (OSError, ValueError) as exc:  # a damaged or foreign file (RetinaInputError is a ValueError)
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CalibreFileDamaged(
                f"{path}: the artery/vein labels are damaged ({why.removeprefix(f'{path}: ')}); restore an earlier "
                "version from the History"
            ) from None
        if labels.shape != tuple(shape):
            raise CalibreFileDamaged(
                f"{path}: the artery/vein labels are {labels.shape[1]}x{labels.shape[0]} but the image is "
                f"{shape[1]}x{shape[0]}; they were not used"
            )
        return labels

    def load_labels(self, key: str, shape: tuple[int, int]) -> NDArray[np.uint8] | None:
        """The saved A/V labels, or None when none were saved or they do not fit an image of ``shape``."""
        try:
            return self.read_labels(key, shape)
        except CalibreFileDamaged:
            return None


class CalibreStore(CalibreRecords):
    """Saves, lists and restores the versions (``keeper``: the workspace's records; ``lock``: its lock;
    ``read_only()``: why nothing may be recorded, None when records can be written)."""

    def __init__(
        self, meta_dir: Path, keeper: RecordKeeper, lock: threading.RLock, read_only: Callable[[], str | None]
    ) -> None:
        super().__init__(meta_dir)
        self._keeper = keeper
        self._lock = lock
        self._read_only = read_only

    # --------------------------------------------------------------------------- versions --
    def versions(self, key: str, kind: str | None = None) -> list[CalibreVersion]:
        """Every recorded version of the image's disc and/or labels, oldest first."""
        try:
            rows = self._keeper.records.calibre_versions(key, kind)
        except sqlite3.Error:
            rows = []
        return [
            CalibreVersion(r.image, r.kind, r.sha256, r.time, r.reviewer, self.meta_dir / r.path, r.note) for r in rows
        ]

    def current_sha(self, key: str, kind: str) -> str | None:
        try:
            return hashlib.sha256(read_regular(self.path(key, kind))).hexdigest()
        except OSError:
            return None

    # ----------------------------------------------------------------------------- saving --
    def save_disc(self, key: str, disc: Disc, *, reviewer: str | None = None, note: str = "grader") -> Path:
        return self._save(key, "disc", disc_bytes(disc), reviewer, note)

    def save_labels(
        self, key: str, labels: NDArray[np.uint8], *, reviewer: str | None = None, note: str = "grader"
    ) -> Path:
        path = self.path(key, "av")
        return self._save(key, "av", encode_png(path, np.asarray(labels, np.uint8)), reviewer, note)

    def restore(self, key: str, kind: str, sha256: str, *, reviewer: str | None = None) -> Path:
        """Make an earlier version the file on disk, as a new version (note "restore"), so restoring another
        version takes it back. A damaged or swapped history copy is refused in one line; nothing changes."""
        return self._save(key, kind, self.version_bytes(key, kind, sha256), reviewer, "restore")

    def version_bytes(self, key: str, kind: str, sha256: str) -> bytes:
        """The checked bytes of a recorded version: inside this image's calibre history, the content its record
        promises, decodable as a disc or an A/V mask."""
        what = WHAT[kind]
        found = [v for v in reversed(self.versions(key, kind)) if v.sha256 == sha256]
        if not found:
            raise WorkspaceError(f"{key}: no {what} version {sha256[:12]} in the records; nothing was restored")
        path = found[0].path
        history = (self.folder(key) / HISTORY_DIR_NAME).resolve()
        if path.is_symlink() or history not in path.resolve().parents:
            raise WorkspaceError(
                f"{path}: the record of this {what} version points outside its history; nothing was restored"
            )
        try:
            data = read_regular(path)
        except OSError as exc:
            raise WorkspaceError(
                f"{path}: this {what} version cannot be read ({_short(exc)}); nothing was restored"
            ) from None
        if hashlib.sha256(data).hexdigest() != sha256 or not _decodes(kind, path, data):
            raise WorkspaceError(
                f"{path}: content differs from {what} version {sha256[:12]} (damaged); nothing was restored"
            )
        return data

    def _save(self, key: str, kind: str, data: bytes, reviewer: str | None, note: str) -> Path:
        if note not in NOTES:
            raise ValueError(f"unknown note {note!r}")
        newer = self._read_only()
        if newer is not None:
            raise ReadOnlyWorkspaceError(f"{newer}; nothing was saved")
        path, sha, who = self.path(key, kind), hashlib.sha256(data).hexdigest(), reviewer or _user()
        with self._lock:
            self._keeper.retry()
            records = self._keeper.records
            ops: list[Callable[[Records], None]] = []
            try:
                with records.write():  # BEGIN IMMEDIATE: also serialises this file's writers between windows
                    rows = records.calibre_versions(key, kind)
                    rows += self._unrecorded(key, kind, rows, ops)
                    try:
                        old: bytes | None = read_regular(path)
                    except FileNotFoundError:
                        old = None
                    except OSError as exc:
                        raise _os_error(
                            exc, path, f"the {WHAT[kind]} on disk could not be read; nothing was saved"
                        ) from None
                    now = _now()
                    if old is not None and old != data:
                        old_sha = hashlib.sha256(old).hexdigest()
                        rel, recorded = self._keep(key, kind, old, old_sha, rows)
                        if not recorded:  # a file no row names (the last release's, a save killed before its row)
                            kept = CalibreVersionRow(key, kind, old_sha, now, None, rel, "found on disk")
                            ops.append(lambda r: r.add_calibre_version(kept))
                    rel, recorded = self._keep(key, kind, data, sha, rows)
                    if old != data:
                        try:
                            write_bytes_atomic(path, data)
                        except OSError as exc:
                            raise _os_error(exc, path, f"the {WHAT[kind]} was not saved") from None
                    if old != data or not recorded:
                        row = CalibreVersionRow(key, kind, sha, now, who, rel, note)
                        ops.append(lambda r: r.add_calibre_version(row))
                    for op in ops:
                        op(records)
            except sqlite3.Error as exc:
                raise _db_error(exc, records.path, f"the {WHAT[kind]} version was not recorded") from None
            if self._keeper.unavailable is not None and ops:  # made in memory: replayed once the file opens
                self._keeper.apply(f"the {WHAT[kind]} of {key}", lambda r: _run(ops, r), already_made=True)
        return path

    def _keep(self, key: str, kind: str, data: bytes, sha: str, rows: list[CalibreVersionRow]) -> tuple[str, bool]:
        """Make ``data`` readable in the history; its path relative to the records folder, and whether a row names
        that copy. ``rows`` name every readable history file (``_save`` indexes the unrecorded ones first), so only
        the rows of this sha256 are read. A recorded copy whose bytes differ (damaged) is not trusted: the bytes are
        written again."""
        for p in [self.meta_dir / r.path for r in rows if r.sha256 == sha]:
            if _holds(p, sha):
                return p.relative_to(self.meta_dir).as_posix(), True
        target = self._next_history_path(key, kind)
        why = f"the {WHAT[kind]} version could not be kept in the history; nothing was saved"
        try:
            write_bytes_atomic(target, data)
        except OSError as exc:
            raise _os_error(exc, target, why) from None
        if not _holds(target, sha):
            raise WorkspaceError(f"{target}: the history copy reads back different; {why}")
        return target.relative_to(self.meta_dir).as_posix(), False

    def _unrecorded(
        self, key: str, kind: str, rows: list[CalibreVersionRow], ops: list[Callable[[Records], None]]
    ) -> list[CalibreVersionRow]:
        found = _index_rows(self.meta_dir, key, kind, self.history_of(key, kind), {r.path for r in rows})
        if found:

            def add(rec: Records) -> None:
                for r in found:
                    rec.add_calibre_version(r)

            ops.append(add)
        return found

    def _next_history_path(self, key: str, kind: str) -> Path:
        stem, suffix = FILES[kind].rsplit(".", 1)
        pattern = re.compile(rf"{re.escape(stem)}-(\d{{4,}})\.{re.escape(suffix)}$")
        folder = self.folder(key) / HISTORY_DIR_NAME
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
        numbers = [int(m.group(1)) for n in names if (m := pattern.match(n))]
        return folder / f"{stem}-{max(numbers, default=0) + 1:04d}.{suffix}"


def _holds(path: Path, sha: str) -> bool:
    if path.is_symlink():
        return False
    try:
        return hashlib.sha256(read_regular(path)).hexdigest() == sha
    except OSError:
        return False


def _run(ops: list[Callable[[Records], None]], records: Records) -> None:
    with records.write():
        for op in ops:
            op(records)


def _index_rows(meta_dir: Path, key: str, kind: str, files: list[Path], known: set[str]) -> list[CalibreVersionRow]:
    """Rows ("indexed", at the file's date) for history files no row names, oldest number first."""
    out = []
    for p in files:
        rel = p.relative_to(meta_dir).as_posix()
        if rel in known:
            continue
        found = found_file_version(p)
        if found is None:
            continue
        out.append(CalibreVersionRow(key, kind, found[0], found[1], None, rel, "indexed"))
    return out


def index_calibre_files(records: Records, meta_dir: Path, keys: Sequence[str] | None = None) -> int:
    """Register the calibre history files no row names (a rebuild of the records, a migration from schema 3, a
    save killed between its copy and its row) in one transaction, written only when there are some; how many."""
    store = CalibreRecords(meta_dir)
    found: list[CalibreVersionRow] = []
    base = meta_dir / CALIBRE_DIR_NAME
    if not base.is_dir():
        return 0
    known = {r.path for r in records.calibre_versions()}
    for key in store.image_keys() if keys is None else keys:
        for kind in CALIBRE_KINDS:
            found += _index_rows(meta_dir, key, kind, store.history_of(key, kind), known)
    if found:
        with records.write():
            for row in found:
                records.add_calibre_version(row)
    return len(found)


def calibre_problems(records: Records, meta_dir: Path) -> list[str]:
    """``verify``'s lines for the calibre records: a recorded version missing, damaged or outside its history; a
    history file no row names; a disc or A/V file on disk that cannot be read."""
    store = CalibreRecords(meta_dir)
    problems: list[str] = []
    try:
        rows = records.calibre_versions()
    except sqlite3.Error:
        return problems
    recorded: set[str] = set()
    kept: set[tuple[str, str, str]] = set()  # (image, kind, sha256) with a readable, matching history copy
    for r in rows:
        path = meta_dir / r.path
        recorded.add(r.path)
        history = (store.folder(r.image) / HISTORY_DIR_NAME).resolve()
        if path.is_symlink() or history not in path.resolve().parents:
            problems.append(f"{path}: the record of a {WHAT[r.kind]} version of {r.image} points outside its history")
            continue
        try:
            data = read_regular(path)
        except OSError as exc:
            problems.append(f"{path}: recorded {WHAT[r.kind]} version of {r.image} cannot be read ({_short(exc)})")
            continue
        if hashlib.sha256(data).hexdigest() != r.sha256:
            problems.append(f"{path}: content differs from the recorded sha256 {r.sha256}")
        else:
            kept.add((r.image, r.kind, r.sha256))
    for key in store.image_keys():
        for kind in CALIBRE_KINDS:
            for p in store.history_of(key, kind):
                if p.relative_to(meta_dir).as_posix() not in recorded:
                    problems.append(f"{p}: {WHAT[kind]} history file has no record (the next save of {key} records it)")
            current = store.path(key, kind)
            try:
                data = read_regular(current)
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems.append(f"{current}: {WHAT[kind]} file cannot be read ({_short(exc)})")
                continue
            if not _decodes(kind, current, data):
                problems.append(
                    f"{current}: the {WHAT[kind]} file is damaged; restore an earlier version from the History"
                )
            elif (key, kind, hashlib.sha256(data).hexdigest()) not in kept:
                problems.append(
                    f"{current}: the current {WHAT[kind]} has no readable copy in the history (the next save of "
                    f"{key} writes one)"
                )
    return problems
