"""Every change of an image's ground truth: save, withdraw, approve, restore, resolve a conflict. Qt-free.

Each is refused on a read-only workspace (ground-truth folder not writable, or records made by a newer app) and
followed by a re-read of the statuses, whatever its outcome. ``Workspace`` hands its calls here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from model_core.imageio import read_mask

from .common import _UNSET, ReadOnlyWorkspaceError, _user
from .layout import ImageEntry
from .masks import MaskStore, SaveRequest, VersionActions
from .statuses import StatusBook
from .versions import SaveConflict


class GroundTruthWriter:
    """``entry(key or entry)``: the workspace's own entry of that key; ``gt_writable()``: whether its ground-truth
    folders can be written; ``read_only_records()``: why nothing may be recorded (None: records can be written)."""

    def __init__(
        self,
        masks: MaskStore,
        actions: VersionActions,
        statuses: StatusBook,
        entry: Callable[[ImageEntry | str], ImageEntry],
        gt_writable: Callable[[], bool],
        read_only_records: Callable[[], str | None],
    ):
        self._masks = masks
        self._actions = actions
        self._statuses = statuses
        self._entry = entry
        self._gt_writable = gt_writable
        self._read_only_records = read_only_records

    def _check_writable(self, entry: ImageEntry) -> None:
        if not self._gt_writable():
            raise ReadOnlyWorkspaceError(
                f"{entry.gt_dir}: the workspace is read-only, ground truth cannot be "
                "saved here (export the masks to another folder instead)"
            )
        newer = self._read_only_records()
        if newer is not None:
            raise ReadOnlyWorkspaceError(f"{newer}; nothing was saved")

    def save(
        self,
        entry: ImageEntry,
        mask: np.ndarray,
        *,
        expected_sha: Any = _UNSET,
        source: str = "brush",
        reviewer: str | None = None,
        model: str | None = None,
        prediction: np.ndarray | None = None,
        status: str | None = None,
        action: str | None = None,
        **log_extra: Any,
    ) -> Path:
        """Save ``mask`` as the image's ground truth, keeping every version (see ``MaskStore.save``).
        ``expected_sha`` is the version the caller loaded (default: the one this Workspace loaded or saved last;
        None: "there was no mask")."""
        entry = self._entry(entry.key)  # with corrections kept apart, the entry that writes to corrected/
        self._check_writable(entry)
        req = SaveRequest(entry, mask, expected_sha, source, reviewer or _user(), model, status, action, log_extra)
        try:
            return self._masks.save(req, prediction)
        finally:
            self._statuses.refresh()

    def withdraw(
        self,
        entry: ImageEntry,
        expected_sha: str | None,
        *,
        status: str,
        reviewer: str | None = None,
        model: str | None = None,
    ) -> bool:
        """Every edit undone: remove the mask file this window wrote, if it is still ``expected_sha`` (its content
        stays in the history), and give the image ``status`` back. False: somebody saved since (nothing done)."""
        entry = self._entry(entry)
        self._check_writable(entry)
        try:
            return self._masks.withdraw(entry, expected_sha, status, {"reviewer": reviewer or _user(), "model": model})
        finally:
            self._statuses.refresh()

    def approve(
        self,
        entry: ImageEntry,
        *,
        reviewer: str | None = None,
        model: str | None = None,
        prediction: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Mark the mask on disk approved and log its pixel counts."""
        try:
            return self._actions.approve(
                self._entry(entry), reviewer=reviewer or _user(), model=model, prediction=prediction
            )
        finally:
            self._statuses.refresh()

    def restore(
        self, entry: ImageEntry | str, sha256: str, *, reviewer: str | None = None, expected_sha: Any = _UNSET
    ) -> Path:
        """Save an earlier version as a new version (source "restore"), so a restore can itself be undone."""
        e = self._entry(entry)
        mask = self._actions.checked_version(e, sha256)
        return self.save(
            e,
            mask,
            expected_sha=expected_sha,
            source="restore",
            reviewer=reviewer,
            status="edited",
            action="restore",
            restored_from=sha256,
        )

    def resolve_conflict(
        self,
        conflict: SaveConflict,
        keep: str,
        *,
        reviewer: str | None = None,
        model: str | None = None,
        prediction: np.ndarray | None = None,
        **log_extra: Any,
    ) -> Path | None:
        """After SaveConflict: keep "mine" (saved over theirs, which stays in the history) or "theirs" (returns
        None; the caller reloads it). The log gets the model and pixels as for any save."""
        if keep not in ("mine", "theirs"):
            raise ValueError("keep must be 'mine' or 'theirs'")
        if keep == "theirs":
            self._masks.take_loaded(conflict.key, conflict.theirs.sha256)
            return None
        mine = conflict.mine
        return self.save(
            self._entry(conflict.key),
            read_mask(mine.path),
            source=mine.source,
            expected_sha=conflict.theirs.sha256,
            reviewer=reviewer or mine.reviewer,
            action="save",
            model=model,
            prediction=prediction,
            resolved_conflict_with=conflict.theirs.sha256,
            **log_extra,
        )
