"""Small shared widgets: the thumbnail grid, empty states, the scan status bar, a banner."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


class PhotoGrid(QListView):
    """A virtualised thumbnail grid (icon mode, uniform items, batched layout)."""

    def __init__(self, thumb_size: int = 160, parent=None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)  # no per-item size queries: 100k rows stay cheap
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(1000)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.set_thumb_size(thumb_size)

    def set_thumb_size(self, size: int) -> None:
        """Icon side in pixels."""
        self.setIconSize(QSize(size, size))
        self.setGridSize(QSize(size + 16, size + 36))


class EmptyState(QWidget):
    """A centred message with an optional action button ("Add a folder").

    Signals:
        activated(): The button was clicked.
    """

    activated = Signal()

    def __init__(self, title: str, text: str, button: str | None = None, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title = QLabel(f"<h2>{title}</h2>", self)
        self.text = QLabel(text, self)
        self.text.setWordWrap(True)
        for label in (self.title, self.text):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(label)
        if button:
            self.button = QPushButton(button, self)
            self.button.clicked.connect(self.activated)
            row = QHBoxLayout()
            row.addStretch(1)
            row.addWidget(self.button)
            row.addStretch(1)
            layout.addLayout(row)
        layout.addStretch(2)

    def set_text(self, title: str, text: str) -> None:
        self.title.setText(f"<h2>{title}</h2>")
        self.text.setText(text)


class Banner(QFrame):
    """A dismissable, non-blocking notice at the top of the window."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet(
            "#banner { background: rgba(255, 196, 0, 0.25); border: 1px solid rgba(200,150,0,0.6);"
            " border-radius: 4px; }"
        )
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()


class ScanStatus(QWidget):
    """Progress bar with counts, rate and ETA, and Pause/Cancel buttons (in the status bar).

    Signals:
        pause_toggled(bool): True to pause, False to resume.
        cancelled(): Cancel was clicked.
    """

    pause_toggled = Signal(bool)
    cancelled = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar(self)
        self.bar.setMinimumWidth(220)
        self.bar.setTextVisible(True)
        self.label = QLabel(self)
        self.pause = QPushButton("Pause", self)
        self.pause.setCheckable(True)
        self.pause.toggled.connect(self._on_pause_toggled)
        self.cancel = QPushButton("Cancel", self)
        self.cancel.clicked.connect(self.cancelled)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.pause)
        layout.addWidget(self.cancel)
        self.hide()

    def _on_pause_toggled(self, paused: bool) -> None:
        self.pause.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)

    def start(self, text: str) -> None:
        self.pause.setChecked(False)
        self.bar.setRange(0, 0)
        self.label.setText(text)
        self.show()

    def update_counts(self, done: int, total: int, text: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
            self.bar.setFormat(f"{done} / {total}")
        else:
            self.bar.setRange(0, 0)
        self.label.setText(text)
