"""The review window as a user sees it at 1280x800: nothing covered, nothing moves, every number shown."""

from __future__ import annotations

import numpy as np
from gui_helpers import RecordingPrompter, blank, open_and_predict, stroke
from PySide6.QtCore import QPoint, QRect


def _on_screen(widget) -> bool:
    """Visible and not clipped away (by a scroll area or a dock on top of it)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def _window_rect(widget) -> QRect:
    return QRect(widget.mapTo(widget.window(), QPoint(0, 0)), widget.size())


def test_at_1280x800_the_fine_tune_panel_covers_nothing_and_the_window_does_not_grow(qtbot, window, flat_workspace):
    window.resize(1280, 800)
    open_and_predict(qtbot, window, flat_workspace)
    ctl = window.finetune
    ctl.dock.show()  # what a run or "Use this version" does
    ctl.panel.reset()
    qtbot.wait(50)
    assert window.width() <= 1280 and window.height() <= 800
    for w in (
        window.review_panel.save_button,
        window.review_panel.approve_button,
        window.review_panel.measure_labels["Pixels removed"],
        window.review_panel.threshold_slider,
        window.review_panel.zoom_label,
    ):
        assert _on_screen(w), w.objectName() or w.text()
    if not ctl.dock.isFloating():  # docked by the grader: it must still leave the review panel alone
        assert not _window_rect(ctl.dock).intersects(_window_rect(window.review_dock))


def test_a_banner_never_moves_the_image_or_changes_its_zoom(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    geometry, zoom = window.canvas.geometry(), window.canvas.zoom_factor()
    window.show_message("A long message " * 20, "warning")
    qtbot.wait(20)
    assert window.banner.isVisible() and window.banner.height() > 0
    assert window.canvas.geometry() == geometry and window.canvas.zoom_factor() == zoom
    window.clear_message()
    assert window.canvas.geometry() == geometry and window.canvas.zoom_factor() == zoom


def test_a_refused_fill_message_goes_away_after_the_next_successful_edit(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = blank(window)
    h, w = doc.shape
    window.edit_tools.set_tool("fill")
    stroke(window.canvas, [(w / 2, h / 2)])
    assert window.banner.isVisible() and "Fill not applied" in window.banner.text()
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(20, 20), (40, 40)])
    assert not window.banner.isVisible() and doc.mask[30, 30]


def test_the_zoom_field_shows_a_number_after_approve_and_switching_images(qtbot, window, flat_workspace):
    window.prompter = RecordingPrompter()
    open_and_predict(qtbot, window, flat_workspace)
    assert window.review_panel.zoom_label.text().endswith("%")
    with qtbot.waitSignal(window.image_opened, timeout=10000):
        window.commands.approve_current()  # moves on to the next image
    assert window.review.image.key == "img_01" and window.review_panel.zoom_label.text().endswith("%")
    with qtbot.waitSignal(window.image_opened, timeout=10000):
        window.images.step_image(+1)
    assert window.review_panel.zoom_label.text() == f"{window.canvas.zoom_factor() * 100:.0f} %"


def test_the_overlay_buffer_equals_the_mask_after_strokes_undo_and_a_threshold(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    window.edit_tools.set_tool("brush")
    window.edit_tools.set_brush_radius(4)
    stroke(window.canvas, [(10, 10), (120, 90)])
    window.edit_tools.set_tool("eraser")
    stroke(window.canvas, [(60, 10), (60, 150)])
    assert np.array_equal(window.canvas.overlay._buffer != 0, doc.mask)
    window.edit_tools.undo()
    assert np.array_equal(window.canvas.overlay._buffer != 0, doc.mask)
    window.prompter = RecordingPrompter(confirm=True)
    assert window.threshold_control.apply(0.3)
    assert np.array_equal(doc.mask, window.review.image.probability >= 0.3)
    assert np.array_equal(window.canvas.overlay._buffer != 0, doc.mask)


def test_reopening_a_workspace_goes_back_to_the_image_open_at_quit(qtbot, make_window, flat_workspace):
    first = make_window()
    open_and_predict(qtbot, first, flat_workspace)
    with qtbot.waitSignal(first.image_opened, timeout=10000):
        first.images.open_image("img_02")
    assert first.close()
    second = make_window()
    with qtbot.waitSignal(second.image_opened, timeout=30000) as opened:
        second.workspaces.start(None)
    assert opened.args == ["img_02"]


def test_the_validation_dice_axis_stays_within_0_and_1(qtbot, window):
    panel = window.finetune.panel
    panel.reset()
    for epoch, dice in ((1, 0.61), (2, 0.615), (3, 0.62)):
        panel.add_epoch(epoch, dice)
    low, high = panel.dice_plot.viewRange()[1]
    assert low >= -0.05 and high <= 1.05 and high - low > 0.9  # the whole [0, 1] scale, not a zoom on 0.61-0.62


def test_the_heat_map_has_a_colour_legend(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    legend = window.review_panel.heat_legend
    assert _on_screen(legend)
    image = legend.grab().toImage()
    left, right = image.pixelColor(2, 4), image.pixelColor(image.width() - 3, 4)
    assert left.lightness() < 40 and right.lightness() > 150  # inferno: dark at 0, bright at 1


def test_switching_images_fast_opens_only_the_last_one(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    opened = []
    window.image_opened.connect(opened.append)
    window.images.open_image("img_01")
    window.images.open_image("img_02")  # before img_01 was decoded: its load request is stale
    qtbot.waitUntil(lambda: window.review.image is not None and window.review.image.key == "img_02", timeout=30000)
    qtbot.waitUntil(lambda: not window.tasks.active, timeout=30000)  # img_01's decoding has come back too
    assert opened == ["img_02"]
    assert window.review_panel.image_name_label.text().startswith("img_02.png")
