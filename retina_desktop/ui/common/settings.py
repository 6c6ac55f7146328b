"""User preferences in QSettings (the platform's standard place; never the install folder).

Each plain preference is one row of ``AppSettings``: a ``Setting(key, type, default, range)``. Reading
coerces the stored value and falls back to the default when it is missing, malformed or outside its
choices, and clamps numbers into their range, so a hand-edited or foreign settings file never breaks the
app. The few preferences with behaviour of their own (recent workspaces, per-workspace memory, window
state) are written out below the table.
"""

from __future__ import annotations

import getpass
import json
import math
import os
from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSettings

from ... import ORG_NAME
from ...core.model.keep_learning import DEFAULT_EVERY

APP_SETTINGS_NAME = "retina-desktop"
RECENT_WORKSPACES = 8
REMEMBERED_WORKSPACES = 50  # per-workspace memories kept (last image, export destination); oldest dropped


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name on some systems
        return "reviewer"


def _as_bool(v) -> bool:
    if isinstance(v, str):
        if v.strip().lower() in ("true", "1", "yes"):
            return True
        if v.strip().lower() in ("false", "0", "no", ""):
            return False
        raise ValueError(v)
    return bool(v)


@dataclass(frozen=True)
class Setting:
    """One preference: read and written as an attribute of ``AppSettings``."""

    key: str
    kind: type  # str, int, float or bool
    default: object  # a value, or a function giving it (for defaults that depend on the machine)
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def default_value(self):
        return self.default() if callable(self.default) else self.default

    def parse(self, raw):
        """The stored value as this setting's type, or the default (missing, malformed, not a choice)."""
        default = self.default_value()
        if raw is None:
            return default
        try:
            value = _as_bool(raw) if self.kind is bool else self.kind(raw)
        except (TypeError, ValueError):
            return default
        if isinstance(value, float) and not math.isfinite(value):
            return default
        if self.kind is str and not value:
            return default
        if self.choices and value not in self.choices:
            return default
        if self.low is not None:
            value = max(self.kind(self.low), value)
        if self.high is not None:
            value = min(self.kind(self.high), value)
        return value

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        return self.parse(obj.q.value(self.key))

    def __set__(self, obj, value) -> None:
        obj.q.setValue(self.key, self.kind(value))


