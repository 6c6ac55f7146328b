"""Every action of the main window, its menus and its toolbar, in one table (labelme's ``_Actions`` style).

To find what a button or a key does: look it up here by its text; the slot named beside it is one of
``ActionSlots`` (what ``MainWindow`` connects them to), of the canvas (the view actions) or of the edit tools.
Every action of the window is made by the one ``ActionRegistry`` (features get it from ``AppContext.actions``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QMenuBar, QToolBar

from ..common.context import ActionRegistry
from ..review.canvas import ImageCanvas
from ..review.edit_tools import EditTools

TOOLS = (
    ("navigate", "Pan", "V"),
    ("brush", "Brush", "B"),
    ("eraser", "Eraser", "E"),
    ("fill", "Fill", "G"),
    ("trace", "Trace", "T"),
    ("segment", "Segment", "S"),
)

# Short toolbar labels so that Save, Approve and Fine-tune… fit a 1280-px-wide window instead of hiding behind
# the overflow arrow; menus keep the full names, and so do the tooltips.
SHORT_LABELS = {
    "open": "Open…",
    "prev": "Previous",
    "next": "Next",
    "model_input": "Model input",
    "heat": "Heat map",
    "mask": "Mask",
    "save": "Save",
    "export": "Export…",
}


@dataclass
class ActionSlots:
    """What the window's own actions do."""

    choose_workspace: Callable[[], None]
    open_demo_workspace: Callable[[], None]
    save: Callable[[], object]
    approve: Callable[[], None]
    export: Callable[[], None]
    preferences: Callable[[], None]
    quit: Callable[[], object]
    step_image: Callable[[int], None]  # +1 the next image of the list, -1 the previous one
    predict: Callable[[], None]
    predict_all: Callable[[], None]
    start_from_prediction: Callable[[], None]


class Actions:
    """``actions.save``, ``actions.tools["brush"]`` …"""

    def __init__(
        self, registry: ActionRegistry, slots: ActionSlots, canvas: ImageCanvas, edit_tools: EditTools, owner: QObject
    ) -> None:
        self.registry = registry
        w, c, e = slots, canvas, edit_tools
        A = registry.add
        self.open = A("Open folder…", w.choose_workspace, QKeySequence.StandardKey.Open)
        self.demo = A("Open demo workspace", w.open_demo_workspace)
        self.save = A("Save as ground truth", w.save, QKeySequence.StandardKey.Save)
        self.approve = A("Approve", w.approve, ["Ctrl+Return", "Ctrl+Enter"], tip="Save and mark this image reviewed")
        self.export = A("Export masks…", w.export, "Ctrl+E")
        self.prefs = A("Preferences…", w.preferences)
        self.quit = A("Quit", w.quit, QKeySequence.StandardKey.Quit)
        self.next = A("Next image", lambda: w.step_image(+1), ["PgDown", "."])
        self.prev = A("Previous image", lambda: w.step_image(-1), ["PgUp", ","])
        self.predict = A("Predict this image", w.predict, "Ctrl+R")
        self.start_from_prediction = A(
            "Start from the prediction",
            w.start_from_prediction,
            tip="Replace the mask on screen by the model's prediction (one undo step; the "
            "mask on disk stays until you save)",
        )
        self.predict_all = A(
            "Predict all", w.predict_all, "Ctrl+Shift+P", tip="Predict every image without a cached prediction"
        )
        self.undo = A("Undo", e.undo, QKeySequence.StandardKey.Undo)
        self.redo = A("Redo", e.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        self.remove_small = A("Remove small pieces", e.remove_small, "Ctrl+Shift+X")
        self.fit = A("Fit", c.fit, ["F", "0"])
        self.one_to_one = A("1:1", c.one_to_one, "1")
        self.model_input = A("Model input (green + CLAHE)", c.show_model_input, "C", checkable=True)
        self.heat = A("Probability heat map", c.set_heat_visible, "H", checkable=True)
        self.mask = A("Mask overlay", c.set_mask_visible, "M", checkable=True)
        self.mask.setChecked(True)
        self.bigger = A("Bigger brush", e.bigger_brush, "]")
        self.smaller = A("Smaller brush", e.smaller_brush, "[")
        self.tool_group = QActionGroup(owner)
        self.tools: dict[str, QAction] = {}
        for tool, text, key in TOOLS:
            a = A(text, _tool_chooser(e, tool), key, checkable=True)
            self.tool_group.addAction(a)
            self.tools[tool] = a
        e.tool_actions = self.tools
        self.tools["navigate"].setChecked(True)
        for name, short in SHORT_LABELS.items():
            getattr(self, name).setIconText(short)

    def add(self, *args: Any, **kwargs: Any) -> QAction:
        """An action of a feature (``ActionRegistry.add``)."""
        return self.registry.add(*args, **kwargs)

    def install_menus(self, mb: QMenuBar) -> None:
        """File, Edit, View and Image; ``recent_menu``: File's "Recent workspaces"."""
        tools = list(self.tools.values())
        self.file_menu = file_menu = mb.addMenu("&File")
        _fill(
            file_menu,
            (self.open, self.demo, None, self.save, self.approve, None, self.export, None, self.prefs, None, self.quit),
        )
        self.recent_menu = file_menu.addMenu("Recent workspaces")
        _fill(
            mb.addMenu("&Edit"),
            (self.undo, self.redo, None, *tools, None, self.bigger, self.smaller, self.remove_small),
        )
        _fill(mb.addMenu("&View"), (self.fit, self.one_to_one, None, self.model_input, self.heat, self.mask))
        _fill(
            mb.addMenu("&Image"),
            (self.prev, self.next, None, self.predict, self.predict_all, None, self.start_from_prediction),
        )

    def add_to_file_menu(self, action: QAction, after: QAction) -> None:
        """A feature's action in the File menu, after one of its own (``install_menus`` first)."""
        items = self.file_menu.actions()
        self.file_menu.insertAction(items[items.index(after) + 1], action)

    def install_toolbar(self, window: QMainWindow) -> QToolBar:
        tb = QToolBar("Main", window)
        tb.setObjectName("main_toolbar")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.setMovable(False)
        _fill(
            tb,
            (
                self.open,
                None,
                self.prev,
                self.next,
                None,
                self.predict_all,
                None,
                *self.tools.values(),
                None,
                self.undo,
                self.redo,
                None,
                self.fit,
                self.one_to_one,
                None,
                self.model_input,
                self.heat,
                self.mask,
                None,
                self.save,
                self.approve,
                self.export,
            ),
        )
        window.addToolBar(tb)
        return tb


def _tool_chooser(edit_tools: EditTools, tool: str) -> Callable[[bool], None]:
    def toggled(on: bool) -> None:
        if on:
            edit_tools.set_tool(tool)

    return toggled


def _fill(menu_or_bar: QMenu | QToolBar, items: Iterable[QAction | None]) -> None:
    for a in items:
        if a is None:
            menu_or_bar.addSeparator()
        else:
            menu_or_bar.addAction(a)
