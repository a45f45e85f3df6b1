"""The app icon: one SVG source, rendered to PNG sizes by ``python -m photosim.gui.icon DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

# Two overlapping photo frames (the "same photo twice") with a magnifier ring.
SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <defs>
    <linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#5fb3f0"/><stop offset="1" stop-color="#2f6fc4"/>
    </linearGradient>
  </defs>
  <rect x="20" y="36" width="150" height="120" rx="14" fill="#ffffff" stroke="#33415c"
        stroke-width="8" transform="rotate(-8 95 96)"/>
  <g>
    <rect x="66" y="70" width="160" height="128" rx="14" fill="url(#sky)" stroke="#1d2b4a"
          stroke-width="8"/>
    <circle cx="190" cy="104" r="14" fill="#ffd84d"/>
    <path d="M74 190 L124 128 L156 166 L178 142 L218 190 Z" fill="#2e9e5b"/>
  </g>
  <circle cx="96" cy="170" r="42" fill="none" stroke="#f2f2f2" stroke-width="20"/>
  <circle cx="96" cy="170" r="42" fill="none" stroke="#e0533d" stroke-width="12"/>
  <path d="M126 200 L160 234" stroke="#e0533d" stroke-width="18" stroke-linecap="round"/>
</svg>
"""


def render(size: int) -> QImage:
    """The icon at ``size`` × ``size`` pixels."""
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(QByteArray(SVG.encode()))
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def app_icon() -> QIcon:
    """The window icon, in several sizes."""
    icon = QIcon()
    for size in (16, 32, 48, 64, 128, 256):
        icon.addPixmap(QPixmap.fromImage(render(size)))
    return icon


def write_icons(folder: Path) -> list[Path]:
    """Write ``photosim.svg`` and ``photosim-<size>.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = [folder / "photosim.svg"]
    out[0].write_text(SVG, encoding="utf-8")
    for size in SIZES:
        path = folder / f"photosim-{size}.png"
        render(size).save(str(path))
        out.append(path)
    return out


if __name__ == "__main__":
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication(sys.argv[:1])
    for p in write_icons(Path(sys.argv[1] if len(sys.argv) > 1 else "resources/icons")):
        print(p)
