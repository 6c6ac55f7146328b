"""Compare mode's Qt-free part: the reference, the second grader, the scores, and what the review log counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_core.imageio import mask_to_png, read_mask, write_png_atomic
from model_core.synthetic import make_fundus
from retina_desktop.core.model.tasks import PredictionResult, load_image
from retina_desktop.core.review.compare import (
    compare_scores,
    dice_against_reference,
    load_compare_masks,
    reference_source,
    second_grader_path,
    workspace_dice,
)
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace

H, W = 40, 50


def _reference_workspace(root: Path, second: str | None = "masks_2nd_observer") -> tuple[Path, np.ndarray]:
    (root / "images").mkdir(parents=True)
    (root / "mask").mkdir()
    write_png_atomic(root / "images" / "a.png", make_fundus(H, W, seed=3).image)
    ref = np.zeros((H, W), bool)
    ref[10:20, 5:45] = True  # 400 vessel pixels
    write_png_atomic(root / "mask" / "a.png", mask_to_png(ref, 255))
    if second:
        (root / second).mkdir()
        other = np.zeros((H, W), bool)
        other[10:20, 5:25] = True  # 200 pixels, all inside the reference
        write_png_atomic(root / second / "a.png", mask_to_png(other, 255))
    return root, ref


def test_the_second_grader_is_found_beside_the_first_also_by_drives_names(tmp_path):
    root, _ = _reference_workspace(tmp_path / "w")
    ws = Workspace(root)
    assert second_grader_path(ws.entry("a")) == root / "masks_2nd_observer" / "a.png"

    drive = tmp_path / "drive" / "test"
    (drive / "images").mkdir(parents=True)
    (drive / "1st_manual").mkdir()
    (drive / "2nd_manual").mkdir()
    write_png_atomic(drive / "images" / "01_test.png", make_fundus(H, W, seed=1).image)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(drive / "1st_manual" / "01_manual1.gif")
    Image.fromarray(np.full((H, W), 255, np.uint8)).save(drive / "2nd_manual" / "01_manual2.gif")
    dws = Workspace(drive.parent)
    e = dws.entry("test/01_test")
    assert second_grader_path(e) == drive / "2nd_manual" / "01_manual2.gif"
    assert second_grader_path(Workspace(_reference_workspace(tmp_path / "x", None)[0]).entry("a")) is None


def test_the_reference_stays_the_data_sets_mask_after_the_grader_saves_over_it(tmp_path):
    root, ref = _reference_workspace(tmp_path / "w")
    ws = Workspace(root)
    e = ws.entry("a")
    path, label = reference_source(ws, e)
    assert path == root / "mask" / "a.png" and "data set" in label
    ws.load_ground_truth(e, (H, W))
    edited = ref.copy()
    edited[30:35, 5:45] = True
    ws.save_ground_truth(e, edited)
    assert np.array_equal(read_mask(e.gt_path), edited)  # the file in mask/ is now the grader's
    path, label = reference_source(ws, e)
    assert path != e.gt_path and "saved over" in label
    assert np.array_equal(read_mask(path), ref)  # the original, from the history
    masks = load_compare_masks(None, ws, e, (H, W))
    assert np.array_equal(masks.reference, ref) and masks.second.sum() == 200 and masks.problems == []
    assert load_compare_masks(None, ws, e, (H + 1, W)).problems[0].endswith("not used")


def test_scores_equal_hand_counts():
    ref = np.zeros((H, W), bool)
    ref[10:20, 5:45] = True  # 400
    pred = np.zeros((H, W), bool)
    pred[10:20, 25:45] = True  # 200 true positives
    pred[30:35, 5:25] = True  # 100 false positives
    s = compare_scores(pred, ref.copy(), ref)
    p = s.prediction_vs_reference
    assert p.dice == pytest.approx(2 * 200 / (300 + 400))
    assert p.sensitivity == pytest.approx(200 / 400)
    assert p.specificity == pytest.approx((H * W - 400 - 100) / (H * W - 400))
    assert s.mask_vs_reference.dice == 1.0 and s.mask_vs_reference.cldice == pytest.approx(1.0)
    assert s.second_vs_reference is None
    assert next(r[0] for r in s.rows()) == "Model prediction vs reference"
    assert compare_scores(pred, pred, None).prediction_vs_reference is None


def test_the_list_sorts_by_the_cached_predictions_dice(tmp_path):
    root, _ref = _reference_workspace(tmp_path / "w")
    ws = Workspace(root)
    e = ws.entry("a")
    assert dice_against_reference(ws, e, "m", 0.5) is None  # no prediction cached yet
    prob = np.zeros((H, W), np.float32)
    prob[10:20, 25:45] = 0.9  # 200 of the 400 reference pixels
    ws.predictions.store(e, "m", prob)
    assert dice_against_reference(ws, e, "m", 0.5) == pytest.approx(2 * 200 / 600, abs=1e-6)
    assert dice_against_reference(ws, e, "m", 0.95) == 0.0

    class Ctx:
        cancelled = False

        def __init__(self):
            self.got = []

        def emit(self, v):
            self.got.append(v)

    ctx = Ctx()
    assert workspace_dice(ctx, ws, "m", 0.5) == 1
    assert ctx.got == [("a", pytest.approx(2 / 3, abs=1e-6))]


def test_the_review_log_counts_the_graders_changes_not_the_difference_to_the_prediction(tmp_path):
    root, ref = _reference_workspace(tmp_path / "w")
    r = ReviewSession()
    r.set_workspace(Workspace(root))
    request, entry = r.begin_load("a")
    s = r.finish_load(request, load_image(None, r.workspace, entry, "m"))
    assert s.document.source == "ground truth"
    prob = np.zeros((H, W), np.float32)  # a model that finds no vessel at all
    r.prediction_arrived(PredictionResult("a", prob, np.ones((H, W), bool), 0.0, "test v0"))
    assert np.array_equal(s.document.mask, ref)  # the reference stays on screen
    s.document.stroke_to((10, 32), (40, 32), 1.0, True)  # the grader only adds a line
    s.document.end_stroke()
    added = int(np.count_nonzero(s.document.mask & ~ref))
    assert added > 0
    r.save(False, "test v0", "ann")
    (rec,) = [x for x in r.workspace.review_log("a") if x["action"] == "save"]
    assert rec["pixels_added"] == added and rec["pixels_removed"] == 0
    # Against the (empty) prediction everything is "added": kept apart, under its own name.
    assert rec["added_vs_prediction"] == 400 + added and rec["removed_vs_prediction"] == 0
    s.document.stroke_to((10, 32), (40, 32), 1.0, False)  # the second save counts against the first
    s.document.end_stroke()
    r.save(False, "test v0", "ann")
    last = [x for x in r.workspace.review_log("a") if x["action"] == "save"][-1]
    assert last["pixels_added"] == 0 and last["pixels_removed"] > 0


def test_edit_burden_reads_the_saves_of_the_review_log_in_time_order():
    from retina_desktop.core.review.compare import edit_burden, histogram

    log = [
        {"time": "2026-01-01T10:00:10.000+00:00", "action": "save", "pixels_added": 5, "pixels_removed": 2},
        {"time": "2026-01-01T10:00:00.000+00:00", "action": "autosave", "pixels_added": 1, "pixels_removed": 0},
        {"time": "2026-01-01T10:00:20.000+00:00", "action": "approve", "pixels_added": 99, "pixels_removed": 0},
        {"time": "not a time", "action": "save", "pixels_added": 3, "pixels_removed": 0},
    ]
    t, px = edit_burden(log)
    assert list(px) == [1, 7] and t[1] - t[0] == pytest.approx(10.0)
    edges, counts = histogram([0.5, 0.7, 0.7, float("nan"), None], bins=2)
    assert list(counts) == [1, 2] and edges[0] == 0.5 and edges[-1] == 0.7
    edges, counts = histogram([0.81, 0.05, 1.0], bins=20, span=(0.0, 1.0))
    assert edges[0] == 0.0 and edges[-1] == 1.0 and counts[16] == 1 and counts[1] == 1 and counts[19] == 1
    edges, counts = histogram([0.8], bins=3)
    assert counts.sum() == 1 and edges[0] < 0.8 < edges[-1]
