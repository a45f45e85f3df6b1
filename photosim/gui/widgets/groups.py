"""The duplicate-group list: each row a strip of thumbnails with keep/remove badges.

Keyboard review: Up/Down move between groups, Left/Right between the photos of a group,
Space toggles keep/remove of the current photo, Enter accepts the group and moves on.
A click on a photo's badge toggles it; hovering a photo shows why it matched.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
)

from photosim.gui.models.duplicates import ACCEPTED_ROLE, GROUP_ROLE, MARKED_ROLE
from photosim.gui.models.photos import format_bytes

HEADER = 24
MARGIN = 8
LABEL = 38
KEEP_COLOUR = QColor(46, 160, 67)
REMOVE_COLOUR = QColor(207, 34, 46)


def member_rect(row_rect: QRect, i: int, thumb: int) -> QRect:
    """Where member ``i``'s thumbnail (with its label below) sits inside a row."""
    x = row_rect.left() + MARGIN + i * (thumb + MARGIN)
    return QRect(x, row_rect.top() + HEADER, thumb, thumb + LABEL)


def badge_rect(member: QRect, thumb: int) -> QRect:
    """The keep/remove badge at the bottom of a member's cell."""
    return QRect(member.left(), member.top() + thumb + 2, member.width(), 16)


class GroupDelegate(QStyledItemDelegate):
    """Paints one group (see the module docstring)."""

    def __init__(self, view: GroupView) -> None:
        super().__init__(view)
        self.view = view

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        group = index.data(GROUP_ROLE)
        n = len(group.members) if group else 1
        t = self.view.thumb_size
        return QSize(MARGIN + n * (t + MARGIN), HEADER + t + LABEL + MARGIN)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        group = index.data(GROUP_ROLE)
        if group is None:
            return
        marked = index.data(MARKED_ROLE)
        accepted = index.data(ACCEPTED_ROLE)
        model = index.model()
        thumbs = getattr(model, "thumbnails", None)
        pal = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        if selected:
            painter.fillRect(option.rect, pal.color(QPalette.ColorRole.Highlight).lighter(170)
                             if pal.color(QPalette.ColorRole.Window).lightness() > 128
                             else pal.color(QPalette.ColorRole.Highlight).darker(200))
        painter.setPen(pal.color(QPalette.ColorRole.Text))
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        title = model.title(group) + ("   ✓ reviewed" if accepted else "")
        painter.drawText(
            option.rect.adjusted(MARGIN, 4, -MARGIN, 0),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
            title,
        )
        painter.setFont(option.font)
        t = self.view.thumb_size
        for i, member in enumerate(group.members):
            cell = member_rect(option.rect, i, t)
            box = QRect(cell.left(), cell.top(), t, t)
            pix = thumbs.pixmap(member.photo.content_hash) if thumbs else None
            if pix is not None and not pix.isNull():
                scaled = pix.size().scaled(t, t, Qt.AspectRatioMode.KeepAspectRatio)
                target = QRect(0, 0, scaled.width(), scaled.height())
                target.moveCenter(box.center())
                painter.drawPixmap(target, pix)
            else:
                painter.fillRect(box, QColor(128, 128, 128, 60))
            if marked and marked[i]:
                painter.fillRect(box, QColor(0, 0, 0, 90))
            if selected and i == self.view.current_member:
                painter.setPen(pal.color(QPalette.ColorRole.Highlight))
                painter.drawRect(box.adjusted(-2, -2, 1, 1))
                painter.drawRect(box.adjusted(-3, -3, 2, 2))
            badge = badge_rect(cell, t)
            is_marked = bool(marked and marked[i])
            painter.fillRect(badge, REMOVE_COLOUR if is_marked else KEEP_COLOUR)
            painter.setPen(QColor("white"))
            label = "REMOVE" if is_marked else ("KEEP ★" if i == 0 else "KEEP")
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, label)
            painter.setPen(pal.color(QPalette.ColorRole.Text))
            name_rect = QRect(cell.left(), badge.bottom() + 2, t, 18)
            name = painter.fontMetrics().elidedText(
                os.path.basename(member.photo.path), Qt.TextElideMode.ElideMiddle, t
            )
            painter.drawText(name_rect, Qt.AlignmentFlag.AlignHCenter, name)
        painter.restore()

    def helpEvent(self, event, view, option, index) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.ToolTip and index.isValid():
            member = self.view.member_at(event.pos())
            group = index.data(GROUP_ROLE)
            if member is not None and group is not None:
                m = group.members[member]
                p = m.photo
                QToolTip.showText(
                    event.globalPos(),
                    f"{p.path}\n{p.width}×{p.height}, {format_bytes(p.size)}, {p.format}\n"
                    f"{m.match}: {m.why}",
                    view,
                )
                return True
        return super().helpEvent(event, view, option, index)


class GroupView(QListView):
    """The group list with keyboard review (see the module docstring).

    Signals:
        toggled(int, int): Row and member whose mark the user flipped.
        accepted(int): Row the user accepted with Enter.
        member_activated(int, int): Row and member double-clicked (open the viewer).
    """

    toggled = Signal(int, int)
    accepted = Signal(int)
    member_activated = Signal(int, int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.thumb_size = 128
        self.current_member = 0
        self.setItemDelegate(GroupDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setUniformItemSizes(False)
        self.setMouseTracking(True)

    def setModel(self, model) -> None:  # noqa: N802 - Qt override
        super().setModel(model)
        self.selectionModel().currentRowChanged.connect(self._on_current_row_changed)

    def _on_current_row_changed(self, *_args) -> None:
        self.current_member = 0
        self.viewport().update()

    def current_row(self) -> int:
        """The selected group's row, or -1."""
        index = self.currentIndex()
        return index.row() if index.isValid() else -1

    def member_at(self, pos: QPoint) -> int | None:
        """The member under a viewport position, or None."""
        index = self.indexAt(pos)
        if not index.isValid():
            return None
        group = index.data(GROUP_ROLE)
        rect = self.visualRect(index)
        for i in range(len(group.members)):
            if member_rect(rect, i, self.thumb_size).contains(pos):
                return i
        return None

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        row = self.current_row()
        key = event.key()
        if row >= 0 and key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            n = len(self.model().group(row).members)
            step = -1 if key == Qt.Key.Key_Left else 1
            self.current_member = max(0, min(n - 1, self.current_member + step))
            self.viewport().update()
            return
        if row >= 0 and key == Qt.Key.Key_Space:
            self.toggled.emit(row, self.current_member)
            return
        if row >= 0 and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.accepted.emit(row)
            if row + 1 < self.model().rowCount():
                self.setCurrentIndex(self.model().index(row + 1, 0))
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        super().mousePressEvent(event)
        pos = event.position().toPoint()
        member = self.member_at(pos)
        index = self.indexAt(pos)
        if member is None or not index.isValid():
            return
        self.current_member = member
        self.viewport().update()
        cell = member_rect(self.visualRect(index), member, self.thumb_size)
        if (
            event.button() == Qt.MouseButton.LeftButton
            and badge_rect(cell, self.thumb_size).contains(pos)
        ):
            self.toggled.emit(index.row(), member)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        pos = event.position().toPoint()
        member = self.member_at(pos)
        index = self.indexAt(pos)
        if member is not None and index.isValid():
            self.member_activated.emit(index.row(), member)
            return
        super().mouseDoubleClickEvent(event)
