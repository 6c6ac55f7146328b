"""The History of the open image: every saved version, a preview of one over the mask, restore.

A dock tabbed with the Review panel (so the window still fits 1280×800). Each row is one version: when, who,
what made it (the prediction, the tools that edited it: brush, eraser, trace, segment, topology, fill, clean-up;
an import, a restore), the model, and the pixels it added and removed against the version before. The
autosaves of one editing stretch are one row (the earlier ones under it), and a version recorded twice in a
row (a conflict prompt, then "keep mine") is one row. "Show over mask" draws the selected version in magenta over the
mask on screen; "Restore"
makes it the newest version (the restore is itself a version, and one undo step, so it can be taken back).
The same restore is in the Image menu as "Revert image to…".

Below, in a section of their own, the image's optic disc and artery/vein labels versions (``Workspace.calibre``):
"Restore" makes the selected one the file on disk as a new version, kept before it replaces the file, so restoring
another version takes it back, as for the mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...core.review.review_session import ReviewSession
from ...core.workspace import SaveConflict, Version, WorkspaceError, read_mask_or_none, readable_time
from ...core.workspace.calibre_records import WHAT, CalibreVersion
from ..common.prompter import Prompter
from ..common.settings import AppSettings
from ..common.workers import user_message
from .canvas import ImageCanvas, MaskOverlayItem

PREVIEW_COLOUR = (255, 64, 200)


class PreviewOverlay:
    """A second mask drawn over the canvas's mask in another colour (a version, or another grader's save)."""

    def __init__(self, canvas: ImageCanvas) -> None:
        self.canvas = canvas
        self.item = MaskOverlayItem(PREVIEW_COLOUR)
        self.item.setOpacity(0.6)
        self.item.setZValue(canvas.overlay.zValue() + 0.5)  # over the mask, under the tools
        self.item.setVisible(False)
        canvas.view.addItem(self.item)

    @property
    def active(self) -> bool:
        return self.item.isVisible()

    def show_mask(self, mask: np.ndarray) -> None:
        self.item.set_mask(mask)  # a mask read for the preview, owned by nobody else
        self.item.setVisible(True)

    def clear(self) -> None:
        self.item.setVisible(False)
        self.item.set_mask(None)


def version_time(v: Version) -> str:
    return readable_time(v.time)


def version_row(v: Version) -> list[str]:
    change = "" if v.added_prev is None else f"+{v.added_prev:,} / −{v.removed_prev or 0:,}"
    return [version_time(v), v.reviewer or "", v.source, v.model or "", change]


def version_text(v: Version, current: bool) -> str:
    row = version_row(v)
    return (
        f"{row[0]} · {row[1] or 'unknown'} · {row[2]}"
        + (f" · {row[4]} px" if row[4] else "")
        + (" · on disk now" if current else "")
    )


@dataclass
class HistoryRow:
    """One row of the History: a version (``newest``) and the earlier autosaves of its stretch under it."""

    newest: Version
    tools: list[str]
    autosave: bool
    earlier: list[Version] = field(default_factory=list)  # oldest first
    repeats: int = 0  # how many times the same content was recorded again right after (not shown as rows)

    @property
    def versions(self) -> list[Version]:
        return [*self.earlier, self.newest]


def _save_records(log: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The review log's saves by (sha256, time): a version and the save that wrote it share both."""
    return {
        (str(r.get("sha256")), str(r.get("time"))): r
        for r in log
        if r.get("action") in ("save", "autosave") and r.get("sha256")
    }


def history_rows(versions: list[Version], log: list[dict[str, Any]] | None = None) -> list[HistoryRow]:
    """The rows the History shows, oldest first. A version with the content of the one right before it is no row
    of its own (a conflict kept "mine" is recorded at the prompt and again at the save); consecutive autosaves
    by one reviewer are one row."""
    saves = _save_records(log or [])
    rows: list[HistoryRow] = []
    for v in versions:
        record = saves.get((v.sha256, v.time), {})
        tools = [str(t) for t in record.get("tools") or [] if t] or [v.source]
        autosave = record.get("action") == "autosave"
        last = rows[-1] if rows else None
        if last is not None and last.newest.sha256 == v.sha256:
            last.repeats += 1  # the same content again: the row stays, with the later record's words
            last.newest, last.autosave = v, last.autosave and autosave
            last.tools = last.tools + [t for t in tools if t not in last.tools]
            continue
        if (
            last is not None
            and autosave
            and last.autosave
            and last.newest.reviewer == v.reviewer
            and last.newest.note != "conflict"
            and v.note != "conflict"
        ):
            last.earlier.append(last.newest)
            last.newest = v
            last.tools = last.tools + [t for t in tools if t not in last.tools]
            continue
        rows.append(HistoryRow(v, tools, autosave))
    return rows