class AppSettings:
    # name = Setting(key, type, default, low, high[, choices])
    brush_radius = Setting("tools/brush_radius", float, 4.0, 0.5, 100.0)
    min_piece_pixels = Setting("tools/min_piece_pixels", int, 30, 2)
    mask_opacity = Setting("view/mask_opacity", float, 0.55, 0.0, 1.0)
    autosave_seconds = Setting("review/autosave_seconds", int, 30, 5, 3600)
    reviewer = Setting("review/reviewer", str, _login_name)
    advance_after_approve = Setting("review/advance_after_approve", bool, True)
    guide_dismissed = Setting("help/guide_dismissed", bool, False)  # the first-run guide is not shown again
    # The Export dialog's options. "Replace files already there" is deliberately not remembered: overwriting
    # someone's files should be chosen each time.
    export_one_value = Setting("export/one_value", int, 255, choices=(1, 255))
    export_overlays = Setting("export/overlays", bool, False)
    # The dialog is "Export corrected masks": by default only the approved ones (unticked, the untouched
    # reference masks went out with them; issue 27).
    export_approved_only = Setting("export/approved_only", bool, True)
    # The fine-tune budget last started with; 0 minutes means the device's default (finetune_job.DEFAULT_MINUTES).
    finetune_minutes = Setting("finetune/minutes", int, 0, 0, 24 * 60)
    finetune_epochs = Setting("finetune/epochs", int, 30, 1, 1000)
    finetune_by_epochs = Setting("finetune/by_epochs", bool, False)
    # Keep learning (core.model.keep_learning): the grader's opt-in, per user rather than per workspace, since the
    # model it fine-tunes (the model store's active version) and the CPU it uses are the user's, and a workspace's
    # records are shared by every grader who opens it.
    keep_learning = Setting("finetune/keep_learning", bool, False)
    keep_learning_every = Setting("finetune/keep_learning_every", int, DEFAULT_EVERY, 1, 1000)
    # The kinds of finding the Topology panel lists and marks (a grader who does not review spurs hides them).
    topology_show_break = Setting("topology/show_break", bool, True)
    topology_show_fragment = Setting("topology/show_fragment", bool, True)
    topology_show_spur = Setting("topology/show_spur", bool, True)

    def __init__(self, qsettings: QSettings | None = None):
        if qsettings is None:
            home = os.environ.get("RETINA_DESKTOP_HOME")
            # A portable or test home keeps its settings with it, so it never inherits another user's workspace.
            qsettings = (
                QSettings(os.path.join(home, "settings.ini"), QSettings.Format.IniFormat)
                if home
                else QSettings(ORG_NAME, APP_SETTINGS_NAME)
            )
        self.q = qsettings

    @classmethod
    def table(cls) -> dict[str, Setting]:
        """Every plain preference by attribute name."""
        return {name: s for name, s in vars(cls).items() if isinstance(s, Setting)}

    # ----------------------------------------------------------------- workspaces --
    @property
    def last_workspace(self) -> str:
        return str(self.q.value("workspace/last", "") or "")

    @last_workspace.setter
    def last_workspace(self, path: str) -> None:
        self.q.setValue("workspace/last", str(path))
        recent = [p for p in self.recent_workspaces if p != str(path)]
        self.q.setValue("workspace/recent", [str(path), *recent[: RECENT_WORKSPACES - 1]])

    @property
    def recent_workspaces(self) -> list[str]:
        v = self.q.value("workspace/recent", [])
        if isinstance(v, str):  # QSettings reads back a list of one as its one string
            return [v]
        return [str(p) for p in v] if isinstance(v, (list, tuple)) else []

    def _remembered(self, key: str) -> list[list[str]]:
        """[[workspace root, value], ...], most recent first (JSON: paths are not valid QSettings keys)."""
        try:
            pairs = json.loads(str(self.q.value(key, "[]")))
        except ValueError:
            return []
        return (
            [p for p in pairs if isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)]
            if isinstance(pairs, list)
            else []
        )

    def _recall(self, key: str, workspace_root: str) -> str | None:
        return next((value for root, value in self._remembered(key) if root == str(workspace_root)), None)

    def _remember(self, key: str, workspace_root: str, value: str) -> None:
        pairs = [p for p in self._remembered(key) if p[0] != str(workspace_root)]
        self.q.setValue(key, json.dumps([[str(workspace_root), str(value)], *pairs[: REMEMBERED_WORKSPACES - 1]]))

    def last_image_key(self, workspace_root: str) -> str | None:
        """The image that was open when this workspace was last left (None if never)."""
        return self._recall("workspace/last_image", workspace_root)

    def set_last_image_key(self, workspace_root: str, key: str) -> None:
        self._remember("workspace/last_image", workspace_root, key)

    def export_destination(self, workspace_root: str) -> str | None:
        """The folder this workspace was last exported to (None if never)."""
        return self._recall("export/destination", workspace_root)

    def set_export_destination(self, workspace_root: str, folder: str) -> None:
        self._remember("export/destination", workspace_root, folder)

    def keep_learning_since(self, workspace_root: str) -> str | None:
        """When Keep learning started counting this workspace's approvals (its last run's start; None: never)."""
        return self._recall("finetune/keep_learning_since", workspace_root)

    def set_keep_learning_since(self, workspace_root: str, stamp: str) -> None:
        self._remember("finetune/keep_learning_since", workspace_root, stamp)

    # --------------------------------------------------------------------- window --
    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.q.setValue("window/geometry", geometry)
        self.q.setValue("window/state", state)

    def window_geometry(self):
        return self.q.value("window/geometry")

    def window_state(self):
        return self.q.value("window/state")

    def sync(self) -> None:
        self.q.sync()
