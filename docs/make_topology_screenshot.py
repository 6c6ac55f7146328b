"""Make docs/topology_review.png: the topology review on a synthetic demo image, from the real application.

    QT_QPA_PLATFORM=offscreen python docs/make_topology_screenshot.py [--image FILE] [--out PNG]

Opens the built-in demo workspace (synthetic photos), predicts with the bundled default model (or an
untrained micro model when it is absent), waits for the topology review and jumps to the first marker (N).
``--image`` shows another photo instead (e.g. a DRIVE photo from ../shared/data to look at; never commit
that picture: the data set's licence does not allow it).
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
    ap.add_argument("--out", default=str(ROOT / "docs" / "topology_review.png"))
    ap.add_argument("--size", default="1280x800")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="retina-topo-shot-"))
    os.environ["RETINA_DESKTOP_HOME"] = str(tmp / "home")
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "home" / "config")
    from make_screenshot import _weights, open_window

    weights, which = _weights(None, tmp)

    from PySide6.QtCore import QRectF

    from retina_desktop.core.demo import ensure_demo_workspace

    folder = tmp / "photos"
    if args.image:
        folder.mkdir()
        shutil.copy(args.image, folder / Path(args.image).name)
    else:
        ensure_demo_workspace(folder, count=1)
    # The first-run guide would cover the top of the image.
    _app, win, wait = open_window(weights, tmp, args.size, {"guide_dismissed": True})

    shown = []
    win.prediction_shown.connect(shown.append)
    win.workspaces.open_workspace(folder)
    assert wait(lambda: bool(shown)), "no prediction was shown"
    tools, topo = win.vessel_tools, win.topology
    assert wait(lambda: tools.fresh, 120), "no topology review"
    wait(lambda: False, 0.3)
    topo.step(+1)
    if topo.current_finding is not None:
        # Zoom out from the marker a little, so that its neighbours show too.
        r = win.canvas.view.viewRect()
        c, side = r.center(), r.width() * 3
        win.canvas.view.setRange(QRectF(c.x() - side / 2, c.y() - side / 2, side, side), padding=0)
    win.canvas.hide_cursor()
    wait(lambda: False, 1.0)
    img = win.grab().toImage()
    img.save(args.out)
    print(f"wrote {args.out} ({img.width()}x{img.height()}) with {which}: {topo.panel.summary_label.text()}")
    win.review.image.document.mark_saved()
    win.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
