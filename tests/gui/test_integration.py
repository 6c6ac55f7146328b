"""Where the features built apart meet in one window: keys, the tool group and the guard on approved images."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from gui_helpers import SIZE, RecordingPrompter, send_mouse, stroke
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from model_core.imageio import mask_to_png, write_png_atomic
from model_core.synthetic import make_fundus

H, W = SIZE
README = Path(__file__).resolve().parents[2] / "README.md"


def _keyed_actions(window):
    for a in window.findChildren(QAction):
        for k in a.shortcuts():
            if not k.isEmpty():
                yield k.toString(), a


def test_no_two_actions_share_a_key(window):
    # Qt drops an ambiguous shortcut silently (neither action fires), so two features must never claim one key.
    owners = defaultdict(set)
    for key, a in _keyed_actions(window):
        owners[(key, a.shortcutContext())].add(a.text())
    shared = {k: v for k, v in owners.items() if len(v) > 1}
    assert not shared
    assert len(owners) >= 30  # the window's actions were all built (tools, compare, vessel tools, help)


def test_readme_table_lists_every_key(window):
    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Keyboard shortcuts") :]
    table = table[: table.index("\n\n", table.index("| Key |"))]
    words = {"Page Down": "PgDown", "Page Up": "PgUp", "Delete": "Del", "Enter": "Enter"}
    listed = set()
    for ln in table.splitlines()[3:]:
        cell = ln.split("|")[1]
        for long, short in words.items():
            cell = cell.replace(long, short)
        listed |= set(re.findall(r"`(.)`", cell))
        listed |= {t.strip() for t in re.split(r"[/,]| or ", re.sub(r"`.`", "", cell))}
    missing = sorted(
        {key for key, a in _keyed_actions(window) if key not in listed and key not in ("Return", "Ctrl+Return")}
    )
    assert missing == []


@pytest.fixture
def approved_gap(tmp_path, qtbot, window):
    """im0 approved and open again: a bar with a 5-px gap; the second grader drew the bar whole."""
    root = tmp_path / "set"
    for d in ("images", "mask", "masks_2nd_observer"):
        (root / d).mkdir(parents=True)
    bar = np.zeros((H, W), bool)
    bar[78:83, 15:136] = True
    gap = bar.copy()
    gap[:, 70:75] = False
    for i in range(2):
        write_png_atomic(root / "images" / f"im{i}.png", make_fundus(H, W, seed=20 + i).image)
        write_png_atomic(root / "mask" / f"im{i}.png", mask_to_png(gap, 255))
    write_png_atomic(root / "masks_2nd_observer" / "im0.png", mask_to_png(bar, 255))
    with qtbot.waitSignals([window.prediction_shown, window.compare.masks_loaded], timeout=60000):
        assert window.workspaces.open_workspace(root)
    assert window.review.image.key == "im0"
    window.commands.approve_current()
    qtbot.waitUntil(lambda: window.review.image is not None and window.review.image.key == "im1", timeout=20000)
    with qtbot.waitSignals([window.image_opened, window.compare.masks_loaded], timeout=20000):
        window.images.open_image("im0")
    assert window.review.workspace.status("im0") == "approved"
    # The grader answers "no" to "Edit an approved image?" (the edit tools ask it).
    window.prompter = window.approved_guard.prompter = RecordingPrompter(confirm=False)
    return window.review.image.document, gap


def _asked_and_unchanged(window, doc, before):
    assert [kind for kind, _ in window.prompter.asked] == ["confirm"]
    assert np.array_equal(doc.mask, before) and doc.undo_count == 0
    assert window.review.workspace.status("im0") == "approved"


def test_copy_brush_on_an_approved_image_asks_first(qtbot, window, approved_gap):
    doc, gap = approved_gap
    window.compare.copy_action.trigger()
    window.edit_tools.set_brush_radius(6)
    stroke(window.canvas, [(72, 80), (73, 80)])  # over the gap the second grader filled
    _asked_and_unchanged(window, doc, gap)


def test_topology_fix_on_an_approved_image_asks_first(qtbot, window, approved_gap):
    doc, gap = approved_gap
    tools, topo = window.vessel_tools, window.topology
    qtbot.waitUntil(lambda: tools.fresh and any(f.kind == "break" for f in topo.findings), timeout=20000)
    topo.jump(next(i for i, f in enumerate(topo.findings) if f.kind == "break"))
    qtbot.mouseClick(topo.panel.fix_button, Qt.MouseButton.LeftButton)
    _asked_and_unchanged(window, doc, gap)


def test_trace_and_segment_clicks_on_an_approved_image_ask_first(qtbot, window, approved_gap):
    doc, gap = approved_gap
    window.edit_tools.set_tool("segment")
    p = window.canvas.image_to_widget(40.5, 80.5)
    send_mouse(window.canvas.viewport(), "press", p)
    send_mouse(window.canvas.viewport(), "release", p)
    assert window.vessel_tools.selected is None and not window.vessel_tools.delete_segment_action.isEnabled()
    _asked_and_unchanged(window, doc, gap)
    window.edit_tools.set_tool("trace")
    send_mouse(window.canvas.viewport(), "press", p)
    send_mouse(window.canvas.viewport(), "release", p)
    assert not window.vessel_tools.tracing
    assert len(window.prompter.asked) == 2 and np.array_equal(doc.mask, gap)


def test_one_tool_at_a_time_and_its_preview_goes_with_it(qtbot, window, tmp_path):
    from gui_helpers import make_workspace, open_and_predict

    open_and_predict(qtbot, window, make_workspace(tmp_path / "photos", 2))
    doc, tools, c = window.review.image.document, window.vessel_tools, window.compare
    y = np.zeros((H, W), bool)
    y[78:83, 15:136] = True
    y[20:140, 70:75] = True
    doc.replace("cross", y)
    window.edit_tools.set_tool("segment")
    p = window.canvas.image_to_widget(30.5, 80.5)
    send_mouse(window.canvas.viewport(), "press", p)
    send_mouse(window.canvas.viewport(), "release", p)
    qtbot.waitUntil(lambda: tools.selected is not None, timeout=20000)
    assert tools.segment.highlight_item.isVisible()

    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ShiftModifier)  # the copy brush
    checked = [name for name, a in window.action_table.tools.items() if a.isChecked()]
    assert c.copy_action.isChecked() and checked == [] and c.brush_item.isVisible()
    assert tools.selected is None and not tools.segment.highlight_item.isVisible()
    assert not window.vessel_tools.delete_segment_action.isEnabled()

    qtbot.keyClick(window, Qt.Key.Key_T)
    assert window.canvas.tool == "trace" and window.action_table.tools["trace"].isChecked()
    assert not c.copy_action.isChecked() and not c.brush_item.isVisible()
    assert not window.canvas.cursor_outline.isVisible()

    window.edit_tools.set_tool("segment")
    send_mouse(window.canvas.viewport(), "press", p)
    send_mouse(window.canvas.viewport(), "release", p)
    qtbot.waitUntil(lambda: tools.selected is not None, timeout=20000)
    window.prompter = RecordingPrompter(unsaved="discard")
    with qtbot.waitSignal(window.image_opened, timeout=20000):
        window.images.open_image("img_01")
    assert tools.selected is None and not tools.segment.highlight_item.isVisible()
    assert not window.vessel_tools.delete_segment_action.isEnabled()
