"""End-to-end tests that drive the real main window (offscreen) with a tiny untrained model."""

from __future__ import annotations

import itertools
import json
import threading
import time

import numpy as np
from gui_helpers import RecordingPrompter, blank, make_workspace, open_and_predict, stroke
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from model_core.imageio import read_mask, read_raw, write_png_atomic
from retina_desktop.core.painting import paint_segment
from retina_desktop.core.review.export import ExportOptions


def test_open_workspace_prediction_arrives_via_worker(qtbot, window, flat_workspace):
    s = open_and_predict(qtbot, window, flat_workspace)
    assert s.key == "img_00" and s.probability.shape == (160, 150) and s.probability.dtype == np.float32
    assert s.document.source == "prediction"
    assert np.array_equal(s.document.mask, s.probability >= window.review.threshold)
    qtbot.waitUntil(lambda: window.prediction.info is not None)
    assert window.status_panel.model_label.text() == "Model: test-micro v0"
    assert window.status_panel.device_label.text().startswith("CPU")
    assert window.review.workspace.status("img_00") == "predicted"
    cached = list((flat_workspace / ".retina" / "predictions").rglob("*.png"))
    assert len(cached) == 1
    # Reopening uses the cache: no second prediction.
    window.images.step_image(+1)
    qtbot.waitSignal(window.prediction_shown, timeout=30000).wait()
    with qtbot.waitSignal(window.image_opened, timeout=10000):
        window.images.open_image("img_00")
    assert window.review.image.probability is not None and not window.prediction.is_predicting("img_00")


def test_event_loop_keeps_running_while_predicting(qtbot, window, flat_workspace):
    real = window.model.predict_full
    computing = threading.Event()

    def slow_predict(rgb):
        computing.set()
        time.sleep(0.8)  # stands in for a big photo on a slow CPU; it runs on the worker thread
        return real(rgb)

    window.model.predict_full = slow_predict
    ticks = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(computing.is_set()))
    timer.start()
    try:
        open_and_predict(qtbot, window, flat_workspace)
    finally:
        timer.stop()
    assert sum(ticks) >= 20, f"only {sum(ticks)} timer ticks while the model ran"


def test_stroke_paints_exactly_the_pixels_under_it(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = blank(window)
    window.edit_tools.set_tool("brush")
    window.edit_tools.set_brush_radius(3.0)
    seen = stroke(window.canvas, [(20.4, 30.2), (60.7, 45.1), (61.0, 100.3), (120.5, 110.6)])
    expected = np.zeros(doc.shape, bool)
    for a, b in itertools.pairwise(seen):
        paint_segment(expected, a, b, 3.0, True)
    assert np.array_equal(doc.mask, expected)
    assert doc.mask[30, 20] and doc.mask[110, 120] and not doc.mask[5, 140]
    assert doc.undo_count == 1 and doc.unsaved
    # The overlay shows exactly the mask.
    buf = window.canvas.overlay._buffer
    assert np.array_equal(buf != 0, doc.mask)


def test_eraser_fill_and_undo_redo_restore_bit_for_bit(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    original = doc.mask.copy()
    window.edit_tools.set_tool("eraser")
    window.edit_tools.set_brush_radius(5)
    stroke(window.canvas, [(30, 30), (100, 120)])
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(10, 140), (140, 20)])
    window.edit_tools.set_brush_radius(1)
    stroke(window.canvas, [(130, 130)])  # a speck for the clean-up
    window.review_panel.min_piece_spin.setValue(15)
    window.edit_tools.remove_small()
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(100, 100), (120, 100), (120, 120), (100, 120), (100, 100)])  # a closed ring
    window.edit_tools.set_tool("fill")
    assert not doc.mask[110, 110]
    stroke(window.canvas, [(110.5, 110.5)])  # fills the hole inside it
    assert doc.mask[103:118, 103:118].all()
    edited = doc.mask.copy()
    assert not np.array_equal(edited, original)
    steps = doc.undo_count
    assert steps >= 5  # the eraser may find nothing to erase on an untrained model's mask
    for _ in range(steps):
        qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(doc.mask, original)
    assert np.array_equal(window.canvas.overlay._buffer != 0, original)
    for _ in range(steps):
        qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(doc.mask, edited)


