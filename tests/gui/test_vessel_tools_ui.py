"""The vessel tools in the window: trace (T), segment delete (S) and the topology review (N, Fix), on
synthetic photos and masks whose vessels are known to the pixel."""

from __future__ import annotations

import cv2
import numpy as np
from gui_helpers import blank, open_and_predict, send_mouse
from PySide6.QtCore import Qt

from model_core.imageio import write_png_atomic

H, W = 160, 150


def _curve(x0=20, x1=140):
    """Centre line of a gently curved vessel, as (n, 2) int x, y."""
    xs = np.arange(x0, x1 + 1)
    ys = 80 + 28 * np.sin((xs - 20) / 120 * np.pi * 1.5)
    return np.stack([xs, np.round(ys)], axis=1).astype(np.int32)


def _draw(points, thickness, shape=(H, W)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.polylines(m, [points.reshape(-1, 1, 2)], False, 1, thickness=thickness)
    return m.astype(bool)


def _workspace(root):
    """One photo: a dark curved vessel on an even fundus-coloured background."""
    root.mkdir(parents=True)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[...] = (190, 90, 40)
    rgb[_draw(_curve(), 3)] = (120, 45, 20)
    write_png_atomic(root / "curve.png", rgb)
    return root


def _click(canvas, x, y):
    p = canvas.image_to_widget(x, y)
    send_mouse(canvas.viewport(), "press", p)
    send_mouse(canvas.viewport(), "release", p)


def _tracing(qtbot, window, tmp_path):
    """The trace tool ready on a blank mask over a model map that found the curved vessel (the micro test model
    is untrained, so its map is given here). Returns (document, vessel tools)."""
    s = open_and_predict(qtbot, window, _workspace(tmp_path / "photos"))
    doc = blank(window)
    s.probability = np.where(_draw(_curve(), 3), 0.95, 0.02).astype(np.float32)
    tools = window.vessel_tools
    window.edit_tools.set_tool("trace")
    qtbot.waitUntil(lambda: tools.trace.cost is not None, timeout=20000)
    return doc, tools


def test_two_clicks_and_enter_trace_a_curved_vessel_within_a_pixel_as_one_undo_step(qtbot, window, tmp_path):
    s = open_and_predict(qtbot, window, _workspace(tmp_path / "photos"))
    doc = blank(window)
    vessel = _draw(_curve(), 3)
    # The model found this vessel (the micro test model is untrained, so its map is given here).
    s.probability = np.where(vessel, 0.95, 0.02).astype(np.float32)
    tools = window.vessel_tools
    window.edit_tools.set_tool("trace")
    assert window.action_table.tools["trace"].isChecked()
    assert "preparing the vessel map" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: tools.trace.cost is not None, timeout=20000)

    a, b = _curve()[5], _curve()[-6]  # x 25 and x 134, on the centre line
    _click(window.canvas, a[0] + 0.5, a[1] + 0.5)
    send_mouse(
        window.canvas.viewport(),
        "move",
        window.canvas.image_to_widget(b[0] + 0.5, b[1] + 0.5),
        buttons=Qt.MouseButton.NoButton,
    )
    assert tools.trace.preview_item.isVisible() and tools.trace.preview_points > 50  # the live path follows the curve
    _click(window.canvas, b[0] + 0.5, b[1] + 0.5)
    assert not doc.mask.any()  # nothing is painted before Enter
    qtbot.keyClick(window, Qt.Key.Key_Return)

    painted = doc.mask.copy()
    assert doc.undo_count == 1 and not tools.trace.preview_item.isVisible()
    near = cv2.dilate(vessel.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert painted.any() and not (painted & ~near).any()  # nothing more than 1 px off the vessel
    between = vessel.copy()
    between[:, : a[0] + 2] = False
    between[:, b[0] - 1 :] = False
    assert painted[between].mean() >= 0.95  # and the vessel between the clicks is covered
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not doc.mask.any()


def test_escape_cancels_a_trace_and_brackets_change_its_width(qtbot, window, tmp_path):
    doc, tools = _tracing(qtbot, window, tmp_path)
    a, b = _curve()[10], _curve()[60]
    _click(window.canvas, a[0] + 0.5, a[1] + 0.5)
    _click(window.canvas, b[0] + 0.5, b[1] + 0.5)
    width = tools.trace.preview_item.pen().widthF()
    qtbot.keyClick(window, Qt.Key.Key_BracketRight)
    assert tools.trace.preview_item.pen().widthF() == width + 1.0  # half a pixel of radius each side
    assert window.canvas.brush_radius == window.settings.brush_radius  # the brush is untouched
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not tools.tracing and not tools.trace.preview_item.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Return)
    assert not doc.mask.any() and doc.undo_count == 0


