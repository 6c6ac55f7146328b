"""The image browser: thumbnails, review status and model uncertainty; sort and filter."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core.model.tasks import THUMB_SIZE
from ...core.workspace import STATUSES, Workspace

KeyRole = Qt.ItemDataRole.UserRole + 1
StatusRole = Qt.ItemDataRole.UserRole + 2
UncertaintyRole = Qt.ItemDataRole.UserRole + 3
ErrorRole = Qt.ItemDataRole.UserRole + 4
DirtyRole = Qt.ItemDataRole.UserRole + 5
DiceRole = Qt.ItemDataRole.UserRole + 6  # the prediction's Dice against the reference, -1 when unknown
ReferenceRole = Qt.ItemDataRole.UserRole + 7  # the image came with a mask (compare mode's reference)

STATUS_COLOURS = {
    "new": QColor(120, 126, 138),
    "predicted": QColor(66, 133, 244),
    "edited": QColor(245, 166, 35),
    "approved": QColor(52, 168, 83),
    "error": QColor(219, 68, 55),
}
SORT_KEYS = ("Name", "Uncertainty (high first)", "Status")
NOT_APPROVED = "not approved"  # the filter that keeps every status but approved
UNCERTAINTY_MEANING = (
    "of the vessel area the model found, the share it was unsure about (probability between 0.25 and 0.75)"
)
UNCERTAINTY_TIP = (
    "uncertain {:.1%}: " + UNCERTAINTY_MEANING + ".\nHigher means more to check: sort by uncertainty "
    "to review those first."
)


def rgb_to_pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, w * 3, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img)


class ImageListModel(QAbstractListModel):
    thumbnails_wanted = Signal(list)  # keys whose thumbnails were asked for and are not loaded

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.workspace: Workspace | None = None
        self._keys: list[str] = []
        self._row: dict[str, int] = {}
        self._thumbs: dict[str, QPixmap | None] = {}
        self._requested: set[str] = set()
        self._errors: dict[str, str] = {}
        self._dirty: set[str] = set()
        self._dice: dict[str, float] = {}
        self._has_reference: dict[str, bool] = {}

    def set_workspace(self, workspace: Workspace | None) -> None:
        self.beginResetModel()
        self.workspace = workspace
        self._keys = [e.key for e in workspace.entries] if workspace else []
        self._row = {k: i for i, k in enumerate(self._keys)}
        self._thumbs.clear()
        self._requested.clear()
        self._errors.clear()
        self._dirty.clear()
        self._dice.clear()
        self._has_reference.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._keys)

    def index_of(self, key: str) -> QModelIndex:
        row = self._row.get(key)
        return self.index(row) if row is not None else QModelIndex()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.workspace is None:
            return None
        key = self._keys[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.workspace.entry(key).name
        if role == KeyRole:
            return key
        if role == StatusRole:
            return "error" if key in self._errors else self.workspace.status(key)
        if role == UncertaintyRole:
            u = self.workspace.uncertainty(key)
            return -1.0 if u is None else u
        if role == ErrorRole:
            return self._errors.get(key)
        if role == DirtyRole:
            return key in self._dirty
        if role == DiceRole:
            return self._dice.get(key, -1.0)
        if role == ReferenceRole:
            return self.has_reference(key)
        if role == Qt.ItemDataRole.DecorationRole:
            if key not in self._thumbs and key not in self._requested:
                self._requested.add(key)
                self.thumbnails_wanted.emit([key])
            return self._thumbs.get(key)
        if role == Qt.ItemDataRole.ToolTipRole:
            e = self.workspace.entry(key)
            tip = f"{e.path}\nstatus: {self.workspace.status(key)}"
            u = self.workspace.uncertainty(key)
            if u is not None:
                tip += f"\n{UNCERTAINTY_TIP.format(u)}"
            if key in self._dice:
                tip += f"\nmodel prediction vs reference: Dice {self._dice[key]:.3f}"
            elif self.has_reference(key):
                tip += "\nhas a reference mask (compare mode: K, D)"
            if key in self._errors:
                tip += f"\n{self._errors[key]}"
            return tip
        return None

    def _changed(self, key: str) -> None:
        row = self._row.get(key)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def set_thumbnail(self, key: str, rgb: np.ndarray | None) -> None:
        self._thumbs[key] = rgb_to_pixmap(rgb) if rgb is not None else None
        self._changed(key)

    def set_error(self, key: str, message: str | None) -> None:
        if message:
            self._errors[key] = message
        else:
            self._errors.pop(key, None)
        self._changed(key)

    def set_dirty(self, key: str, dirty: bool) -> None:
        (self._dirty.add if dirty else self._dirty.discard)(key)
        self._changed(key)

    def refresh(self, key: str) -> None:
        self._changed(key)

    def has_reference(self, key: str) -> bool:
        if self.workspace is None:
            return False
        if key not in self._has_reference:
            from ...core.review.compare import has_reference

            self._has_reference[key] = has_reference(self.workspace, self.workspace.entry(key))
        return self._has_reference[key]

    def dice_values(self) -> dict[str, float]:
        return dict(self._dice)

    def set_dice(self, key: str, dice: float | None) -> None:
        """The model prediction's Dice against the reference (None: unknown), for the Dice sort."""
        if dice is None or dice != dice:
            self._dice.pop(key, None)
        else:
            self._dice[key] = float(dice)
        self._changed(key)


