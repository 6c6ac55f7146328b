"""The prediction view built alone, from the parts MainWindow would hand it (no window): a review session on a
tmp workspace, a real prediction controller with the micro model, and recorders for what it shows."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import SIZE, make_workspace, task_runner
from PySide6.QtWidgets import QWidget

from retina_desktop.core.model.model_service import ModelHolder
from retina_desktop.core.model.tasks import load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.common.context import Progress
from retina_desktop.ui.prediction.prediction_controller import PredictionController
from retina_desktop.ui.prediction.prediction_view import PredictionView


class Recorder:
    """The image list's rows and the status bar's model read-out: what they were told."""

    def __init__(self):
        self.calls: list[tuple] = []

    def set_error(self, key, message):
        self.calls.append(("error", key, message))

    def refresh(self, key):
        self.calls.append(("refresh", key))

    def show_model(self, description, tooltip="", device=""):
        self.calls.append(("model", description, tooltip))

    def show_loading(self):
        self.calls.append(("loading",))


@pytest.fixture
def make_view(qtbot, tmp_path):
    runners, owners = [], []  # the owners stay alive for the test: their children are the controller and the view

    def build(checkpoint):
        ws = Workspace(make_workspace(tmp_path / "photos", 2))
        review = ReviewSession()
        review.set_workspace(ws)
        owner = QWidget()
        qtbot.addWidget(owner)
        tasks = task_runner(qtbot, owner)
        runners.append(tasks)
        owners.append(owner)
        prediction = PredictionController(tasks, ModelHolder(checkpoint), owner)
        said: dict[str, list] = {"message": [], "status": [], "error": [], "probability": [], "hidden": []}
        rows = Recorder()
        view = PredictionView(
            prediction,
            review,
            rows,
            rows,
            said["probability"].append,
            lambda text, level: said["message"].append((text, level)),
            lambda text, ms: said["status"].append(text),
            Progress(lambda *a: None, lambda: said["hidden"].append(1)),
            lambda title, text: said["error"].append((title, text)),
            lambda: False,
            lambda: None,
            owner,
        )
        return view, prediction, review, rows, said

    yield build
    for tasks in runners:
        tasks.shutdown()


def _open(review, key):
    request, entry = review.begin_load(key)
    return review.finish_load(request, load_image(None, review.workspace, entry, "no model yet"))


def test_the_open_images_prediction_is_shown_and_said(qtbot, make_view, micro_checkpoint_path):
    view, prediction, review, rows, said = make_view(micro_checkpoint_path)
    with qtbot.waitSignal(prediction.model_loaded, timeout=30000):
        prediction.load_model()
    assert rows.calls[-1][0] == "model" and rows.calls[-1][1]  # the status bar names the model
    s = _open(review, "img_00")
    with qtbot.waitSignal(view.prediction_shown, timeout=30000) as shown:
        view.predict_current()
    assert said["status"][0] == "Predicting img_00.png…"
    assert shown.args == ["img_00"] and s.probability is not None
    assert len(said["probability"]) == 1 and said["probability"][0].shape == SIZE
    assert s.document.source == "prediction" and said["status"][-1].startswith("Prediction shown")
    assert ("error", "img_00", None) in rows.calls and ("refresh", "img_00") in rows.calls
    assert np.array_equal(s.document.mask, s.probability >= review.threshold)


def test_predict_all_ends_in_one_batch_finished_after_the_banner_says_so(qtbot, make_view, micro_checkpoint_path):
    view, prediction, _review, rows, said = make_view(micro_checkpoint_path)
    with qtbot.waitSignal(prediction.model_loaded, timeout=30000):
        prediction.load_model()
    with qtbot.waitSignal(view.batch_finished, timeout=60000) as done:
        view.predict_all()
    summary = done.args[0]
    assert summary.predicted == 2 and not summary.failed
    assert said["message"] == [("Done: 2 images predicted", "info")] and said["hidden"] == [1]
    assert said["status"][-1] == "Done: 2 images predicted"
    assert said["probability"] == []  # no image open: nothing drawn
    assert {c[1] for c in rows.calls if c[0] == "refresh"} == {"img_00", "img_01"}  # each row reads its status


def test_without_a_model_it_says_so_and_predict_all_reports_an_error(qtbot, make_view, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    view, prediction, review, rows, said = make_view(broken)
    with qtbot.waitSignal(prediction.model_failed, timeout=30000):
        prediction.load_model()
    assert rows.calls[-1][0] == "model" and rows.calls[-1][1] is None
    assert said["message"][-1][1] == "warning" and said["message"][-1][0].startswith("No model: ")
    view.predict_all()
    assert len(said["error"]) == 1 and said["error"][0][0] == "Predict all"
    _open(review, "img_00")
    view.predict_current()
    assert said["message"][-1][0].startswith("No model: ") and said["status"] == []