def test_fill_on_open_background_is_refused_with_a_message_and_no_undo_step(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = blank(window)
    h, w = doc.shape
    window.edit_tools.set_tool("fill")
    stroke(window.canvas, [(w / 2, h / 2)])
    assert not doc.mask.any() and doc.undo_count == 0
    assert "Fill not applied" in window.banner.text() and "reach the image edge" in window.banner.text()


def test_save_writes_png_equal_to_mask_and_keeps_previous(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (130, 140)])
    with qtbot.waitSignal(window.saved, timeout=20000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    path = flat_workspace / "ground_truth" / "img_00.png"
    assert blocker.args == ["img_00", str(path.resolve())]
    raw = read_raw(path)
    assert raw.shape == (160, 150) and raw.dtype == np.uint8 and set(np.unique(raw)) <= {0, 255}
    assert np.array_equal(raw == 255, doc.mask)
    assert not doc.unsaved and window.review.workspace.status("img_00") == "edited"
    first = doc.mask.copy()
    window.edit_tools.set_tool("eraser")
    stroke(window.canvas, [(20, 20), (130, 140)])
    window.saving.save_current()
    assert np.array_equal(read_mask(path), doc.mask)
    (previous,) = window.review.workspace.history(window.review.image.entry)
    assert np.array_equal(read_mask(previous), first)
    log = [json.loads(line) for line in (flat_workspace / ".retina" / "review_log.jsonl").read_text().splitlines()]
    assert [r["action"] for r in log] == ["save", "save"] and log[0]["model"] == "test-micro v0"
    assert log[0]["pixels_added"] > 0


def test_autosave_on_switching_image_and_approve(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(40, 40), (80, 90)])
    mask = window.review.image.document.mask.copy()
    with qtbot.waitSignal(window.image_opened, timeout=10000):
        qtbot.keyClick(window, Qt.Key.Key_PageDown)
    assert window.review.image.key == "img_01"
    assert np.array_equal(read_mask(flat_workspace / "ground_truth" / "img_00.png"), mask)
    qtbot.waitSignal(window.prediction_shown, timeout=30000).wait() if window.review.image.probability is None else None
    with qtbot.waitSignal(window.image_opened, timeout=10000):
        window.commands.approve_current()  # saves, marks approved, moves on
    assert window.review.workspace.status("img_01") == "approved"
    assert (flat_workspace / "ground_truth" / "img_01.png").is_file()
    with qtbot.waitSignal(window.image_opened, timeout=10000):
        qtbot.keyClick(window, Qt.Key.Key_PageUp)
    assert window.review.image.key == "img_01" and window.review.image.document.source == "ground truth"


def test_autosave_timer(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    window.commands.autosave_timer.setInterval(50)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(40, 40), (80, 90)])
    with qtbot.waitSignal(window.saved, timeout=20000):
        pass
    assert not window.review.image.document.unsaved


def test_export_writes_reference_layout(qtbot, window, flat_workspace, tmp_path):
    open_and_predict(qtbot, window, flat_workspace)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(40, 40), (80, 90)])
    window.saving.save_current()
    dest = tmp_path / "exported"
    with qtbot.waitSignal(window.export_finished, timeout=20000) as blocker:
        window.commands.export_to(ExportOptions(dest, one_value=255, overlays=True))
    summary = blocker.args[0]
    assert summary.written == ["img_00"] and len(summary.skipped_no_mask) == 2
    assert (dest / "images" / "img_00.png").is_file() and (dest / "overlays" / "img_00.png").is_file()
    assert np.array_equal(read_mask(dest / "mask" / "img_00.png"), window.review.image.document.mask)
    assert "1 mask(s) written" in window.banner.text()


def _answer_modal(qtbot, expected_name: str, button, seen: list):
    def answer():
        box = QApplication.activeModalWidget()
        if box is None:
            QTimer.singleShot(20, answer)
            return
        seen.append((box.objectName(), box.text()))
        box.button(button).click()

    QTimer.singleShot(0, answer)


def test_closing_with_unsaved_edits_asks(qtbot, window, flat_workspace):
    from PySide6.QtWidgets import QMessageBox

    open_and_predict(qtbot, window, flat_workspace)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(40, 40), (80, 90)])
    seen: list = []
    _answer_modal(qtbot, "unsaved_edits_prompt", QMessageBox.StandardButton.Cancel, seen)
    assert not window.close()
    assert seen and seen[0][0] == "unsaved_edits_prompt" and "img_00.png" in seen[0][1]
    assert window.isVisible() and window.review.image.document.unsaved
    assert not (flat_workspace / "ground_truth" / "img_00.png").exists()
    seen.clear()
    _answer_modal(qtbot, "unsaved_edits_prompt", QMessageBox.StandardButton.Save, seen)
    assert window.close()
    assert np.array_equal(read_mask(flat_workspace / "ground_truth" / "img_00.png"), window.review.image.document.mask)


