"""Make docs/proofread.png: Proofread mode (P) on the first demo image, its first proposal in view.

    python docs/make_proofread_screenshot.py [--size 1280x800] [--out docs/proofread.png]

Offscreen works (QT_QPA_PLATFORM=offscreen); under xvfb-run the window has its decorations.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "proofread.png"))
    ap.add_argument("--size", default="1280x800")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="retina-proofread-shot-"))
    os.environ["RETINA_DESKTOP_HOME"] = str(tmp / "home")
    from make_screenshot import _weights, open_window

    from retina_desktop.core.demo import ensure_demo_workspace

    weights, _which = _weights(None, tmp)
    folder = ensure_demo_workspace(tmp / "photos", count=1)
    _app, win, wait = open_window(weights, tmp, args.size, {"guide_dismissed": True})
    shown: list[str] = []
    win.prediction_shown.connect(shown.append)
    win.workspaces.open_workspace(folder)
    if not wait(lambda: bool(shown), 120):
        print("no prediction came", file=sys.stderr)
        return 1
    proofread = win.features.proofread
    proofread.set_on(True)
    if not wait(lambda: proofread.current() is not None, 120):
        print("no proposal came", file=sys.stderr)
        return 1
    wait(lambda: False, 1.0)  # let the view settle
    win.grab().save(args.out)
    print(f"wrote {args.out}: {proofread.queue.counter() if proofread.queue else ''}")
    win.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
