"""``retina-desktop [FOLDER]``: start the review application."""

from __future__ import annotations

import argparse
import logging
import sys

from . import APP_NAME, ORG_NAME, __version__


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="retina-desktop", description="Review and correct retinal vessel segmentations.")
    p.add_argument("folder", nargs="?", help="a folder of fundus photos or a data set (images/ + mask/); "
                                             "default: the last workspace, or the demo workspace on first run")
    p.add_argument("--weights", metavar="FILE", help="model checkpoint to use instead of the bundled default model")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p.parse_args(argv)


def _setup_logging() -> None:
    from .paths import log_file

    try:
        handler: logging.Handler = logging.FileHandler(log_file(), encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("retina_desktop")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationVersion(__version__)
    from .main_window import MainWindow

    window = MainWindow(checkpoint_path=args.weights)
    window.show()
    window.start(args.folder)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
