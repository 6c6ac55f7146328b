"""Prediction runs across a model switch, the threshold's owner, and the closing policy.

Each test here failed on the code before its fix."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import RecordingPrompter, blank, make_workspace, open_and_predict, stroke

from model_core.imageio import write_png_atomic
from model_core.synthetic import make_fundus


def _add_version(store, micro_checkpoint_path, threshold: float, label: str = "fine-tuned"):
    """A store version of the micro model whose calibrated threshold is ``threshold`` (not yet active)."""
    from model_core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(micro_checkpoint_path)
    ckpt.metadata["threshold"] = threshold
    return store.add(ckpt, {"label": label, "parent": store.active().id})


def _switch(qtbot, window, version):
    window.finetune.activate_version(version.id)
    qtbot.waitUntil(
        lambda: window.prediction.info is not None and window.prediction.info.path == version.path, timeout=30000
    )


def _wait_batch_done(qtbot, window):
    qtbot.waitUntil(lambda: window.action_table.predict_all.isEnabled(), timeout=60000)


@pytest.fixture
def store_window(make_window, store, qtbot):
    w = make_window(checkpoint=None)  # the model store decides
    w.prompter = RecordingPrompter()
    qtbot.waitUntil(lambda: w.prediction.info is not None, timeout=30000)
    return w


def test_repredict_after_fixing_a_photo_does_not_repeat_the_old_failure_count(
    qtbot, store_window, store, tmp_path, micro_checkpoint_path
):
    """Predict all with one unreadable photo, fix it, switch model, re-predict: no stale '1 of 3'."""
    w = store_window
    root = make_workspace(tmp_path / "w", 2, corrupt=("img_00b.png",))
    open_and_predict(qtbot, w, root)
    w.predictions_view.predict_all()
    _wait_batch_done(qtbot, w)
    assert "1 of 3 images could not be read or predicted" in w.banner.text()

    write_png_atomic(root / "img_00b.png", make_fundus(160, 150, seed=5).image)  # the photo is fixed
    _switch(qtbot, w, _add_version(store, micro_checkpoint_path, 0.5))
    assert w.finetune.repredict_unreviewed() is not None
    _wait_batch_done(qtbot, w)
    assert all(w.review.workspace.status(k) == "predicted" for k in ("img_00", "img_00b", "img_01"))
    assert "could not be read" not in w.banner.text()
    assert "3 images predicted" in w.statusBar().currentMessage() or "predicted" in w.banner.text()


def test_the_mask_follows_the_slider_when_a_new_model_sets_the_threshold(
    qtbot, store_window, store, tmp_path, micro_checkpoint_path
):
    """After a new model sets the threshold, the mask on screen is cut at the threshold the slider shows."""
    w = store_window
    s = open_and_predict(qtbot, w, make_workspace(tmp_path / "w", 2))
    assert w.review.workspace.threshold is None and np.array_equal(s.document.mask, s.probability >= 0.5)
    _switch(qtbot, w, _add_version(store, micro_checkpoint_path, 0.47))
    assert w.review_panel.threshold_slider.value() == 47
    assert np.array_equal(w.review.image.document.mask, w.review.image.probability >= 0.47)


def test_a_new_models_calibrated_threshold_wins_over_the_workspaces_and_says_so(
    qtbot, store_window, store, tmp_path, micro_checkpoint_path
):
    """A newly activated model's calibration is not ignored silently once a workspace has a threshold of its own."""
    w = store_window
    open_and_predict(qtbot, w, make_workspace(tmp_path / "w", 2))
    assert w.threshold_control.apply(0.6) and w.review.workspace.threshold == 0.6
    _switch(qtbot, w, _add_version(store, micro_checkpoint_path, 0.45))
    assert w.review_panel.threshold_slider.value() == 45 and w.review.workspace.threshold == 0.45
    assert np.array_equal(w.review.image.document.mask, w.review.image.probability >= 0.45)
    assert "0.45" in w.banner.text() and "0.60" in w.banner.text()