class ImageListFilter(QSortFilterProxyModel):
    """Sorts and filters only when asked (``apply``): predictions and reviews arrive while the grader works,
    and re-sorting on each would move the rows under the mouse and the selected one out of view."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status_filter: str | None = None
        self.sort_key = SORT_KEYS[0]
        self.setDynamicSortFilter(False)

    def set_status_filter(self, status: str | None) -> None:
        self.status_filter = status
        self.invalidate()

    def set_sort_key(self, key: str) -> None:
        self.sort_key = key
        self.invalidate()
        self.sort(0)

    def apply(self) -> None:
        """Filter and sort again with the current data."""
        self.invalidate()
        self.sort(0)

    def filterAcceptsRow(self, row: int, parent) -> bool:
        if self.status_filter is None:
            return True
        status = self.sourceModel().index(row, 0, parent).data(StatusRole)
        if self.status_filter == NOT_APPROVED:
            return status != "approved"
        return status == self.status_filter

    def lessThan(self, left: QModelIndex | QPersistentModelIndex, right: QModelIndex | QPersistentModelIndex) -> bool:
        if self.sort_key.startswith("Uncertainty"):
            a, b = left.data(UncertaintyRole), right.data(UncertaintyRole)
            if a != b:
                return a > b
        elif self.sort_key.startswith("Dice"):
            a, b = left.data(DiceRole), right.data(DiceRole)
            a, b = (2.0 if a is None or a < 0 else a), (2.0 if b is None or b < 0 else b)  # unknown ones last
            if a != b:
                return a < b
        elif self.sort_key == "Status":
            order = {s: i for i, s in enumerate(("error", *STATUSES))}
            a, b = order.get(left.data(StatusRole), 0), order.get(right.data(StatusRole), 0)
            if a != b:
                return a < b
        return left.row() < right.row()


class ImageItemDelegate(QStyledItemDelegate):
    ROW_HEIGHT = THUMB_SIZE + 12

    def sizeHint(self, option, index) -> QSize:
        return QSize(220, self.ROW_HEIGHT)

    def paint(self, painter: QPainter, option, index) -> None:
        painter.save()
        r = option.rect
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(r, option.palette.highlight())
            text_colour = option.palette.highlightedText().color()
        else:
            text_colour = option.palette.text().color()
        thumb = index.data(Qt.ItemDataRole.DecorationRole)
        tr = QRect(r.left() + 6, r.top() + 6, THUMB_SIZE, THUMB_SIZE)
        painter.fillRect(tr, QColor(20, 20, 20))
        if isinstance(thumb, QPixmap) and not thumb.isNull():
            pm = thumb.scaled(tr.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
            painter.drawPixmap(
                tr.left() + (tr.width() - pm.width()) // 2, tr.top() + (tr.height() - pm.height()) // 2, pm
            )
        x = tr.right() + 10
        painter.setPen(text_colour)
        f = QFont(option.font)
        f.setBold(True)
        painter.setFont(f)
        name = index.data(Qt.ItemDataRole.DisplayRole) or ""
        if index.data(DirtyRole):
            name += "  \u25cf"  # unsaved edits
        painter.drawText(
            QRect(x, r.top() + 8, r.right() - x - 4, 20),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            option.fontMetrics.elidedText(name, Qt.TextElideMode.ElideMiddle, r.right() - x - 4),
        )
        status = index.data(StatusRole) or "new"
        colour = STATUS_COLOURS.get(status, STATUS_COLOURS["new"])
        if status == "new" and index.data(ReferenceRole):
            status = "has reference"  # a data set's mask: not "new" work, the reference compare mode uses
        f.setBold(False)
        f.setPointSizeF(max(7.0, f.pointSizeF() - 1))
        painter.setFont(f)
        pill = QRect(x, r.top() + 32, max(74, painter.fontMetrics().horizontalAdvance(status) + 14), 18)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(pill, 9, 9)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, status)
        notes = self.note_line(index, painter.fontMetrics(), r.right() - x)
        if notes:
            painter.setPen(text_colour)
            painter.drawText(QRect(x, r.top() + 54, r.right() - x, 18), Qt.AlignmentFlag.AlignLeft, notes)
        painter.restore()

    @staticmethod
    def notes(index) -> list[str]:
        """The row's numbers, the one the list is sorted by first: elided at the right, "Dice vs ref 0.7…" hid
        the very number the rows were in the order of (issue 27)."""
        u = index.data(UncertaintyRole)
        dice = index.data(DiceRole)
        uncertain = f"uncertain {u:.1%}" if u is not None and u >= 0 else None
        agreement = f"Dice {dice:.3f} vs ref" if dice is not None and dice >= 0 else None
        sort_key = getattr(index.model(), "sort_key", "")
        first, second = (agreement, uncertain) if sort_key.startswith("Dice") else (uncertain, agreement)
        return [n for n in (first, second) if n]

    def note_line(self, index, metrics, width: int) -> str:
        """The notes line as painted in ``width`` pixels."""
        return metrics.elidedText("  ·  ".join(self.notes(index)), Qt.TextElideMode.ElideRight, width)


class ImageListPanel(QWidget):
    """The list with its filter and sort. New predictions and reviews update the rows in place; the order
    and the filter are applied again only when the grader asks (changing them, or "Sort again"), and the
    selected image stays selected and in view when they are."""

    image_activated = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ImageListModel(self)
        self.proxy = ImageListFilter(self)
        self.proxy.setSourceModel(self.model)
        self.view = QListView(self)
        self.view.setModel(self.proxy)
        self.view.setItemDelegate(ImageItemDelegate(self.view))
        self.view.setUniformItemSizes(True)  # thousands of rows stay fast
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.clicked.connect(self._activated)
        self.view.activated.connect(self._activated)
        self.status_combo = QComboBox(self)
        self.status_combo.addItem("All images", None)
        self.status_combo.addItem("Not approved yet", NOT_APPROVED)
        for s in (*STATUSES, "error"):
            self.status_combo.addItem(s.capitalize(), s)
        self.status_combo.currentIndexChanged.connect(
            lambda _i: self._keeping_selection(self.proxy.set_status_filter, self.status_combo.currentData())
        )
        self.sort_combo = QComboBox(self)
        self.sort_combo.addItems(SORT_KEYS)
        self.sort_combo.setItemData(1, f"Most uncertain first: {UNCERTAINTY_MEANING}", Qt.ItemDataRole.ToolTipRole)
        self.sort_combo.currentTextChanged.connect(lambda key: self._keeping_selection(self.proxy.set_sort_key, key))
        self.resort_button = QToolButton(self)
        self.resort_button.setObjectName("resort_button")
        self.resort_button.setText("Sort again")
        self.resort_button.setToolTip(
            "New predictions and reviews do not move the rows while you work: apply the sort and the filter to them now"
        )
        self.resort_button.setEnabled(False)
        self.resort_button.clicked.connect(self.resort)
        self.model.dataChanged.connect(self._data_changed)
        self.count_label = QLabel(self)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.rowsRemoved.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        top = QHBoxLayout()
        top.addWidget(self.status_combo, 1)
        top.addWidget(self.sort_combo, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        bottom.addWidget(self.resort_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addLayout(bottom)
        self.proxy.sort(0)

    def _data_changed(self, *_args) -> None:
        # Under "Name" with no filter nothing a prediction or review changes can move a row.
        if self.proxy.sort_key != SORT_KEYS[0] or self.proxy.status_filter is not None:
            self.resort_button.setEnabled(True)

    def current_key(self) -> str | None:
        idx = self.view.currentIndex()
        return idx.data(KeyRole) if idx.isValid() else None

    def _keeping_selection(self, change, *args) -> None:
        key = self.current_key()
        change(*args)
        self.resort_button.setEnabled(False)
        if key is not None:
            self.select(key)

    def resort(self) -> None:
        """Apply the sort and filter to the current statuses and uncertainties; the selection stays."""
        self._keeping_selection(self.proxy.apply)

    def _update_count(self, *args) -> None:
        self.count_label.setText(
            f"{self.proxy.rowCount()} of {self.model.rowCount()} image{'' if self.model.rowCount() == 1 else 's'}"
        )

    def set_workspace(self, workspace: Workspace | None) -> None:
        self.model.set_workspace(workspace)
        self.resort_button.setEnabled(False)
        self._update_count()

    def _activated(self, index: QModelIndex) -> None:
        key = index.data(KeyRole)
        if key:
            self.image_activated.emit(key)

    def select(self, key: str) -> None:
        idx = self.proxy.mapFromSource(self.model.index_of(key))
        if idx.isValid():
            self.view.setCurrentIndex(idx)
            self.view.scrollTo(idx)

    def add_sort_key(self, name: str, tip: str = "") -> None:
        """A further sort order (compare mode's Dice against the reference); ``ImageListFilter`` knows it."""
        self.sort_combo.addItem(name)
        if tip:
            self.sort_combo.setItemData(self.sort_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

    def neighbour(self, key: str | None, step: int) -> str | None:
        """The key ``step`` rows away in the current sort and filter order (None at the ends)."""
        n = self.proxy.rowCount()
        if n == 0:
            return None
        if key is None:
            return self.proxy.index(0, 0).data(KeyRole)
        idx = self.proxy.mapFromSource(self.model.index_of(key))
        row = idx.row() if idx.isValid() else -1
        new = row + step
        if not 0 <= new < n:
            return None
        return self.proxy.index(new, 0).data(KeyRole)