def test_corrupt_image_shows_error_and_next_image_opens(qtbot, window, tmp_path):
    root = make_workspace(tmp_path / "w", 2, corrupt=("img_00b.png",))
    open_and_predict(qtbot, window, root)
    with qtbot.waitSignal(window.image_failed, timeout=10000) as blocker:
        window.images.step_image(+1)
    key, message = blocker.args
    assert key == "img_00b" and "img_00b.png" in message and "not a readable image" in message
    assert "\n" not in message and "Traceback" not in message
    assert window.banner.isVisible() and "img_00b.png" in window.banner.text()
    with qtbot.waitSignal(window.image_opened, timeout=10000):
        window.images.step_image(+1)
    assert window.review.image.key == "img_01"
    assert not window.banner.isVisible()


def test_predict_all_says_how_many_images_failed_instead_of_all_predicted(qtbot, window, tmp_path):
    root = make_workspace(tmp_path / "w", 2, corrupt=("img_00b.png", "img_01b.png"))
    open_and_predict(qtbot, window, root)
    with qtbot.waitSignal(window.batch_finished, timeout=60000) as done:
        window.predictions_view.predict_all()
    assert sorted(done.args[0].failed) == ["img_00b", "img_01b"] and done.args[0].total == 4
    assert window.banner.isVisible() and "2 of 4 images could not be read or predicted" in window.banner.text()
    assert window.statusBar().currentMessage() != "All images predicted"
    assert window.review.workspace.status("img_01") == "predicted"


def test_file_deleted_while_open_keeps_edits_saveable(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(40, 40), (80, 90)])
    (flat_workspace / "img_00.png").unlink()
    assert window.saving.save_current()
    assert np.array_equal(read_mask(flat_workspace / "ground_truth" / "img_00.png"), window.review.image.document.mask)
    window.review.image.document.stroke_to((10, 10), (20, 20), 2, True)
    window.review.image.document.end_stroke()
    qtbot.waitUntil(lambda: not window.prediction.is_predicting("img_00"))  # the first prediction's run has ended
    with qtbot.waitSignal(window.message_shown, timeout=10000, check_params_cb=lambda m: "img_00.png" in m):
        window.predictions_view.predict_current()  # the photo is gone: a message, no crash
    assert window.review.image.document.unsaved and window.prediction.model_error is None


def test_wrong_size_mask_is_reported_and_left_alone(qtbot, window, flat_workspace):
    gt = flat_workspace / "ground_truth"
    write_png_atomic(gt / "img_00.png", np.full((20, 30), 255, np.uint8))
    before = (gt / "img_00.png").read_bytes()
    with qtbot.waitSignal(window.message_shown, timeout=30000, check_params_cb=lambda m: "30x20" in m):
        window.workspaces.open_workspace(flat_workspace)
    assert "img_00.png" in window.banner.text()
    assert (gt / "img_00.png").read_bytes() == before


def test_threshold_asks_before_discarding_edits(qtbot, window, flat_workspace):
    window.prompter = RecordingPrompter(confirm=False)
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(40, 40), (80, 90)])
    edited = doc.mask.copy()
    assert not window.threshold_control.apply(0.3)
    assert window.prompter.asked[-1][0] == "confirm" and np.array_equal(doc.mask, edited)
    assert window.review_panel.threshold_slider.value() == 50
    window.prompter.confirm_answer = True
    assert window.threshold_control.apply(0.3)
    assert np.array_equal(doc.mask, window.review.image.probability >= 0.3)
    asked = len(window.prompter.asked)
    assert window.threshold_control.apply(0.6)  # no edits now: no question
    assert len(window.prompter.asked) == asked
    assert window.review.workspace.threshold == 0.6


