"""The app icon and stylesheet, found through the project's one resource resolver
(``model_core.resources``), so they load the same from source, from a wheel and from a frozen build."""

from __future__ import annotations

import logging

from PySide6.QtGui import QIcon

from model_core.resources import resource_path

log = logging.getLogger("retina_desktop")

ICON_NAME = "retina-desktop"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
STYLESHEET = "style.qss"


def icon_files() -> list:
    """The icon files that exist: the PNG sizes, then the SVG."""
    folder = resource_path("icons")
    files = [folder / f"{ICON_NAME}-{s}.png" for s in ICON_SIZES] + [folder / f"{ICON_NAME}.svg"]
    return [f for f in files if f.is_file()]


def app_icon() -> QIcon:
    icon = QIcon()
    for f in icon_files():
        icon.addFile(str(f))
    return icon


def stylesheet() -> str:
    path = resource_path(STYLESHEET)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        log.warning("stylesheet %s not loaded: %s", path, exc)
        return ""


def apply_appearance(app) -> None:
    """Window icon and stylesheet for the whole application (missing files are logged, not fatal)."""
    icon = app_icon()
    if icon.isNull():
        log.warning("app icon not found under %s", resource_path("icons"))
    else:
        app.setWindowIcon(icon)
    qss = stylesheet()
    if qss:
        app.setStyleSheet(qss)


def create_application():
    """The QApplication with the app's names, pyqtgraph settings, icon and stylesheet (app, self-test, benchmarks)."""
    import sys

    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from ... import APP_NAME, ORG_NAME, __version__

    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationVersion(__version__)
    apply_appearance(app)
    return app