def test_after_a_model_switch_an_edited_mask_is_kept_and_the_label_says_so(
    qtbot, store_window, store, tmp_path, micro_checkpoint_path
):
    w = store_window
    open_and_predict(qtbot, w, make_workspace(tmp_path / "w", 2))
    doc = blank(w)
    w.edit_tools.set_tool("brush")
    stroke(w.canvas, [(20, 20), (60, 60)])
    edited = doc.mask.copy()
    _switch(qtbot, w, _add_version(store, micro_checkpoint_path, 0.45))
    assert np.array_equal(doc.mask, edited)  # never replaced without asking
    assert w.review_panel.threshold_slider.value() == 45 and "edited" in w.review_panel.threshold_label.text()


def test_results_that_arrive_after_closing_are_dropped(qtbot, app_settings, micro_checkpoint_path):
    """The model-loaded handler is connected through the closing guard."""
    from retina_desktop.ui.app.main_window import MainWindow

    w = MainWindow(checkpoint_path=micro_checkpoint_path, settings=app_settings)
    (load,) = [t for t in w.tasks.active if t.name == "load model"]
    assert load.done.wait(30)  # loaded on its thread; the result is queued for the UI thread, not yet delivered
    w.shutdown()
    qtbot.wait(50)
    assert w.prediction.info is None and w.status_panel.model_label.text() == "Model: loading…"
    w.deleteLater()


def test_a_runtime_error_that_mentions_the_model_does_not_disable_the_model(qtbot, window, flat_workspace):
    """Errors are not routed by searching their text for 'model': a failed prediction is not a missing model."""
    open_and_predict(qtbot, window, flat_workspace)

    def fail(rgb):
        raise RuntimeError("the model ran out of GPU memory")

    real = window.model.predict_full
    window.model.predict_full = fail
    with qtbot.waitSignal(window.message_shown, timeout=10000, check_params_cb=lambda m: "GPU memory" in m):
        window.images.step_image(+1)
    assert window.prediction.model_error is None and window.status_panel.model_label.text().startswith(
        "Model: test-micro"
    )
    window.model.predict_full = real
    with qtbot.waitSignal(window.prediction_shown, timeout=30000):
        window.predictions_view.predict_current()


def test_a_broken_checkpoint_is_reported_as_no_model(qtbot, make_window, flat_workspace, tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    window = make_window(checkpoint=bad)
    qtbot.waitUntil(lambda: window.prediction.model_error is not None, timeout=10000)
    assert "broken.pt" in window.prediction.model_error and window.status_panel.model_label.text() == "Model: none"


def test_a_model_switch_while_the_open_image_is_predicted_shows_the_new_models_prediction(
    qtbot, store_window, store, tmp_path, micro_checkpoint_path
):
    import threading

    w = store_window
    gate, computing = threading.Event(), threading.Event()
    real = w.model.predict_full

    def gated(rgb):
        computing.set()
        assert gate.wait(30)
        return real(rgb)

    w.model.predict_full = gated
    old_key = w.model.cache_key
    with qtbot.waitSignal(w.image_opened, timeout=30000):
        w.workspaces.open_workspace(make_workspace(tmp_path / "w", 2))
    assert computing.wait(30)  # the old model is busy with img_00
    version = _add_version(store, micro_checkpoint_path, 0.5, label="switched mid-prediction")
    with qtbot.waitSignal(w.prediction_shown, timeout=30000) as shown:
        _switch(qtbot, w, version)
        gate.set()
    assert shown.args == ["img_00"] and w.review.image.probability is not None
    entry = w.review.workspace.entry("img_00")
    assert w.review.workspace.predictions.has(entry, w.model.cache_key)  # cached for the new model only
    assert not w.review.workspace.predictions.has(entry, old_key)
    assert np.array_equal(w.review.image.document.mask, w.review.image.probability >= 0.5)
    qtbot.waitUntil(lambda: not w.prediction.is_predicting("img_00"), timeout=30000)
