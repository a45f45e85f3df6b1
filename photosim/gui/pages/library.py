"""The "Library" tab: every photo as a thumbnail grid, sorted, with a details pane (its
metadata and what it shows)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from photosim.gui.dialogs.viewer import metadata_rows
from photosim.gui.models.photos import PHOTO_ROLE, PhotoListModel, format_bytes, format_tags
from photosim.gui.widgets.common import EmptyState, PhotoGrid
from photosim.library import Photo

if TYPE_CHECKING:
    from photosim.gui.windows.main_window import MainWindow

SORT_KEYS = (("Date", "date"), ("Name", "name"), ("Size", "size"), ("Added", "added"))
SHOWS_ROW = "Shows"  # the photo's tags: ImageNet classes from the scan, above the display floor
_BLANK = Photo(0, "", "", 0, 0, None, None, None, None, None, None, None, None, "ok", None)


class LibraryPage(QWidget):
    """The library grid: an empty state first ("Add a folder", then "Scanning…"), the photos as
    a scan commits them, sorting, and the current photo's details.

    Args:
        frame: The main window: thumbnails, photo menu, viewer, add folder, find similar.
        thumb: Thumbnail side in the grid, pixels.
    """

    def __init__(self, frame: MainWindow, thumb: int) -> None:
        super().__init__(frame)
        self.frame = frame
        self.library_model = PhotoListModel(frame.thumbs, thumb, self,
                                            tag_lookup=frame.content_tags)
        self.library_view = PhotoGrid(thumb, self)
        self.library_view.setModel(self.library_model)
        self.library_view.customContextMenuRequested.connect(self._on_library_view_context_menu)
        self.library_view.activated.connect(self._on_library_view_activated)
        self.library_view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.sort_combo = QComboBox(self)
        for label, key in SORT_KEYS:
            self.sort_combo.addItem(label, key)
        self.sort_desc = QToolButton(self)
        self.sort_desc.setCheckable(True)
        self.sort_desc.setText("↓ descending")
        self.sort_combo.currentIndexChanged.connect(self._on_sort_changed)
        self.sort_desc.toggled.connect(self._on_sort_changed)
        self.library_count = QLabel(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Sort by:", self))
        top.addWidget(self.sort_combo)
        top.addWidget(self.sort_desc)
        top.addStretch(1)
        top.addWidget(self.library_count)
        self.library_empty = EmptyState(
            "Add a folder", "photosim finds duplicate and similar photos in folders you choose. "
            "Add a folder (or drop one on this window) and it is scanned at once.",
            "Add a folder…", self)
        self.library_empty.activated.connect(frame.folders.add_folder_dialog)
        self.library_stack = QStackedWidget(self)
        self.library_stack.addWidget(self.library_empty)
        self.library_stack.addWidget(self.library_view)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.library_stack)
        split.addWidget(self._details())
        split.setStretchFactor(0, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)

    def _details(self) -> QWidget:
        """The details pane: the current photo's metadata, what it shows, and two actions."""
        self.details = QWidget(self)
        form = QFormLayout(self.details)
        self.detail_labels: dict[str, QLabel] = {}
        for label, _ in [*metadata_rows(_BLANK), (SHOWS_ROW, "")]:
            value = QLabel("—", self.details)
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"<b>{label}</b>", value)
            self.detail_labels[label] = value
        show = QPushButton("Show in folder", self.details)
        show.clicked.connect(self.frame.show_selected_in_folder)
        similar = QPushButton("Find similar photos", self.details)
        similar.clicked.connect(self.frame.find_similar_selected)
        form.addRow(show)
        form.addRow(similar)
        self.details.setMinimumWidth(240)
        self.details.setMaximumWidth(340)
        return self.details

    def set_photos(self, photos: Sequence[Photo]) -> None:
        """Show exactly these photos."""
        self.library_model.set_photos(photos)
        self.update_state()

    def append_photos(self, photos: Sequence[Photo]) -> None:
        """Add the photos a running scan just committed."""
        if photos:
            self.library_model.append_photos(photos)
            self.update_state()

    def max_id(self) -> int:
        """The largest catalog id shown (what a scan's new rows come after)."""
        return self.library_model.max_id()

    def show_scanning(self) -> None:
        """While the first scan of an empty library runs: say so instead of "Add a folder"."""
        if not self.library_model.rowCount():
            self.library_empty.set_text(
                "Scanning…", "Photos appear here as they are found. The window stays usable; "
                "Pause and Cancel are in the status bar.")
            self.library_empty.button.hide()

    def update_state(self) -> None:
        """The empty state or the grid, and the count line."""
        n = self.library_model.rowCount()
        if not n and not self.frame.scanner.running:
            self.library_empty.set_text(
                "Add a folder", "photosim finds duplicate and similar photos in folders you "
                "choose. Add a folder (or drop one on this window) and it is scanned at once.")
            self.library_empty.button.show()
        self.library_stack.setCurrentIndex(1 if n else 0)
        size = sum(p.size for p in self.library_model.photos()) if n < 200_000 else 0
        self.library_count.setText(f"{n:,} photos · {format_bytes(size)}" if n else "")

    def _on_sort_changed(self, *_args: object) -> None:
        self.library_model.sort_by(self.sort_combo.currentData(), self.sort_desc.isChecked())

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        photo = current.data(PHOTO_ROLE) if current.isValid() else None
        if photo is None:
            return
        shows = format_tags(self.library_model.tags(photo.content_hash)) or "—"
        for label, value in [*metadata_rows(photo), (SHOWS_ROW, shows)]:
            self.detail_labels[label].setText(value)

    def _on_library_view_context_menu(self, pos: QPoint) -> None:
        index = self.library_view.indexAt(pos)
        if index.isValid():
            menu = self.frame._photo_menu(index.data(PHOTO_ROLE), pos, self.library_view)
            menu.popup(self.library_view.viewport().mapToGlobal(pos))

    def _on_library_view_activated(self, index: QModelIndex) -> None:
        self.frame.open_viewer(index.data(PHOTO_ROLE).path)
