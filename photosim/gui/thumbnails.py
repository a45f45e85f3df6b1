"""Lazy thumbnails: decode off the GUI thread, newest request first, LRU of pixmaps.

Models ask :meth:`ThumbnailCache.pixmap` from ``data()``; a miss returns None at once (the
caller shows a placeholder) and queues the content hash. One decoder thread (a named QThread:
SQLite reads are fast, JPEG decoding of 256 px thumbnails is ~1 ms, one thread keeps up with
scrolling) pops the NEWEST request first (what the user looks at now), reads the JPEG bytes with
its own catalog connection, decodes them to a ``QImage`` and emits it. The GUI thread converts it
to a ``QPixmap`` (pixmaps belong to the GUI thread), caches it, and emits ``loaded`` so the
models send ``dataChanged`` for those rows only.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

from photosim.library import Library

logger = logging.getLogger(__name__)

CACHE_ITEMS = 3000
MAX_PENDING = 400  # older requests are for rows scrolled away long ago


class _Decoder(QThread):
    """The decoder thread (see the module docstring).

    Signals:
        decoded(str, QImage): content hash and its thumbnail (null image when missing).
    """

    decoded = Signal(str, QImage)

    def __init__(self, catalog_path: Path, size: int) -> None:
        super().__init__()
        self.size = size
        self.setObjectName("photosim-thumbnails")
        self.catalog_path = catalog_path
        self._stack: list[str] = []
        self._cond = threading.Condition()
        self._stop = False

    def request(self, content_hash: str) -> None:
        with self._cond:
            self._stack.append(content_hash)
            if len(self._stack) > MAX_PENDING:
                del self._stack[: len(self._stack) - MAX_PENDING]
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()

    def run(self) -> None:  # noqa: D401 - Qt override
        catalog = None
        try:
            catalog = Library(self.catalog_path)
            while True:
                with self._cond:
                    while not self._stack and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    content_hash = self._stack.pop()  # LIFO: newest request first
                try:
                    jpeg = catalog.thumbnail(content_hash)
                except Exception:  # a locked or vanished catalog must not kill the thread
                    logger.exception("cannot read thumbnail %s", content_hash)
                    jpeg = None
                image = QImage.fromData(jpeg) if jpeg else QImage()
                if not image.isNull() and max(image.width(), image.height()) > self.size:
                    # Scale here, not on the GUI thread: painting then copies pixels only.
                    image = image.scaled(self.size, self.size, Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation)
                self.decoded.emit(content_hash, image)
        except Exception:
            logger.exception("thumbnail thread failed")
        finally:
            if catalog is not None:
                catalog.close()


class ThumbnailCache(QObject):
    """Thumbnail pixmaps by content hash, loaded lazily (see the module docstring).

    Signals:
        loaded(str): A content hash whose pixmap is now available (or known missing).
    """

    loaded = Signal(str)

    def __init__(
        self, catalog_path: Path, size: int = 256, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._missing: set[str] = set()
        self._decoder = _Decoder(catalog_path, size)
        self._decoder.decoded.connect(self._on_decoder_decoded)
        self._decoder.start()

    def pixmap(self, content_hash: str | None) -> QPixmap | None:
        """The cached pixmap, or None (then it is requested; ``loaded`` follows)."""
        if not content_hash:
            return None
        pix = self._cache.get(content_hash)
        if pix is not None:
            self._cache.move_to_end(content_hash)
            return pix
        if content_hash not in self._missing:
            self._pending.add(content_hash)
            self._decoder.request(content_hash)
        return None

    def forget_missing(self) -> None:
        """Retry thumbnails that were missing (e.g. after a scan stored new ones)."""
        self._missing.clear()

    @Slot(str, QImage)
    def _on_decoder_decoded(self, content_hash: str, image: QImage) -> None:
        self._pending.discard(content_hash)
        if image.isNull():
            self._missing.add(content_hash)
        else:
            self._cache[content_hash] = QPixmap.fromImage(image)
            while len(self._cache) > CACHE_ITEMS:
                self._cache.popitem(last=False)
        self.loaded.emit(content_hash)

    def close(self) -> None:
        """Stop and join the decoder thread (call before quitting)."""
        self._decoder.stop()
        self._decoder.wait()
