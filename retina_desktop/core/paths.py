"""Where the app keeps user data and caches: never inside the install folder.

``RETINA_DESKTOP_HOME`` (set by the tests, or by a user who wants a portable setup) overrides the
platform's standard folders.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import platformdirs

from model_core import resources as _engine_paths
from model_core.resources import APP_AUTHOR, APP_DIR_NAME


def _override() -> Path | None:
    home = os.environ.get("RETINA_DESKTOP_HOME")
    return Path(home) if home else None


def user_data_dir() -> Path:
    """The engine's user data folder (its model store lives there too), created on first use."""
    path = _engine_paths.user_data_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_cache_dir() -> Path:
    home = _override()
    path = home / "cache" if home else platformdirs.user_cache_path(APP_DIR_NAME, APP_AUTHOR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def demo_workspace_dir() -> Path:
    return user_data_dir() / "demo-workspace"


def log_file() -> Path:
    return user_data_dir() / "retina-desktop.log"


def file_signature(path: str | os.PathLike[str], label: str | None = None, digits: int = 16) -> str:
    """A cache key for a file: a digest of ``label`` (default: the path), its size and modification time,
    so an edited or replaced file gets a new key. A file that cannot be read is keyed by ``label`` alone."""
    label = str(path) if label is None else label
    try:
        st = os.stat(path)
        text = f"{label}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        text = label
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:digits]
