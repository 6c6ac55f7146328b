"""The Export dialog remembers its destination (per workspace) and its options, on Export only."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from retina_desktop.ui.app.dialogs import ExportDialog


def _dialog(qtbot, settings, root, start="/data/ws-export"):
    dlg = ExportDialog(None, start, settings, root)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    return dlg


def _press(qtbot, dlg, which) -> None:
    box = dlg.findChild(QDialogButtonBox)
    qtbot.mouseClick(box.button(which), Qt.MouseButton.LeftButton)


def test_destination_and_options_come_back_after_export(qtbot, app_settings):
    dlg = _dialog(qtbot, app_settings, "/data/ws")
    assert dlg.destination.text() == "/data/ws-export" and dlg.format_255.isChecked()
    assert dlg.approved_only.isChecked()  # the default of "Export corrected masks"
    dlg.destination.setText("/mnt/share/masks")
    dlg.format_1.setChecked(True)
    dlg.overlays.setChecked(True)
    dlg.approved_only.setChecked(False)  # a choice away from the default is remembered too
    dlg.overwrite.setChecked(True)
    with qtbot.waitSignal(dlg.accepted, timeout=2000):
        _press(qtbot, dlg, QDialogButtonBox.StandardButton.Ok)

    again = _dialog(qtbot, app_settings, "/data/ws")
    assert again.destination.text() == "/mnt/share/masks"
    assert again.format_1.isChecked() and again.overlays.isChecked() and not again.approved_only.isChecked()
    assert not again.overwrite.isChecked()  # replacing files is chosen each time
    opts = again.options()
    assert (opts.one_value, opts.overlays, opts.approved_only, opts.overwrite) == (1, True, False, False)

    # Another workspace: its own default folder, the same options.
    other = _dialog(qtbot, app_settings, "/data/other", start="/data/other-export")
    assert other.destination.text() == "/data/other-export" and other.format_1.isChecked()


def test_cancel_remembers_nothing(qtbot, app_settings):
    dlg = _dialog(qtbot, app_settings, "/data/ws")
    dlg.destination.setText("/elsewhere")
    dlg.overlays.setChecked(True)
    with qtbot.waitSignal(dlg.rejected, timeout=2000):
        _press(qtbot, dlg, QDialogButtonBox.StandardButton.Cancel)
    again = _dialog(qtbot, app_settings, "/data/ws")
    assert again.destination.text() == "/data/ws-export" and not again.overlays.isChecked()
    assert app_settings.export_destination("/data/ws") is None


def test_without_settings_it_starts_from_the_defaults(qtbot):
    dlg = ExportDialog(None, "/x/y-export")
    qtbot.addWidget(dlg)
    assert dlg.destination.text() == "/x/y-export" and dlg.format_255.isChecked() and not dlg.overlays.isChecked()
    assert dlg.approved_only.isChecked() and dlg.options().approved_only  # corrected masks: the approved ones
