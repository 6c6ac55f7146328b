"""Edits that could lose work are guarded: undo survives switching images, an approved image asks before its
first edit, a fill over a large vessel piece is refused, and the click that focuses the canvas paints nothing."""

from __future__ import annotations

import numpy as np
from gui_helpers import SafetyPrompter, blank, open_and_predict, stroke
from PySide6.QtCore import Qt


def test_undo_survives_switching_images(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    original = doc.mask.copy()
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (120, 120)])
    key = window.review.image.key
    with qtbot.waitSignal(window.image_opened, timeout=20000):
        window.images.step_image(+1)
    with qtbot.waitSignal(window.image_opened, timeout=20000):
        window.images.open_image(key)
    assert window.review.image.document is doc and window.action_table.undo.isEnabled()
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(doc.mask, original)
    assert np.array_equal(window.canvas.overlay._buffer != 0, original)


def test_an_approved_image_asks_before_the_first_edit_and_undoing_gives_approval_back(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    window.settings.advance_after_approve = False
    doc = blank(window)
    window.edit_tools.set_tool("brush")
    window.edit_tools.set_brush_radius(6)
    stroke(window.canvas, [(40, 75), (110, 75)])
    window.commands.approve_current()
    key = window.review.image.key
    assert window.review.workspace.status(key) == "approved"
    approved = doc.mask.copy()
    window.prompter = window.approved_guard.prompter = SafetyPrompter(confirm=False)  # the approved-image guard asks
    window.edit_tools.set_tool("eraser")
    window.edit_tools.set_brush_radius(4)
    assert doc.mask[75, 75]
    steps = doc.undo_count
    stroke(window.canvas, [(75, 75)])  # e.g. a click to give the canvas focus
    assert np.array_equal(doc.mask, approved) and doc.undo_count == steps
    assert window.prompter.asked[0][0] == "confirm" and "approved" in window.prompter.asked[0][1]
    window.commands.autosave()
    assert window.review.workspace.status(key) == "approved"

    window.prompter = window.approved_guard.prompter = SafetyPrompter(confirm=True)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(10, 10), (140, 140)])
    stroke(window.canvas, [(10, 140), (140, 10)])
    assert len([a for a in window.prompter.asked if a[0] == "confirm"]) == 1  # once per opening
    assert window.saving.save_current(auto=True) and window.review.workspace.status(key) == "edited"
    window.edit_tools.undo()
    window.edit_tools.undo()
    assert np.array_equal(doc.mask, approved)
    assert window.saving.save_current(auto=True)
    assert window.review.workspace.status(key) == "approved"


def test_fill_on_a_large_vessel_piece_is_refused_and_points_to_the_eraser(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = blank(window)
    window.edit_tools.set_tool("brush")
    window.edit_tools.set_brush_radius(2)
    stroke(window.canvas, [(20, 20), (20, 130), (130, 130)])  # one vessel tree
    stroke(window.canvas, [(100, 40)])  # a speck, well under 2 % of the vessel pixels
    before = doc.mask.copy()
    steps = doc.undo_count
    window.edit_tools.set_tool("fill")
    stroke(window.canvas, [(20.5, 80.5)])
    assert np.array_equal(doc.mask, before) and doc.undo_count == steps
    assert "Fill not applied" in window.banner.text() and "eraser (E)" in window.banner.text()
    stroke(window.canvas, [(100.5, 40.5)])
    assert not doc.mask[38:43, 98:103].any() and doc.undo_count == steps + 1


def test_a_click_that_gives_the_canvas_focus_does_not_paint_but_a_drag_does(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = blank(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.edit_tools.set_tool("eraser")
    doc.reset(np.ones(doc.shape, bool), "prediction", saved=True)
    vp, left = window.canvas.viewport(), Qt.MouseButton.LeftButton
    window.image_list.setFocus()
    qtbot.waitUntil(lambda: not window.canvas.hasFocus())
    p = window.canvas.image_to_widget(75, 75)
    qtbot.mouseClick(vp, left, pos=p)  # as the window system delivers it
    assert window.canvas.hasFocus() and doc.mask.all() and doc.undo_count == 0  # the focusing click
    qtbot.mouseClick(vp, left, pos=p)  # the canvas has focus now: a click paints
    assert not doc.mask[75, 75] and doc.undo_count == 1

    window.image_list.setFocus()
    qtbot.waitUntil(lambda: not window.canvas.hasFocus())
    a, b = window.canvas.image_to_widget(30, 30), window.canvas.image_to_widget(30, 60)
    qtbot.mousePress(vp, left, pos=a)  # a focusing press that becomes a drag paints from where it started
    qtbot.mouseMove(vp, b)
    qtbot.mouseRelease(vp, left, pos=b)
    assert window.canvas.hasFocus() and not doc.mask[30, 30] and not doc.mask[60, 30] and doc.undo_count == 2