def test_re_thresholding_a_saved_ground_truth_asks_first_and_declining_keeps_the_file(qtbot, window, flat_workspace):
    gt = flat_workspace / "ground_truth" / "img_00.png"
    h, w = read_raw(flat_workspace / "img_00.png").shape[:2]
    expert = np.zeros((h, w), np.uint8)
    expert[h // 3, :] = 255  # one horizontal vessel, unlike any prediction
    write_png_atomic(gt, expert)
    before = gt.read_bytes()
    window.prompter = RecordingPrompter(confirm=False)
    with qtbot.waitSignal(window.prediction_shown, timeout=30000) as shown:
        window.workspaces.open_workspace(flat_workspace)
    assert shown.args == ["img_00"] and window.review.image.probability is not None
    doc = window.review.image.document
    assert doc.source == "ground truth" and not doc.can_undo and not doc.unsaved
    # No edits by hand, yet the saved ground truth is never replaced by the prediction without a question,
    # and the question says that the file itself will be overwritten.
    assert not window.threshold_control.apply(0.3)
    kind, text = window.prompter.asked[-1]
    assert kind == "confirm" and "replaces the saved ground truth of img_00" in text and "autosave" in text
    assert "discarding your edits" not in text
    assert np.array_equal(doc.mask, expert > 0) and not doc.unsaved
    window.commands.autosave()
    assert gt.read_bytes() == before
    window.prompter.confirm_answer = True
    assert window.threshold_control.apply(0.3)
    assert np.array_equal(doc.mask, window.review.image.probability >= 0.3) and doc.unsaved


def test_re_thresholding_an_approved_mask_needs_review_again(qtbot, window, flat_workspace):
    window.prompter = RecordingPrompter(confirm=True)
    window.settings.q.setValue("review/advance_after_approve", False)
    open_and_predict(qtbot, window, flat_workspace)
    key = window.review.image.key
    window.commands.approve_current()
    assert window.review.workspace.status(key) == "approved"
    assert window.threshold_control.apply(0.2)  # replaces the approved mask, leaving no undo step
    with qtbot.waitSignal(window.saved, timeout=20000):
        window.saving.save_current()
    assert window.review.workspace.status(key) == "edited"


def test_predict_all_with_progress_and_cancel(qtbot, window, tmp_path):
    root = make_workspace(tmp_path / "w", 4)
    open_and_predict(qtbot, window, root)
    with qtbot.waitSignal(window.batch_finished, timeout=60000) as done:
        window.predictions_view.predict_all()
        assert window.status_panel.progress_bar.isVisible() and window.status_panel.cancel_button.isVisible()
        assert not window.action_table.predict_all.isEnabled()
    assert done.args[0].predicted == 3 and not done.args[0].failed and not done.args[0].cancelled
    assert all(window.review.workspace.status(k) == "predicted" for k in ("img_00", "img_01", "img_02", "img_03"))
    assert not window.status_panel.progress_bar.isVisible() and window.action_table.predict_all.isEnabled()
    assert "Done: 3 images predicted" in window.banner.text()  # Predict all says when it is done

    # Cancel: a slow model, cancelled after the first image.
    root2 = make_workspace(tmp_path / "w2", 4)
    open_and_predict(qtbot, window, root2)
    real = window.model.predict_full
    window.model.predict_full = lambda rgb: (time.sleep(0.3), real(rgb))[1]
    window.predictions_view.predict_all()
    qtbot.waitUntil(lambda: window.status_panel.progress_bar.value() >= 1, timeout=30000)
    with qtbot.waitSignal(window.batch_finished, timeout=30000) as cancelled:
        qtbot.mouseClick(window.status_panel.cancel_button, Qt.MouseButton.LeftButton)
    assert cancelled.args[0].cancelled
    done = [k for k in ("img_01", "img_02", "img_03") if window.review.workspace.status(k) == "predicted"]
    assert len(done) < 3 and cancelled.args[0].predicted == len(done)


def test_sort_and_filter_by_status_and_uncertainty(qtbot, window, tmp_path):
    root = make_workspace(tmp_path / "w", 3)
    open_and_predict(qtbot, window, root)
    ws = window.review.workspace
    ws.set_prediction_info("img_00", 0.05)
    ws.set_prediction_info("img_01", 0.9)
    ws.set_prediction_info("img_02", 0.1)
    ws.set_status("img_02", "approved")
    panel = window.image_list
    panel.sort_combo.setCurrentText("Uncertainty (high first)")
    order = [panel.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 1) for r in range(panel.proxy.rowCount())]
    assert order[0] == "img_01"
    panel.status_combo.setCurrentIndex(panel.status_combo.findData("approved"))
    assert panel.proxy.rowCount() == 1 and "1 of 3" in panel.count_label.text()


