"""``retina-desktop [FOLDER]``: start the review application."""

from __future__ import annotations

import argparse
import logging
import sys

from . import __version__


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="retina-desktop", description="Review and correct retinal vessel segmentations.")
    p.add_argument(
        "folder",
        nargs="?",
        help="a folder of fundus photos or a data set (images/ + mask/); "
        "default: the last workspace, or the demo workspace on first run",
    )
    p.add_argument("--weights", metavar="FILE", help="model checkpoint to use instead of the bundled default model")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "--self-test",
        action="store_true",
        help="check this install offscreen: load the model, predict a demo image, paint, save and "
        "export in a temporary folder; one line per step, exit status 0 when all pass",
    )
    p.add_argument(
        "--measure-startup",
        action="store_true",
        help="print the time from launch to the shown window (and to the first prediction), then quit",
    )
    return p.parse_args(argv)


def _setup_logging() -> None:
    from .core.paths import log_file

    try:
        handler: logging.Handler = logging.FileHandler(log_file(), encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("retina_desktop")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["workspace"]:  # headless records, history and checks; never loads Qt
        from .core.workspace_cli import main as workspace_main

        return workspace_main(argv[1:])
    args = _parse(argv)
    if args.self_test or args.measure_startup:
        from .self_test import measure_startup, run_self_test

        return run_self_test(args.weights) if args.self_test else measure_startup(args.weights)
    _setup_logging()
    from .ui.app.appearance import create_application
    from .ui.app.main_window import MainWindow

    app = create_application()
    window = MainWindow(checkpoint_path=args.weights)
    window.show()
    window.workspaces.start(args.folder)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