def row_cells(row: HistoryRow) -> list[str]:
    cells = version_row(row.newest)
    source = ", ".join(row.tools)
    if row.autosave:
        source += f" (autosaved ×{len(row.versions)})" if row.earlier else " (autosaved)"
    cells[2] = source
    if row.earlier:
        known = [v for v in row.versions if v.added_prev is not None]
        if known:  # the stretch's changes, save by save, summed
            cells[4] = f"+{sum(v.added_prev or 0 for v in known):,} / −{sum(v.removed_prev or 0 for v in known):,}"
        cells[0] = f"{version_time(row.earlier[0])} – {cells[0]}"
    return cells


class HistoryPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("history_panel")
        self.tree = QTreeWidget(self)
        self.tree.setObjectName("history_list")
        self.tree.setHeaderLabels(["Time", "Reviewer", "Source", "Model", "Pixels ±"])
        self.tree.setRootIsDecorated(True)  # a stretch of autosaves opens to show each one
        self.tree.setAlternatingRowColors(True)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setToolTip(
            "Every saved version of this image, newest first; ● marks the one on disk now.\n"
            "The autosaves of one editing stretch are one row: open it to see each.\n"
            "Pixels ±: added / removed against the version before."
        )
        self.preview_button = QPushButton("Show over mask", self)
        self.preview_button.setCheckable(True)
        self.preview_button.setToolTip("Draw the selected version in magenta over the mask on screen")
        self.restore_button = QPushButton("Restore", self)
        self.restore_button.setToolTip("Make the selected version the newest one (undo takes it back)")
        self.note = QLabel("", self)
        self.note.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.preview_button)
        row.addWidget(self.restore_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.tree, 1)
        lay.addLayout(row)
        lay.addWidget(self.note)
        # The optic disc and A/V labels versions, a section of their own (they are not mask versions).
        self.calibre_title = QLabel("Optic disc and artery/vein labels", self)
        self.calibre_tree = QTreeWidget(self)
        self.calibre_tree.setObjectName("calibre_history_list")
        self.calibre_tree.setHeaderLabels(["Time", "Reviewer", "What", "Note"])
        self.calibre_tree.setRootIsDecorated(False)
        self.calibre_tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.calibre_tree.setToolTip("Every saved optic disc and A/V labels version of this image, newest first")
        self.calibre_restore_button = QPushButton("Restore disc / labels", self)
        self.calibre_restore_button.setToolTip("Make the selected disc or labels version the newest one")
        lay.addWidget(self.calibre_title)
        lay.addWidget(self.calibre_tree, 1)
        lay.addWidget(self.calibre_restore_button)
        self.versions: list[Version] = []
        self._items: list[QTreeWidgetItem] = []
        self.calibre_versions: list[CalibreVersion] = []  # newest first, in the order of the tree's items

    def show_versions(
        self, versions: list[Version], current_sha: str | None, log: list[dict[str, Any]] | None = None
    ) -> None:
        """``log``: the image's review log, which says which versions were autosaves and the tools of each."""
        before = self.selected()
        keep = before.sha256 if before is not None else None  # a refresh keeps the version the grader looks at
        self.tree.clear()
        self.versions = []  # every row's version, newest first, in the order of the tree's items
        self._items = []
        marked = False
        for row in reversed(history_rows(versions, log)):
            cells = row_cells(row)
            if row.newest.sha256 == current_sha and not marked:  # a restore repeats an older content: mark the newest
                cells[0], marked = "● " + cells[0], True
            item = self._item(row.newest, cells, row.repeats)
            self.tree.addTopLevelItem(item)
            for v in reversed(row.earlier):
                child = version_row(v)
                child[2] = "autosave"
                item.addChild(self._item(v, child, 0))
        if keep is not None:
            self.select(keep)
        self.note.setText("" if versions else "No saved version yet: the first save makes one.")
        self.preview_button.setEnabled(bool(versions))
        self.restore_button.setEnabled(bool(versions))

    def show_calibre_versions(self, versions: list[CalibreVersion], current: dict[str, str | None]) -> None:
        """``current``: the sha256 on disk now of each kind ("disc", "av"); its newest version is marked ●."""
        self.calibre_tree.clear()
        self.calibre_versions = list(reversed(versions))
        marked: set[str] = set()
        for v in self.calibre_versions:
            when = readable_time(v.time)
            if v.sha256 == current.get(v.kind) and v.kind not in marked:
                when = "● " + when
                marked.add(v.kind)
            item = QTreeWidgetItem([when, v.reviewer or "", WHAT[v.kind], v.note or ""])
            item.setToolTip(0, f"sha256 {v.sha256}\n{v.path}")
            self.calibre_tree.addTopLevelItem(item)
        self.calibre_restore_button.setEnabled(bool(versions))

    def selected_calibre(self) -> CalibreVersion | None:
        item = self.calibre_tree.currentItem()
        i = self.calibre_tree.indexOfTopLevelItem(item) if item is not None else -1
        return self.calibre_versions[i] if 0 <= i < len(self.calibre_versions) else None

    def _item(self, v: Version, cells: list[str], repeats: int) -> QTreeWidgetItem:
        item = QTreeWidgetItem(cells)
        item.setData(0, Qt.ItemDataRole.UserRole, len(self.versions))
        self.versions.append(v)
        self._items.append(item)
        item.setToolTip(
            0,
            f"sha256 {v.sha256}\n{v.path}"
            + (f"\n{v.note}" if v.note else "")
            + (f"\nrecorded {repeats + 1} times in a row" if repeats else ""),
        )
        if v.added_pred is not None:
            item.setToolTip(4, f"against the prediction: +{v.added_pred:,} / −{v.removed_pred or 0:,}")
        return item

    def select(self, sha256: str) -> bool:
        """Make the newest version with this content the selected row."""
        for v, item in zip(self.versions, self._items, strict=False):
            if v.sha256 == sha256:
                stretch = item.parent()  # an earlier autosave sits under its stretch's row
                if stretch is not None:
                    stretch.setExpanded(True)
                self.tree.setCurrentItem(item)
                return True
        return False

    def selected(self) -> Version | None:
        item = self.tree.currentItem()
        i = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        return self.versions[i] if isinstance(i, int) and 0 <= i < len(self.versions) else None


