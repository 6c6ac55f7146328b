"""Render resources/icons/retina-desktop.svg to the PNG sizes desktop environments and PyInstaller use.

Run once after changing the SVG (the PNGs are committed): ``python packaging/make_icons.py``.
Also writes ``retina-desktop.ico`` (Windows) when Pillow is installed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 - QPainter needs it
    renderer = QSvgRenderer(str(ICONS / "retina-desktop.svg"))
    if not renderer.isValid():
        print("make_icons: the SVG could not be read", file=sys.stderr)
        return 1
    for size in SIZES:
        img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(Qt.GlobalColor.transparent)
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(p)
        p.end()
        out = ICONS / f"retina-desktop-{size}.png"
        img.save(str(out))
        print(out)
    try:
        from PIL import Image

        big = Image.open(ICONS / "retina-desktop-256.png")
        big.save(ICONS / "retina-desktop.ico", sizes=[(s, s) for s in SIZES if s <= 256])
        print(ICONS / "retina-desktop.ico")
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
