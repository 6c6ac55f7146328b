"""The calibre view built alone, from the parts MainWindow would hand it (no window): a synthetic photo with
drawn vessels of known widths around a saved disc; the panel shows the hand-computed CRAE, dragging the disc
recomputes, an A/V click labels the whole branch and one undo restores, the records are saved and reload."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gui_helpers import shown_canvas, task_runner
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QWidget

from model_core.calibre import ARTERY, VEIN, Disc
from model_core.imageio import write_png_atomic
from retina_desktop.core.model.tasks import load_image
from retina_desktop.core.review.review_session import ReviewSession
from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.common.context import ActionRegistry
from retina_desktop.ui.common.image_ready import ImageReadiness
from retina_desktop.ui.vessels.calibre_view import CalibreView

H = W = 400
DISC = Disc(200.0, 200.0, 60.0)  # zone B: radii 60 to 90 px
ROWS = (-50, -30, -10, 10, 30, 50)
ARTERIOLES = (15, 13, 11, 9, 7, 5)  # bars right of the disc, joined at x = 380-384 into one tree
VENULES = (17, 15, 13, 11, 9, 7)  # bars left of the disc, each its own vessel


def _vessels() -> tuple[np.ndarray, np.ndarray]:
    mask = np.zeros((H, W), bool)
    av = np.zeros((H, W), np.uint8)
    for dy, w in zip(ROWS, ARTERIOLES, strict=True):
        y, half = 200 + dy, w // 2
        mask[y - half : y + half + 1, 220:385] = True
        av[y - half : y + half + 1, 220:385] = ARTERY
    mask[150:251, 380:385] = True  # the trunk the arterioles branch from (beyond zone C)
    av[150:251, 380:385] = ARTERY
    for dy, w in zip(ROWS, VENULES, strict=True):
        y, half = 200 + dy, w // 2
        mask[y - half : y + half + 1, 0:181] = True
        av[y - half : y + half + 1, 0:181] = VEIN
    return mask, av


def _knudtson_by_hand(widths, factor):
    a = sorted((factor * math.hypot(widths[0], widths[5]), factor * math.hypot(widths[1], widths[4]),
                factor * math.hypot(widths[2], widths[3])), reverse=True)  # fmt: skip
    b = sorted((factor * math.hypot(a[0], a[2]), a[1]), reverse=True)
    return factor * math.hypot(b[0], b[1])


@pytest.fixture
def parts(qtbot, tmp_path):
    mask, av = _vessels()
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = (190, 90, 40)
    rgb[mask] = (120, 30, 20)
    write_png_atomic(tmp_path / "photo.png", rgb)
    ws = Workspace(tmp_path)
    records = ws.calibre  # versioned in the records (schema 4)
    records.save_disc("photo", DISC)
    records.save_labels("photo", av)
    review = ReviewSession()
    review.set_workspace(ws)
    request, entry = review.begin_load("photo")
    assert review.finish_load(request, load_image(None, ws, entry, "no model")) is not None
    review.image.document.replace("vessels", mask)
    owner = QWidget()
    qtbot.addWidget(owner)
    canvas = shown_canvas(qtbot, review, (500, 500))
    tasks = task_runner(qtbot, owner)
    view = CalibreView(review, canvas, tasks, ImageReadiness(owner), ActionRegistry(owner), owner)
    yield view, review, canvas, records
    tasks.shutdown()


def _shift_click(widget, pos) -> None:
    local, left, shift = QPointF(pos), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier
    for kind, buttons in (
        (QMouseEvent.Type.MouseButtonPress, left),
        (QMouseEvent.Type.MouseButtonRelease, Qt.MouseButton.NoButton),
    ):
        QApplication.sendEvent(widget, QMouseEvent(kind, local, widget.mapToGlobal(local), left, buttons, shift))


def _turn_on(qtbot, view):
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        view.image_ready.opened("photo", has_prediction=True)
        view.view_action.setChecked(True)
    return shown.args[1]


def test_the_panel_shows_the_hand_computed_crae_and_crve_and_highlights_the_vessels_used(qtbot, parts):
    view, _review, _canvas, _records = parts
    result = _turn_on(qtbot, view)
    assert result.n_arterioles == 6 and result.n_venules == 6 and result.reason == ""
    crae, crve = _knudtson_by_hand(ARTERIOLES, 0.88), _knudtson_by_hand(VENULES, 0.95)
    assert result.crae == pytest.approx(crae, rel=0.005) and result.crve == pytest.approx(crve, rel=0.005)
    p = view.panel.labels
    assert p["crae"].text() == f"{result.crae:.1f} px" and p["crve"].text() == f"{result.crve:.1f} px"
    assert p["avr"].text() == f"{result.crae / result.crve:.3f}" and p["counts"].text() == "6 / 6"
    assert view.disc_items.roi.isVisible() and view.disc_items.disc() == DISC
    # The vessels used, solid red (arteries) and blue (veins) in zone B; faint outside it.
    image = view.labels_item.pixmap().toImage()
    assert image.pixelColor(275, 200 - 50).getRgb() == (255, 30, 30, 255)  # 75 px from the centre
    assert image.pixelColor(125, 200 + 50).getRgb() == (40, 110, 255, 255)
    assert image.pixelColor(360, 150).alpha() < 255  # the arteriole beyond zone B: labelled, not used


def test_with_an_assumed_disc_diameter_the_panel_shows_micrometres(qtbot, parts):
    view, review, _canvas, _records = parts
    review.workspace.set_setting("calibre_disc_um", 1800)  # 30 um per pixel for this 60-px disc
    result = _turn_on(qtbot, view)
    assert result.unit == "um" and result.calibre_method.endswith(";disc_um=1800")
    assert result.crae == pytest.approx(30 * _knudtson_by_hand(ARTERIOLES, 0.88), rel=0.005)
    assert view.panel.labels["crae"].text() == f"{result.crae:.1f} µm"


def test_the_grader_sets_the_scale_in_the_panel_and_a_bad_value_is_refused_in_one_line(qtbot, parts):
    view, review, _canvas, _records = parts
    ws, panel = review.workspace, view.panel
    _turn_on(qtbot, view)
    assert panel.scale.currentData() == "px" and not panel.scale_value.isEnabled()
    panel.scale.setCurrentIndex(panel.scale.findData("disc_um"))
    assert panel.scale_value.text() == "1800"  # the common assumption, suggested
    for bad in ("-3", "nan", "abc", "0"):
        panel.scale_value.setText(bad)
        assert not view.apply_scale()
        assert panel.scale_error.text().startswith("Scale not changed:") and "\n" not in panel.scale_error.text()
    assert ws.setting("calibre_disc_um") is None and ws.setting("calibre_um_per_px") is None  # nothing recorded
    panel.scale.setCurrentIndex(panel.scale.findData("um_per_px"))
    panel.scale_value.setText("6.5")
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        panel.scale_apply.click()
    result = shown.args[1]
    assert ws.setting("calibre_um_per_px") == 6.5 and ws.setting("calibre_disc_um") is None
    assert result.unit == "um" and result.calibre_method.endswith(";um_per_px=6.5")
    assert result.crae == pytest.approx(6.5 * _knudtson_by_hand(ARTERIOLES, 0.88), rel=0.005)
    assert panel.labels["crae"].text() == f"{result.crae:.1f} µm" and panel.scale_error.text() == ""
    assert Workspace(ws.root).setting("calibre_um_per_px") == 6.5  # in the records, for the next window too
    panel.scale.setCurrentIndex(panel.scale.findData("px"))
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        panel.scale_apply.click()
    assert shown.args[1].unit == "px" and ws.setting("calibre_um_per_px") is None


def test_dragging_the_disc_recomputes_and_saves_it_with_the_old_one_kept(qtbot, parts):
    view, _review, _canvas, records = parts
    _turn_on(qtbot, view)
    roi = view.disc_items.roi
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        roi.setPos((roi.pos()[0] - 120, roi.pos()[1]), finish=True)  # what a drag ends with
    moved = shown.args[1]
    assert view.calibre.disc == Disc(80.0, 200.0, 60.0) and records.load_disc("photo") == Disc(80.0, 200.0, 60.0)
    assert moved.crae is None and moved.reason.startswith("0 arterioles in zone B, 6 needed")
    assert view.panel.labels["crae"].text() == "–" and view.panel.reason.text() == moved.reason
    # Both discs kept in the history and recorded, the drawn one first.
    assert [p.name for p in records.history("photo")] == ["av-0001.png", "disc-0001.json", "disc-0002.json"]
    versions = records.versions("photo", "disc")
    assert [v.path.name for v in versions] == ["disc-0001.json", "disc-0002.json"]
    assert records.version_bytes("photo", "disc", versions[0].sha256) == versions[0].path.read_bytes()


def test_a_disc_move_is_one_undo_step_and_the_undo_is_saved_under_the_reviewer(qtbot, parts):
    view, _review, _canvas, records = parts
    view.reviewer = lambda: "grader-b"  # the app's reviewer setting (MainWindow hands its getter)
    _turn_on(qtbot, view)
    assert not view.undo_action.isEnabled()
    roi = view.disc_items.roi
    with qtbot.waitSignal(view.calculated, timeout=30000):
        roi.setPos((roi.pos()[0] - 120, roi.pos()[1]), finish=True)
    assert view.undo_action.isEnabled() and records.load_disc("photo") == Disc(80.0, 200.0, 60.0)
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        view.undo_action.trigger()
    assert shown.args[1].n_arterioles == 6 and shown.args[1].crae is not None  # zone B where it was
    assert view.calibre.disc == DISC and view.disc_items.disc() == DISC and records.load_disc("photo") == DISC
    assert not view.undo_action.isEnabled()
    discs = records.versions("photo", "disc")
    assert [(v.reviewer, v.note) for v in discs[1:]] == [("grader-b", "grader"), ("grader-b", "grader")]
    assert discs[-1].sha256 == discs[0].sha256  # the undo saved the first disc again, as a new version


def test_a_disc_version_restored_in_the_history_is_one_undo_step(qtbot, parts):
    view, _review, _canvas, records = parts
    _turn_on(qtbot, view)
    roi = view.disc_items.roi
    with qtbot.waitSignal(view.calculated, timeout=30000):
        roi.setPos((roi.pos()[0] - 120, roi.pos()[1]), finish=True)
    records.restore("photo", "disc", records.versions("photo", "disc")[0].sha256)  # the History's Restore
    with qtbot.waitSignal(view.calculated, timeout=30000):
        view.reload("photo")
    assert view.calibre.disc == DISC and view.disc_items.disc() == DISC
    with qtbot.waitSignal(view.calculated, timeout=30000):
        view.undo_action.trigger()  # back to the moved disc, the one the restore replaced
    moved = Disc(80.0, 200.0, 60.0)
    assert view.calibre.disc == moved and view.disc_items.disc() == moved and records.load_disc("photo") == moved
    with qtbot.waitSignal(view.calculated, timeout=30000):
        view.undo_action.trigger()  # and the move itself
    assert view.calibre.disc == DISC and not view.undo_action.isEnabled()


def test_an_av_click_labels_the_whole_branch_one_undo_restores_and_the_labels_reload(qtbot, parts):
    view, review, canvas, records = parts
    _turn_on(qtbot, view)
    view.av_action.setChecked(True)
    p = canvas.image_to_widget(300.5, 170.5)  # on the second arteriole (row 170)
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        _shift_click(canvas.viewport(), p)  # Shift+click: vein
    relabelled = shown.args[1]
    mask = review.image.document.mask
    right = np.zeros(mask.shape, bool)
    right[:, 200:] = True
    assert (view.calibre.labels[mask & right] == VEIN).all()  # all six branches and their trunk: veins now
    assert relabelled.n_arterioles == 0 and relabelled.n_venules == 12 and relabelled.crae is None
    assert view.panel.reason.text() == "0 arterioles in zone B, 6 needed"
    assert (records.load_labels("photo", mask.shape)[mask & right] == VEIN).all()
    assert not review.image.document.undo_count > 1  # the mask's own undo is untouched
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        view.undo_action.trigger()
    assert shown.args[1].n_arterioles == 6 and (view.calibre.labels[mask & right] == ARTERY).all()
    assert not view.undo_action.isEnabled()
    assert (records.load_labels("photo", mask.shape)[mask & right] == ARTERY).all()
    # The fixture's labels, the vein labels; the undo's labels are the first again (their copy kept once).
    assert [p.name for p in records.history("photo")] == ["av-0001.png", "av-0002.png", "disc-0001.json"]
    assert [v.path.name for v in records.versions("photo", "av")] == ["av-0001.png", "av-0002.png", "av-0001.png"]


def test_a_brush_stroke_inside_the_disc_paints_and_leaves_the_disc_where_it_was(qtbot, parts):
    from gui_helpers import stroke

    view, review, canvas, records = parts
    _turn_on(qtbot, view)
    doc = review.image.document
    canvas.set_tool("brush")
    canvas.set_brush_radius(3)
    steps = doc.undo_count
    stroke(canvas, [(195, 195), (205, 205)])  # inside the 60-px disc centred at (200, 200)
    assert doc.undo_count == steps + 1 and doc.mask[200, 200]
    assert view.disc_items.disc() == DISC and records.load_disc("photo") == DISC
    canvas.set_tool("navigate")  # with the pan tool the disc takes the press again
    assert view.disc_items.roi.acceptedMouseButtons() == Qt.MouseButton.LeftButton


def test_a_labels_version_restored_in_the_history_shows_and_one_undo_takes_it_back(qtbot, parts):
    view, _review, _canvas, records = parts
    _turn_on(qtbot, view)
    fixture_labels = view.calibre.labels.copy()
    with qtbot.waitSignal(view.calculated, timeout=30000):
        assert view.mark(300.5, 170.5, VEIN)  # the grader relabels the arteriole tree: saved as a version
    veins = view.calibre.labels.copy()
    first = records.versions("photo", "av")[0]
    records.restore("photo", "av", first.sha256)  # what the History's Restore does, then it tells the view
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        view.reload("photo")
    assert np.array_equal(view.calibre.labels, fixture_labels) and shown.args[1].n_arterioles == 6
    count = len(records.versions("photo", "av"))
    with qtbot.waitSignal(view.calculated, timeout=30000) as shown:
        view.undo_action.trigger()  # one step back: the labels before the restore, saved as a new version
    assert np.array_equal(view.calibre.labels, veins) and shown.args[1].n_arterioles == 0
    assert np.array_equal(records.read_labels("photo", veins.shape), veins)
    assert [v.note for v in records.versions("photo", "av")][count - 1 :] == ["restore", "grader"]
    assert len(records.history_of("photo", "av")) == 2  # two contents, each copy kept once


def test_a_garbage_disc_file_is_reported_in_one_line_and_the_history_copy_still_restores(qtbot, parts):
    view, _review, _canvas, records = parts
    good = records.versions("photo", "disc")[0]
    records.path("photo", "disc").write_bytes(b"\xff\xfe not json")
    said: list[str] = []
    view.status.connect(said.append)
    with qtbot.waitSignal(view.prepared, timeout=30000):
        view.image_ready.opened("photo", has_prediction=True)
        view.view_action.setChecked(True)
    damaged = [t for t in said if "disc.json" in t]
    assert len(damaged) == 1 and "damaged" in damaged[0] and "\n" not in damaged[0]
    records.restore("photo", "disc", good.sha256)
    assert records.read_disc("photo") == DISC
    assert records.path("photo", "disc").read_bytes() == good.path.read_bytes()
    assert any(v.path.read_bytes() == b"\xff\xfe not json" for v in records.versions("photo", "disc"))
