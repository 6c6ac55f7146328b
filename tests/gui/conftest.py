"""Fixtures for the GUI tests: small synthetic workspaces and a main window that is torn down cleanly
(no dialog left open, every worker thread joined)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from gui_helpers import RecordingPrompter, make_workspace
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication


@pytest.fixture
def flat_workspace(tmp_path) -> Path:
    return make_workspace(tmp_path / "photos", 3)


@pytest.fixture
def app_settings(tmp_path):
    from PySide6.QtCore import QSettings

    from retina_desktop.ui.common.settings import AppSettings

    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def make_window(qtbot, app_settings, micro_checkpoint_path):
    from retina_desktop.ui.app.main_window import MainWindow

    windows = []

    def factory(checkpoint=micro_checkpoint_path, **kw):
        w = MainWindow(checkpoint_path=checkpoint, settings=app_settings, **kw)
        # A grader who already chose to save over a data set's masks: the one-time question would be a modal
        # dialog in every test that corrects a reference mask (tests of the question set their own prompter).
        w.prompter.ask_dataset_masks = lambda workspace_name: "overwrite"
        w.resize(1200, 800)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield factory
    for w in windows:
        w.prompter = RecordingPrompter(unsaved="discard")
        w.close()
        w.shutdown()
        assert w.tasks.pool.activeThreadCount() == 0
        w.deleteLater()
    # Collect this test's cyclic garbage (windows, items, workers) now, while no worker thread runs: left to a
    # later test, the collector ran inside that test's event loop beside its model-loading threads, and
    # PySide6 crashed there (SIGSEGV in "Garbage-collecting", 1 run in 2 of the whole GUI suite).
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh user home per test, so every test has its own model store."""
    h = tmp_path / "home"
    monkeypatch.setenv("RETINA_DESKTOP_HOME", str(h))
    return h


@pytest.fixture
def store(home, micro_checkpoint_path):
    """The user's model store with the micro model as the active version v001 (the bundled default
    model may be absent in a checkout)."""
    from model_core.checkpoint import load_checkpoint
    from model_core.model_store import ModelStore

    s = ModelStore()
    assert str(s.root).startswith(str(home))
    v = s.add(load_checkpoint(micro_checkpoint_path), {"label": "clinic parent", "parent": None})
    s.activate(v.id)
    return s
