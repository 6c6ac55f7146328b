"""Compare mode in the window: the shown mask, the difference overlay, the scores, the copy brush, the Dice
sort, the vessel measurements panel and CSV, and the workspace summary."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from gui_helpers import SIZE, RecordingPrompter, stroke

from model_core.imageio import mask_to_png, write_png_atomic
from model_core.metrics import DIFF_FN, DIFF_FP, DIFFERENCE_COLOURS, Confusion
from model_core.morphometry import measure
from model_core.synthetic import make_fundus

H, W = SIZE


def _reference():
    ref = np.zeros((H, W), bool)
    ref[40:60, 20:140] = True  # 20 x 120 = 2400 pixels
    return ref


def _second():
    other = np.zeros((H, W), bool)
    other[40:60, 20:80] = True  # 1200 pixels, all in the reference
    other[80:130, 100:110] = True  # 500 pixels the first grader did not mark
    return other


@pytest.fixture
def reference_workspace(tmp_path):
    root = tmp_path / "set"
    for d in ("images", "mask", "masks_2nd_observer"):
        (root / d).mkdir(parents=True)
    for i in range(3):
        write_png_atomic(root / "images" / f"im{i}.png", make_fundus(H, W, seed=20 + i).image)
        write_png_atomic(root / "mask" / f"im{i}.png", mask_to_png(_reference(), 255))
    write_png_atomic(root / "masks_2nd_observer" / "im0.png", mask_to_png(_second(), 255))
    return root


def _open(qtbot, window, folder):
    with qtbot.waitSignals([window.prediction_shown, window.compare.masks_loaded], timeout=60000):
        assert window.workspaces.open_workspace(folder)
    c = window.compare  # the scores come a moment after both (a worker), with the prediction among them
    qtbot.waitUntil(lambda: c.scores is not None and c.scores.prediction_vs_reference is not None, timeout=20000)
    return window.review.image


def _rgb(hex_colour):
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_rows_say_has_reference_and_k_cycles_the_shown_mask(qtbot, window, reference_workspace):
    s = _open(qtbot, window, reference_workspace)
    from retina_desktop.ui.review.image_list import ReferenceRole, StatusRole

    model = window.image_list.model
    idx = model.index_of("im1")
    assert idx.data(StatusRole) == "new" and idx.data(ReferenceRole) is True
    assert "has a reference" in idx.data(0x03)  # the tooltip (ToolTipRole)
    c = window.compare
    assert s.document.source == "ground truth" and c.available_views() == ["mask", "reference", "prediction", "second"]
    overlay = window.canvas.overlay
    shown = []
    for _ in range(4):
        window.compare.cycle_action.trigger()
        shown.append(c.view)
        expected = c.mask_of(c.view)
        assert np.array_equal(overlay._buffer != 0, expected)  # the pixels on screen are that mask
    assert shown == ["reference", "prediction", "second", "mask"]
    assert np.array_equal(overlay._mask, s.document.mask) and overlay._mask is s.document.mask
    c.set_view("second")
    assert c.panel.showing_label.text() == "second grader"
    # The second grader's mask is read-only on screen: painting goes back to (and into) your mask.
    s.document.stroke_to((5, 5), (6, 5), 1.0, True)
    s.document.end_stroke()
    assert c.view == "mask" and overlay._mask is s.document.mask


def test_difference_overlay_colours_and_scores_say_what_against_what(qtbot, window, reference_workspace):
    s = _open(qtbot, window, reference_workspace)
    c = window.compare
    c.set_view("second")
    c.diff_action.trigger()
    assert c.diff_item.isVisible() and not window.canvas.overlay.isVisible()
    rgba = c.diff_item.image
    assert tuple(rgba[50, 120, :3]) == _rgb(DIFFERENCE_COLOURS[DIFF_FN])  # only in the reference
    assert tuple(rgba[100, 105, :3]) == _rgb(DIFFERENCE_COLOURS[DIFF_FP])  # only in the second grader's
    assert tuple(rgba[5, 5]) == (0, 0, 0, 170)  # both background: the photo is dimmed, not coloured
    assert c.panel.legend_title.text() == "Differences: second grader vs reference"
    c.diff_action.trigger()
    assert not c.diff_item.isVisible() and window.canvas.overlay.isVisible()

    cells = {name: [lab.text() for lab in labs] for name, labs in c.panel.score_labels.items()}
    assert cells["Your mask vs reference"][:2] == ["1.000", "1.000"]
    assert cells["Second grader vs reference"][0] == f"{2 * 1200 / (1700 + 2400):.3f}"
    assert cells["Second grader vs reference"][2] == f"{1200 / 2400:.3f}"  # sensitivity: reference as the truth
    pred = s.probability >= window.review.threshold
    assert cells["Model prediction vs reference"][0] == f"{Confusion.of(pred, _reference(), None).dice:.3f}"


def test_brushing_from_the_second_grader_copies_its_pixels_in_the_footprint_one_undo_step(
    qtbot, window, reference_workspace
):
    s = _open(qtbot, window, reference_workspace)
    c, doc = window.compare, s.document
    assert c.panel.brush_source.currentData() == "second"
    c.copy_action.trigger()
    assert c.brush_item.isVisible() and not window.action_table.tools["brush"].isChecked()
    window.edit_tools.set_brush_radius(6)
    steps = doc.undo_count
    stroke(window.canvas, [(105, 95), (105, 110)])  # over the second grader's vertical vessel
    stroke(window.canvas, [(120, 50)])  # over a stretch only the first grader marked
    assert doc.undo_count == steps + 2  # one step per stroke
    second, ref = _second(), _reference()
    changed = doc.mask != ref
    assert changed.any()
    assert np.array_equal(doc.mask[changed], second[changed])  # every changed pixel took the second grader's value
    assert doc.mask[100, 105] and not doc.mask[50, 120]
    assert np.array_equal(doc.mask[:, :90], ref[:, :90])  # nothing outside the footprints
    window.edit_tools.undo()
    window.edit_tools.undo()
    assert np.array_equal(doc.mask, ref)
    window.action_table.tools["brush"].trigger()  # another tool puts the copy brush away
    assert not c.copy_action.isChecked() and not c.brush_item.isVisible()


def test_a_copy_stroke_is_open_while_dragging_and_choosing_another_tool_mid_drag_ends_it(
    qtbot, window, reference_workspace
):
    from gui_helpers import send_mouse

    s = _open(qtbot, window, reference_workspace)
    c, doc = window.compare, s.document
    c.copy_action.trigger()
    window.edit_tools.set_brush_radius(6)
    steps = doc.undo_count
    vp = window.canvas.viewport()
    send_mouse(vp, "press", window.canvas.image_to_widget(105, 95))
    send_mouse(vp, "move", window.canvas.image_to_widget(105, 110))
    assert doc.unsaved and not doc.can_undo and doc.save_point() is None  # a gesture in progress: no autosave
    copied = doc.mask.copy()
    window.action_table.tools["brush"].trigger()  # B in the middle of the drag: the copy brush is put away
    assert doc.undo_count == steps + 1 and doc.can_undo and doc.save_point() is not None
    assert np.array_equal(doc.mask, copied)
    send_mouse(vp, "release", window.canvas.image_to_widget(105, 110))  # reaches the plain brush: paints nothing
    assert doc.undo_count == steps + 1
    window.edit_tools.undo()
    assert np.array_equal(doc.mask, _reference())


def test_ctrl_r_says_the_mask_stays_and_the_list_sorts_by_dice_worst_first(qtbot, window, reference_workspace):
    _open(qtbot, window, reference_workspace)
    with qtbot.waitSignal(window.prediction_shown, timeout=60000):
        window.action_table.predict.trigger()
    message = window.statusBar().currentMessage()
    assert message.startswith("Prediction updated") and "unchanged" in message
    assert "Prediction shown" not in message

    ws, model = window.review.workspace, window.image_list.model
    prob = ws.predictions.load(ws.entry("im0"), window.model.cache_key)
    with qtbot.waitSignal(window.features.list_dice.updated, timeout=20000):
        window.features.list_dice.refresh()
    assert model.dice_values() == {
        "im0": pytest.approx(Confusion.of(prob >= window.review.threshold, _reference(), None).dice)
    }
    window.prompter = RecordingPrompter(confirm=True)  # "replace the reference on screen?" yes
    with qtbot.waitSignal(window.features.list_dice.updated, timeout=20000):  # another cut, other scores
        assert window.threshold_control.apply(0.3)
    assert model.dice_values()["im0"] == pytest.approx(Confusion.of(prob >= 0.3, _reference(), None).dice)
    model.set_dice("im1", 0.2)
    model.set_dice("im2", 0.9)
    model.set_dice("im0", 0.5)
    window.image_list.sort_combo.setCurrentText("Dice (worst first)")
    order = [window.image_list.proxy.index(r, 0).data(0x0100 + 1) for r in range(3)]
    assert order == ["im1", "im0", "im2"]


def test_measurements_panel_csv_and_summary(qtbot, window, reference_workspace, tmp_path):
    s = _open(qtbot, window, reference_workspace)
    runner = window.features.measurements
    qtbot.waitUntil(lambda: runner.latest is not None, timeout=20000)
    m = measure(s.document.mask, s.loaded.fov)
    assert runner.panel.labels["segments"].text() == f"{m.segments:,}"
    assert runner.panel.labels["vessel_density"].text() == f"{m.vessel_density:.2%}"
    # A save is measured again (debounced, on a worker).
    s.document.stroke_to((30, 100), (130, 100), 2.0, True)
    s.document.end_stroke()
    with qtbot.waitSignal(runner.measured, timeout=20000):
        window.saving.save_current(auto=False)
    assert runner.latest == measure(s.document.mask, s.loaded.fov)

    out = tmp_path / "measures.csv"
    with qtbot.waitSignal(runner.exported, timeout=30000) as blocker:
        runner.export_to(out)
    assert blocker.args == [out]
    rows = list(csv.DictReader(out.open()))
    assert [r["image"] for r in rows] == ["im0", "im1", "im2"]
    saved = runner.latest  # the CSV measures the saved masks inside the same estimated field of view
    assert int(rows[0]["segments"]) == saved.segments and float(rows[0]["vessel_density"]) == saved.vessel_density
    from model_core.imageio import read_image
    from model_core.preprocess import estimate_fov

    m1 = measure(_reference(), estimate_fov(read_image(reference_workspace / "images" / "im1.png")))
    assert float(rows[1]["fractal_dimension"]) == m1.fractal_dimension and int(rows[1]["end_points"]) == m1.end_points

    dlg = window.features.summary.show()
    qtbot.waitUntil(lambda: dlg.worker is None and len(dlg.rows) == 3, timeout=30000)
    assert dlg.width() <= 1280 and dlg.height() <= 800
    import pyqtgraph as pg

    bars = [i for i in dlg.plots["segments"].getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 1 and int(sum(bars[0].opts["height"])) == 3
    (curve,) = dlg.plots["burden"].getPlotItem().listDataItems()
    log = [r for r in window.review.workspace.review_log() if r["action"] == "save"]
    assert list(curve.yData) == [log[0]["pixels_added"] + log[0]["pixels_removed"]] and curve.yData[0] > 0
    dlg.close()


def test_painting_scores_once_after_the_stroke_not_on_every_move(qtbot, window, reference_workspace):
    """A scoring worker copies the whole mask: one per brush move made painting a 3504x2336 photo lag (32 ms)."""
    s = _open(qtbot, window, reference_workspace)
    c = window.compare
    started = []
    real_start = window.tasks.start

    def spy(worker, priority=0):
        started.append(worker.name)
        return real_start(worker, priority)

    window.tasks.start = spy
    for i in range(10):  # ten moves of one stroke, each a document change
        s.document.stroke_to((10 + i, 70), (11 + i, 70), 1.0, True)
        qtbot.wait(5)
    s.document.end_stroke()
    assert started.count("compare scores") == 0 and c.score_timer.interval() == 400
    qtbot.waitUntil(lambda: started.count("compare scores") == 1, timeout=5000)


def test_the_copy_brush_offers_only_a_mask_the_image_has(qtbot, window, reference_workspace, flat_workspace):
    c = window.compare
    _open(qtbot, window, reference_workspace)  # im0: a second grader's mask
    assert c.panel.brush_source.currentData() == "second"
    with qtbot.waitSignal(c.masks_loaded, timeout=20000):
        window.images.open_image("im1")  # a reference, no second grader
    assert c.panel.brush_source.currentData() == "reference"
    with qtbot.waitSignals([window.prediction_shown, c.masks_loaded], timeout=60000):
        assert window.workspaces.open_workspace(flat_workspace)  # neither: only the prediction is there to copy from
    assert c.masks.reference is None and c.masks.second is None
    assert c.panel.brush_source.currentData() == "prediction"
