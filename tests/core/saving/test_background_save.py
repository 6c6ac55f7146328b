"""A save of a copy of the open mask on another thread (the window's autosave): the document marks saved the state
that was copied, whatever was edited meanwhile, and the session never runs two saves of an image at once."""

from __future__ import annotations

import threading

import numpy as np
from sample_workspaces import make_workspace

from model_core.imageio import read_mask
from retina_desktop.core.model.tasks import load_image
from retina_desktop.core.review.mask_document import MaskDocument
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import SaveConflict, Workspace


def _paint(doc: MaskDocument, y: int) -> None:
    doc.begin_stroke()
    doc.stroke_to((5.0, float(y)), (25.0, float(y)), 2.0, True)
    doc.end_stroke()


def test_marking_a_copied_state_saved_keeps_later_edits_dirty_and_undo_finds_it():
    doc = MaskDocument(np.zeros((40, 40), bool))
    _paint(doc, 5)
    point, copy = doc.save_point(), doc.mask.copy()
    _paint(doc, 20)
    doc.mark_saved_at(point, copy)
    assert doc.unsaved
    doc.undo()
    assert np.array_equal(doc.mask, copy) and not doc.unsaved
    doc.redo()
    assert doc.unsaved


def test_a_copied_state_undone_meanwhile_is_found_among_the_redo_steps():
    doc = MaskDocument(np.zeros((40, 40), bool))
    _paint(doc, 5)
    _paint(doc, 20)
    point, copy = doc.save_point(), doc.mask.copy()
    doc.undo()
    doc.undo()
    doc.mark_saved_at(point, copy)
    assert doc.unsaved
    doc.redo()
    assert doc.unsaved
    doc.redo()
    assert np.array_equal(doc.mask, copy) and not doc.unsaved
    doc.undo()
    _paint(doc, 30)  # a new branch: the saved state can no longer be reached
    doc.undo()
    assert doc.unsaved and doc.can_redo


def test_a_reset_or_a_stroke_in_progress_is_never_taken_for_the_saved_state():
    doc = MaskDocument(np.zeros((40, 40), bool))
    doc.begin_stroke()
    assert doc.save_point() is None  # the stroke's end is not known yet
    doc.end_stroke()
    point, copy = doc.save_point(), doc.mask.copy()  # an empty history
    doc.reset(np.ones((40, 40), bool), "prediction", saved=False)
    doc.mark_saved_at(point, copy)
    assert doc.unsaved
    doc.reset(np.zeros((40, 40), bool), "prediction", saved=False)  # the same pixels again: that is saved
    doc.mark_saved_at(point, copy)
    assert not doc.unsaved


def _session(tmp_path):
    ws = Workspace(make_workspace(tmp_path / "w", 2))
    r = ReviewSession()
    r.set_workspace(ws)
    request, entry = r.begin_load("img_00")
    s = r.finish_load(request, load_image(None, ws, entry, "m"))
    s.document.reset(np.zeros(s.document.shape, bool), "prediction", saved=True)
    return r, ws, s


def test_a_background_save_writes_the_copy_and_edits_made_meanwhile_are_saved_next(tmp_path):
    r, ws, s = _session(tmp_path)
    doc = s.document
    _paint(doc, 10)
    first = doc.mask.copy()
    job = r.begin_save(True, None, "ann", background=True)
    assert r.in_flight is job and job.mask is not doc.mask
    _paint(doc, 40)  # on the UI thread, while the worker below has not even started
    second = doc.mask.copy()
    worker = threading.Thread(target=job.run)
    worker.start()
    settled = []
    r.save_settled.connect(settled.append)
    r.settle(job)
    worker.join()
    assert settled == [job] and job.error is None and r.in_flight is None
    assert np.array_equal(read_mask(s.entry.gt_path), first) and doc.unsaved
    assert s.disk_sha == ws.current_sha(s.entry)  # the next save is checked against the file just written
    r.save(True, None, "ann")
    assert np.array_equal(read_mask(s.entry.gt_path), second) and not doc.unsaved
    assert [x["action"] for x in ws.review_log("img_00")] == ["autosave", "autosave"]


def test_every_other_call_waits_for_the_save_in_flight(tmp_path):
    r, ws, s = _session(tmp_path)
    _paint(s.document, 10)
    job = r.begin_save(True, None, "ann", background=True)
    worker = threading.Timer(0.2, job.run)  # still running when the next save is asked for
    worker.start()
    r.save(False, None, "ann")  # waits for the job, then saves again (no conflict with its own autosave)
    worker.join()
    assert job.error is None and job.done.is_set()
    assert [x["action"] for x in ws.review_log("img_00")] == ["autosave", "save"]
    job2 = r.begin_save(True, None, "ann", background=True)
    threading.Thread(target=job2.run).start()
    _request, _entry = r.begin_load("img_01")  # switching images settles it too
    assert r.in_flight is None and job2.done.is_set()


def _run(r, job):
    worker = threading.Thread(target=job.run)
    worker.start()
    r.settle(job)
    worker.join()


def test_keep_mine_for_an_earlier_conflict_never_marks_later_edits_saved(tmp_path):
    """Two autosaves meet the same conflict while the first question is open; "mine" is answered for the first:
    the copy it wrote is on disk, and the stroke painted after it stays unsaved."""

    r, ws, s = _session(tmp_path)
    doc = s.document
    other = Workspace(ws.root)  # a second window saves the image first
    theirs = np.zeros(doc.shape, bool)
    theirs[50:60, 5:25] = True
    other.save_ground_truth(other.entries[0], theirs, source="brush", reviewer="bob")
    other.close()
    _paint(doc, 10)
    first = doc.mask.copy()
    job1 = r.begin_save(True, None, "ann", background=True)
    _run(r, job1)
    assert isinstance(job1.error, SaveConflict)
    _paint(doc, 40)  # painted while the first question is open; a later autosave meets the conflict too
    job2 = r.begin_save(True, None, "ann", background=True)
    _run(r, job2)
    assert isinstance(job2.error, SaveConflict)
    r.resolve_conflict(job1.error, "mine", "ann")
    assert np.array_equal(read_mask(s.entry.gt_path), first)
    assert doc.unsaved  # the stroke at y=40 is not on disk, so it is not marked saved
    r.save(True, None, "ann")
    assert np.array_equal(read_mask(s.entry.gt_path), doc.mask) and not doc.unsaved


def test_a_failure_after_a_background_save_is_reported_and_never_called_not_saved(tmp_path, monkeypatch):
    r, _ws, s = _session(tmp_path)
    _paint(s.document, 10)
    written = s.document.mask.copy()
    job = r.begin_save(True, None, "ann", background=True)

    def broken(*_a, **_k):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(r, "_saved", broken)  # the file is written; bringing the session up to date fails
    settled = []
    r.save_settled.connect(settled.append)
    _run(r, job)
    assert settled == [job] and job.error is None  # the save itself worked: nothing says "not saved"
    assert isinstance(job.after_error, OSError) and "Input/output" in str(job.after_error)
    assert np.array_equal(read_mask(s.entry.gt_path), written)
    assert s.document.unsaved  # never marked saved by a step that failed: the next autosave writes it again
