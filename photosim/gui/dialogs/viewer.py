"""Image viewer with zoom, and the side-by-side compare dialog with synchronised zoom."""

from __future__ import annotations

import os
import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QKeySequence, QPixmap, QShortcut, QWheelEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from photosim.gui import tasks
from photosim.gui.images import load_qimage
from photosim.gui.models.photos import format_bytes
from photosim.library import Photo

VIEW_MAX_SIDE = 4096
ZOOM_STEP = 1.25


class ZoomView(QGraphicsView):
    """A pannable, zoomable picture (wheel or +/-; 0 fits).

    Signals:
        zoomed(float): The new scale factor (1.0 = 100 %).
    """

    zoomed = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self._item = QGraphicsPixmapItem()
        self._item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._item)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setBackgroundBrush(QBrush(QColor(40, 40, 40)))
        self.fitted = True

    def set_image(self, image: QImage) -> None:
        """Show an image, fitted to the view."""
        self._item.setPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(self._item.boundingRect())
        self.fit()

    def fit(self) -> None:
        """Fit the whole image in the view."""
        self.fitted = True
        self.fitInView(self._item, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoomed.emit(self.transform().m11())

    def set_scale(self, factor: float) -> None:
        """Set an absolute scale (1.0 = one image pixel per screen pixel)."""
        if abs(self.transform().m11() - factor) < 1e-6:
            return
        self.fitted = False
        self.resetTransform()
        self.scale(factor, factor)
        self.zoomed.emit(factor)

    def zoom(self, step: float) -> None:
        """Multiply the scale by ``step``."""
        self.set_scale(max(0.02, min(32.0, self.transform().m11() * step)))

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        self.zoom(ZOOM_STEP if event.angleDelta().y() > 0 else 1 / ZOOM_STEP)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.fitted:
            self.fit()


def _load(view: ZoomView, status: QLabel, path: str) -> tasks.Task:
    task = tasks.Task("open image", lambda _c: load_qimage(path, VIEW_MAX_SIDE))
    task.signals.finished.connect(view.set_image)
    task.signals.finished.connect(lambda _i: status.setText(""))
    task.signals.failed.connect(status.setText)
    return tasks.start(task)


def _zoom_buttons(parent: QWidget, views: list[ZoomView]) -> QHBoxLayout:
    row = QHBoxLayout()
    for text, action in (
        ("Zoom in", lambda: views[0].zoom(ZOOM_STEP)),
        ("Zoom out", lambda: views[0].zoom(1 / ZOOM_STEP)),
        ("100 %", lambda: views[0].set_scale(1.0)),
        ("Fit", lambda: [v.fit() for v in views]),
    ):
        button = QPushButton(text, parent)
        button.clicked.connect(action)
        row.addWidget(button)
    row.addStretch(1)
    for keys, action in (
        ("+", lambda: views[0].zoom(ZOOM_STEP)),
        ("=", lambda: views[0].zoom(ZOOM_STEP)),
        ("-", lambda: views[0].zoom(1 / ZOOM_STEP)),
        ("0", lambda: [v.fit() for v in views]),
        ("1", lambda: views[0].set_scale(1.0)),
    ):
        QShortcut(QKeySequence(keys), parent, activated=action)
    return row


class ViewerDialog(QDialog):
    """One photo, full size, with zoom."""

    def __init__(self, path: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{os.path.basename(path)} — photosim")
        self.resize(1000, 750)
        self.view = ZoomView(self)
        self.status = QLabel("Loading…", self)
        layout = QVBoxLayout(self)
        layout.addLayout(_zoom_buttons(self, [self.view]))
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        self.task = _load(self.view, self.status, path)


def metadata_rows(photo: Photo) -> list[tuple[str, str]]:
    """``(label, value)`` pairs shown for a photo (details panel and compare table)."""
    return [
        ("Path", photo.path),
        ("Dimensions", f"{photo.width} × {photo.height}" if photo.width else "—"),
        ("Size", f"{format_bytes(photo.size)} ({photo.size:,} bytes)"),
        ("Format", photo.format or "—"),
        ("Date taken", (photo.taken_at or "—").replace("T", " ")),
        ("Camera", photo.camera or "—"),
        ("Modified", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(photo.mtime_ns / 1e9))),
        ("Content hash", (photo.content_hash or "—")[:16]),
    ]


class CompareDialog(QDialog):
    """Two photos side by side with synchronised zoom and scrolling, and their metadata
    with the differing rows highlighted."""

    def __init__(self, left: Photo, right: Photo, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare — photosim")
        self.resize(1200, 800)
        self.views = [ZoomView(self), ZoomView(self)]
        a, b = self.views
        a.zoomed.connect(b.set_scale)
        b.zoomed.connect(a.set_scale)
        for src, dst in ((a, b), (b, a)):
            src.horizontalScrollBar().valueChanged.connect(dst.horizontalScrollBar().setValue)
            src.verticalScrollBar().valueChanged.connect(dst.verticalScrollBar().setValue)
        self.status = QLabel("Loading…", self)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(a)
        splitter.addWidget(b)
        rows_a, rows_b = metadata_rows(left), metadata_rows(right)
        self.table = QTableWidget(len(rows_a), 2, self)
        self.table.setHorizontalHeaderLabels([os.path.basename(left.path),
                                              os.path.basename(right.path)])
        self.table.setVerticalHeaderLabels([label for label, _ in rows_a])
        self.differences: list[str] = []
        highlight = QColor(255, 200, 0, 90)
        for r, ((label, va), (_, vb)) in enumerate(zip(rows_a, rows_b)):
            for c, value in enumerate((va, vb)):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if va != vb and label != "Path":
                    item.setBackground(highlight)
                self.table.setItem(r, c, item)
            if va != vb and label != "Path":
                self.differences.append(label)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 520)
        self.table.resizeRowsToContents()
        rows_height = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setFixedHeight(
            rows_height + self.table.horizontalHeader().sizeHint().height()
            + 2 * self.table.frameWidth() + 2)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(_zoom_buttons(self, self.views))
        layout.addWidget(splitter, 1)
        layout.addWidget(self.table)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.tasks = [_load(a, self.status, left.path), _load(b, self.status, right.path)]
