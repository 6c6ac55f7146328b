"""The autosave runs on a worker: the file and the status arrive by signal, edits made meanwhile stay dirty and
are saved next, a conflict met by the worker still asks, and switching images or closing waits for it."""

from __future__ import annotations

import threading

import numpy as np
from gui_helpers import SafetyPrompter, blank, open_and_paint, open_and_predict, stroke

from model_core.imageio import read_mask


def _gate(monkeypatch, ws):
    """Hold the worker's save until the test opens the gate, so edits land while it is in flight."""
    entered, gate = threading.Event(), threading.Event()
    real = ws.save_ground_truth

    def held(*a, **k):
        entered.set()
        assert gate.wait(20)
        return real(*a, **k)

    monkeypatch.setattr(ws, "save_ground_truth", held)
    return entered, gate


def test_the_autosave_writes_the_file_on_a_worker_and_updates_the_status(qtbot, window, flat_workspace):
    doc = open_and_paint(qtbot, window, flat_workspace)
    painted, key = doc.mask.copy(), window.review.image.key
    ui_thread, saved_on = threading.get_ident(), []
    ws = window.review.workspace
    real = ws.save_ground_truth
    ws.save_ground_truth = lambda *a, **k: (saved_on.append(threading.get_ident()), real(*a, **k))[1]
    with qtbot.waitSignal(window.saved, timeout=20000) as saved:
        window.commands.autosave()
        assert window.saving.in_flight  # handed over, not written yet by this call
    assert saved.args == [key, str(ws.entry(key).gt_path)]
    assert saved_on and saved_on[0] != ui_thread
    assert np.array_equal(read_mask(ws.entry(key).gt_path), painted)
    assert not doc.unsaved and ws.status(key) == "edited"
    assert window.statusBar().currentMessage().startswith("Autosaved ")
    assert ws.versions(key)[-1].source == "brush" and ws.review_log(key)[-1]["action"] == "autosave"


def test_an_edit_during_an_autosave_stays_dirty_and_is_saved_next(qtbot, window, flat_workspace, monkeypatch):
    open_and_predict(qtbot, window, flat_workspace)
    doc = blank(window)
    window.edit_tools.set_tool("brush")
    window.edit_tools.set_brush_radius(4)
    stroke(window.canvas, [(20, 20), (60, 20)])
    first, key, ws = doc.mask.copy(), window.review.image.key, window.review.workspace
    entered, gate = _gate(monkeypatch, ws)
    window.commands.autosave()
    assert entered.wait(20)
    stroke(window.canvas, [(20, 100), (60, 100)])  # while the worker holds the copy made before it
    second = doc.mask.copy()
    assert not np.array_equal(first, second)
    window.commands.autosave()  # a tick while the save is in flight queues one more, never a second one at once
    with qtbot.waitSignals([window.saved, window.saved], timeout=20000):
        gate.set()
    assert np.array_equal(read_mask(ws.entry(key).gt_path), second)
    assert [v.source for v in ws.versions(key)][-2:] == ["brush", "brush"]
    assert not doc.unsaved and not window.saving.in_flight
    # The first save marked the state it copied as saved: undoing the second stroke is back to a dirty state
    # (the file now holds the second stroke), redoing it is clean again.
    window.edit_tools.undo()
    assert np.array_equal(doc.mask, first) and doc.unsaved
    window.edit_tools.redo()
    assert not doc.unsaved


def test_an_edit_during_an_autosave_is_not_marked_saved_by_it(qtbot, window, flat_workspace, monkeypatch):
    doc = open_and_paint(qtbot, window, flat_workspace, [(20, 20), (60, 20)])
    first, key, ws = doc.mask.copy(), window.review.image.key, window.review.workspace
    entered, gate = _gate(monkeypatch, ws)
    window.commands.autosave()
    assert entered.wait(20)
    stroke(window.canvas, [(20, 100), (60, 100)])
    with qtbot.waitSignal(window.saved, timeout=20000):
        gate.set()
    assert np.array_equal(read_mask(ws.entry(key).gt_path), first)  # the copy, not the edit made during it
    assert doc.unsaved and key in window.image_list.model._dirty
    window.edit_tools.undo()  # back to what the file holds
    assert not doc.unsaved
    window.edit_tools.redo()
    assert doc.unsaved
    assert window.saving.save_current()  # a save asked for writes the edit
    assert np.array_equal(read_mask(ws.entry(key).gt_path), doc.mask) and not doc.unsaved


def test_switching_images_waits_for_the_autosave_in_flight(qtbot, window, flat_workspace, monkeypatch):
    doc = open_and_paint(qtbot, window, flat_workspace, [(20, 20), (60, 20)])
    key, ws = window.review.image.key, window.review.workspace
    entered, gate = _gate(monkeypatch, ws)
    window.commands.autosave()
    assert entered.wait(20)
    stroke(window.canvas, [(20, 100), (60, 100)])
    painted = doc.mask.copy()
    gate.set()  # (the switch below waits for the worker, then saves the second stroke on this thread)
    with qtbot.waitSignal(window.image_opened, timeout=20000):
        window.images.step_image(+1)
    assert window.review.image.key != key
    assert np.array_equal(read_mask(ws.entry(key).gt_path), painted)
    assert len(ws.versions(key)) == 2


def test_a_conflict_met_by_the_worker_asks_and_keep_mine_saves_the_copy(qtbot, window, flat_workspace, monkeypatch):
    from retina_desktop.core.workspace import Workspace

    doc = open_and_paint(qtbot, window, flat_workspace, [(20, 20), (60, 20)])
    mine, key, ws = doc.mask.copy(), window.review.image.key, window.review.workspace
    theirs = np.zeros(doc.shape, bool)
    theirs[50:60, :] = True
    other = Workspace(flat_workspace)  # another window
    other.save_ground_truth(other.entry(key), theirs, reviewer="bob")
    other.close()
    window.prompter = SafetyPrompter(conflict=["mine"])
    entered, gate = _gate(monkeypatch, ws)
    window.commands.autosave()
    assert entered.wait(20)
    stroke(window.canvas, [(20, 100), (60, 100)])  # after the copy was taken
    with qtbot.waitSignal(window.saved, timeout=20000):
        gate.set()
    assert window.prompter.asked[0][0] == "conflict" and "another window or grader" in window.prompter.asked[0][1]
    assert np.array_equal(read_mask(ws.entry(key).gt_path), mine)  # the copy the worker wrote, kept over theirs
    assert any(np.array_equal(read_mask(v.path), theirs) for v in ws.versions(key))  # theirs is in the history
    assert doc.unsaved  # the stroke made during the save is not in the file
    window.edit_tools.undo()
    assert not doc.unsaved


def test_closing_the_window_waits_for_the_autosave_in_flight(qtbot, window, flat_workspace, monkeypatch):
    doc = open_and_paint(qtbot, window, flat_workspace)
    painted, key, ws = doc.mask.copy(), window.review.image.key, window.review.workspace
    window.prompter = SafetyPrompter()
    entered, gate = _gate(monkeypatch, ws)
    window.commands.autosave()
    assert entered.wait(20)
    opener = threading.Timer(0.3, gate.set)  # the save is still held when the window is asked to close
    opener.start()
    window.close()
    opener.join()
    assert not window.isVisible() and not window.saving.in_flight
    assert np.array_equal(read_mask(ws.entry(key).gt_path), painted)
    assert not [a for a in window.prompter.asked if a[0] == "unsaved"]  # it knew the edits were saved
