"""A read-only workspace's own records (a colleague's review on a share this user cannot write): read, never
written, so its statuses and history show through beside this user's records in the fallback folder. Qt-free."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .common import META_DIR_NAME, RECORDS_NAME
from .records import ImageRow, VersionRow, image_rows, versions_of


class SharedRecords:
    def __init__(self, root: Path, active: bool):
        self.meta_dir = root / META_DIR_NAME
        self._db = self.meta_dir / RECORDS_NAME
        self._active = active  # False: the workspace is writable and its records are this user's own
        self.images: dict[str, ImageRow] = {}
        if active:
            try:
                self.images = image_rows(self._strict_query)
            except sqlite3.Error:
                pass

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of the workspace's own records file (empty when there is none or it cannot be read)."""
        try:
            return self._strict_query(sql, params)
        except sqlite3.Error:
            return []

    def _strict_query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self._active or not self._db.is_file():
            return []
        error: sqlite3.Error | None = None
        # mode=ro sees a live writer's WAL; on a truly read-only medium only immutable=1 opens at all.
        for query in ("mode=ro", "immutable=1"):
            try:
                con = sqlite3.connect(f"{self._db.as_uri()}?{query}", uri=True)
                try:
                    return con.execute(sql, params).fetchall()
                finally:
                    con.close()
            except sqlite3.Error as exc:
                error = exc
        if error is not None and "no such column" in str(error):
            raise error  # an older schema: image_rows asks again without the newer column
        return []

    def versions(self, key: str | None = None) -> list[VersionRow]:
        """Its versions (paths relative to ``<workspace>/.retina``): its history stays visible and restorable."""
        return versions_of(self._query, key) if self._active else []
