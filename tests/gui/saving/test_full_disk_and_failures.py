"""A save that fails (a full disk, a record that could not be written, a workspace renamed or unplugged while
open, a failure after the file was written) keeps the edits, says so in the banner, and offers retry, export
elsewhere, discard or stay when the grader leaves the image; on the UI thread and from the autosave worker."""

from __future__ import annotations

import numpy as np
from gui_helpers import SafetyPrompter, blank, open_and_paint, open_and_predict, stroke

from model_core.imageio import read_mask
from retina_desktop.core.workspace import DiskFullError


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


def test_a_full_disk_in_the_worker_still_shows_the_banner(qtbot, window, flat_workspace, monkeypatch):
    doc = open_and_paint(qtbot, window, flat_workspace)
    ws, key = window.review.workspace, window.review.image.key
    path = ws.entry(key).gt_path

    def full(*a, **k):
        raise DiskFullError(f"{path}: disk full (No space left on device); the mask was not saved")

    monkeypatch.setattr(ws, "save_ground_truth", full)
    window.prompter = SafetyPrompter(save_failed=["cancel"])
    with qtbot.waitSignal(window.message_shown, timeout=20000) as shown:
        window.commands.autosave()
    assert shown.args[0].startswith("Not saved: ") and "disk full" in shown.args[0]
    assert window.banner.isVisible() and "disk full" in window.banner.text()
    assert doc.unsaved and not path.exists() and not window.saving.in_flight
    assert not window.prompter.asked  # the timer never opens a dialog for a full disk
    # Leaving the image still asks, as a save on the UI thread did: retry / export / discard / stay.
    window.images.step_image(+1)
    assert window.review.image.key == key and window.prompter.asked[0][0] == "save_failed"
    assert "disk full" in window.prompter.asked[0][1]


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


def test_a_failure_after_the_autosave_wrote_its_file_is_a_warning_not_not_saved(
    qtbot, window, flat_workspace, monkeypatch
):
    doc = open_and_paint(qtbot, window, flat_workspace)
    painted, key, ws = doc.mask.copy(), window.review.image.key, window.review.workspace

    def broken(*_a, **_k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(window.review, "_saved", broken)
    window.commands.autosave()
    assert window.saving.in_flight
    qtbot.waitUntil(lambda: not window.saving.in_flight, timeout=20000)  # settled when the worker's signal came
    assert np.array_equal(read_mask(ws.entry(key).gt_path), painted)
    text = window.banner.text()
    assert window.banner.isVisible() and "could not be brought up to date" in text and "Not saved" not in text


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