def _y_mask():
    m = np.zeros((H, W), np.uint8)
    junction = (75, 90)
    for end in ((75, 150), (30, 20), (120, 20)):
        cv2.line(m, junction, end, 1, thickness=5)
    return m.astype(bool), junction


def test_segment_tool_deletes_exactly_one_branch_of_a_y(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    y_mask, (jx, jy) = _y_mask()
    doc.replace("Y", y_mask)
    steps = doc.undo_count
    tools = window.vessel_tools
    window.edit_tools.set_tool("segment")
    _click(window.canvas, 45.5, 42.5)  # on the left branch
    qtbot.waitUntil(lambda: tools.selected is not None, timeout=20000)
    assert tools.segment.highlight_item.isVisible() and window.vessel_tools.delete_segment_action.isEnabled()
    qtbot.keyClick(window, Qt.Key.Key_Delete)

    yy, xx = np.mgrid[:H, :W]
    away = np.hypot(xx - jx, yy - jy) > 10  # the fork, where the drawn branches overlap, stays with the others
    left = _draw(np.array([[jx, jy], [30, 20]]), 5) & away
    others = _draw(np.array([[jx, jy], [120, 20]]), 5) | _draw(np.array([[jx, jy], [75, 150]]), 5)
    assert left.sum() > 300 and not doc.mask[left].any()
    assert doc.mask[others].all()  # the other two branches, pixel for pixel
    assert doc.undo_count == steps + 1 and not (doc.mask & ~y_mask).any()
    window.edit_tools.undo()
    assert np.array_equal(doc.mask, y_mask)


def test_fill_on_a_vessel_no_longer_erases_the_tree(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    y_mask, _ = _y_mask()
    doc.replace("Y", y_mask)
    steps = doc.undo_count
    window.edit_tools.set_tool("fill")
    _click(window.canvas, 75.5, 120.5)
    assert np.array_equal(doc.mask, y_mask) and doc.undo_count == steps
    assert "Segment tool" in window.banner.text()


def test_n_jumps_to_a_5px_gap_and_its_bridge_closes_it_with_one_click(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    m = np.zeros((H, W), bool)
    m[78:83, 15:136] = True
    m[:, 70:75] = False  # a 5-px gap
    doc.replace("gap", m)
    steps = doc.undo_count
    tools, topo = window.vessel_tools, window.topology
    qtbot.waitUntil(lambda: tools.fresh and any(f.kind == "break" for f in topo.findings), timeout=20000)
    assert len(topo.markers) == len(topo.findings) and topo.panel.list.count() == len(topo.findings)
    zoom = window.canvas.zoom_factor()
    qtbot.keyClick(window, Qt.Key.Key_N)
    f = topo.current_finding
    assert f is not None and f.kind == "break"
    centre = window.canvas.view.viewRect().center()
    assert abs(centre.x() - 72.5) <= 3 and abs(centre.y() - 80.5) <= 3
    assert window.canvas.zoom_factor() > 1.5 * zoom
    assert topo.panel.fix_button.text() == "Bridge"
    qtbot.mouseClick(topo.panel.fix_button, Qt.MouseButton.LeftButton)

    assert doc.mask[78:83, 70:75].all()  # the gap is closed at the vessel's width
    assert not doc.mask[:76].any() and not doc.mask[85:].any()
    assert doc.undo_count == steps + 1
    qtbot.waitUntil(lambda: tools.fresh, timeout=20000)
    assert not any(f.kind == "break" for f in topo.findings)  # the markers were updated after the edit


def test_a_double_click_ends_and_paints_the_trace(qtbot, window, tmp_path):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    doc, tools = _tracing(qtbot, window, tmp_path)
    a, b = _curve()[10], _curve()[70]
    _click(window.canvas, a[0] + 0.5, a[1] + 0.5)
    _click(window.canvas, b[0] + 0.5, b[1] + 0.5)  # the first click of the double-click
    vp = window.canvas.viewport()
    p = QPointF(window.canvas.image_to_widget(b[0] + 0.5, b[1] + 0.5))
    left = Qt.MouseButton.LeftButton
    QApplication.sendEvent(
        vp,
        QMouseEvent(
            QMouseEvent.Type.MouseButtonDblClick, p, vp.mapToGlobal(p), left, left, Qt.KeyboardModifier.NoModifier
        ),
    )
    send_mouse(vp, "release", p.toPoint())
    assert doc.undo_count == 1 and not tools.tracing
    for x, y in (_curve()[15], _curve()[65]):  # near both ends of the traced stretch
        assert doc.mask[y, x]


def _gap_and_fragment(qtbot, window, flat_workspace):
    """A vessel with a 5-px gap and a 16-px fragment, analysed: (document, vessel tools, topology review)."""
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    m = np.zeros((H, W), bool)
    m[78:83, 15:136] = True
    m[:, 70:75] = False
    m[20:24, 20:24] = True  # a 16-px fragment
    doc.replace("gap and fragment", m)
    tools, topo = window.vessel_tools, window.topology
    qtbot.waitUntil(lambda: tools.fresh and {f.kind for f in topo.findings} >= {"break", "fragment"}, timeout=20000)
    return doc, tools, topo


def test_dismiss_hides_a_marker_for_good_and_the_fix_is_one_undo_step(qtbot, window, flat_workspace):
    doc, tools, topo = _gap_and_fragment(qtbot, window, flat_workspace)
    i = next(k for k, f in enumerate(topo.findings) if f.kind == "break")
    window.edit_tools.set_tool("navigate")
    _click(window.canvas, *topo.findings[i].position)  # a click on its marker makes it the current one
    assert topo.current == i and topo.current_finding.kind == "break"
    qtbot.mouseClick(topo.panel.dismiss_button, Qt.MouseButton.LeftButton)
    assert [f.kind for f in topo.findings] == ["fragment"] and len(topo.markers) == 1
    assert topo.current == 0  # the next marker is the one the buttons act on, and the view went to it
    (x0, x1), (y0, y1) = window.canvas.view.viewRange()
    fx, fy = topo.findings[0].position
    assert x0 <= fx <= x1 and y0 <= fy <= y1 and x1 - x0 < W / 2
    window.edit_tools.set_tool("brush")
    window.edit_tools.set_brush_radius(1)
    from gui_helpers import stroke

    stroke(window.canvas, [(100.5, 83.5)])  # an unrelated edit (a bump on the vessel): the review runs again
    qtbot.waitUntil(lambda: tools.fresh, timeout=20000)
    assert not any(f.kind == "break" for f in topo.findings)  # still dismissed
    steps = doc.undo_count
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert topo.current_finding.kind == "fragment" and topo.panel.fix_button.text() == "Remove"
    qtbot.mouseClick(topo.panel.fix_button, Qt.MouseButton.LeftButton)
    assert not doc.mask[20:24, 20:24].any() and doc.mask[78:83, 15:70].all()
    assert doc.undo_count == steps + 1
    window.edit_tools.undo()
    assert doc.mask[20:24, 20:24].all()


def test_closing_the_topology_panel_hides_its_markers_and_the_segment_tool_still_works(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    y_mask, _ = _y_mask()
    m = y_mask.copy()
    m[130:134, 10:14] = True  # a fragment, so there is a marker
    doc.replace("Y", m)
    tools, topo = window.vessel_tools, window.topology
    qtbot.waitUntil(lambda: tools.fresh and len(topo.markers) > 0, timeout=20000)
    from gui_helpers import stroke

    window.edit_tools.set_tool("eraser")
    window.edit_tools.set_brush_radius(1)
    stroke(window.canvas, [(12.0, 132.0)])  # on the fragment's marker: the eraser works through it
    assert not doc.mask[131:133, 11:13].any()
    window.topology_dock.close()
    assert not any(mk.isVisible() for mk in topo.markers)
    window.edit_tools.set_tool("brush")
    stroke(window.canvas, [(120.5, 140.5), (130.5, 140.5)])  # an edit: no review runs while the panel is closed
    assert not tools.fresh and not tools.analysis.timer.isActive() and tools.analysis.worker is None
    window.edit_tools.set_tool("segment")
    _click(window.canvas, 45.5, 42.5)  # the segment tool asks for the graph itself
    qtbot.waitUntil(lambda: tools.selected is not None, timeout=20000)
    window.topology_dock.show()
    qtbot.waitUntil(lambda: tools.fresh, timeout=20000)
    assert topo.markers and all(mk.isVisible() for mk in topo.markers)


def test_enter_finishes_a_trace_only_where_the_image_has_the_focus(qtbot, window, tmp_path):
    doc, tools = _tracing(qtbot, window, tmp_path)
    a, b = _curve()[10], _curve()[60]
    _click(window.canvas, a[0] + 0.5, a[1] + 0.5)
    _click(window.canvas, b[0] + 0.5, b[1] + 0.5)
    assert len(tools.trace.tracer.anchors) == 2
    # A field in the side panel has the focus: its Enter is its own, the trace stays open.
    window.review_panel.min_piece_spin.setFocus()
    qtbot.waitUntil(lambda: window.review_panel.min_piece_spin.hasFocus())
    qtbot.keyClick(window.review_panel.min_piece_spin, Qt.Key.Key_Return)
    assert not doc.mask.any() and tools.tracing
    # Back on the image, Enter paints it.
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: window.canvas.hasFocus())
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert doc.mask.any() and doc.undo_count == 1 and not tools.tracing


def test_a_kind_unticked_leaves_the_list_and_the_canvas_and_stays_unticked(qtbot, window, flat_workspace):
    open_and_predict(qtbot, window, flat_workspace)
    doc = window.review.image.document
    m = np.zeros((H, W), bool)
    m[78:83, 15:136] = True
    m[:, 70:75] = False  # a break
    m[20:24, 20:24] = True  # a 16-px fragment
    doc.replace("gap and fragment", m)
    tools, topo = window.vessel_tools, window.topology
    qtbot.waitUntil(lambda: tools.fresh and {f.kind for f in topo.findings} >= {"break", "fragment"}, timeout=20000)
    boxes = topo.panel.kind_boxes
    n_fragments = sum(f.kind == "fragment" for f in topo.findings)
    assert boxes["fragment"].text() == f"Fragments ({n_fragments})"
    boxes["fragment"].click()
    assert topo.findings and all(f.kind != "fragment" for f in topo.findings)
    assert len(topo.markers) == len(topo.findings) and topo.panel.list.count() == len(topo.findings)
    assert "fragments not shown" in topo.panel.summary_label.text()
    assert boxes["fragment"].text() == f"Fragments ({n_fragments})"  # still counted, so the grader knows
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert topo.current_finding.kind != "fragment"
    assert not window.settings.topology_show_fragment and window.settings.topology_show_spur
    boxes["fragment"].click()
    assert sum(f.kind == "fragment" for f in topo.findings) == n_fragments
    topo.show_kind("spur", False)  # from code, the box follows
    assert not boxes["spur"].isChecked() and not window.settings.topology_show_spur
    # Dismissing one takes it out of the count at once (no analysis follows a dismissal: the mask is unchanged).
    topo.jump(next(i for i, f in enumerate(topo.findings) if f.kind == "fragment"))
    qtbot.mouseClick(topo.panel.dismiss_button, Qt.MouseButton.LeftButton)
    assert boxes["fragment"].text() == f"Fragments ({n_fragments - 1})"
    for kind in ("break", "fragment"):
        topo.show_kind(kind, False)
    assert topo.findings == [] and not topo.markers and "Nothing to review" in topo.panel.summary_label.text()


def test_the_kinds_shown_are_those_the_grader_left_ticked_last_time(qtbot, app_settings, make_window):
    app_settings.topology_show_fragment = False
    app_settings.topology_show_spur = False
    app_settings.q.setValue("topology/show_break", "maybe")  # a damaged value: the default (shown)
    window = make_window()
    boxes = window.topology.panel.kind_boxes
    assert [k for k, b in boxes.items() if b.isChecked()] == ["break"]
    assert window.topology.shown_kinds == {"break"}
    window.topology.show_kind("break", False)  # nothing ticked is remembered too
    assert [k for k in ("break", "fragment", "spur") if getattr(app_settings, f"topology_show_{k}")] == []


def test_after_a_fix_the_view_stays_on_it_and_n_goes_on_to_the_next_marker(qtbot, window, flat_workspace):
    doc, tools, topo = _gap_and_fragment(qtbot, window, flat_workspace)
    i = next(k for k, f in enumerate(topo.findings) if f.kind == "break")
    topo.jump(i)
    before = window.canvas.view.viewRect().center()
    qtbot.mouseClick(topo.panel.fix_button, Qt.MouseButton.LeftButton)
    assert doc.mask[78:83, 70:75].all()
    after = window.canvas.view.viewRect().center()
    assert (after.x(), after.y()) == (before.x(), before.y())  # the grader sees the bridge just made
    assert topo.current_finding is None and not topo.panel.fix_button.isEnabled()
    assert "N goes on to Fragment" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: tools.fresh, timeout=20000)  # the markers are redone after the edit
    qtbot.keyClick(window, Qt.Key.Key_N)
    assert topo.current_finding.kind == "fragment"
    centre = window.canvas.view.viewRect().center()
    assert abs(centre.x() - 21.5) <= 3 and abs(centre.y() - 21.5) <= 3