def test_view_toggles_and_cursor_readout(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    c = window.canvas
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert c.heat_visible
    qtbot.keyClick(window, Qt.Key.Key_C)
    assert c.showing_model_input
    qtbot.keyClick(window, Qt.Key.Key_M)
    assert not c.mask_visible
    qtbot.keyClick(window, Qt.Key.Key_1)
    assert abs(c.zoom_factor() - 1.0) < 0.02
    qtbot.keyClick(window, Qt.Key.Key_F)
    window.review_panel.opacity_slider.setValue(20)
    assert abs(c.overlay.opacity() - 0.2) < 1e-6
    qtbot.keyClick(window, Qt.Key.Key_B)
    assert c.tool == "brush"
    r = c.brush_radius
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert c.brush_radius > r
    from gui_helpers import send_mouse

    send_mouse(c.viewport(), "move", c.image_to_widget(50.5, 60.5), buttons=Qt.MouseButton.NoButton)
    text = window.status_panel.cursor_label.text()
    assert "x 50, y 60" in text and "p " in text
    assert c.cursor_outline.isVisible()


def test_without_a_model_the_grader_can_still_paint(qtbot, make_window, flat_workspace, tmp_path):
    window = make_window(checkpoint=tmp_path / "missing.pt")
    qtbot.waitUntil(lambda: window.prediction.model_error is not None, timeout=10000)
    with qtbot.waitSignal(window.image_opened, timeout=10000):
        window.workspaces.open_workspace(flat_workspace)
    assert "missing.pt" in window.banner.text() and window.status_panel.model_label.text() == "Model: none"
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(40, 40), (80, 90)])
    assert window.review.image.document.mask.any() and window.saving.save_current()


def test_read_only_workspace_is_explained(qtbot, make_window, flat_workspace, monkeypatch):
    from retina_desktop.core.workspace import workspace as workspace_mod

    real = workspace_mod.probe_writable
    monkeypatch.setattr(workspace_mod, "probe_writable", lambda d: real(d) and flat_workspace not in [d, *d.parents])
    window = make_window()
    window.prompter = RecordingPrompter()
    open_and_predict(qtbot, window, flat_workspace)
    assert "Read-only" in window.workspace_banner.text()
    assert not window.action_table.save.isEnabled()
    assert not window.saving.save_current()
    assert "read-only" in window.banner.text()


def test_start_without_folder_opens_demo_then_reopens_last(qtbot, make_window, flat_workspace):
    window = make_window()
    with qtbot.waitSignal(window.workspace_opened, timeout=60000) as blocker:
        window.workspaces.start(None)
    assert "demo-workspace" in blocker.args[0] and window.review.workspace.synthetic
    assert "Synthetic images" in window.workspace_banner.text()
    assert len(window.review.workspace) == 6
    window.workspaces.open_workspace(flat_workspace)
    second = make_window()
    with qtbot.waitSignal(second.workspace_opened, timeout=60000) as blocker:
        second.workspaces.start(None)
    assert blocker.args[0] == str(flat_workspace.resolve())


def test_a_folder_with_thousands_of_images_opens_quickly(qtbot, window, tmp_path):
    import cv2

    root = tmp_path / "many"
    root.mkdir()
    _ok, buf = cv2.imencode(".png", np.full((16, 16, 3), 120, np.uint8))
    for i in range(3000):
        (root / f"p{i:05d}.png").write_bytes(buf.tobytes())
    # How fast is measured in benchmarks/; here: it opens, lists everything, and stays lazy.
    with qtbot.waitSignal(window.image_opened, timeout=60000):
        window.workspaces.open_workspace(root)
    assert window.image_list.model.rowCount() == 3000
    # Only the rows on screen ask for thumbnails.
    assert len(window.image_list.model._requested) < 100


def test_save_approve_and_fine_tune_fit_the_toolbar_of_a_1280_px_window(qtbot, window):
    window.resize(1280, 720)
    window.show()
    qtbot.waitExposed(window)
    for action in (
        window.action_table.save,
        window.action_table.approve,
        window.action_table.export,
        window.finetune.finetune_action,
    ):
        button = window.toolbar.widgetForAction(action)
        # Actions that do not fit move behind the toolbar's overflow arrow, where their buttons are hidden.
        assert button is not None and button.isVisible(), action.text()
    assert (
        window.action_table.save.text() == "Save as ground truth"
        and "Save as ground truth" in window.action_table.save.toolTip()
    )


def test_export_dialog_shows_the_whole_destination_path(qtbot):
    from retina_desktop.ui.app.dialogs import ExportDialog

    path = "/home/grader/.local/share/retina-desktop/studies/glaucoma-2026/export"
    dlg = ExportDialog(None, path)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert dlg.destination.width() > dlg.destination.fontMetrics().horizontalAdvance(path)
    assert dlg.destination.toolTip() == path


def test_a_rule_separates_a_long_status_message_from_the_model_in_use(qtbot, window):
    window.resize(700, 400)
    window.show()
    qtbot.waitExposed(window)
    window.show_message("a long message that does not fit " * 6, "info")
    rule, label = window.status_panel.model_rule, window.status_panel.model_label
    assert rule.isVisible() and rule.frameShape() == rule.Shape.VLine
    assert rule.geometry().right() <= label.geometry().left()  # between the message and "Model: …"
