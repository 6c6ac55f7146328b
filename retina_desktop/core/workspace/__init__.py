"""The workspace store: the images of a folder, their masks and every version of them, and the app's records.

``Workspace`` (``workspace.py``) composes the parts: ``layout`` (ImageEntry, discovery), ``records`` (typed rows,
migrations keyed by ``PRAGMA user_version``), ``opening`` (trust, migrate or rebuild the records, never half),
``keeper`` (record writes that wait for a full disk), ``masks`` (MaskStore: keep before replace), ``predictions``
(PredictionCache), ``verify``, ``filesystem`` (network folders, folders renamed while open). Qt-free.

Errors are ``WorkspaceError`` subclasses with one-line messages: ``SaveConflict`` (``.mine`` and ``.theirs`` are
both in the history; ``Workspace.resolve_conflict``), ``DiskFullError``, ``ReadOnlyWorkspaceError``,
``WorkspaceGoneError`` and ``RecordError`` (the mask is saved, its record is not: ``exc.retry()``).
"""

from .common import (
    META_DIR_NAME,
    RECORDS_NAME,
    DiskFullError,
    ReadOnlyWorkspaceError,
    RecordError,
    WorkspaceError,
    WorkspaceGoneError,
    parse_time,
    read_mask_or_none,
    readable_time,
)
from .layout import CORRECTED_DIR_NAME, ImageEntry, discover
from .masks import MASK_CACHE_SIZE
from .records import SCHEMA_VERSION, SOURCES, STATUSES
from .versions import SaveConflict, Version
from .windows import OPEN_WINDOW_STALE_S, OpenRecord
from .workspace import Workspace, photo_size, uncertainty_of, write_workspace_info

__all__ = [
    "CORRECTED_DIR_NAME",
    "MASK_CACHE_SIZE",
    "META_DIR_NAME",
    "OPEN_WINDOW_STALE_S",
    "RECORDS_NAME",
    "SCHEMA_VERSION",
    "SOURCES",
    "STATUSES",
    "DiskFullError",
    "ImageEntry",
    "OpenRecord",
    "ReadOnlyWorkspaceError",
    "RecordError",
    "SaveConflict",
    "Version",
    "Workspace",
    "WorkspaceError",
    "WorkspaceGoneError",
    "discover",
    "parse_time",
    "photo_size",
    "read_mask_or_none",
    "readable_time",
    "uncertainty_of",
    "write_workspace_info",
]
