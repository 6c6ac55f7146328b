"""Help menu (shortcuts, About) and the first-run guide on the demo workspace, driven offscreen."""

from __future__ import annotations

import PySide6
import torch
from gui_helpers import make_workspace
from PySide6.QtCore import QSettings, Qt, qVersion

from retina_desktop.core.demo import ensure_demo_workspace
from retina_desktop.ui.common.settings import AppSettings


def test_help_menu_has_guide_shortcuts_and_about(window):
    help_menu = window.features.help.menu
    assert help_menu in [a.menu() for a in window.menuBar().actions() if a.menu() is not None]
    assert [a.text() for a in help_menu.actions() if not a.isSeparator()] == [
        "Getting started",
        "Keyboard shortcuts",
        "About Retina Desktop",
    ]
    assert window.features.help.shortcuts_action.shortcut().toString() == "F1"


def test_shortcuts_window_lists_the_window_actions(qtbot, window):
    window.features.help.shortcuts_action.trigger()
    dlg = window.features.help.shortcuts_dialog
    qtbot.waitExposed(dlg)
    assert dlg.isVisible() and not dlg.isModal()
    rows = {text: keys for keys, text in dlg.rows()}
    assert rows["Save as ground truth"] == "Ctrl+S"
    assert rows["Brush"] == "B" and rows["Eraser"] == "E" and rows["Fill"] == "G"
    assert rows["Next image"] == "PgDown, ."
    assert rows["Export masks"] == "Ctrl+E"
    assert rows["Keyboard shortcuts"] == "F1"
    assert rows["Zoom"] == "Mouse wheel"
    dlg.close()
    assert not dlg.isVisible()


def test_about_shows_model_torch_qt_and_device(qtbot, window):
    qtbot.waitUntil(lambda: window.prediction.info is not None, timeout=30000)
    window.features.help.about_action.trigger()
    dlg = window.features.help.about_dialog
    qtbot.waitExposed(dlg)
    assert not dlg.isModal()
    text = dlg.plain_text
    assert "Retina Desktop: 0.1.0" in text
    assert "Model: test-micro v0" in text
    assert f"PyTorch: {torch.__version__}" in text
    assert f"Qt: {qVersion()} (PySide6 {PySide6.__version__})" in text
    assert "Device: CPU (" in text
    assert "test-micro v0" in dlg.facts.text()
    dlg.close()


def test_guide_shows_on_the_demo_workspace_until_dismissed(qtbot, make_window, app_settings, tmp_path):
    demo = ensure_demo_workspace(tmp_path / "demo", count=2, size=(160, 150))
    window = make_window()
    guide = window.features.help.guide
    assert not guide.isVisible()
    with qtbot.waitSignal(window.workspace_opened, timeout=10000):
        assert window.workspaces.open_workspace(demo)
    assert guide.isVisible()
    assert "Open your folder" in guide.label.text() and "Fine-tune" in guide.label.text()

    # Another (real) workspace hides it; the demo shows it again while it is not dismissed.
    with qtbot.waitSignal(window.workspace_opened, timeout=10000):
        assert window.workspaces.open_workspace(make_workspace(tmp_path / "photos", 1))
    assert not guide.isVisible()
    with qtbot.waitSignal(window.workspace_opened, timeout=10000):
        assert window.workspaces.open_workspace(demo)
    assert guide.isVisible()

    qtbot.mouseClick(guide.dismiss_button, Qt.MouseButton.LeftButton)
    assert not guide.isVisible()
    assert app_settings.guide_dismissed
    assert AppSettings(QSettings(app_settings.q.fileName(), QSettings.Format.IniFormat)).guide_dismissed

    with qtbot.waitSignal(window.workspace_opened, timeout=10000):
        assert window.workspaces.open_workspace(make_workspace(tmp_path / "photos2", 1))
    with qtbot.waitSignal(window.workspace_opened, timeout=10000):
        assert window.workspaces.open_workspace(demo)
    assert not guide.isVisible()
    # Help > Getting started brings it back on demand.
    window.features.help.guide_action.trigger()
    assert guide.isVisible()


def test_first_run_opens_the_demo_workspace_with_the_guide(qtbot, window):
    assert window.settings.last_workspace == ""
    with qtbot.waitSignal(window.workspace_opened, timeout=120000):
        window.workspaces.start(None)
    assert window.review.workspace.synthetic
    assert window.features.help.guide.isVisible()
