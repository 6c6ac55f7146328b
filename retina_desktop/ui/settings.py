"""User preferences in QSettings (the platform's standard place; never the install folder)."""

from __future__ import annotations

import getpass
import os

from PySide6.QtCore import QByteArray, QSettings

from .. import ORG_NAME

APP_SETTINGS_NAME = "retina-desktop"


class AppSettings:
    def __init__(self, qsettings: QSettings | None = None):
        if qsettings is None:
            home = os.environ.get("RETINA_DESKTOP_HOME")
            # A portable or test home keeps its settings with it, so it never inherits another user's workspace.
            qsettings = (QSettings(os.path.join(home, "settings.ini"), QSettings.Format.IniFormat) if home
                         else QSettings(ORG_NAME, APP_SETTINGS_NAME))
        self.q = qsettings

    def _get(self, key: str, default, kind):
        v = self.q.value(key, default)
        try:
            return kind(v) if v is not None else default
        except (TypeError, ValueError):
            return default

    @property
    def last_workspace(self) -> str:
        return self._get("workspace/last", "", str)

    @last_workspace.setter
    def last_workspace(self, path: str) -> None:
        self.q.setValue("workspace/last", str(path))
        recent = [p for p in self.recent_workspaces if p != str(path)]
        self.q.setValue("workspace/recent", [str(path)] + recent[:7])

    @property
    def recent_workspaces(self) -> list[str]:
        v = self.q.value("workspace/recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(p) for p in (v or [])]

    @property
    def brush_radius(self) -> float:
        return min(100.0, max(0.5, self._get("tools/brush_radius", 4.0, float)))

    @brush_radius.setter
    def brush_radius(self, r: float) -> None:
        self.q.setValue("tools/brush_radius", float(r))

    @property
    def mask_opacity(self) -> float:
        return min(1.0, max(0.0, self._get("view/mask_opacity", 0.55, float)))

    @mask_opacity.setter
    def mask_opacity(self, v: float) -> None:
        self.q.setValue("view/mask_opacity", float(v))

    @property
    def autosave_seconds(self) -> int:
        return max(5, self._get("review/autosave_seconds", 30, int))

    @autosave_seconds.setter
    def autosave_seconds(self, v: int) -> None:
        self.q.setValue("review/autosave_seconds", int(v))

    @property
    def min_piece_pixels(self) -> int:
        return max(2, self._get("tools/min_piece_pixels", 30, int))

    @min_piece_pixels.setter
    def min_piece_pixels(self, v: int) -> None:
        self.q.setValue("tools/min_piece_pixels", int(v))

    @property
    def reviewer(self) -> str:
        try:
            default = getpass.getuser()
        except Exception:  # noqa: BLE001
            default = "reviewer"
        return self._get("review/reviewer", default, str) or default

    @reviewer.setter
    def reviewer(self, name: str) -> None:
        self.q.setValue("review/reviewer", name)

    @property
    def advance_after_approve(self) -> bool:
        v = self.q.value("review/advance_after_approve", True)
        return v in (True, "true", "1", 1)

    @property
    def guide_dismissed(self) -> bool:
        """The first-run guide was dismissed: it is not shown again."""
        v = self.q.value("help/guide_dismissed", False)
        return v in (True, "true", "1", 1)

    @guide_dismissed.setter
    def guide_dismissed(self, v: bool) -> None:
        self.q.setValue("help/guide_dismissed", bool(v))

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def window_geometry(self):
        return self.q.value("window/geometry")

    def window_state(self):
        return self.q.value("window/state")

    def sync(self) -> None:
        self.q.sync()

    def last_image(self, workspace_root: str) -> str | None:
        """The key of the image that was open when this workspace was left (reopening goes back to it)."""
        v = self.q.value("workspaces/last_image/" + workspace_root.replace("/", "|").replace("\\", "|"))
        return str(v) if v else None

    def set_last_image(self, workspace_root: str, key: str) -> None:
        self.q.setValue("workspaces/last_image/" + workspace_root.replace("/", "|").replace("\\", "|"), key)