class HistoryController(QObject):
    """The History dock of the open image and the "Revert image to…" action. The composition root places the
    dock (tabbed with the Review panel) and the action (in the Image menu)."""

    restored = Signal(str)  # the key of the image an earlier version was restored to
    calibre_restored = Signal(str)  # the key of the image whose disc or A/V labels version was restored

    def __init__(
        self,
        review: ReviewSession,
        canvas: ImageCanvas,
        settings: AppSettings,
        prompter: Prompter,
        show_message: Callable[[str, str], None],
        show_status: Callable[[str, int], None],
        save_edits: Callable[[], bool],
        resolve_conflict: Callable[[SaveConflict], object],
        parent: QWidget | None = None,
    ) -> None:
        """``save_edits``: saves the open image's unsaved edits by hand (False: they were not saved);
        ``resolve_conflict``: asks the grader what to do when another window saved meanwhile."""
        super().__init__(parent)
        self.review, self.settings, self.prompter = review, settings, prompter
        self.show_message, self.show_status = show_message, show_status
        self.save_edits, self.resolve_conflict = save_edits, resolve_conflict
        self.panel = HistoryPanel()
        self.preview = PreviewOverlay(canvas)
        self.dock = QDockWidget("History", parent)
        self.dock.setObjectName("history_dock")
        self.dock.setWidget(self.panel)
        self.dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        p = self.panel
        p.preview_button.toggled.connect(self._preview_toggled)
        p.tree.currentItemChanged.connect(lambda *_: self._preview_toggled(p.preview_button.isChecked()))
        p.restore_button.clicked.connect(self.restore_selected)
        p.calibre_restore_button.clicked.connect(lambda _c=False: self.restore_calibre_selected())
        # A preview never outlives its tab: a magenta mask nobody remembers turning on would mislead.
        self.dock.visibilityChanged.connect(self._dock_visible)
        review.image_opened.connect(lambda _s: self.refresh())
        review.image_closed.connect(self._closed)
        review.saved.connect(lambda *_: self.refresh())
        review.status_changed.connect(lambda _k: self.refresh())
        self.revert_action = QAction("Revert image to…", self)
        self.revert_action.setToolTip("Make an earlier saved version of this image the newest one")
        self.revert_action.triggered.connect(lambda _c=False: self.revert_dialog())
        self.refresh()

    def refresh(self) -> None:
        s, ws = self.review.image, self.review.workspace
        self.revert_action.setEnabled(s is not None)
        if s is None or ws is None:
            self.panel.show_versions([], None)
            self.panel.show_calibre_versions([], {})
            self.panel.note.setText("Open an image to see its saved versions.")
            return
        self.panel.show_versions(ws.versions(s.entry), ws.current_sha(s.entry), ws.review_log(s.entry.key))
        key = s.entry.key
        current = {kind: ws.calibre.current_sha(key, kind) for kind in ("disc", "av")}
        self.panel.show_calibre_versions(ws.calibre.versions(key), current)
        if ws.read_only_records is not None:  # a newer app's records: looked at, never changed
            self.panel.calibre_restore_button.setEnabled(False)
        if not ws.gt_writable:  # a version can be looked at, not restored, in a read-only workspace
            self.panel.restore_button.setEnabled(False)
            self.revert_action.setEnabled(False)

    def _dock_visible(self, visible: bool) -> None:
        if not visible:
            self.panel.preview_button.setChecked(False)

    def _closed(self) -> None:
        self.preview.clear()
        with_blocked = self.panel.preview_button.blockSignals(True)
        self.panel.preview_button.setChecked(False)
        self.panel.preview_button.blockSignals(with_blocked)
        self.refresh()

    def _preview_toggled(self, on: bool) -> None:
        v = self.panel.selected()
        s = self.review.image
        if not on or v is None or s is None:
            self.preview.clear()
            return
        mask = read_mask_or_none(v.path)
        if mask is None or mask.shape != s.document.shape:
            self.preview.clear()
            self.show_message(f"{v.path}: this version cannot be shown (unreadable or another size)", "warning")
            return
        self.preview.show_mask(mask)
        self.show_status(f"Showing the version of {version_time(v)} in magenta", 4000)

    def show_over_mask(self, sha256: str) -> bool:
        """Draw a version over the mask on screen, with its History row selected (the conflict's "View both")."""
        self.refresh()
        if not self.panel.select(sha256):
            return False
        self.dock.show()
        self.dock.raise_()
        if self.panel.preview_button.isChecked():
            self._preview_toggled(True)
        else:
            self.panel.preview_button.setChecked(True)
        return self.preview.active

    def restore_selected(self) -> bool:
        v = self.panel.selected()
        return v is not None and self.restore(v)

    def revert_dialog(self) -> bool:
        s, ws = self.review.image, self.review.workspace
        if s is None or ws is None:
            return False
        versions = list(reversed(ws.versions(s.entry)))
        if not versions:
            self.show_message(f"{s.entry.name} has no saved version yet.", "info")
            return False
        current = ws.current_sha(s.entry)
        newest_current = next((v for v in versions if v.sha256 == current), None)
        i = self.prompter.choose_item(
            "Revert image to…",
            f"Versions of {s.entry.name}, newest first:",
            [version_text(v, v is newest_current) for v in versions],
        )
        return i is not None and self.restore(versions[i])

    def restore_calibre_selected(self) -> bool:
        v = self.panel.selected_calibre()
        return v is not None and self.restore_calibre(v)

    def restore_calibre(self, v: CalibreVersion) -> bool:
        """Make an earlier disc or A/V labels version the newest (kept before it replaces the file, one version, so
        restoring another takes it back); a damaged copy or a read-only folder: one line, nothing changed."""
        s, ws = self.review.image, self.review.workspace
        if s is None or ws is None:
            return False
        try:
            ws.calibre.restore(s.entry.key, v.kind, v.sha256, reviewer=self.settings.reviewer)
        except (WorkspaceError, OSError) as exc:
            self.show_message(f"Not restored: {user_message(exc)}", "error")
            return False
        self.refresh()
        self.calibre_restored.emit(s.entry.key)
        self.show_message(
            f"The {WHAT[v.kind]} of {readable_time(v.time)} is now the newest version of {s.entry.name} "
            "(restoring another version takes it back).",
            "info",
        )
        return True

    def restore(self, v: Version) -> bool:
        s = self.review.image
        if s is None:
            return False
        if s.document.unsaved and not self.save_edits():
            return False  # unsaved edits first become a version of their own
        try:
            self.review.restore(v.sha256, self.settings.reviewer)
        except SaveConflict as conflict:
            self.resolve_conflict(conflict)
            return False
        except (WorkspaceError, OSError) as exc:
            self.show_message(f"Not restored: {user_message(exc)}", "error")
            return False
        self.preview.clear()
        self.panel.preview_button.setChecked(False)
        self.restored.emit(s.key)
        self.show_message(
            f"The version of {version_time(v)} is now the newest version of {s.entry.name} "
            "(Ctrl+Z, or restoring another version, takes it back).",
            "info",
        )
        return True
