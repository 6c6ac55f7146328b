"""The history of a workspace's masks: every version kept as a file named by its sha256. Qt-free.

Keep before replace: ``keep`` makes sure the exact bytes of a version are readable here, checked by their sha256
(not by their record), before any write replaces or removes a mask file; a copy that cannot be made refuses that
write (one line), and the mask stays as it is.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

from model_core.atomic import write_bytes_atomic

from .common import HISTORY_DIR_NAME, WorkspaceError, _now, _os_error, read_regular
from .filesystem import FolderGuard
from .keeper import RecordKeeper
from .layout import ImageEntry
from .records import Records, VersionRow
from .shared import SharedRecords
from .versions import Version

Op = Callable[[Records], None]  # a records change, run inside the transaction of the write it belongs to


class MaskHistory:
    """The history folder under ``meta_dir`` and the versions the records list (a read-only workspace's own
    first)."""

    def __init__(
        self, meta_dir: Path, keeper: RecordKeeper, shared: SharedRecords, guard: FolderGuard, within: Path | None
    ):
        self.meta_dir = meta_dir
        self._keeper = keeper
        self._shared = shared
        self._guard = guard
        self._within = within  # history folders are created only below this (None: the user data folder)

    def dir(self, entry: ImageEntry) -> Path:
        """The image's history folder in this user's records."""
        return self.meta_dir / HISTORY_DIR_NAME / entry.key

    def versions(self, key: str) -> list[Version]:
        """Every version recorded for the image, oldest first. A read-only workspace's own come first (made before
        this user's, which live in the fallback folder)."""
        try:
            rows = self._keeper.records.versions(key)
        except sqlite3.Error:  # the History then shows what the share has
            rows = []
        return [Version.from_row(r, self._shared.meta_dir) for r in self._shared.versions(key)] + [
            Version.from_row(r, self.meta_dir) for r in rows
        ]

    def keep(
        self,
        entry: ImageEntry,
        data: bytes,
        sha: str,
        suffix: str,
        ops: list[Op],
        *,
        note: str | None = None,
        source: str = "import",
    ) -> str:
        """Make sure ``data`` is readable in the history under its sha256; returns its path relative to the records
        folder. A recorded copy whose bytes differ (damaged, swapped, a same-size garbage file) or that is missing
        is written again; a copy that cannot be made refuses the write that asked for it."""
        recorded = [v.path for v in self.versions(entry.key) if v.sha256 == sha]
        for path in [*recorded, self.dir(entry) / f"{sha}{suffix}"]:
            if self._holds(path, sha):
                return (
                    path.relative_to(self.meta_dir).as_posix()
                    if self.meta_dir in path.parents
                    else self._copy_in(entry, data, sha, suffix)
                )
        rel = self._copy_in(entry, data, sha, suffix)
        if not recorded and note is not None:
            now = _now()
            ops.append(lambda r: r.add_version(VersionRow(entry.key, sha, now, None, source, None, rel, note=note)))
        return rel

    def _holds(self, path: Path, sha: str) -> bool:
        if path.is_symlink() or not self.inside(path):
            return False
        try:
            return hashlib.sha256(read_regular(path)).hexdigest() == sha
        except OSError:
            return False

    def inside(self, path: Path) -> bool:
        """Whether ``path`` lies in a history folder: this user's or a read-only workspace's own."""
        roots = {(self.meta_dir / HISTORY_DIR_NAME).resolve(), (self._shared.meta_dir / HISTORY_DIR_NAME).resolve()}
        try:
            resolved = path.resolve()
        except OSError:
            return False
        return any(r in resolved.parents for r in roots)

    def _copy_in(self, entry: ImageEntry, data: bytes, sha: str, suffix: str) -> str:
        path = self.dir(entry) / f"{sha}{suffix}"
        why = "the mask was not saved"
        try:
            if path.parent.exists() and not self.inside(path.parent / "x"):
                raise WorkspaceError(
                    f"{path.parent}: the history folder leads outside the workspace's records (a link); {why}"
                )
            write_bytes_atomic(path, data, within=self._within)
            self._guard.created(self.meta_dir)
            if not self._holds(path, sha):
                raise WorkspaceError(f"{path}: the history copy reads back different; {why}")
        except OSError as exc:
            raise _os_error(exc, path, f"the version could not be kept in the history; {why}") from None
        return path.relative_to(self.meta_dir).as_posix()
