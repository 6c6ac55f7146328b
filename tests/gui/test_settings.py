"""AppSettings: the declarative table reads back what was written, survives a reopen of the file, and falls
back to defaults (or clamps) when the stored values are missing, malformed or out of range."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from retina_desktop.ui.common.settings import REMEMBERED_WORKSPACES, AppSettings, Setting


def _reopen(settings: AppSettings) -> AppSettings:
    settings.sync()
    return AppSettings(QSettings(settings.q.fileName(), QSettings.Format.IniFormat))


def test_every_preference_round_trips_through_the_file(app_settings):
    values = {
        "brush_radius": 12.5,
        "min_piece_pixels": 44,
        "mask_opacity": 0.3,
        "autosave_seconds": 90,
        "reviewer": "dr. who",
        "advance_after_approve": False,
        "guide_dismissed": True,
        "export_one_value": 1,
        "export_overlays": True,
        "export_approved_only": False,
        "finetune_minutes": 1,
        "finetune_epochs": 7,
        "finetune_by_epochs": True,
        "keep_learning": True,
        "keep_learning_every": 3,
        "topology_show_break": False,
        "topology_show_fragment": True,
        "topology_show_spur": False,
    }
    assert set(values) == set(AppSettings.table())  # a new row needs a line here
    for name, value in values.items():
        setattr(app_settings, name, value)
    again = _reopen(app_settings)
    assert {name: getattr(again, name) for name in values} == values


def test_defaults_when_nothing_is_stored(app_settings):
    assert app_settings.brush_radius == 4.0 and app_settings.mask_opacity == 0.55
    assert app_settings.autosave_seconds == 30 and app_settings.min_piece_pixels == 30
    assert app_settings.advance_after_approve is True and app_settings.guide_dismissed is False
    assert app_settings.export_one_value == 255 and app_settings.finetune_minutes == 0
    assert app_settings.export_approved_only is True  # "Export corrected masks": the approved ones
    assert app_settings.keep_learning is False and app_settings.keep_learning_every == 5  # opt-in (issue 29)
    assert app_settings.reviewer  # the login name, never empty
    assert app_settings.last_workspace == "" and app_settings.recent_workspaces == []


def test_malformed_and_out_of_range_values_fall_back_or_are_clamped(app_settings):
    q = app_settings.q
    q.setValue("tools/brush_radius", "a lot")
    q.setValue("view/mask_opacity", 7)
    q.setValue("review/autosave_seconds", 1)
    q.setValue("export/one_value", 128)  # neither 0/1 nor 0/255
    q.setValue("review/advance_after_approve", "maybe")
    q.setValue("help/guide_dismissed", "true")
    q.setValue("tools/min_piece_pixels", "nan")
    q.setValue("review/reviewer", "")
    again = _reopen(app_settings)
    assert again.brush_radius == 4.0
    assert again.mask_opacity == 1.0
    assert again.autosave_seconds == 5
    assert again.export_one_value == 255
    assert again.advance_after_approve is True
    assert again.guide_dismissed is True
    assert again.min_piece_pixels == 30
    assert again.reviewer == AppSettings.reviewer.default_value()


def test_setting_parses_like_the_file_stores(app_settings):
    s = Setting("x/y", float, 1.0, 0.0, 2.0)
    assert s.parse("1.5") == 1.5 and s.parse("inf") == 1.0 and s.parse(None) == 1.0 and s.parse(-3) == 0.0


def test_recent_workspaces_most_recent_first_without_duplicates(app_settings):
    for p in ["/a", "/b", "/a", "/c"]:
        app_settings.last_workspace = p
    again = _reopen(app_settings)
    assert again.last_workspace == "/c"
    assert again.recent_workspaces == ["/c", "/a", "/b"]


def test_last_image_and_export_destination_are_remembered_per_workspace(app_settings):
    assert app_settings.last_image_key("/ws/one") is None
    app_settings.set_last_image_key("/ws/one", "img_02")
    app_settings.set_last_image_key("/ws/two", "sub/img_07")
    app_settings.set_last_image_key("/ws/one", "img_03")
    app_settings.set_export_destination("/ws/one", "/out/one")
    again = _reopen(app_settings)
    assert again.last_image_key("/ws/one") == "img_03"
    assert again.last_image_key("/ws/two") == "sub/img_07"
    assert again.last_image_key("/ws/three") is None
    assert again.export_destination("/ws/one") == "/out/one" and again.export_destination("/ws/two") is None
    # Bounded: the oldest workspace is forgotten first.
    for i in range(REMEMBERED_WORKSPACES):
        again.set_last_image_key(f"/many/{i}", "k")
    assert again.last_image_key("/ws/one") is None and again.last_image_key("/many/0") == "k"
    # A damaged entry is ignored, not fatal.
    again.q.setValue("workspace/last_image", "{not json")
    assert again.last_image_key("/many/0") is None


USER_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "user-guide.md"  # its "Where things are stored" table


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the user guide's Linux path")
def test_user_guide_names_the_file_qsettings_really_uses(monkeypatch, tmp_path):
    line = next(
        ln for ln in USER_GUIDE.read_text(encoding="utf-8").splitlines() if ln.startswith("| settings | QSettings")
    )
    monkeypatch.delenv("RETINA_DESKTOP_HOME", raising=False)
    native = AppSettings().q.fileName()  # nothing is written: only the name is read
    assert native.endswith("/RetinaDesktop/retina-desktop.conf")
    assert "~/.config/RetinaDesktop/retina-desktop.conf" in line
    monkeypatch.setenv("RETINA_DESKTOP_HOME", str(tmp_path))
    assert AppSettings().q.fileName() == str(tmp_path / "settings.ini")
    assert "`settings.ini` in that folder" in line
