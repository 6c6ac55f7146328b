"""Make docs/calibre.png: the calibre view (Shift+C) on a synthetic demo image, from the real application.

    xvfb-run -s "-screen 0 1600x1000x24" python docs/make_calibre_screenshot.py [--image FILE] [--out PNG]

Opens the built-in demo workspace (synthetic photos), predicts with the bundled default model (or an untrained
micro model when it is absent), turns the calibre view on (automatic disc and A/V suggestion), waits for CRAE /
CRVE / AVR and zooms to zone C. ``--image`` shows another photo instead (never commit a picture of a data set
photo whose licence does not allow it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", help="a photo to show instead of the first demo image")
    ap.add_argument("--out", default=str(ROOT / "docs" / "calibre.png"))
    ap.add_argument("--size", default="1280x800")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="retina-calibre-shot-"))
    os.environ["RETINA_DESKTOP_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "home" / "config")
    from make_screenshot import _weights, open_window

    weights, which = _weights(None, tmp)

    from PySide6.QtCore import QRectF

    from model_core.calibre import ZONE_C
    from retina_desktop.core.demo import ensure_demo_workspace

    folder = tmp / "photos"
    if args.image:
        folder.mkdir()
        shutil.copy(args.image, folder / Path(args.image).name)
    else:
        ensure_demo_workspace(folder, count=1)
    _app, win, wait = open_window(weights, tmp, args.size, {"guide_dismissed": True})
    shown: list[str] = []
    win.prediction_shown.connect(shown.append)
    win.workspaces.open_workspace(folder)
    assert wait(lambda: bool(shown)), "no prediction was shown"
    calibre = win.features.calibre
    results: list[object] = []
    calibre.calculated.connect(lambda _key, result: results.append(result))
    calibre.view_action.setChecked(True)
    assert wait(lambda: bool(results), 120), "no calibre"
    disc = calibre.calibre.disc if calibre.calibre is not None else None
    if disc is not None:
        _, r = disc.zone_radii(ZONE_C)
        r *= 1.05
        win.canvas.view.setRange(QRectF(disc.x - r, disc.y - r, 2 * r, 2 * r), padding=0)
    win.action_table.mask.setChecked(False)  # the A/V labels show instead of the mask overlay
    win.topology_dock.hide()  # and its markers with it
    area = win.review_dock.widget()
    if hasattr(area, "ensureWidgetVisible"):
        area.ensureWidgetVisible(calibre.panel, 0, 0)
    win.canvas.hide_cursor()
    wait(lambda: False, 1.0)
    win.statusBar().clearMessage()
    img = win.grab().toImage()
    img.save(args.out)
    result = results[-1]
    print(f"wrote {args.out} ({img.width()}x{img.height()}) with {which}: {result}")
    win.review.image.document.mark_saved()
    win.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
