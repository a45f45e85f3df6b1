"""List models of photos for the thumbnail grids: the library, similar and text-search results.

``data()`` is cheap (a list index and a dict lookup): thumbnails come from a
:class:`~photosim.gui.thumbnails.ThumbnailCache` and a shared placeholder stands in until
they arrive; no per-item widgets, so 100,000 rows scroll smoothly in a ``QListView``. A
photo's tags (what it shows) are read only for a tooltip or the details pane, once per content.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Slot
from PySide6.QtGui import QColor, QPixmap

from photosim.gui.thumbnails import ThumbnailCache
from photosim.library import Photo, Tag

PHOTO_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
HASH_ROLE = Qt.ItemDataRole.UserRole + 3
SIMILARITY_ROLE = Qt.ItemDataRole.UserRole + 4

SORT_KEYS = ("date", "name", "size", "added")

_Index = QModelIndex | QPersistentModelIndex


def photo_date(photo: Photo) -> str:
    """Date taken (ISO) or else the modification time, as a sortable string."""
    if photo.taken_at:
        return photo.taken_at
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(photo.mtime_ns / 1e9))


def _sort_key(key: str):
    if key == "date":
        return photo_date
    if key == "name":
        return lambda p: (os.path.basename(p.path).lower(), p.path)
    if key == "size":
        return lambda p: p.size
    return lambda p: p.id


def format_tags(tags: Sequence[Tag]) -> str:
    """``"golden retriever 70 %, Labrador retriever 21 %"`` (empty for no tags)."""
    return ", ".join(f"{t.name} {t.probability * 100:.0f} %" for t in tags)


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KB'``."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class PhotoListModel(QAbstractListModel):
    """Photos (optionally with a score each) for a thumbnail grid.

    Args:
        thumbnails: Where pixmaps come from; None shows placeholders only.
        thumb_size: Side of the placeholder, pixels.
        tag_lookup: ``content_hash -> tags`` (what a photo shows), called on the GUI thread at
            most once per content until the next :meth:`set_photos`; None: no tags.
        score_name: What the score is called in tooltips ("similarity", "match").
    """

    def __init__(
        self,
        thumbnails: ThumbnailCache | None = None,
        thumb_size: int = 160,
        parent=None,
        tag_lookup: Callable[[str], list[Tag]] | None = None,
        score_name: str = "similarity",
    ) -> None:
        super().__init__(parent)
        self._photos: list[Photo] = []
        self._similarity: list[float] | None = None
        self._notes: list[str] | None = None
        self._tag_lookup = tag_lookup
        self._tags: dict[str, list[Tag]] = {}
        self._score_name = score_name
        self._rows_by_hash: dict[str, list[int]] = {}
        self._sort = "added"
        self._descending = False
        self.thumbnails = thumbnails
        self._placeholder = QPixmap(thumb_size, thumb_size)
        self._placeholder.fill(QColor(128, 128, 128, 60))
        if thumbnails is not None:
            thumbnails.loaded.connect(self._on_thumbnails_loaded)

    # ------------------------------------------------------------------ Qt interface
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._photos)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._photos):
            return None
        photo = self._photos[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            name = os.path.basename(photo.path)
            if self._similarity is not None:
                return f"{self._similarity[index.row()] * 100:.0f} %  {name}"
            return name
        if role == Qt.ItemDataRole.DecorationRole:
            pix = self.thumbnails.pixmap(photo.content_hash) if self.thumbnails else None
            return pix if pix is not None else self._placeholder
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{photo.path}\n{photo.width}×{photo.height}, {format_bytes(photo.size)}"
            if self._similarity is not None:
                tip += f"\n{self._score_name} {self._similarity[index.row()]:.3f}"
            if self._notes is not None and self._notes[index.row()]:
                tip += f"\n{self._notes[index.row()]}"
            tags = self.tags(photo.content_hash)
            if tags:
                tip += f"\nshows: {format_tags(tags)}"
            return tip
        if role == PHOTO_ROLE:
            return photo
        if role == PATH_ROLE:
            return photo.path
        if role == HASH_ROLE:
            return photo.content_hash
        if role == SIMILARITY_ROLE:
            return None if self._similarity is None else self._similarity[index.row()]
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
            | Qt.ItemFlag.ItemIsDragEnabled
        )

    # ------------------------------------------------------------------ content
    def photos(self) -> list[Photo]:
        """The rows, in display order."""
        return list(self._photos)

    def photo(self, row: int) -> Photo:
        """The photo of one row."""
        return self._photos[row]

    def tags(self, content_hash: str | None) -> list[Tag]:
        """What a content shows (from the tag lookup, cached until :meth:`set_photos`)."""
        if self._tag_lookup is None or not content_hash:
            return []
        tags = self._tags.get(content_hash)
        if tags is None:
            tags = self._tags[content_hash] = list(self._tag_lookup(content_hash))
        return tags

    def set_photos(
        self,
        photos: Sequence[Photo],
        similarity: Sequence[float] | None = None,
        notes: Sequence[str] | None = None,
    ) -> None:
        """Replace every row (search results keep their order; the library sorts).

        Args:
            photos: The rows.
            similarity: A score per row in [0, 1] (shown as "NN %" before the name); given,
                the rows keep their order.
            notes: An extra tooltip line per row (e.g. why a search matched it); only with
                ``similarity`` (rows that keep their order).

        Raises:
            ValueError: ``notes`` without ``similarity``.
        """
        if notes is not None and similarity is None:
            raise ValueError("notes need a similarity per row (sorted rows would lose them)")
        self.beginResetModel()
        self._photos = list(photos)
        self._similarity = None if similarity is None else list(similarity)
        self._notes = None if notes is None else list(notes)
        self._tags = {}  # a rescan may have tagged contents anew
        if self._similarity is None:
            self._photos.sort(key=_sort_key(self._sort), reverse=self._descending)
        self._reindex()
        self.endResetModel()

    def append_photos(self, photos: Sequence[Photo]) -> None:
        """Add new photos (a committed scan batch), then keep the sort order."""
        known = {p.path for p in self._photos} if photos else set()
        new = [p for p in photos if p.path not in known]
        if not new:
            return
        first = len(self._photos)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        self._photos.extend(new)
        self._reindex()
        self.endInsertRows()
        if self._sort != "added" or self._descending:
            self.sort_by(self._sort, self._descending)

    def max_id(self) -> int:
        """The largest catalog row id shown (new scan batches have larger ids)."""
        return max((p.id for p in self._photos), default=0)

    def sort_by(self, key: str, descending: bool = False) -> None:
        """Sort by ``date``, ``name``, ``size`` or ``added``; keeps selections valid."""
        self._sort, self._descending = key, descending
        if self._similarity is not None:
            return
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        old_photos = [self._photos[i.row()] for i in old]
        order = sorted(
            range(len(self._photos)),
            key=lambda i: _sort_key(key)(self._photos[i]),
            reverse=descending,
        )
        self._photos = [self._photos[i] for i in order]
        self._reindex()
        if old:
            row_of = {id(p): r for r, p in enumerate(self._photos)}
            self.changePersistentIndexList(
                old, [self.index(row_of[id(p)], 0) for p in old_photos]
            )
        self.layoutChanged.emit()

    def _reindex(self) -> None:
        self._rows_by_hash = {}
        for row, photo in enumerate(self._photos):
            if photo.content_hash:
                self._rows_by_hash.setdefault(photo.content_hash, []).append(row)

    @Slot(str)
    def _on_thumbnails_loaded(self, content_hash: str) -> None:
        for row in self._rows_by_hash.get(content_hash, ()):
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
