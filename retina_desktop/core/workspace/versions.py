"""A kept mask version as the History shows it, and the conflict a save meets. Qt-free."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import WorkspaceError, readable_time
from .records import VersionRow


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
    def from_row(cls, row: VersionRow, meta_dir: Path) -> Version:
        return cls(
            row.image,
            row.sha256,
            row.time,
            row.reviewer,
            row.source,
            row.model,
            meta_dir / row.path,
            row.added_prev,
            row.removed_prev,
            row.added_pred,
            row.removed_pred,
            row.note,
        )

    def to_json(self) -> dict[str, Any]:
        d = {
            k: getattr(self, k)
            for k in (
                "sha256",
                "time",
                "reviewer",
                "source",
                "model",
                "added_prev",
                "removed_prev",
                "added_pred",
                "removed_pred",
                "note",
            )
        }
        d["path"] = str(self.path)
        return d


class SaveConflict(WorkspaceError):
    """Another window or grader saved this image since it was loaded. Nothing was overwritten: ``theirs``
    is on disk, ``mine`` is in the history. Offer: keep mine / take theirs / view both
    (``Workspace.resolve_conflict``)."""

    def __init__(self, key: str, expected_sha: str | None, mine: Version, theirs: Version):
        when = readable_time(theirs.time)
        who = f"{theirs.reviewer} at {when}" if theirs.reviewer else f"at {when}"
        super().__init__(
            f"{key}: another window or grader saved this mask ({who}) since it was opened; nothing "
            "was overwritten, both versions are in the history"
        )
        self.key, self.expected_sha, self.mine, self.theirs = key, expected_sha, mine, theirs


def earlier_files(versions: list[Version], current_sha: str | None) -> list[Path]:
    """The history files of ``versions`` other than the content on disk now, oldest first, each once."""
    seen, out = {current_sha}, []
    for v in versions:
        if v.sha256 not in seen and v.path.is_file():
            seen.add(v.sha256)
            out.append(v.path)
    return out
