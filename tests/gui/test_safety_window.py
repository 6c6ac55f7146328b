"""The window's side of "a grader's work is never lost" (issue 14): the conflict choice, a full disk when
switching images, the History panel, undo across images, guarded destructive tools, the banner's notices."""

from __future__ import annotations

import numpy as np
from gui_helpers import SafetyPrompter, blank, make_workspace, open_and_paint, open_and_predict, stroke
from PySide6.QtCore import Qt

from model_core.imageio import read_mask
from retina_desktop.core.workspace import DiskFullError, Workspace


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


def test_a_full_disk_when_switching_images_offers_retry_and_export_not_read_only(
    qtbot, window, flat_workspace, monkeypatch, tmp_path
):
    doc = open_and_paint(qtbot, window, flat_workspace)
    ws, key = window.review.workspace, window.review.image.key
    real = ws.save_ground_truth

    def full(*a, **k):
        raise DiskFullError(f"{ws.entry(key).gt_path}: disk full (No space left on device); the mask was not saved")

    monkeypatch.setattr(ws, "save_ground_truth", full)
    window.prompter = SafetyPrompter(save_failed=["export", "cancel"])
    window.prompter.folder = str(tmp_path / "usb")
    (tmp_path / "usb").mkdir()
    window.images.step_image(+1)
    assert window.review.image.key == key and doc.unsaved  # stayed
    asked = window.prompter.asked
    assert asked[0][0] == "save_failed" and "disk full" in asked[0][1] and asked[0][2:] == (True, True)
    assert not [a for a in asked if a[0] == "unsaved"]  # never "This workspace is read-only"
    assert np.array_equal(read_mask(tmp_path / "usb" / f"{window.review.image.entry.stem}.png"), doc.mask)

    window.images.step_image(+1)  # "cancel" (nothing left to answer): still here
    assert window.review.image.key == key
    monkeypatch.setattr(ws, "save_ground_truth", real)
    window.prompter = SafetyPrompter(save_failed=["retry"])
    calls = []

    def full_once(*a, **k):
        if not calls:
            calls.append(1)
            return full(*a, **k)
        return real(*a, **k)

    monkeypatch.setattr(ws, "save_ground_truth", full_once)
    painted = doc.mask.copy()
    with qtbot.waitSignal(window.image_opened, timeout=20000):
        window.images.step_image(+1)
    assert window.review.image.key != key and len(calls) == 1
    assert np.array_equal(read_mask(ws.entry(key).gt_path), painted)  # "Retry" saved it


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
    window.prompter = window.edit_tools.prompter = SafetyPrompter(confirm=False)  # the edit tools ask
    window.edit_tools.set_tool("eraser")
    window.edit_tools.set_brush_radius(4)
    assert doc.mask[75, 75]
    steps = doc.undo_count
    stroke(window.canvas, [(75, 75)])  # e.g. a click to give the canvas focus
    assert np.array_equal(doc.mask, approved) and doc.undo_count == steps
    assert window.prompter.asked[0][0] == "confirm" and "approved" in window.prompter.asked[0][1]
    window.commands.autosave()
    assert window.review.workspace.status(key) == "approved"

    window.prompter = window.edit_tools.prompter = SafetyPrompter(confirm=True)
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


def test_the_banner_says_who_else_has_the_workspace_open_and_leaving_closes_it(qtbot, window, flat_workspace, tmp_path):
    other = Workspace(flat_workspace)  # another window
    try:
        open_and_predict(qtbot, window, flat_workspace)
        text = window.workspace_banner.text()
        assert "Already open" in text and other.other_windows()  # and this window is listed to the other
        second = make_workspace(tmp_path / "second", 2)
        with qtbot.waitSignal(window.image_opened, timeout=20000):
            assert window.workspaces.open_workspace(second)
        assert other.other_windows() == []  # the window closed the first workspace's session
    finally:
        other.close()


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


def test_a_record_that_could_not_be_written_is_retried_from_the_question(qtbot, window, flat_workspace, monkeypatch):
    from retina_desktop.core.workspace import RecordError

    open_and_predict(qtbot, window, flat_workspace)
    blank(window)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (120, 120)])
    ws = window.review.workspace
    real = ws.save_ground_truth
    retried = []

    def record_fails(entry, mask, **kw):
        path = real(entry, mask, **kw)  # the mask is written; pretend its record was not
        raise RecordError(
            f"{path} was saved, but its record could not be written (database is locked); retry",
            retry=lambda: retried.append(entry.key),
        )

    monkeypatch.setattr(ws, "save_ground_truth", record_fails)
    window.prompter = SafetyPrompter(save_failed=["retry"])
    assert window.saving.save_current()
    assert window.prompter.asked[0][0] == "save_failed" and "database is locked" in window.prompter.asked[0][1]
    assert retried == [window.review.image.key] and not window.review.image.document.unsaved


