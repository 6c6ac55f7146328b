"""The Fine-tune dialog: its estimate, nothing clipped at 1280x800, and the remembered budget."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel, QMainWindow

from retina_desktop.ui.finetune import finetune_panel
from retina_desktop.ui.finetune.finetune_dialog import FinetuneDialog

NOTE = (
    "3 images for training, 1 held out for validation (img_04); the gate compares the new model with the "
    "current one on the held-out image"
)


@pytest.fixture
def main(qtbot):
    w = QMainWindow()
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    return w


def _dialog(qtbot, main, settings=None, n_images=4):
    dlg = FinetuneDialog(main, n_images, NOTE, "v3 (bundled)", "cpu", "CPU (1 of 2 cores; no GPU found)", settings)
    dlg.show()
    qtbot.waitExposed(dlg)
    return dlg


def test_the_panel_module_still_offers_the_dialog():
    assert finetune_panel.FinetuneDialog is FinetuneDialog


def test_one_minute_estimate_names_the_epochs_the_run_will_do(qtbot, main):
    dlg = _dialog(qtbot, main)
    dlg.minutes_spin.setValue(1)
    dlg.set_step_seconds(0.6)
    assert "≈ 4 epochs of 20 steps fit at 0.60 s/step" in dlg.estimate_label.text()
    assert dlg.estimate_label.text().startswith("up to 1 min 02 s")
    dlg.set_step_seconds(4.0)
    assert "≈ 1 epoch of 20 steps (longer than the budget" in dlg.estimate_label.text()
    dlg.epochs_radio.setChecked(True)
    dlg.epochs_spin.setValue(2)
    assert "2 epochs of 20 steps at 4.00 s/step" in dlg.estimate_label.text()
    dlg.close()


def test_no_text_is_clipped_at_1280x800(qtbot, main):
    dlg = _dialog(qtbot, main)
    dlg.set_step_seconds(0.6)  # the longest text arrives after the dialog is shown
    dlg.set_step_seconds(
        None, "RuntimeError: a long message from the measuring worker that has to wrap over several lines of the dialog"
    )
    qtbot.waitUntil(
        lambda: all(
            lab.height() >= lab.heightForWidth(lab.width()) for lab in dlg.findChildren(QLabel) if lab.wordWrap()
        ),
        timeout=2000,
    )
    for lab in dlg.findChildren(QLabel):
        if lab.wordWrap():
            assert lab.width() >= 300, lab.text()
    assert dlg.width() <= 1280 and dlg.height() <= 800
    dlg.close()


def test_the_budget_last_started_with_comes_back(qtbot, main, app_settings):
    dlg = _dialog(qtbot, main, app_settings)
    assert dlg.time_radio.isChecked() and dlg.minutes_spin.value() == 10  # the CPU default, never chosen yet
    dlg.minutes_spin.setValue(1)
    with qtbot.waitSignal(dlg.accepted, timeout=2000):
        dlg.start_button.click()
    again = _dialog(qtbot, main, app_settings)
    assert again.time_radio.isChecked() and again.minutes_spin.value() == 1
    assert again.overrides()["minutes"] == 1.0
    again.epochs_radio.setChecked(True)
    again.epochs_spin.setValue(7)
    again.reject()  # cancelled: not remembered
    third = _dialog(qtbot, main, app_settings)
    assert third.time_radio.isChecked()
    third.epochs_radio.setChecked(True)
    third.epochs_spin.setValue(7)
    with qtbot.waitSignal(third.accepted, timeout=2000):
        third.start_button.click()
    fourth = _dialog(qtbot, main, app_settings)
    assert fourth.epochs_radio.isChecked() and fourth.epochs_spin.value() == 7 and fourth.minutes_spin.value() == 1
    assert fourth.overrides()["epochs"] == 7 and fourth.overrides()["minutes"] is None
    fourth.close()
