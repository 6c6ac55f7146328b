"""A mask saved elsewhere while this window edits it: the window asks keep mine / take theirs / view both,
shows their version without saving, and the autosave waits while the grader decides."""

from __future__ import annotations

import numpy as np
from gui_helpers import SafetyPrompter, blank, open_and_predict, stroke
from PySide6.QtCore import Qt

from model_core.imageio import read_mask
from retina_desktop.core.workspace import Workspace


def _edit_elsewhere(folder, key, rows):
    """Another window (its own Workspace) saves ``key`` with vessel rows ``rows``; returns its mask."""
    other = Workspace(folder)
    entry = other.entry(key)
    mask = np.zeros(read_mask(entry.gt_path).shape if entry.existing_gt() else (150, 160), bool)
    mask[rows, 10:120] = True
    other.save_ground_truth(entry, mask, reviewer="bob", source="brush")
    other.close()
    return mask


def _saved_then_saved_elsewhere(qtbot, window, folder):
    """The window saves a stroke, then another window saves the same image: (document, their mask)."""
    open_and_predict(qtbot, window, folder)
    doc = blank(window)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (20, 120)])
    assert window.saving.save_current()
    return doc, _edit_elsewhere(folder, window.review.image.key, slice(60, 64))


def test_a_conflict_offers_keep_mine_take_theirs_and_view_both(qtbot, window, flat_workspace):
    doc, theirs = _saved_then_saved_elsewhere(qtbot, window, flat_workspace)
    stroke(window.canvas, [(100, 20), (100, 120)])
    mine = doc.mask.copy()
    window.prompter = SafetyPrompter(conflict=["both"])
    assert not window.saving.save_current()  # "view both" saves nothing: theirs is drawn over mine, to look at freely
    assert [a[0] for a in window.prompter.asked] == ["conflict"] and "bob" in window.prompter.asked[0][1]
    assert window.history.preview.active and np.array_equal(window.history.preview.item._mask, theirs)
    assert window.history.panel.selected().sha256 == window.review.workspace.current_sha(window.review.image.entry)
    assert np.array_equal(doc.mask, mine) and np.array_equal(read_mask(window.review.image.entry.gt_path), theirs)
    assert not window.saving.autosave_in_background()  # the timer does not ask again while the grader looks
    window.history.refresh()  # a refresh (e.g. a status change) keeps their version on screen
    assert window.history.preview.active and np.array_equal(window.history.preview.item._mask, theirs)
    window.prompter = SafetyPrompter(conflict=["theirs"])
    assert window.saving.save_current()  # saving again asks again
    assert [a[0] for a in window.prompter.asked] == ["conflict"]
    assert not window.history.preview.active
    assert np.array_equal(doc.mask, theirs) and not doc.unsaved
    assert np.array_equal(read_mask(window.review.image.entry.gt_path), theirs)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # mine comes back
    assert np.array_equal(doc.mask, mine)
    window.prompter = SafetyPrompter()
    assert window.saving.save_current() and np.array_equal(read_mask(window.review.image.entry.gt_path), mine)
    assert not [a for a in window.prompter.asked if a[0] == "conflict"]  # no conflict any more

    _edit_elsewhere(flat_workspace, window.review.image.key, slice(80, 82))
    stroke(window.canvas, [(130, 20), (130, 120)])
    mine = doc.mask.copy()
    window.prompter = SafetyPrompter(conflict=["mine"])
    assert window.saving.save_current()
    assert np.array_equal(read_mask(window.review.image.entry.gt_path), mine)
    assert window.review.workspace.status(window.review.image.key) == "edited"


def test_after_view_both_the_autosave_comes_back_once_the_image_is_reopened(qtbot, window, flat_workspace):
    doc, _ = _saved_then_saved_elsewhere(qtbot, window, flat_workspace)
    key = window.review.image.key
    stroke(window.canvas, [(100, 20), (100, 120)])
    window.prompter = SafetyPrompter(conflict=["both"])
    assert not window.saving.save_current()
    assert not window.saving.autosave_in_background()  # deciding: the timer waits
    window.edit_tools.undo()  # the grader drops the edit instead: nothing to save, nothing to decide
    assert not doc.unsaved
    with qtbot.waitSignal(window.image_opened, timeout=20000):
        window.images.step_image(+1)
    with qtbot.waitSignal(window.image_opened, timeout=20000):
        window.images.open_image(key)  # loaded from disk (their version): no conflict left
    stroke(window.canvas, [(110, 20), (110, 120)])
    assert window.saving.autosave_in_background()
    window.saving.settle()
    assert not window.review.image.document.unsaved
    assert np.array_equal(read_mask(window.review.image.entry.gt_path), window.review.image.document.mask)


def test_the_real_question_boxes_offer_the_choices_and_return_the_one_clicked(qtbot, window):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from retina_desktop.ui.common.prompter import Prompter

    seen = []

    def click(label):
        def answer():
            box = QApplication.activeModalWidget()
            seen.append((box.objectName(), sorted(b.text() for b in box.buttons())))
            next(b for b in box.buttons() if b.text() == label).click()

        QTimer.singleShot(0, answer)

    prompter = Prompter(window)
    click("Take theirs")
    assert prompter.ask_conflict("a.png", "a: another window or grader saved this mask") == "theirs"
    click("View both")
    assert prompter.ask_conflict("a.png", "a: saved elsewhere") == "both"
    click("Export elsewhere…")
    assert prompter.ask_save_failed("a.png", "a.png: disk full", disk_full=True, can_discard=True) == "export"
    click("Retry")
    assert prompter.ask_save_failed("a.png", "record failed") == "retry"
    assert seen[0] == ("conflict_prompt", ["Cancel", "Keep mine", "Take theirs", "View both"])
    assert seen[2] == ("save_failed_prompt", ["Discard edits", "Export elsewhere…", "Retry", "Stay on this image"])
    assert seen[3] == ("save_failed_prompt", ["Cancel", "Retry"])
