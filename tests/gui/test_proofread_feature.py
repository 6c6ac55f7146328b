"""Proofread mode built alone, from the parts MainWindow would hand it (no window): a photo whose mask has a
5-px gap in a vessel the model saw faintly; P shows one bridge, drawn dashed and zoomed to; Enter closes the gap as
one undo step; Backspace moves on and the rejected bridge does not come back when the queue is found again."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import review_of_photo, shown_canvas, task_runner
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

from retina_desktop.ui.common.context import ActionRegistry
from retina_desktop.ui.common.image_ready import ImageReadiness
from retina_desktop.ui.vessels.proofread_view import ProofreadView

H, W = 60, 160
GAP = (slice(28, 31), slice(78, 83))  # 5 px of the vessel missing from the mask


@pytest.fixture
def parts(qtbot, tmp_path):
    mask = np.zeros((H, W), bool)
    mask[28:31, 10:150] = True
    mask[GAP] = False
    prob = np.where(mask, 0.9, 0.02).astype(np.float32)
    prob[29, 78:83] = 0.3  # the model saw the vessel there, below the threshold
    rgb = np.full((H, W, 3), (190, 90, 40), np.uint8)  # no vessel to see in the photo: no candidates
    review = review_of_photo(tmp_path, rgb, mask, prob)
    owner = QWidget()
    qtbot.addWidget(owner)
    canvas = shown_canvas(qtbot, review, (500, 300))
    tasks = task_runner(qtbot, owner)
    statuses: list[str] = []
    image_ready = ImageReadiness(owner)
    view = ProofreadView(
        review, canvas, tasks, image_ready, ActionRegistry(owner), lambda t, _ms: statuses.append(t),
        lambda: True, canvas, owner,
    )  # fmt: skip
    image_ready.opened("photo", has_prediction=True)
    image_ready.settle("photo")
    yield view, review, canvas, statuses
    tasks.shutdown()


def _turn_on(qtbot, view):
    with qtbot.waitSignal(view.computed, timeout=30000):
        view.action.setChecked(True)


def test_p_shows_one_bridge_drawn_dashed_and_zoomed_to(qtbot, parts):
    view, _review, canvas, statuses = parts
    _turn_on(qtbot, view)
    p = view.current()
    assert p is not None and p.kind == "bridge" and [q.kind for q in view.queue.proposals] == ["bridge"]
    assert view.item.isVisible() and view.item.pen().style() == Qt.PenStyle.DashLine
    box = view.item.path().boundingRect()
    y0, y1, x0, x1 = view.current().bbox
    assert (box.left(), box.right(), box.top(), box.bottom()) == (x0, x1, y0, y1)  # the pixels' edges
    assert x0 <= 78 and x1 >= 83 and x1 - x0 < 20 and y1 - y0 < 10  # around the gap
    (x0, x1), (y0, y1) = canvas.view.viewRange()
    vy0, vy1, vx0, vx1 = p.view
    assert x0 <= vx0 + 1 and x1 >= vx1 - 1 and y0 <= vy0 + 1 and y1 >= vy1 - 1  # the view box is in view
    assert x1 - x0 < W  # zoomed in, not the whole image
    assert view.label.text() == "1 of 1, 0 accepted" and statuses[-1].startswith("Proofread 1 of 1, 0 accepted")


def test_enter_closes_the_gap_as_one_undo_step(qtbot, parts):
    view, review, canvas, statuses = parts
    _turn_on(qtbot, view)
    doc = review.image.document
    with qtbot.waitSignal(view.computed, timeout=30000):
        qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert doc.mask[GAP].all() and doc.mask[29, 10:150].all()
    assert view.current() is None and view.label.text() == "1 of 1, 1 accepted"
    assert not view.item.isVisible() and statuses[-1].endswith("no proposals left")
    with qtbot.waitSignal(view.computed, timeout=30000):  # an edit finds the queue again
        doc.undo()
    assert not doc.mask[GAP].any()  # one undo restores the gap
    assert view.current() is not None and view.current().kind == "bridge"  # and the bridge is proposed again


def test_backspace_moves_on_and_the_rejected_bridge_does_not_come_back(qtbot, parts):
    view, review, canvas, _statuses = parts
    _turn_on(qtbot, view)
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert view.current() is None and not review.image.document.mask[GAP].any()
    view.action.setChecked(False)
    _turn_on(qtbot, view)  # found again on the same mask
    assert view.current() is None and view.queue.rejections[0]["kind"] == "bridge"
    assert view.label.text() == "1 of 1, 0 accepted"
    logged = [r for r in review.workspace.log.rows("photo") if r["action"] == "proposal rejected"]
    assert [(r["kind"], r["reason"]) for r in logged] == [("bridge", "break")]
    # The image closed and opened again: the logged rejection is read back, the bridge stays rejected.
    review.image_closed.emit()
    assert view.queue is None
    view.action.setChecked(False)
    _turn_on(qtbot, view)
    assert view.current() is None and view.queue.rejections[0]["kind"] == "bridge"


def test_enter_is_the_modes_while_a_proposal_is_shown_and_the_windows_shortcut_otherwise(qtbot, parts):
    view, review, canvas, _statuses = parts
    finished = []
    finish_trace = QAction("Finish trace", canvas)  # the window's Enter (vessel tools), as MainWindow has it
    finish_trace.setShortcuts([QKeySequence("Return"), QKeySequence("Enter")])
    finish_trace.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    finish_trace.triggered.connect(lambda: finished.append(True))
    canvas.addAction(finish_trace)
    canvas.activateWindow()
    target = canvas  # the picture itself has the focus (a pg GraphicsView)
    qtbot.keyClick(target, Qt.Key.Key_Return)
    assert finished == [True]  # Proofread off: Enter finishes a trace
    _turn_on(qtbot, view)
    with qtbot.waitSignal(view.computed, timeout=30000):
        qtbot.keyClick(target, Qt.Key.Key_Return)
    assert finished == [True] and review.image.document.mask[GAP].all()  # the proposal took it
    qtbot.keyClick(target, Qt.Key.Key_Return)
    assert finished == [True, True]  # no proposal left: Enter is the window's again


def test_without_a_prediction_it_says_so_and_proposes_nothing(qtbot, parts):
    view, review, _canvas, statuses = parts
    review.image.probability = None
    view.action.setChecked(True)
    assert view.queue is None and not view.item.isVisible()
    assert statuses[-1] == "Proofread needs a prediction of this image (Ctrl+R predicts it)"


def test_an_accept_is_logged_with_its_features_and_logged_rejections_like_it_hold_it_back(qtbot, parts):
    from retina_desktop.core.vessels.proposal_ranking import FEATURES, MIN_DECISIONS

    view, review, canvas, _statuses = parts
    _turn_on(qtbot, view)
    with qtbot.waitSignal(view.computed, timeout=30000):
        qtbot.keyClick(canvas, Qt.Key.Key_Return)
    log = review.workspace.log
    (accepted,) = [r for r in log.rows("photo") if r["action"] == "proposal accepted"]
    assert accepted["kind"] == "bridge" and set(accepted["features"]) == set(FEATURES)
    review.image.document.undo()  # the gap is back
    # Other images' graders rejected bridges like this one and accepted as many of high probability along the gap.
    like = accepted["features"]
    unlike = dict(like, **{"probability mean": 0.8, "probability max": 0.9, "probability min": 0.7})
    for i in range(MIN_DECISIONS // 2):
        log.add(f"other{i}", "proposal rejected", kind="bridge", x=1.0, y=1.0, features=like)
        log.add(f"other{i}", "proposal accepted", kind="bridge", x=1.0, y=1.0, features=unlike)
    review.image_closed.emit()  # a new queue for the image learns from the whole workspace's log
    view.action.setChecked(False)
    _turn_on(qtbot, view)
    assert view.current() is None and [p.kind for p in view.queue.held_back] == ["bridge"]
    assert view.label.text() == "0 of 0, 0 accepted, 1 held back"
    # The grader asks to see what was held back: it is proposed again, and Enter takes it.
    with qtbot.waitSignal(view.computed, timeout=30000):
        view.held_back_action.trigger()
    assert view.current() is not None and view.current().kind == "bridge" and view.current().held_back
    assert view.queue.held_back == [] and view.label.text().startswith("1 of 1")
    with qtbot.waitSignal(view.computed, timeout=30000):
        qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert review.image.document.mask[GAP].all()
