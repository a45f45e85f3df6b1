"""Decoding images for display, in worker threads (QImage is safe off the GUI thread)."""

from __future__ import annotations

from PySide6.QtGui import QImage

from photosim.library import open_upright


def load_qimage(path: str, max_side: int | None = None) -> QImage:
    """Decode ``path`` upright (EXIF applied) into an RGB ``QImage``.

    Raises:
        photosim.core.scan.imageio.DecodeError: The file cannot be decoded.
    """
    img = open_upright(path, max_side)
    data = img.tobytes("raw", "RGB")
    qimg = QImage(data, img.width, img.height, 3 * img.width, QImage.Format.Format_RGB888)
    return qimg.copy()  # own the pixels: ``data`` is freed when this function returns
