"""What the store must know about the folders it writes: which filesystem they are on, and whether they are still
the folders it opened. Qt-free.

SQLite's WAL needs shared memory between the processes that use a file, which a network filesystem does not give
("WAL does not work over a network filesystem", sqlite.org/wal.html); its rollback journal relies on file locks,
which NFS, SMB and the like do provide. So the store asks the mount table which filesystem holds the workspace.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .common import WorkspaceGoneError, _identity

# Filesystem types (as the Linux mount table names them) whose files other machines write too.
NETWORK_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "ncpfs",
        "afs",
        "coda",
        "9p",
        "ceph",
        "glusterfs",
        "lustre",
        "gpfs",
        "beegfs",
        "ocfs2",
        "gfs2",
        "davfs",
        "fuse.sshfs",
        "fuse.glusterfs",
        "fuse.davfs2",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.cephfs",
        "fuse.gcsfuse",
        "fuse.juicefs",
        "afpfs",
        "webdav",
    }
)


def _unescape(field_text: str) -> str:
    """The mount table writes space, tab, newline and backslash in paths as octal escapes (\\040 ...)."""
    out, i = [], 0
    while i < len(field_text):
        if field_text[i] == "\\" and i + 3 < len(field_text) + 0 and field_text[i + 1 : i + 4].isdigit():
            out.append(chr(int(field_text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field_text[i])
            i += 1
    return "".join(out)


def mount_type(path: Path, mounts: str | None = None) -> str | None:
    """The filesystem type of the mount that holds ``path`` (Linux: /proc/self/mounts), or None where unknown."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = str(path)
    best, best_type = "", None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point, kind = _unescape(parts[1]), parts[2]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, kind
    return best_type


def is_network_folder(path: Path) -> bool:
    """True where other machines may write the folder: a network filesystem in the mount table, or on Windows a
    UNC path or a mapped network drive."""
    if sys.platform == "win32":
        text = str(path)
        if text.startswith("\\\\"):
            return True
        try:
            import ctypes

            drive = os.path.splitdrive(text)[0] + "\\"
            return bool(ctypes.windll.kernel32.GetDriveTypeW(drive) == 4)  # type: ignore[attr-defined]  # REMOTE
        except (AttributeError, OSError):
            return False
    kind = mount_type(path)
    return kind is not None and kind.lower() in NETWORK_TYPES


@dataclass
class FolderGuard:
    """The folders a store writes into, by device and inode as they were at open: a folder renamed, moved, replaced
    or unmounted while open is refused like a renamed workspace, instead of writing to the old inode or into a
    ghost folder created at the old path."""

    root: Path
    _ids: dict[Path, tuple[int, int] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.watch(self.root)

    def watch(self, folder: Path) -> None:
        """Remember ``folder`` as it is now (a folder that does not exist yet is remembered once it does)."""
        self._ids[folder] = _identity(folder)

    def created(self, folder: Path) -> None:
        """A write just made ``folder`` (a first save makes ground_truth/): from now on it is watched."""
        if self._ids.get(folder) is None:
            self.watch(folder)

    def check(self, *folders: Path) -> None:
        """Raise WorkspaceGoneError when the root or any of ``folders`` is not the folder it was at open."""
        for folder in (self.root, *folders):
            known = self._ids.get(folder)
            now = _identity(folder)
            if folder not in self._ids or known is None:
                if now is not None:
                    self._ids[folder] = now  # created since open (a first save makes ground_truth/)
                continue
            if now != known:
                what = "workspace folder" if folder == self.root else f"folder {folder.name}/"
                raise WorkspaceGoneError(
                    f"{folder}: the {what} has gone or was replaced (renamed, moved or "
                    "unmounted) while open; nothing was saved. Open the workspace again."
                )
