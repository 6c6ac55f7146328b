"""The defects a new-user trial of the review window found, one test or more each. Each failed on the
code before its fix."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import (
    SIZE,
    RecordingPrompter,
    SafetyPrompter,
    blank,
    make_workspace,
    open_and_predict,
    stroke,
)
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QScrollArea

from model_core.imageio import mask_to_png, read_mask, write_png_atomic
from model_core.metrics import DIFF_FP, DIFF_TP, difference_labels
from model_core.synthetic import make_fundus
from retina_desktop.core.workspace import Workspace

H, W = SIZE
LONG_NAME = "patient_0001_left_eye_macula_centred_2023-04-11_visit03_fundus"  # no spaces to wrap at


def _reference():
    ref = np.zeros((H, W), bool)
    ref[40:60, 20:140] = True
    return ref


@pytest.fixture
def reference_workspace(tmp_path):
    """Two photos that came with their masks (the references); the first has a long file name."""
    root = tmp_path / "set"
    for d in ("images", "mask"):
        (root / d).mkdir(parents=True)
    for i, stem in enumerate((LONG_NAME, "zz_other")):
        write_png_atomic(root / "images" / f"{stem}.png", make_fundus(H, W, seed=20 + i).image)
        write_png_atomic(root / "mask" / f"{stem}.png", mask_to_png(_reference(), 255))
    return root


def _open(qtbot, window, folder):
    c = window.compare
    with qtbot.waitSignals([window.prediction_shown, c.masks_loaded], timeout=60000):
        assert window.workspaces.open_workspace(folder)
    qtbot.waitUntil(lambda: c.scores is not None and c.scores.prediction_vs_reference is not None, timeout=20000)
    return window.review.image


def _reopen(qtbot, window, key):
    """Another image, then ``key`` again: its compare masks are read anew."""
    other = next(e.key for e in window.review.workspace.entries if e.key != key)
    with qtbot.waitSignal(window.compare.masks_loaded, timeout=30000):
        window.images.open_image(other)
    with qtbot.waitSignal(window.compare.masks_loaded, timeout=30000):
        window.images.open_image(key)
    c = window.compare
    qtbot.waitUntil(lambda: c.scores is not None and c.scores.prediction_vs_reference is not None, timeout=20000)


def _right_edge_in(widget, ancestor) -> int:
    return widget.mapTo(ancestor, QPoint(widget.width(), 0)).x()


# -- 1. a reference saved over: a meaningful name, and nothing widens the Review panel ------------------------


def test_a_saved_over_reference_is_named_and_the_review_panel_keeps_approve_and_the_scores_in_view(
    qtbot, window, reference_workspace
):
    s = _open(qtbot, window, reference_workspace)
    key = s.key
    assert window.review.workspace.entry(key).name.startswith(LONG_NAME)
    s.document.stroke_to((30, 100), (130, 100), 2.0, True)
    s.document.end_stroke()
    assert window.saving.save_current(auto=False)  # the data set's mask is saved over: it is kept in the History
    _reopen(qtbot, window, key)

    c = window.compare
    assert c.masks.reference_path.parent != reference_workspace / "mask"  # read from the History
    label = c.panel.reference_label
    assert label.text() == "reference (saved over; from History)"
    assert c.masks.reference_path.stem not in label.text()  # no bare hash
    assert str(c.masks.reference_path) in label.toolTip()

    area = window.review_dock.widget()
    assert isinstance(area, QScrollArea)
    viewport, panel = area.viewport(), window.review_panel
    assert panel.width() <= viewport.width()
    assert window.review_dock.geometry().right() <= window.width()
    must_show = [
        window.review_panel.approve_button,
        window.review_panel.save_button,
        window.review_panel.threshold_label,
        *window.review_panel.measure_labels.values(),
        *(cell for cells in c.panel.score_labels.values() for cell in cells),
    ]
    for w in must_show:
        assert _right_edge_in(w, viewport) <= viewport.width(), w.objectName() or w.text()
    # The long image name is elided in the middle, whole in its tooltip.
    name = window.review_panel.image_name_label
    assert name.is_elided() and "…" in name.displayed_text() and LONG_NAME in name.toolTip()


def test_an_elided_label_asks_for_little_room_and_shows_what_fits(qtbot):
    from retina_desktop.ui.common.elided_label import ElidedLabel

    label = ElidedLabel("reference (the data set's mask): " + "5490928ab09c" * 5 + ".png")
    qtbot.addWidget(label)
    fm = label.fontMetrics()
    assert label.minimumSizeHint().width() < 10 * fm.averageCharWidth()
    assert label.sizeHint().width() < fm.horizontalAdvance(label.text())
    label.resize(fm.horizontalAdvance(label.text()) + 10, 20)
    assert label.displayed_text() == label.text() and not label.is_elided()
    label.resize(120, 20)
    shown = label.displayed_text()
    assert label.is_elided() and shown.startswith("ref") and shown.endswith(".png") and "…" in shown
    assert label.toolTip() == label.text()


# -- 2. D compares the model with the reference first; the legend reads ---------------------------------------


def test_d_shows_the_models_differences_first_and_the_legend_reads_right(qtbot, window, reference_workspace):
    s = _open(qtbot, window, reference_workspace)
    c = window.compare
    assert np.array_equal(s.document.mask, _reference())  # the mask on screen is the reference as loaded
    c.diff_action.trigger()
    prediction = s.probability >= window.review.threshold
    assert np.array_equal(c.difference_labels(), difference_labels(prediction, _reference()))
    assert c.panel.legend_title.text() == "Differences: model prediction vs reference"
    assert c.panel.legend_rows[DIFF_FP].text() == "only in the model prediction (false positive)"

    s.document.stroke_to((30, 100), (130, 100), 2.0, True)  # painting: the differences become the mask's
    s.document.end_stroke()
    qtbot.waitUntil(lambda: c.panel.legend_title.text() == "Differences: your mask vs reference", timeout=5000)
    assert c.panel.legend_rows[DIFF_FP].text() == "only in your mask (false positive)"
    labels = c.difference_labels()
    assert (labels == DIFF_FP).any() and (labels == DIFF_TP).any()


# -- 3. the wheel scrolls the panels; it changes a control only once the grader clicked into it ---------------


def _wheel(widget, steps: int = -1) -> QWheelEvent:
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    ev = QWheelEvent(
        centre,
        widget.mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, ev)
    return ev


def test_the_wheel_over_an_unfocused_combo_or_slider_leaves_it_alone(qtbot):
    from retina_desktop.ui.common.wheel_guard import WheelGuard, guard_wheel
    from retina_desktop.ui.compare.compare_mode import ComparePanel
    from retina_desktop.ui.review.review_panel import ReviewPanel

    review = ReviewPanel(30, 0.5)
    compare = ComparePanel()
    review.layout().insertWidget(review.layout().count() - 1, compare)
    area = review.scrolling()
    qtbot.addWidget(area)
    guard = WheelGuard(area)
    assert guard_wheel(area, guard) >= 5
    area.resize(360, 400)
    area.show()
    qtbot.waitExposed(area)
    combo, slider = compare.brush_source, review.threshold_slider
    assert combo.currentData() == "second"
    for widget, read in (
        (combo, combo.currentIndex),
        (slider, slider.value),
        (review.opacity_slider, review.opacity_slider.value),
    ):
        before = read()
        ev = _wheel(widget)
        assert read() == before and not ev.isAccepted()  # ignored: it goes on to the scroll area
        assert widget.focusPolicy() == Qt.FocusPolicy.StrongFocus
    area.activateWindow()
    qtbot.waitActive(area)
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus)
    _wheel(combo)
    assert combo.currentData() != "second"  # clicked (or tabbed) into, the wheel is its own


def test_the_window_guards_the_wheel_of_its_panels(window):
    for widget in (
        window.compare.panel.brush_source,
        window.review_panel.threshold_slider,
        window.review_panel.brush_slider,
        window.image_list.sort_combo,
        window.review_panel.min_piece_spin,
    ):
        assert widget.focusPolicy() == Qt.FocusPolicy.StrongFocus and widget.property("wheel_guarded")
    before = window.compare.panel.brush_source.currentIndex()
    _wheel(window.compare.panel.brush_source)
    assert window.compare.panel.brush_source.currentIndex() == before


# -- 4. the image list shows the number it sorts by ----------------------------------------------------------


def test_the_list_shows_the_dice_it_sorts_by(qtbot, tmp_path):
    from retina_desktop.ui.compare.compare_mode import DICE_SORT
    from retina_desktop.ui.review.image_list import ImageListPanel

    ws = Workspace(make_workspace(tmp_path / "photos", 2))
    try:
        ws.set_prediction_info("img_00", 0.1234)
        panel = ImageListPanel()
        qtbot.addWidget(panel)
        panel.add_sort_key(DICE_SORT)
        panel.set_workspace(ws)
        panel.model.set_dice("img_00", 0.73456)
        panel.sort_combo.setCurrentText(DICE_SORT)
        panel.resize(250, 500)  # about as wide as the Images dock at 1280x800
        panel.show()
        qtbot.waitExposed(panel)
        index = panel.proxy.mapFromSource(panel.model.index_of("img_00"))
        delegate = panel.view.itemDelegate()
        rect = panel.view.visualRect(index)
        from retina_desktop.core.model.tasks import THUMB_SIZE

        text_width = rect.right() - (rect.left() + 6 + THUMB_SIZE + 10)
        line = delegate.note_line(index, panel.view.fontMetrics(), text_width)
        assert "0.735" in line
        panel.sort_combo.setCurrentText("Uncertainty (high first)")
        index = panel.proxy.mapFromSource(panel.model.index_of("img_00"))  # the rows moved
        line = delegate.note_line(index, panel.view.fontMetrics(), text_width)
        assert line.startswith("uncertain 12.3%")  # the number that order is by comes first
    finally:
        ws.close()


# -- 5. History: the tool that made each version; one row per stretch of autosaves; no duplicates ------------


def _y_mask():
    import cv2

    m = np.zeros((H, W), np.uint8)
    for end in ((75, 150), (30, 20), (120, 20)):
        cv2.line(m, (75, 90), end, 1, thickness=5)
    return m.astype(bool)


def _click(canvas, x, y):
    from gui_helpers import send_mouse

    p = canvas.image_to_widget(x, y)
    send_mouse(canvas.viewport(), "press", p)
    send_mouse(canvas.viewport(), "release", p)


def test_history_says_which_tool_made_each_version(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    doc.reset(_y_mask(), "prediction", saved=False)
    assert window.saving.save_current()  # the mask as derived: "prediction"
    tools = window.vessel_tools
    window.edit_tools.set_tool("segment")
    _click(window.canvas, 45.5, 42.5)  # on the left branch
    qtbot.waitUntil(lambda: tools.selected is not None, timeout=20000)
    qtbot.keyClick(window, Qt.Key.Key_Delete)
    window.edit_tools.set_tool("brush")
    window.edit_tools.set_brush_radius(1)
    stroke(window.canvas, [(140, 140), (141, 140)])  # a dab: fewer pixels than the segment
    assert doc.tools_since_save() == ["segment", "brush"]
    assert window.saving.save_current()
    window.edit_tools.set_tool("eraser")
    stroke(window.canvas, [(75, 120), (75, 140)])
    assert window.saving.save_current()
    ws, entry = window.review.workspace, window.review.image.entry
    assert [v.source for v in ws.versions(entry)] == ["prediction", "segment", "eraser"]
    saves = [r for r in ws.review_log(entry.key) if r["action"] == "save"]
    assert saves[1]["tools"] == ["segment", "brush"]
    tree = window.history.panel.tree
    assert [tree.topLevelItem(i).text(2) for i in range(tree.topLevelItemCount())] == [
        "eraser",
        "segment, brush",
        "prediction",
    ]


def test_history_makes_one_row_of_a_stretch_of_autosaves_and_none_of_a_repeat(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = blank(window)
    window.edit_tools.set_tool("brush")
    for x in (20, 40, 60):  # three stretches of painting, each autosaved
        stroke(window.canvas, [(x, 20), (x, 120)])
        assert window.saving.save_current(auto=True)
    ws, entry = window.review.workspace, window.review.image.entry
    assert len(ws.versions(entry)) == 3
    tree = window.history.panel.tree
    assert tree.topLevelItemCount() == 1
    row = tree.topLevelItem(0)
    assert row.text(2) == "brush (autosaved ×3)" and row.childCount() == 2 and row.text(0).startswith("● ")
    window.history.panel.tree.setCurrentItem(row.child(1))  # the first autosave can still be looked at
    assert window.history.panel.selected().sha256 == ws.versions(entry)[0].sha256

    # Someone else saves; this window's next save meets the conflict and keeps its own: one row for it.
    other = Workspace(flat_workspace)
    theirs = np.zeros(doc.shape, bool)
    theirs[60:64, 10:120] = True
    other.save_ground_truth(other.entry(entry.key), theirs, reviewer="bob", source="brush")
    other.close()
    stroke(window.canvas, [(100, 20), (100, 120)])
    mine = doc.mask.copy()
    window.prompter = SafetyPrompter(conflict=["mine"])
    assert window.saving.save_current()
    assert np.array_equal(read_mask(entry.gt_path), mine)
    shas = [v.sha256 for v in ws.versions(entry)]
    assert shas.count(shas[-1]) >= 2  # the records hold mine twice (at the prompt, and saved)
    rows = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    texts = [(r.text(1), r.text(2)) for r in rows]
    assert len(rows) == 3 and texts[1][0] == "bob", texts  # mine, theirs, the autosaves
    shown = [window.history.panel.versions[r.data(0, Qt.ItemDataRole.UserRole)].sha256 for r in rows]
    assert len(set(shown)) == len(shown)


# -- 6. a rollback refreshes the open image's scores and names the versions ----------------------------------


def test_a_rollback_predicts_the_open_image_again_and_names_the_versions(
    qtbot, make_window, store, micro_checkpoint_path, reference_workspace
):
    from model_core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(micro_checkpoint_path)
    ckpt.metadata["threshold"] = 0.45
    newer = store.add(ckpt, {"label": "fine-tuned", "parent": store.active().id})
    first = store.active()
    w = make_window(checkpoint=None)
    w.prompter = RecordingPrompter()
    qtbot.waitUntil(lambda: w.prediction.info is not None, timeout=30000)
    w.finetune.activate_version(newer.id)
    qtbot.waitUntil(lambda: w.prediction.info is not None and w.prediction.info.path == newer.path, timeout=30000)
    s = _open(qtbot, w, reference_workspace)
    assert s.document.source == "ground truth" and s.document.edited  # a reference: the mask stays

    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    dlg = w.finetune.open_models_dialog()
    dlg.repredict_check.setChecked(False)
    dlg.select_version(first.id)
    with qtbot.waitSignal(w.prediction_shown, timeout=30000, check_params_cb=lambda k: k == s.key):
        assert dlg.use_selected()
    entry = w.review.workspace.entry(s.key)
    assert w.prediction.info.path == first.path and w.review.workspace.predictions.has(entry, w.model.cache_key)
    assert np.array_equal(w.review.image.document.mask, _reference())  # the reference on screen is not replaced
    assert "new model" not in w.banner.text() and f"Model {first.name} is in use" in w.banner.text()
    assert f"Rolled back from model {newer.name} to {first.name}" in said
    dlg.close()


def test_counts_take_the_number_they_need():
    from retina_desktop.ui.common.words import count

    assert count(1, "pixel") == "1 pixel" and count(0, "pixel") == "0 pixels"
    assert count(12345, "image") == "12,345 images" and count(2, "piece") == "2 pieces"


# -- 7. the window comes back as it was left ----------------------------------------------------------------


def test_the_window_comes_back_at_the_size_and_dock_layout_it_was_left_in(qtbot, app_settings, tmp_path):
    from retina_desktop.ui.app.main_window import MainWindow

    def window():
        w = MainWindow(checkpoint_path=tmp_path / "none.pt", settings=app_settings)
        w.prompter = RecordingPrompter()
        return w

    first = window()
    first.show()
    qtbot.waitExposed(first)
    launched = (first.width(), first.height())
    left_area = Qt.DockWidgetArea.LeftDockWidgetArea
    assert first.dockWidgetArea(first.history_dock) != left_area
    first.addDockWidget(left_area, first.history_dock)  # the grader moved the History beside the images
    first.resize(first.minimumSizeHint().width() + 7, 500)  # the offscreen screen is 800x600
    left = (first.width(), first.height())
    assert left != launched
    # Written a moment after the change, without closing: a session ended by the window system is remembered.
    stored = AppSettingsReader(app_settings)
    qtbot.waitUntil(lambda: stored.size() == left and not first.window_layout.timer.isActive(), timeout=5000)
    first.shutdown()

    again = window()
    try:
        again.show()
        qtbot.waitExposed(again)
        assert (again.width(), again.height()) == left
        assert again.dockWidgetArea(again.history_dock) == left_area
    finally:
        again.shutdown()
        first.deleteLater()
        again.deleteLater()


class AppSettingsReader:
    """The window geometry as a fresh reader of the same settings file finds it."""

    def __init__(self, settings):
        self.path = settings.q.fileName()

    def size(self):
        from PySide6.QtWidgets import QWidget

        geometry = QSettings(self.path, QSettings.Format.IniFormat).value("window/geometry")
        if geometry is None:
            return None
        probe = QWidget()
        probe.restoreGeometry(geometry)
        return probe.width(), probe.height()


# -- 8. the welcome guide stays away once the grader has saved a mask ---------------------------------------


def test_the_guide_does_not_come_back_once_a_mask_was_saved(qtbot, make_window, app_settings, tmp_path):
    from retina_desktop.core.demo import ensure_demo_workspace

    demo = ensure_demo_workspace(tmp_path / "demo", count=2, size=(160, 150))
    w = make_window()
    open_and_predict(qtbot, w, demo)
    assert w.features.help.guide.isVisible()
    blank(w)
    w.edit_tools.set_tool("brush")
    stroke(w.canvas, [(20, 20), (120, 120)])
    assert w.saving.save_current()
    assert w.features.help.guide.isVisible()  # not taken away under the grader's eyes
    from retina_desktop.ui.common.settings import AppSettings

    assert AppSettings(QSettings(app_settings.q.fileName(), QSettings.Format.IniFormat)).guide_dismissed
    later = make_window()  # the next launch
    with qtbot.waitSignal(later.workspace_opened, timeout=10000):
        assert later.workspaces.open_workspace(demo)
    assert not later.features.help.guide.isVisible()


# -- 10. a second window's list follows statuses changed elsewhere ------------------------------------------


def test_the_list_follows_a_status_changed_in_another_window(qtbot, window, flat_workspace):
    from retina_desktop.ui.review.image_list import StatusRole

    open_and_predict(qtbot, window, flat_workspace)
    key = "img_02"
    model = window.image_list.model
    assert model.index_of(key).data(StatusRole) in ("new", "predicted")
    other = Workspace(flat_workspace)  # another window edits and saves img_02
    try:
        mask = np.zeros((H, W), bool)
        mask[60:64, 10:120] = True
        other.save_ground_truth(other.entry(key), mask, reviewer="bob", source="brush", status="edited")
        with qtbot.waitSignal(
            model.dataChanged, timeout=20000, check_params_cb=lambda a, b, *r: a.row() == model.index_of(key).row()
        ):
            window.workspaces.check_others()  # what the 20-s timer does
        assert model.index_of(key).data(StatusRole) == "edited"
    finally:
        other.close()
