"""Undo outlives saves: an image's undo history is kept when switching images while its mask on disk is unchanged
(within a byte cap), and undoing every edit withdraws the autosaved file and gives back the status it had, while
the history keeps what was saved."""

from __future__ import annotations

import numpy as np

from .helpers import open_image, paint, predict, session_on


def test_undo_survives_switching_images_while_the_mask_on_disk_is_unchanged(root):
    r = session_on(root)
    s = open_image(r, "img_00")
    original = s.document.mask.copy()
    paint(s.document, (5, 5), (80, 80))
    r.save(auto=True, model=None, reviewer="rk")
    doc = s.document
    open_image(r, "img_01")
    assert r.kept_keys() == ["img_00"]
    back = open_image(r, "img_00")
    assert back.document is doc and back.document.can_undo
    back.document.undo()
    assert np.array_equal(back.document.mask, original) and back.document.unsaved

    # Another window saves img_00 while it is closed here: the kept undo history no longer applies.
    r.save(auto=True, model=None, reviewer="rk")
    paint(back.document, (5, 100), (80, 100))
    r.save(auto=True, model=None, reviewer="rk")
    open_image(r, "img_01")
    other = session_on(root)
    so = open_image(other, "img_00")
    paint(so.document, (120, 5), (120, 80))
    other.save(auto=False, model=None, reviewer="bob")
    again = open_image(r, "img_00")
    assert again.document is not doc and not again.document.can_undo
    assert np.array_equal(again.document.mask, so.document.mask)


def test_kept_undo_histories_stay_within_the_byte_cap(root, monkeypatch):
    import retina_desktop.core.review.review_session as rs

    r = session_on(root)
    for key in ("img_00", "img_01", "img_02"):
        s = open_image(r, key)
        paint(s.document, (5, 5), (140, 140), radius=8.0)
        r.save(auto=True, model=None, reviewer="rk")
    open_image(r, "img_00")
    assert r.kept_keys() == ["img_01", "img_02"]
    one = r._kept["img_01"].document.history_bytes
    monkeypatch.setattr(rs, "KEEP_HISTORY_BYTES", one + 1)
    open_image(r, "img_01")  # keeps img_00; img_02 + img_00 exceed the cap, so the oldest (img_02) goes
    assert r.kept_keys() == ["img_00"]


def test_every_edit_undone_gives_back_the_status_and_removes_the_autosaved_file(root):
    r = session_on(root)
    s = open_image(r, "img_00")
    predict(r, "img_00")
    ws = r.workspace
    assert ws.status("img_00") == "predicted" and s.entry.existing_gt() is None
    paint(s.document, (5, 5), (80, 80), value=False)
    r.save(auto=True, model=None, reviewer="rk")
    saved_sha = ws.current_sha(s.entry)
    assert ws.status("img_00") == "edited" and s.entry.existing_gt() is not None
    s.document.undo()
    assert r.save(auto=True, model=None, reviewer="rk") is None
    assert ws.status("img_00") == "predicted" and s.entry.existing_gt() is None  # not exported as a correction
    assert saved_sha in {v.sha256 for v in ws.versions("img_00")}  # the history keeps it

    # An approved image edited and then undone is approved again.
    paint(s.document, (5, 5), (80, 80))
    r.save(auto=False, model=None, reviewer="rk")
    r.approve(model=None, reviewer="rk")
    assert r.needs_edit_confirmation()
    r.confirm_edit()
    assert not r.needs_edit_confirmation()
    paint(s.document, (100, 5), (100, 80))
    r.save(auto=True, model=None, reviewer="rk")
    assert ws.status("img_00") == "edited"
    s.document.undo()
    r.save(auto=True, model=None, reviewer="rk")
    assert ws.status("img_00") == "approved" and s.entry.existing_gt() is not None
