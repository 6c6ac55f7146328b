"""Make docs/screenshot.png from the real application on the built-in demo workspace.

    xvfb-run -s "-screen 0 1600x1000x24" python docs/make_screenshot.py [--weights FILE] [--size 1280x800]

Uses the bundled default model (resources/default_model.pt) when it exists, else --weights, else an
untrained micro model (the picture then shows the UI, not a meaningful prediction). Re-run it when
the default model changes. Works offscreen too (QT_QPA_PLATFORM=offscreen), minus window decorations.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _weights(arg: str | None, tmp: Path) -> tuple[Path, str]:
    try:
        from model_core.resources import default_model_path

        return default_model_path(), "bundled default model"
    except Exception:  # noqa: BLE001
        pass
    if arg:
        return Path(arg), arg
    import torch

    from model_core.checkpoint import make_checkpoint, save_checkpoint
    from model_core.model import ModelConfig, build_model
    from model_core.preprocess import PreprocessConfig

    torch.manual_seed(0)
    ckpt = make_checkpoint(
        build_model(ModelConfig.preset("micro")), PreprocessConfig(), {"name": "micro (untrained)", "version": "0"}
    )
    return save_checkpoint(tmp / "micro.pt", ckpt), "untrained micro model"


def open_window(weights: Path, tmp: Path, size: str, settings_changes: dict | None = None):
    """(app, main window shown at ``size``, wait(cond, timeout)) with settings in ``tmp``; shared by the docs
    scripts."""
    import pyqtgraph as pg
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    pg.setConfigOptions(imageAxisOrder="row-major")
    app = QApplication([])
    app.setStyle("Fusion")
    from retina_desktop.ui.app.main_window import MainWindow
    from retina_desktop.ui.common.settings import AppSettings

    settings = AppSettings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    for name, value in (settings_changes or {}).items():
        setattr(settings, name, value)
    win = MainWindow(checkpoint_path=weights, settings=settings)
    width, height = (int(v) for v in size.lower().split("x"))
    win.resize(width, height)
    win.show()

    def wait(cond, timeout=600.0):
        end = time.time() + timeout
        while not cond() and time.time() < end:
            app.processEvents()
            time.sleep(0.01)
        return cond()

    return app, win, wait


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    ap.add_argument("--heat", action="store_true", help="show the probability heat map instead of the mask")
    ap.add_argument("--size", default="1280x800", help="window size, WIDTHxHEIGHT (the smallest screen supported)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="retina-shot-"))
    os.environ["RETINA_DESKTOP_HOME"] = str(tmp / "home")  # a clean first run; the user's settings stay untouched
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "home" / "config")
    weights, which = _weights(args.weights, tmp)

    _app, win, wait = open_window(weights, tmp, args.size)
    shown = []
    win.prediction_shown.connect(shown.append)
    win.workspaces.start(None)
    assert wait(lambda: bool(shown)), "no prediction was shown"
    win.predictions_view.predict_all()
    wait(lambda: not win.prediction.batch_running)
    win.image_list.sort_combo.setCurrentText("Uncertainty (high first)")
    win.image_list.sort_combo.setCurrentText("Name")
    # Show a reviewed state: the first image approved, the second one open with a correction.
    win.commands.approve_current()
    wait(lambda: win.review.image is not None and win.review.image.probability is not None, 120)
    win.edit_tools.set_tool("brush")
    win.edit_tools.set_brush_radius(5)
    doc = win.review.image.document
    h, w = doc.shape
    doc.begin_stroke()
    doc.stroke_to((w * 0.30, h * 0.62), (w * 0.36, h * 0.70), 3, True)
    doc.end_stroke()
    if args.heat:
        win.action_table.heat.setChecked(True)
    win.canvas.move_cursor((w * 0.55, h * 0.45))
    wait(lambda: False, 1.5)  # let thumbnails and measurements arrive
    win.statusBar().clearMessage()
    img = win.grab().toImage()
    img.save(args.out)
    print(f"wrote {args.out} ({img.width()}x{img.height()}, window {win.width()}x{win.height()}) with {which}")
    doc.mark_saved()
    win.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
