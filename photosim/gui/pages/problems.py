"""The "Problems" tab: files photosim could not read, each with its reason."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class ProblemsPage(QWidget):
    """A read-only table of ``(path, reason)``; nothing here changes a file."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.problems_table = QTableWidget(0, 2, self)
        self.problems_table.setHorizontalHeaderLabels(["File", "Why it could not be read"])
        self.problems_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.problems_table.horizontalHeader().setStretchLastSection(True)
        self.problems_table.setColumnWidth(0, 560)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Files found in your folders that photosim could not read. "
                                "They are skipped; nothing is changed.", self))
        layout.addWidget(self.problems_table, 1)

    def show_errors(self, errors: Sequence[tuple[str, str]]) -> None:
        """Fill the table with ``(path, reason)`` rows."""
        self.problems_table.setRowCount(len(errors))
        for r, (path, reason) in enumerate(errors):
            for c, value in enumerate((path, reason)):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                self.problems_table.setItem(r, c, item)