def test_a_workspace_renamed_while_open_refuses_the_save_and_recreates_nothing(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    blank(window)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (120, 120)])
    moved = flat_workspace.with_name("photos-moved")
    flat_workspace.rename(moved)
    window.prompter = SafetyPrompter()
    assert not window.saving.save_current()
    assert not flat_workspace.exists()
    assert "has gone" in window.banner.text() and window.prompter.asked[0][0] == "error"
    assert window.review.image.document.unsaved


def test_the_banner_shows_damaged_records_and_the_model_fallback(qtbot, window, flat_workspace):
    meta = flat_workspace / ".retina"
    meta.mkdir()
    (meta / "records.sqlite").write_bytes(b"this is not a database" * 100)
    open_and_predict(qtbot, window, flat_workspace)
    text = window.workspace_banner.text()
    assert "records were damaged" in text and "records.corrupt-" in text
    window.model.notice = "Model version v002 could not be loaded (truncated); using the bundled default model"
    window.prediction.model_loaded.emit(window.prediction.info, False)
    assert "<b>Model:</b> Model version v002 could not be loaded" in window.workspace_banner.text()


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


def test_a_notice_added_by_a_save_is_shown(qtbot, window, flat_workspace, monkeypatch):
    open_and_predict(qtbot, window, flat_workspace)
    blank(window)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (120, 120)])
    ws = window.review.workspace
    real = ws.save_ground_truth

    def save_and_note(*a, **k):
        path = real(*a, **k)
        ws.notices.append(f"{ws.review_log_path}: the JSONL copy of the review log could not be updated (full)")
        return path

    monkeypatch.setattr(ws, "save_ground_truth", save_and_note)
    assert window.saving.save_current()
    assert window.banner.level == "warning" and "JSONL copy of the review log" in window.banner.text()


def test_leaving_an_image_of_a_workspace_that_has_gone_offers_export_discard_or_stay(
    qtbot, window, flat_workspace, tmp_path
):
    doc = open_and_paint(qtbot, window, flat_workspace)
    key = window.review.image.key
    flat_workspace.rename(flat_workspace.with_name("photos-unplugged"))
    window.prompter = SafetyPrompter(save_failed=["export", "discard"])
    window.prompter.folder = str(tmp_path)
    window.images.step_image(+1)
    assert window.review.image.key == key and not flat_workspace.exists()  # stayed; nothing re-created
    asked = window.prompter.asked[0]
    assert asked[0] == "save_failed" and "has gone" in asked[1] and asked[3] is True
    assert np.array_equal(read_mask(tmp_path / f"{window.review.image.entry.stem}.png"), doc.mask)
    window.images.step_image(+1)  # "discard": moves on (the load of the gone folder's photo then fails with a message)
    assert window.review.current_key != key and not flat_workspace.exists()


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


def test_a_window_learns_when_someone_opens_its_workspace_after_it(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    assert "Already open" not in window.workspace_banner.text()
    assert window.workspaces.session_timer.isActive()
    seen = []
    window.message_shown.connect(seen.append)
    late = Workspace(flat_workspace)  # another grader opens it now
    try:
        with qtbot.waitSignal(window.message_shown, timeout=20000):
            window.workspaces.check_others()  # what the timer does every 20 s
        assert "has just opened this workspace too" in seen[-1]
        assert "Already open" in window.workspace_banner.text()
        count = len(seen)
        flow = window.workspaces  # the same grader is not announced twice (what the next check returns)
        flow._others_seen(window.review.workspace, window.review.workspace.other_windows())
        assert len(seen) == count
    finally:
        late.close()
    flow._others_seen(window.review.workspace, window.review.workspace.other_windows())  # they left: the line goes
    assert "Already open" not in window.workspace_banner.text() and len(seen) == count


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


def test_the_first_save_over_a_data_sets_mask_asks_once_where_corrections_go(qtbot, make_window, tmp_path):
    from gui_helpers import RecordingPrompter, open_and_predict

    from model_core.imageio import mask_to_png, write_png_atomic
    from model_core.synthetic import make_fundus

    root = tmp_path / "set"
    for d in ("images", "mask"):
        (root / d).mkdir(parents=True)
    for i in range(2):
        f = make_fundus(160, 150, seed=40 + i)
        write_png_atomic(root / "images" / f"im{i}.png", f.image)
        write_png_atomic(root / "mask" / f"im{i}.png", mask_to_png(f.vessels))
    originals = {p.name: p.read_bytes() for p in (root / "mask").iterdir()}
    window = make_window()
    window.prompter = RecordingPrompter(dataset_masks="corrected")
    open_and_predict(qtbot, window, root)
    doc = window.review.image.document
    doc.begin_stroke()
    doc.stroke_to((20.0, 20.0), (60.0, 20.0), 3.0, True)
    doc.end_stroke()
    assert not window.saving.autosave_in_background()  # the timer never asks
    assert window.saving.save_current()
    assert [a for a in window.prompter.asked if a[0] == "dataset_masks"] == [("dataset_masks", "set")]
    assert {p.name: p.read_bytes() for p in (root / "mask").iterdir()} == originals
    assert (root / "corrected" / "mask" / "im0.png").is_file()
    assert "corrected/" in window.workspace_banner.text()
