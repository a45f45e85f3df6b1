"""The duplicate groups of one tier, with the user's keep/remove marks.

Rows are groups (keeper first); the marks are a set of paths to move out. Marking is pure
bookkeeping: the safety rules (never the last copy, never a protected folder, never a
merely similar photo by default) are enforced by :func:`photosim.core.cleanup.plan_cleanup`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Slot

from photosim.gui.models.photos import format_bytes
from photosim.gui.thumbnails import ThumbnailCache
from photosim.library import Group

GROUP_ROLE = Qt.ItemDataRole.UserRole + 10
MARKED_ROLE = Qt.ItemDataRole.UserRole + 11  # list[bool], one per member
ACCEPTED_ROLE = Qt.ItemDataRole.UserRole + 12

_Index = QModelIndex | QPersistentModelIndex


class DuplicatesModel(QAbstractListModel):
    """Groups of one tier (see the module docstring).

    Args:
        thumbnails: Pixmaps for the delegate (it asks the cache directly).
    """

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent=None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self._groups: list[Group] = []
        self._marked: set[str] = set()
        self._accepted: set[int] = set()
        self._rows_by_hash: dict[str, list[int]] = {}
        if thumbnails is not None:
            thumbnails.loaded.connect(self._on_thumbnails_loaded)

    # ------------------------------------------------------------------ Qt interface
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._groups)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._groups):
            return None
        group = self._groups[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.title(group)
        if role == GROUP_ROLE:
            return group
        if role == MARKED_ROLE:
            return [m.photo.path in self._marked for m in group.members]
        if role == ACCEPTED_ROLE:
            return group.id in self._accepted
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return self.title(group)
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    # ------------------------------------------------------------------ content
    @staticmethod
    def title(group: Group) -> str:
        """``"Group 3 · near-duplicate · 3 photos · 1.2 MB to reclaim"``."""
        tier = {"exact": "exact copies", "near": "near-duplicates", "similar": "similar"}
        return (
            f"Group {group.id} · {tier.get(group.tier, group.tier)} · "
            f"{len(group.members)} photos · {format_bytes(group.reclaimable_bytes)} to reclaim"
        )

    def groups(self) -> list[Group]:
        """Every group, in display order."""
        return list(self._groups)

    def group(self, row: int) -> Group:
        """The group of one row."""
        return self._groups[row]

    def set_groups(self, groups: Iterable[Group], marked: Iterable[str] = ()) -> None:
        """Replace the groups and the marks."""
        self.beginResetModel()
        self._groups = list(groups)
        self._marked = set(marked)
        self._accepted = set()
        self._index_rows()
        self.endResetModel()

    def remove_group(self, row: int) -> Group:
        """Drop one group (after "Not duplicates")."""
        self.beginRemoveRows(QModelIndex(), row, row)
        group = self._groups.pop(row)
        self._marked -= {m.photo.path for m in group.members}
        self.endRemoveRows()
        self._index_rows()
        return group

    def _index_rows(self) -> None:
        """Rebuild ``content hash -> rows`` (which rows a loaded thumbnail repaints)."""
        self._rows_by_hash = {}
        for row, group in enumerate(self._groups):
            for member in group.members:
                if member.photo.content_hash:
                    self._rows_by_hash.setdefault(member.photo.content_hash, []).append(row)

    def marked(self) -> set[str]:
        """Paths marked to move out."""
        return set(self._marked)

    def set_marked(self, paths: Iterable[str]) -> None:
        """Replace every mark (an auto-mark rule applied to all groups)."""
        self._marked = set(paths)
        self._changed_all()

    def toggle(self, row: int, member: int) -> bool:
        """Flip keep/remove of one member. Returns True when it is now marked."""
        path = self._groups[row].members[member].photo.path
        if path in self._marked:
            self._marked.discard(path)
        else:
            self._marked.add(path)
        self._changed(row)
        return path in self._marked

    def accept(self, row: int) -> None:
        """Record that the user reviewed this group's marks."""
        self._accepted.add(self._groups[row].id)
        self._changed(row)

    def marked_bytes(self) -> int:
        """Total size of the marked files."""
        return sum(
            m.photo.size for g in self._groups for m in g.members if m.photo.path in self._marked
        )

    def reclaimable_bytes(self) -> int:
        """Bytes freed by keeping only each group's keeper."""
        return sum(g.reclaimable_bytes for g in self._groups)

    def _changed(self, row: int) -> None:
        index = self.index(row, 0)
        self.dataChanged.emit(index, index, [MARKED_ROLE, ACCEPTED_ROLE])

    def _changed_all(self) -> None:
        if self._groups:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._groups) - 1, 0), [MARKED_ROLE]
            )

    @Slot(str)
    def _on_thumbnails_loaded(self, content_hash: str) -> None:
        for row in self._rows_by_hash.get(content_hash, ()):
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
