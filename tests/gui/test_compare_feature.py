"""Compare mode and the image list's Dice built alone, from the parts MainWindow would hand them (no window): a
review session on a tmp workspace with reference and second-grader masks, a canvas, a task runner."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import SIZE, stroke, task_runner
from PySide6.QtWidgets import QMenu, QWidget

from model_core.imageio import mask_to_png, write_png_atomic
from model_core.metrics import Confusion
from model_core.synthetic import make_fundus
from retina_desktop.core.model.model_service import ModelHolder
from retina_desktop.core.model.tasks import load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.common.context import ActionRegistry
from retina_desktop.ui.common.image_ready import ImageReadiness
from retina_desktop.ui.compare.compare_mode import CompareController, ImageListDice
from retina_desktop.ui.review.canvas import ImageCanvas

H, W = SIZE


class DiceRecorder:
    """The image list's Dice column: what it was told."""

    def __init__(self):
        self.values: dict[str, float | None] = {}

    def set_dice(self, key, dice):
        self.values[key] = dice

    def dice_values(self):
        return {k: v for k, v in self.values.items() if v is not None}


def _reference():
    ref = np.zeros((H, W), bool)
    ref[40:60, 20:140] = True
    return ref


def _second():
    other = np.zeros((H, W), bool)
    other[40:60, 20:80] = True
    other[80:130, 100:110] = True
    return other


@pytest.fixture
def parts(qtbot, tmp_path, micro_checkpoint_path):
    root = tmp_path / "set"
    for d in ("images", "mask", "masks_2nd_observer"):
        (root / d).mkdir(parents=True)
    for i in range(2):
        write_png_atomic(root / "images" / f"im{i}.png", make_fundus(H, W, seed=20 + i).image)
        write_png_atomic(root / "mask" / f"im{i}.png", mask_to_png(_reference(), 255))
    write_png_atomic(root / "masks_2nd_observer" / "im0.png", mask_to_png(_second(), 255))
    ws = Workspace(root)
    review = ReviewSession()
    review.set_workspace(ws)
    model = ModelHolder(micro_checkpoint_path)
    prob = np.zeros((H, W), np.float32)
    prob[40:60, 20:100] = 0.9  # the "model" found two thirds of the reference's vessel
    ws.predictions.store(ws.entry("im0"), model.cache_key, prob)

    owner = QWidget()
    qtbot.addWidget(owner)
    canvas = ImageCanvas(owner)
    canvas.resize(400, 300)
    owner.show()
    qtbot.waitExposed(owner)
    tasks, ready = task_runner(qtbot, owner), ImageReadiness(owner)
    said: dict[str, list] = {"message": [], "status": [], "revealed": []}
    allowed = [True]
    compare = CompareController(
        review,
        canvas,
        tasks,
        ready,
        ActionRegistry(owner),
        QMenu(owner),
        lambda text, level: said["message"].append((text, level)),
        lambda text, ms: said["status"].append(text),
        lambda: allowed[0],
        said["revealed"].append,
        owner,
    )
    column = DiceRecorder()
    list_dice = ImageListDice(review, tasks, model, column, ready, owner)
    compare.scores_shown.connect(list_dice.open_image_scored)

    def open_image(key):
        """What the window does to open an image: load, show, say when it is ready."""
        request, entry = review.begin_load(key)
        s = review.finish_load(request, load_image(None, ws, entry, model.cache_key))
        canvas.set_image(s.loaded.rgb)
        canvas.set_probability(s.probability)
        canvas.set_document(s.document)
        canvas.fit()
        ready.opened(key, has_prediction=s.probability is not None)
        return s

    yield {
        "review": review,
        "compare": compare,
        "list_dice": list_dice,
        "column": column,
        "canvas": canvas,
        "ready": ready,
        "said": said,
        "allowed": allowed,
        "open": open_image,
        "prob": prob,
    }
    tasks.shutdown()


def test_an_image_ready_loads_its_masks_and_scores_and_the_list_gets_its_dice(qtbot, parts):
    c, column = parts["compare"], parts["column"]
    with qtbot.waitSignal(c.scores_shown, timeout=20000) as scored:
        parts["open"]("im0")
    key, scores = scored.args
    assert key == "im0" and c.masks is not None and np.array_equal(c.masks.second, _second())
    expected = Confusion.of(parts["prob"] >= parts["review"].threshold, _reference(), None)
    assert scores.prediction_vs_reference.dice == pytest.approx(expected.dice)
    assert column.values == {"im0": pytest.approx(expected.dice)}  # the open image's Dice in the list
    assert c.panel.second_label.text() == "masks_2nd_observer/im0.png"
    assert c.available_views() == ["mask", "reference", "prediction", "second"]

    c.cycle_action.trigger()  # K
    assert c.view == "reference" and parts["said"]["status"][-1].startswith("Showing reference")
    assert parts["said"]["revealed"] == [c.panel]  # the review panel scrolled to the Compare box
    c.set_view("second")
    assert np.array_equal(parts["canvas"].overlay._mask, _second())


def test_the_copy_brush_asks_may_edit_first_and_then_copies_the_second_graders_pixels(qtbot, parts):
    c, canvas = parts["compare"], parts["canvas"]
    with qtbot.waitSignal(c.masks_loaded, timeout=20000):
        s = parts["open"]("im0")
    doc = s.document
    assert c.panel.brush_source.currentData() == "second"
    c.copy_action.trigger()
    assert c.brush_item.isVisible()
    canvas.set_brush_radius(6)
    before, steps = doc.mask.copy(), doc.undo_count
    parts["allowed"][0] = False  # e.g. an approved image the grader did not agree to edit
    stroke(canvas, [(105, 95), (105, 110)])
    assert np.array_equal(doc.mask, before) and doc.undo_count == steps
    parts["allowed"][0] = True
    stroke(canvas, [(105, 95), (105, 110)])
    assert doc.undo_count == steps + 1 and doc.mask[100, 105] and not before[100, 105]


def test_the_list_dice_waits_for_the_first_image_after_a_workspace_opens(qtbot, parts):
    list_dice, column = parts["list_dice"], parts["column"]
    list_dice.workspace_opened()
    assert column.values == {}
    with qtbot.waitSignal(list_dice.updated, timeout=20000):
        parts["ready"].opened("im1", has_prediction=False)
        parts["ready"].settle("im1")  # ready (no prediction to wait for): every image's Dice is computed now
    assert set(column.values) == {"im0", "im1"} and column.values["im1"] is None  # im1 has no cached prediction
    expected = Confusion.of(parts["prob"] >= parts["review"].threshold, _reference(), None).dice
    assert column.values["im0"] == pytest.approx(expected)
