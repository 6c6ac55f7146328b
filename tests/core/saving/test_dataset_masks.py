"""Masks that came with the data set or from another tool: one is copied into the history before a save replaces
it, and it is never autosaved over; starting from the prediction instead is the grader's choice, one undo step."""

from __future__ import annotations

import cv2
import numpy as np
from sample_workspaces import make_workspace

from model_core.imageio import read_raw, write_png_atomic
from retina_desktop.core.workspace import Workspace

from .helpers import open_image, predict, session_on


def test_a_mask_from_elsewhere_is_always_kept_before_it_is_replaced(tmp_path, rng):
    ws = Workspace(make_workspace(tmp_path / "w", 1))
    (entry,) = ws.entries
    mask = rng.random((160, 150)) > 0.7
    # A 0/1/2 label image from another tool reads as the same binary mask, yet holds more: it is kept.
    labels = mask.astype(np.uint8) * 2
    entry.gt_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(entry.gt_dir / f"{entry.stem}.tif"), labels)
    assert ws.save_ground_truth(entry, mask).suffix == ".png"
    (kept,) = ws.history(entry)
    assert kept.suffix == ".tif" and np.array_equal(read_raw(kept), labels)
    assert not (entry.gt_dir / f"{entry.stem}.tif").exists()
    # Saving the same mask again writes identical bytes: nothing more to keep.
    ws.save_ground_truth(entry, mask)
    assert len(ws.history(entry)) == 1


def test_a_data_sets_own_mask_is_never_autosaved_over_and_start_from_the_prediction_is_one_undo_step(root, rng):
    session = session_on(root)
    ws = session.workspace
    e = ws.entry("img_00")
    e.gt_dir.mkdir(parents=True, exist_ok=True)
    own = rng.random((160, 150)) > 0.8
    write_png_atomic(e.gt_path, own.astype(np.uint8) * 255)
    before = e.gt_path.read_bytes()
    s = open_image(session, "img_00")
    prob = predict(session, "img_00")
    assert np.array_equal(s.document.mask, own)  # the mask on disk stays on screen
    session.apply_threshold(0.7)  # the grader nudges the threshold: the prediction replaces it on screen
    assert s.document.unsaved and not session.may_autosave()
    session.apply_threshold(0.5)
    assert e.gt_path.read_bytes() == before  # nothing wrote over the data set's mask
    session.image.document.reset(own, "ground truth", saved=True)
    assert session.start_from_prediction()
    assert np.array_equal(s.document.mask, prob >= session.threshold) and s.document.undo_count == 1
    assert session.may_autosave()  # the grader asked for it: it is theirs to save
    s.document.undo()
    assert np.array_equal(s.document.mask, own) and not s.document.unsaved
