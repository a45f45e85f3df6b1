"""Cleanup confirmation and the cleanup history."""

from __future__ import annotations

import os
import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from photosim.gui.models.photos import format_bytes
from photosim.library import CleanupPlan, SessionInfo


def move_label(count: int, size: int) -> str:
    """``"Move 3 photos (1.2 MB) out"``."""
    return f"Move {count} photo{'s' if count != 1 else ''} ({format_bytes(size)}) out"


class CleanupConfirmDialog(QDialog):
    """States what will move (counts and bytes), where, what is refused and why, and what
    metadata of the moving copies is kept in their keepers' sidecars."""

    def __init__(self, plan: CleanupPlan, destination: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Move duplicates out — photosim")
        self.resize(760, 440)
        self.plan = plan
        n = len(plan.removals)
        summary = QLabel(
            f"<b>{move_label(n, plan.bytes)}?</b><br>"
            f"{n} file{'s' if n != 1 else ''}, {format_bytes(plan.bytes)} "
            f"({plan.bytes:,} bytes) will leave the library"
            + (f", with {plan.companions} sidecar file{'s' if plan.companions != 1 else ''} "
               "(XMP, AAE) that belong to them alone" if plan.companions else "")
            + ". Every group keeps at least one copy.",
            self,
        )
        summary.setWordWrap(True)
        self.destination = QComboBox(self)
        self.destination.addItem("photosim quarantine folder (same volume, fully undoable)",
                                 "quarantine")
        self.destination.addItem("system Trash (restore from the Trash yourself)", "trash")
        self.destination.setCurrentIndex(0 if destination == "quarantine" else 1)
        where = QHBoxLayout()
        where.addWidget(QLabel("Move to:", self))
        where.addWidget(self.destination, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addLayout(where)
        if plan.refused:
            label = QLabel(
                f"{len(plan.refused)} marked file{'s' if len(plan.refused) != 1 else ''} "
                "will stay (safety rules):", self)
            self.refused = QTableWidget(len(plan.refused), 2, self)
            self.refused.setHorizontalHeaderLabels(["File", "Why it stays"])
            for r, (path, reason) in enumerate(plan.refused):
                self.refused.setItem(r, 0, QTableWidgetItem(path))
                self.refused.setItem(r, 1, QTableWidgetItem(reason))
            self.refused.setColumnWidth(0, 430)
            self.refused.horizontalHeader().setStretchLastSection(True)
            self.refused.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            layout.addWidget(label)
            layout.addWidget(self.refused, 1)
        kept = [m for m in plan.merges if not m.error]
        if kept:
            label = QLabel(
                "Kept before the copies move: what only they carry goes into the keeper's XMP "
                "sidecar (undo takes it back):", self)
            label.setWordWrap(True)
            self.merges = QTableWidget(len(kept), 3, self)
            self.merges.setHorizontalHeaderLabels(["Sidecar", "Metadata", "From"])
            for r, merge in enumerate(kept):
                self.merges.setItem(r, 0, QTableWidgetItem(merge.sidecar))
                self.merges.setItem(r, 1, QTableWidgetItem(merge.added.describe()))
                self.merges.setItem(r, 2, QTableWidgetItem(
                    ", ".join(os.path.basename(p) for p in merge.sources)))
            self.merges.setColumnWidth(0, 300)
            self.merges.setColumnWidth(1, 280)
            self.merges.horizontalHeader().setStretchLastSection(True)
            self.merges.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            layout.addWidget(label)
            layout.addWidget(self.merges, 1)
        for note in plan.notes:
            remark = QLabel(note, self)
            remark.setWordWrap(True)
            layout.addWidget(remark)
        if not plan.refused and not kept:
            self.resize(640, 170 + 40 * len(plan.notes))
        buttons = QDialogButtonBox(self)
        self.ok = buttons.addButton(move_label(n, plan.bytes), QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok.setEnabled(n > 0)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def chosen_destination(self) -> str:
        """``"quarantine"`` or ``"trash"``."""
        return self.destination.currentData()


class HistoryDialog(QDialog):
    """Cleanup sessions, newest first; any quarantine session can be undone.

    Signals:
        undo_requested(str): A session id the user wants put back.
    """

    undo_requested = Signal(str)

    def __init__(self, sessions: list[SessionInfo], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Cleanup history — photosim")
        self.resize(720, 380)
        self.sessions = sessions
        self.table = QTableWidget(len(sessions), 5, self)
        self.table.setHorizontalHeaderLabels(["When", "Destination", "Files", "Size", "Status"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, s in enumerate(sessions):
            values = [
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s.created_at)),
                s.destination, str(s.files), format_bytes(s.bytes), s.status,
            ]
            for c, v in enumerate(values):
                item = QTableWidgetItem(v)
                item.setData(Qt.ItemDataRole.UserRole, s.id)
                self.table.setItem(r, c, item)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 170)
        empty = QLabel("No cleanup yet: sessions appear here after “Move … out”.", self)
        empty.setVisible(not sessions)
        self.undo_button = QPushButton("Undo selected session", self)
        self.undo_button.setEnabled(False)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.undo_button.clicked.connect(self._on_undo_clicked)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.addButton(self.undo_button, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addWidget(empty)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def selected_session(self) -> SessionInfo | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.sessions[rows.pop()] if rows else None

    def _on_table_selection_changed(self) -> None:
        s = self.selected_session()
        self.undo_button.setEnabled(
            s is not None and s.destination == "quarantine" and s.status in ("done", "cancelled",
                                                                             "partly undone")
        )

    def _on_undo_clicked(self) -> None:
        s = self.selected_session()
        if s is not None:
            self.undo_requested.emit(s.id)
            self.accept()
