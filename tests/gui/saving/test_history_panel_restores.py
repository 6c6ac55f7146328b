"""The History panel lists every saved version, previews one without changing the mask, restores it (undoably)
and fits a 1280x800 window; a preview ends when the History tab is left."""

from __future__ import annotations

import numpy as np
from gui_helpers import SafetyPrompter, blank, open_and_predict, stroke
from PySide6.QtCore import Qt

from model_core.imageio import read_mask


def test_the_history_panel_lists_previews_and_restores_versions(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = blank(window)
    window.settings.reviewer = "ann"
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (20, 120)])
    assert window.saving.save_current()
    first = doc.mask.copy()
    stroke(window.canvas, [(100, 20), (100, 120)])
    assert window.saving.save_current()
    second = doc.mask.copy()
    panel = window.history.panel
    assert panel.tree.topLevelItemCount() == 2
    newest, oldest = panel.tree.topLevelItem(0), panel.tree.topLevelItem(1)
    assert newest.text(0).startswith("● ") and newest.text(1) == "ann" and newest.text(2) == "brush"
    added = int(np.count_nonzero(second & ~first))
    assert newest.text(4) == f"+{added:,} / −0"

    panel.tree.setCurrentItem(oldest)
    panel.preview_button.setChecked(True)
    assert window.history.preview.active
    assert np.array_equal(window.history.preview.item._buffer != 0, first)
    assert np.array_equal(doc.mask, second)  # a preview changes nothing
    panel.restore_button.click()
    assert np.array_equal(doc.mask, first) and np.array_equal(read_mask(window.review.image.entry.gt_path), first)
    assert not window.history.preview.active
    assert panel.tree.topLevelItemCount() == 3 and panel.tree.topLevelItem(0).text(2) == "restore"
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the restore is undoable
    assert np.array_equal(doc.mask, second) and doc.unsaved

    # "Revert image to…" (the History asks): newest first, so 2 is the first save.
    window.prompter = window.history.prompter = SafetyPrompter(item=2)
    window.history.revert_action.trigger()
    items = window.prompter.asked[-1][1]
    assert len(items) == 3 and items[0].endswith("on disk now") and "on disk now" not in items[2]
    assert np.array_equal(doc.mask, first) and np.array_equal(read_mask(window.review.image.entry.gt_path), first)
    assert window.review.workspace.versions(window.review.image.key)[-1].source == "restore"


def test_the_history_dock_fits_a_1280x800_window(qtbot, window, flat_workspace, tmp_path):
    window.resize(1280, 800)
    open_and_predict(qtbot, window, flat_workspace)
    window.history.dock.raise_()
    qtbot.waitUntil(lambda: window.history.panel.isVisible())
    panel = window.history.panel
    assert window.width() <= 1280 and window.height() <= 800
    top_left = panel.mapTo(window, panel.rect().topLeft())
    assert top_left.x() + panel.width() <= window.width() and top_left.y() + panel.height() <= window.height()
    assert panel.restore_button.isVisible() and panel.preview_button.isVisible()
    assert window.grab().save(str(tmp_path / "history.png"))


def test_a_preview_ends_when_the_history_tab_is_left(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    blank(window)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (120, 120)])
    assert window.saving.save_current()
    window.history.dock.raise_()
    qtbot.waitUntil(window.history.panel.isVisible)
    panel = window.history.panel
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    panel.preview_button.setChecked(True)
    assert window.history.preview.active
    window.review_dock.raise_()
    qtbot.waitUntil(lambda: not window.history.preview.active)
    assert not panel.preview_button.isChecked()
