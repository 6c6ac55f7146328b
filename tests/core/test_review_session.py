"""Unit tests of the Qt-free review session: load requests, predictions, the threshold policy, save and approve."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sample_workspaces import make_workspace

from model_core.imageio import read_mask, write_png_atomic
from retina_desktop.core.model.tasks import PredictionResult, load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace


@pytest.fixture
def session(tmp_path):
    ws = Workspace(make_workspace(tmp_path / "w", 3))
    r = ReviewSession()
    r.events = []
    for name in (
        "image_opened",
        "image_closed",
        "prediction_shown",
        "threshold_changed",
        "saved",
        "status_changed",
        "message",
    ):
        getattr(r, name).connect(lambda *a, n=name: r.events.append((n, *a)))
    r.set_workspace(ws)
    return r


def _open(r: ReviewSession, key: str):
    request, entry = r.begin_load(key)
    return r.finish_load(request, load_image(None, r.workspace, entry, "m"))


def _probability(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _predict(r: ReviewSession, key: str, prob):
    return r.prediction_arrived(PredictionResult(key, prob, np.ones(prob.shape, bool), 0.1, "test v0"))


def test_a_stale_load_request_is_dropped_when_switching_images_fast(session):
    ws = session.workspace
    r0, e0 = session.begin_load("img_00")
    r1, e1 = session.begin_load("img_01")  # the grader pressed Next before img_00 was decoded
    loaded0 = load_image(None, ws, e0, "m")
    assert session.finish_load(r0, loaded0) is None and session.image is None
    assert not session.load_failed(r0)
    assert session.loading_key == "img_01"
    opened = session.finish_load(r1, load_image(None, ws, e1, "m"))
    assert opened is session.image and opened.key == "img_01" and session.loading_key is None
    assert [e[0] for e in session.events].count("image_opened") == 1


def test_a_first_prediction_becomes_the_mask_and_edits_are_never_replaced(session):
    s = _open(session, "img_00")
    assert s.document.source == "empty" and not s.document.mask.any()
    prob = _probability(s.document.shape)
    assert _predict(session, "img_00", prob) == "shown"
    assert np.array_equal(s.document.mask, prob >= 0.5) and not s.document.unsaved and not session.threshold_overridden

    t = _open(session, "img_01")
    t.document.stroke_to((5, 5), (20, 20), 2.0, True)
    t.document.end_stroke()
    painted = t.document.mask.copy()
    assert _predict(session, "img_01", _probability(t.document.shape, 1)) == "kept"
    assert np.array_equal(t.document.mask, painted) and session.threshold_overridden
    assert any(e[0] == "message" and "your mask was kept" in e[1] for e in session.events)
    assert _predict(session, "img_02", prob) == "other"  # not the open image: recorded, not shown
    assert session.workspace.uncertainty("img_02") == pytest.approx(0.1)


def test_the_model_threshold_applies_until_the_workspace_chooses_one(session):
    s = _open(session, "img_00")
    prob = _probability(s.document.shape)
    _predict(session, "img_00", prob)
    session.model_loaded(0.42, activated=False)
    assert session.threshold == 0.42 and np.array_equal(s.document.mask, prob >= 0.42)
    assert session.threshold_question(0.3) is None  # nothing by hand to lose
    session.apply_threshold(0.3)
    assert session.workspace.threshold == 0.3 and np.array_equal(s.document.mask, prob >= 0.3)
    session.model_loaded(0.42, activated=False)  # e.g. a restart: the workspace's choice stays
    assert session.threshold == 0.3


def test_an_activated_models_threshold_wins_and_the_user_is_told(session):
    s = _open(session, "img_00")
    prob = _probability(s.document.shape)
    _predict(session, "img_00", prob)
    session.apply_threshold(0.6)
    session.model_loaded(0.45, activated=True)
    assert session.threshold == 0.45 and session.workspace.threshold == 0.45
    assert np.array_equal(s.document.mask, prob >= 0.45) and not session.threshold_overridden
    (message,) = [e for e in session.events if e[0] == "message"]
    assert "0.45 replaces 0.60" in message[1]


def test_an_activated_models_threshold_keeps_an_edited_mask_and_says_so(session):
    s = _open(session, "img_00")
    _predict(session, "img_00", _probability(s.document.shape))
    s.document.stroke_to((5, 5), (20, 20), 2.0, True)
    s.document.end_stroke()
    edited = s.document.mask.copy()
    session.model_loaded(0.45, activated=True)
    assert session.threshold == 0.45 and np.array_equal(s.document.mask, edited) and session.threshold_overridden
    assert "edited mask on screen was kept" in [e for e in session.events if e[0] == "message"][-1][1]
    assert "discards its edits" in session.threshold_question(0.3)


def test_save_writes_the_mask_logs_it_and_approve_marks_it(session):
    s = _open(session, "img_00")
    prob = _probability(s.document.shape)
    _predict(session, "img_00", prob)
    s.document.stroke_to((5, 5), (40, 40), 3.0, True)
    s.document.end_stroke()
    assert session.needs_save_before_approve()
    path = session.save(auto=False, model="test v0", reviewer="rk")
    assert np.array_equal(read_mask(path), s.document.mask) and not s.document.unsaved
    assert s.document.source == "ground truth" and session.workspace.status("img_00") == "edited"
    assert not session.needs_save_before_approve()
    session.approve(model="test v0", reviewer="rk")
    assert session.workspace.status("img_00") == "approved"
    log = [json.loads(x) for x in session.workspace.review_log_path.read_text().splitlines()]
    assert [x["action"] for x in log] == ["save", "approve"]
    assert log[0]["pixels_added"] == int(np.count_nonzero(s.document.mask & ~(prob >= 0.5)))
    assert ("saved", "img_00", str(path)) in session.events


def test_a_saved_ground_truth_is_never_re_derived_without_a_question(session, tmp_path):
    ws = session.workspace
    expert = np.zeros((160, 150), np.uint8)
    expert[50, :] = 255
    write_png_atomic(ws.entry("img_01").gt_path, expert)
    s = _open(session, "img_01")
    assert s.document.source == "ground truth"
    _predict(session, "img_01", _probability(s.document.shape))
    assert np.array_equal(s.document.mask, expert > 0) and session.threshold_overridden
    question = session.threshold_question(0.3)
    assert "replaces the saved ground truth of img_01" in question and "discarding your edits" not in question
