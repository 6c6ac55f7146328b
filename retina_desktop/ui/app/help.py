"""Help menu (getting started, keyboard shortcuts, About) and the first-run guide.

Built by the composition root (``features.build_features``) from the parts it uses. Nothing here is modal: the
shortcuts and About windows are non-modal dialogs and the guide is a panel above the image, so tests (and
graders) are never blocked by them.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QBoxLayout,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenuBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ... import APP_NAME, __version__
from ...core.model.model_service import ModelInfo
from ...core.review.review_session import ReviewSession
from ...core.workspace import Workspace
from ..common.context import ActionRegistry
from ..common.settings import AppSettings

# Mouse gestures and keys that are not actions of their own.
EXTRA_SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Middle-button drag", "Pan with any tool"),
    ("Mouse wheel", "Zoom"),
)

GUIDE_HTML = (
    "<b>Welcome to Retina Desktop.</b> This is the demo workspace: synthetic images made by the built-in "
    "generator, so you can try everything safely.<br>"
    "<b>1. Open your folder</b> of fundus photos (File ▸ Open folder…, Ctrl+O). "
    "<b>2. Review</b> each image: the model's prediction appears by itself (H: heat map, M: mask). "
    "<b>3. Paint</b> corrections: B brush, E eraser, G fill, [ and ] brush size, Ctrl+Z undo. "
    "<b>4. Save</b> the corrected mask as ground truth (Ctrl+S), or approve it and move on (Ctrl+Enter). "
    "<b>5. Fine-tune</b> the model on your saved corrections once you have a few, so it makes fewer "
    "mistakes on your images. All keys: Help ▸ Keyboard shortcuts (F1)."
)


def _plain(text: str) -> str:
    return text.replace("&", "").replace("…", "").strip()


def shortcut_rows(owner: QWidget) -> list[tuple[str, str]]:
    """(keys, what it does) for every action of ``owner`` (the window) that has a shortcut, then the mouse
    gestures.

    Read from the live actions, so actions added later (by other menus) are listed too.
    """
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for action in owner.findChildren(QAction):
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        keys = [k for k in keys if k]
        if not keys or not action.text():
            continue
        text = _plain(action.text())
        if text in seen:
            continue
        seen.add(text)
        rows.append((", ".join(keys), text))
    rows.extend(EXTRA_SHORTCUTS)
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, owner: QWidget) -> None:
        super().__init__(owner)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle(f"{APP_NAME} — Keyboard shortcuts")
        self.setModal(False)
        lay = QVBoxLayout(self)
        rows = shortcut_rows(owner)
        table = QTableWidget(len(rows), 2, self)
        table.setObjectName("shortcuts_table")
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        for i, (keys, text) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(keys))
            table.setItem(i, 1, QTableWidgetItem(text))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        self.table = table
        lay.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.resize(460, 560)

    def rows(self) -> list[tuple[str, str]]:
        return [(_text(self.table.item(i, 0)), _text(self.table.item(i, 1))) for i in range(self.table.rowCount())]


def _text(item: QTableWidgetItem | None) -> str:
    return item.text() if item is not None else ""


def about_facts(info: ModelInfo | None, error: str | None) -> list[tuple[str, str]]:
    """What support needs to know: app, model, torch, Qt, device, where the resources come from. ``info``: the
    model in use, None while it loads or when it failed (``error``)."""
    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    from model_core.resources import resources_dir

    if info is not None:
        model, device, model_file = info.description, info.device, str(info.path)
    else:
        model = f"not loaded ({error})" if error else "loading…"
        device = "GPU: CUDA" if torch.cuda.is_available() else "CPU"
        model_file = "–"
    return [
        (APP_NAME, __version__ + (" (frozen build)" if getattr(sys, "frozen", False) else "")),
        ("Model", model),
        ("Model file", model_file),
        ("Device", device),
        ("PyTorch", torch.__version__),
        ("Qt", f"{qVersion()} (PySide6 {PySide6.__version__})"),
        ("Python", f"{platform.python_version()} on {platform.system()} {platform.machine()}"),
        ("Resources", str(resources_dir())),
    ]


def about_text(facts: list[tuple[str, str]]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in facts)


class AboutDialog(QDialog):
    def __init__(self, facts: list[tuple[str, str]], parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("about_dialog")
        self.setWindowTitle(f"About {APP_NAME}")
        self.setModal(False)
        lay = QVBoxLayout(self)
        title = QLabel(f"<h3>{APP_NAME}</h3>Review, correct and fine-tune retinal vessel segmentations.")
        lay.addWidget(title)
        rows = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in facts)
        self.facts = QLabel(f"<table>{rows}</table>")
        self.facts.setObjectName("about_facts")
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.facts)
        self.plain_text = about_text(facts)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self._copy)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)

    def _copy(self) -> None:
        QApplication.clipboard().setText(self.plain_text)


class FirstRunGuide(QFrame):
    """A short panel above the image; "Got it" hides it for good (remembered in the settings)."""

    def __init__(self, parent: QWidget, on_dismiss: Callable[[], None]) -> None:
        super().__init__(parent)
        self.setObjectName("first_run_guide")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        self.label = QLabel(GUIDE_HTML, self)
        self.label.setWordWrap(True)
        lay.addWidget(self.label, 1)
        self.dismiss_button = QPushButton("Got it", self)
        self.dismiss_button.setObjectName("guide_dismiss_button")
        self.dismiss_button.setToolTip("Hide this guide; Help ▸ Getting started shows it again")
        self.dismiss_button.clicked.connect(on_dismiss)
        lay.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()


class HelpController:
    """The Help menu and the first-run guide. ``owner``: the window (whose actions the shortcuts list shows, and
    the dialogs' parent); ``guide_parent``: the widget above the image where the guide goes first;
    ``model_facts``: the model in use (None while it loads or when it failed) and why it failed."""

    def __init__(
        self,
        owner: QWidget,
        guide_parent: QWidget,
        menu_bar: QMenuBar,
        actions: ActionRegistry,
        review: ReviewSession,
        settings: AppSettings,
        model_facts: Callable[[], tuple[ModelInfo | None, str | None]],
    ) -> None:
        self.owner, self.settings, self.model_facts = owner, settings, model_facts
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.about_dialog: AboutDialog | None = None
        self.guide = FirstRunGuide(guide_parent, self.dismiss_guide)
        layout = guide_parent.layout()
        if isinstance(layout, QBoxLayout):
            layout.insertWidget(0, self.guide)

        self.guide_action = actions.add("Getting started", self.guide.show)
        self.shortcuts_action = actions.add(
            "Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents
        )
        self.about_action = actions.add(f"About {APP_NAME}", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.menu = menu_bar.addMenu("&Help")
        self.menu.setObjectName("help_menu")
        self.menu.addAction(self.guide_action)
        self.menu.addAction(self.shortcuts_action)
        self.menu.addSeparator()
        self.menu.addAction(self.about_action)
        review.workspace_changed.connect(self._workspace_opened)
        review.saved.connect(lambda _key, _path: self._mask_saved())

    def _mask_saved(self) -> None:
        """A grader who has saved a mask has found the way: the guide stays on screen now, but does not come
        back at the next launch (it did, every launch, until "Got it" was clicked: issue 27)."""
        if not self.settings.guide_dismissed:
            self.settings.guide_dismissed = True
            self.settings.sync()

    def _workspace_opened(self, ws: Workspace) -> None:
        if ws.synthetic and not self.settings.guide_dismissed:
            self.guide.show()
        elif not ws.synthetic:
            self.guide.hide()

    def dismiss_guide(self) -> None:
        self.guide.hide()
        self.settings.guide_dismissed = True
        self.settings.sync()

    def show_shortcuts(self) -> ShortcutsDialog:
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = ShortcutsDialog(self.owner)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()
        return self.shortcuts_dialog

    def show_about(self) -> AboutDialog:
        if self.about_dialog is not None:
            self.about_dialog.close()
            self.about_dialog.deleteLater()
        self.about_dialog = AboutDialog(about_facts(*self.model_facts()), self.owner)  # the model may have loaded
        self.about_dialog.show()
        return self.about_dialog
