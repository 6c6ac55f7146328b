"""The image list: rows stay put while predictions arrive, the selection survives a re-sort, the
"not approved yet" filter, and the uncertainty tooltip."""

from __future__ import annotations

import pytest
from gui_helpers import make_workspace
from PySide6.QtCore import Qt

from retina_desktop.core.workspace import Workspace
from retina_desktop.ui.review.image_list import ImageListModel, ImageListPanel, KeyRole


@pytest.fixture
def panel(qtbot, tmp_path):
    p = ImageListPanel()
    qtbot.addWidget(p)
    p.resize(260, 260)  # room for about three rows: scrolling matters
    p.show()
    qtbot.waitExposed(p)
    ws = Workspace(make_workspace(tmp_path / "w", 6, size=(40, 36)))
    p.set_workspace(ws)
    return p


def _order(panel) -> list[str]:
    return [panel.proxy.index(r, 0).data(KeyRole) for r in range(panel.proxy.rowCount())]


def _arrive(panel, key: str, uncertainty: float) -> None:
    """What the main window does when a prediction arrives."""
    panel.model.workspace.set_prediction_info(key, uncertainty)
    panel.model.refresh(key)


def test_arriving_predictions_do_not_move_the_selected_row(qtbot, panel):
    panel.sort_combo.setCurrentText("Uncertainty (high first)")
    panel.select("img_02")
    row_before = panel.view.currentIndex().row()
    assert not panel.resort_button.isEnabled()
    for key, u in [("img_05", 0.30), ("img_04", 0.25), ("img_03", 0.20), ("img_00", 0.10)]:
        _arrive(panel, key, u)
        assert panel.current_key() == "img_02" and panel.view.currentIndex().row() == row_before
    assert _order(panel) == [f"img_{i:02d}" for i in range(6)]  # nothing moved yet
    assert panel.resort_button.isEnabled()

    qtbot.mouseClick(panel.resort_button, Qt.MouseButton.LeftButton)
    assert _order(panel) == ["img_05", "img_04", "img_03", "img_00", "img_01", "img_02"]
    assert panel.current_key() == "img_02"  # still selected, now last...
    assert panel.view.visualRect(panel.view.currentIndex()).intersects(panel.view.viewport().rect())  # ...and in view
    assert not panel.resort_button.isEnabled()


def test_changing_the_sort_keeps_the_selection(panel):
    for key, u in [("img_00", 0.1), ("img_03", 0.9)]:
        _arrive(panel, key, u)
    panel.select("img_00")
    panel.sort_combo.setCurrentText("Uncertainty (high first)")
    assert _order(panel)[:2] == ["img_03", "img_00"]
    assert panel.current_key() == "img_00" and panel.view.currentIndex().row() == 1


def test_not_approved_yet_filter(panel):
    ws = panel.model.workspace
    ws.set_status("img_01", "approved")
    ws.set_status("img_04", "approved")
    ws.set_status("img_02", "edited")
    panel.status_combo.setCurrentIndex(panel.status_combo.findData("not approved"))
    assert panel.status_combo.currentText() == "Not approved yet"
    assert _order(panel) == ["img_00", "img_02", "img_03", "img_05"]
    assert panel.count_label.text() == "4 of 6 images"
    # Approving the shown image keeps it in place until the filter is applied again.
    panel.select("img_02")
    ws.set_status("img_02", "approved")
    panel.model.refresh("img_02")
    assert "img_02" in _order(panel) and panel.resort_button.isEnabled()
    panel.resort()
    assert _order(panel) == ["img_00", "img_03", "img_05"]


def test_uncertainty_tooltip_explains_the_figure(panel):
    _arrive(panel, "img_03", 0.142)
    tip = panel.proxy.index(3, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "uncertain 14.2%" in tip and "vessel area" in tip and "0.25 and 0.75" in tip
    assert "vessel area" not in panel.proxy.index(2, 0).data(Qt.ItemDataRole.ToolTipRole)  # not predicted yet


def test_key_at_is_gone():
    assert not hasattr(ImageListModel, "key_at")
