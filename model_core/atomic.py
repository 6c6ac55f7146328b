"""Atomic file writes: the file on disk is always either the old one or the complete new one.

The bytes go to a temporary file in the same folder, are flushed to disk, then renamed over the
target (an atomic replace on POSIX and on Windows). Killing the process at any moment leaves at most
a stray hidden ``.tmp`` file, never a truncated target.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once at import (on the importing thread), because
    # doing it per write would briefly give every other thread's new files mode 0666/0777.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", *, within: str | os.PathLike[str] | None = None
) -> Iterator[IO[Any]]:
    """``within``: missing folders are created only below this existing folder (see ``write_bytes_atomic``)."""
    path = Path(path)
    fd, tmp = _temporary_beside(path, within)
    try:
        # mkstemp makes the file private (0600); ground truth on a shared drive must stay readable by the
        # team, so keep the replaced file's mode, or give a new one the usual umask-based mode.
        try:
            perms = path.stat().st_mode & 0o777
        except FileNotFoundError:
            perms = 0o666 & ~_UMASK
        os.chmod(tmp, perms)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename == tmp:
            raise _naming(exc, path) from exc
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error about the file the user asked for: the hidden temporary file means nothing to them."""
    if exc.filename is not None and Path(exc.filename) == path.parent:
        return exc  # e.g. the folder cannot be created: naming the folder is right
    return type(exc)(exc.errno, exc.strerror, str(path))


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, within: str | os.PathLike[str] | None = None
) -> Path:
    """``within`` (a folder above ``path``): if it has gone (renamed, unmounted) a FileNotFoundError naming it is
    raised instead of re-creating it and the folders up to ``path``, so a save never lands in a ghost copy."""
    with atomic_open(path, "wb", within=within) as fh:
        fh.write(data)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], data: object, **dump_options: Any) -> Path:
    with atomic_open(path, "w") as fh:
        json.dump(data, fh, **({"indent": 2} | dump_options))
    return Path(path)


def copy_file_atomic(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy ``source`` to ``path`` with the same guarantee; an OSError about the source names the source."""
    with open(source, "rb") as src, atomic_open(path, "wb") as fh:
        shutil.copyfileobj(src, fh, 1 << 20)
    return Path(path)


def _temporary_beside(path: Path, within: str | os.PathLike[str] | None = None) -> tuple[int, str]:
    """A new hidden temporary file in ``path``'s folder (created if needed); an OSError names ``path``."""
    try:
        if within is not None:
            _make_folders_within(Path(within), path.parent)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        # The name is cut: a temporary name 14 bytes longer than the target would refuse any name over 241 bytes.
        return tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if within is not None and exc.filename == str(within):
            raise  # the vanished folder itself is the news
        raise _naming(exc, path) from exc


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise now the OSError that a later atomic write of ``path`` would raise, before the work leading up to it."""
    if Path(path).is_dir():  # the temporary file could be made beside it; replacing a folder with it could not
        raise IsADirectoryError(errno.EISDIR, "is a folder; name a file to write", str(path))
    fd, tmp = _temporary_beside(Path(path))
    os.close(fd)
    os.unlink(tmp)


def _make_folders_within(root: Path, folder: Path) -> None:
    if not root.is_dir():
        raise FileNotFoundError(2, "folder not found (renamed, moved or unmounted?)", str(root))
    missing = []
    while folder != root and not folder.is_dir():
        if folder.parent == folder or root not in folder.parents:
            raise ValueError(f"{folder} is not inside {root}")
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)  # never parents=True: a vanished root must not come back as an empty folder


def write_bytes_unique(
    path: str | os.PathLike[str], data: bytes, *, within: str | os.PathLike[str] | None = None
) -> bool:
    """Write ``data`` atomically at ``path`` unless a file of that size is already there (content-addressed
    names: same name, same bytes). Returns True when written. Concurrent writers each use their own temporary
    name, and the last rename wins with identical bytes, so no reader ever sees a partial file."""
    path = Path(path)
    try:
        if path.stat().st_size == len(data):
            return False
    except FileNotFoundError:
        pass
    write_bytes_atomic(path, data, within=within)
    return True
