"""Teach artery/vein built alone beside the calibre view, from the parts MainWindow would hand them: the saved
labels of two photos teach; the gate asks (one held-out photo); the grader's yes puts the taught suggestion in use
and the open unlabelled photo is suggested again by it, right where the automatic colour rule is wrong."""

from __future__ import annotations

import numpy as np
from engine.test_av_net import STEPS, inverted_photo
from gui_helpers import shown_canvas, task_runner
from PySide6.QtWidgets import QWidget

from model_core.imageio import write_png_atomic
from retina_desktop.core.model.tasks import load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.vessels import av_teaching
from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.common.context import ActionRegistry
from retina_desktop.ui.common.image_ready import ImageReadiness
from retina_desktop.ui.vessels.av_teaching_view import AVTeachingView
from retina_desktop.ui.vessels.calibre_view import CalibreView


def _accuracy(labels, av):
    return float(np.mean(labels[av > 0] == av[av > 0]))


def test_taught_by_two_photos_it_asks_and_a_yes_resuggests_the_open_photo(qtbot, tmp_path):
    truth = {}
    for i in range(3):
        photo, mask, av = inverted_photo(i)
        write_png_atomic(tmp_path / f"{i:02d}.png", photo)
        truth[f"{i:02d}"] = (mask, av)
    ws = Workspace(tmp_path)
    for e in ws.entries[:2]:
        mask, av = truth[e.key]
        ws.save_ground_truth(e, mask.astype(np.uint8) * 255)
        ws.calibre.save_labels(e.key, av)
    review = ReviewSession()
    review.set_workspace(ws)
    request, entry = review.begin_load("02")
    assert review.finish_load(request, load_image(None, ws, entry, "no model")) is not None
    mask, av = truth["02"]
    review.image.document.replace("vessels", mask)
    owner = QWidget()
    qtbot.addWidget(owner)
    canvas = shown_canvas(qtbot, review, (500, 500))
    tasks = task_runner(qtbot, owner)
    actions = ActionRegistry(owner)
    asked = []

    def confirm(title, text, ok):
        asked.append((title, text, ok))
        return True

    calibre = CalibreView(review, canvas, tasks, ImageReadiness(owner), actions, owner)
    teaching = AVTeachingView(review, tasks, actions, confirm, owner, steps=STEPS)
    teaching.changed.connect(calibre.resuggest)
    statuses = []
    teaching.status.connect(statuses.append)
    calibre.status.connect(statuses.append)
    try:
        with qtbot.waitSignal(calibre.prepared, timeout=60000):
            calibre.image_ready.opened("02", has_prediction=True)
            calibre.view_action.setChecked(True)
        assert calibre.suggested and _accuracy(calibre.calibre.labels, av) < 0.2  # the automatic colour rule
        assert not teaching.use_action.isEnabled() and teaching.teach_action.isEnabled()

        with qtbot.waitSignal(calibre.prepared, timeout=120000):  # taught, asked, said yes: suggested again
            teaching.teach_action.trigger()
            assert teaching.stop_action.isEnabled() and not teaching.teach_action.isEnabled()
        assert len(asked) == 1 and asked[0][2] == "Use it"
        assert asked[0][1].startswith("Your labels taught a new artery/vein suggestion, judged on 1 held-out photo")
        assert "It is not put in use by itself: fewer than 2 held-out photos." in asked[0][1]
        assert _accuracy(calibre.calibre.labels, av) > 0.95 and calibre.suggested
        assert any("step 10 of 20" in s for s in statuses)
        assert any("suggested by the network your labels taught" in s for s in statuses)
        assert teaching.use_action.isChecked() and av_teaching.active_model(ws) is not None
        assert teaching.teach_action.isEnabled() and not teaching.stop_action.isEnabled()
        # Turned off: the automatic suggestion again, recorded in the workspace.
        with qtbot.waitSignal(calibre.prepared, timeout=60000):
            teaching.use_action.setChecked(False)
        assert av_teaching.active_model(ws) is None and _accuracy(calibre.calibre.labels, av) < 0.2
    finally:
        tasks.shutdown()


def test_opening_another_workspace_stops_the_run_and_keeps_nothing_of_it(qtbot, tmp_path):
    workspaces = []
    for name in ("first", "second"):
        for i in range(2):
            photo, mask, av = inverted_photo(i)
            write_png_atomic(tmp_path / name / f"{i:02d}.png", photo)
        ws = Workspace(tmp_path / name)
        for e in ws.entries:
            _photo, mask, av = inverted_photo(int(e.key))
            ws.save_ground_truth(e, mask.astype(np.uint8) * 255)
            ws.calibre.save_labels(e.key, av)
        workspaces.append(ws)
    review = ReviewSession()
    review.set_workspace(workspaces[0])
    owner = QWidget()
    qtbot.addWidget(owner)
    tasks = task_runner(qtbot, owner)
    asked = []
    teaching = AVTeachingView(review, tasks, ActionRegistry(owner), lambda *a: asked.append(a) or True, owner, 10**6)
    said = []
    teaching.status.connect(said.append)
    with qtbot.waitSignal(teaching.finished, timeout=60000) as done:
        assert teaching.teach()
        qtbot.waitUntil(lambda: any("step 10 of" in s for s in said), timeout=60000)
        review.set_workspace(workspaces[1])
    assert done.args == [None] and not asked and "stopped, another workspace was opened" in " ".join(said)
    for ws in workspaces:
        assert not av_teaching.model_path(ws).exists() and not av_teaching.candidate_path(ws).exists()
    assert teaching.teach_action.isEnabled() and not teaching.stop_action.isEnabled()
    tasks.shutdown()
