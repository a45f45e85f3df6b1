"""The "Folders" dock: the scanned folders, their protect ticks, and Add/Remove/Rescan."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from photosim.gui.windows.main_window import MainWindow


class FoldersPane(QDockWidget):
    """The folders the library is made of; a ticked folder is protected (never cleaned up).

    The pane records the user's folder decisions in the window's library; scanning is not its
    business: it asks for one with :attr:`scan_requested`.

    Args:
        frame: The main window (its library records the folders).

    Signals:
        scan_requested(list): Scan these folders (a new folder, a rescan).
        removing(str): A folder is about to be forgotten (a running scan should stop).
        removed(str): A folder was forgotten; everything derived from the library is stale.
    """

    scan_requested = Signal(list)
    removing = Signal(str)
    removed = Signal(str)

    def __init__(self, frame: MainWindow) -> None:
        super().__init__("Folders", frame)
        self.frame = frame
        self.setObjectName("folders")
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        panel = QWidget(self)
        self.folder_list = QListWidget(panel)
        self.folder_list.setToolTip("Scanned folders. Drop a folder on the window to add it.")
        self.folder_list.itemChanged.connect(self._on_folder_list_item_changed)
        buttons = QHBoxLayout()
        for text, slot, tip in (
            ("Add…", self.add_folder_dialog, "Add a folder and scan it"),
            ("Remove", self.remove_selected_folder, "Forget the folder (files stay on disk)"),
            ("Rescan", self.rescan_selected_folder, "Scan the selected folder again"),
        ):
            b = QPushButton(text, panel)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            buttons.addWidget(b)
        note = QLabel("Tick a folder to protect it: cleanup never touches it.", panel)
        note.setWordWrap(True)
        layout = QVBoxLayout(panel)
        layout.addWidget(self.folder_list, 1)
        layout.addWidget(note)
        layout.addLayout(buttons)
        self.setWidget(panel)

    def reload(self) -> None:
        """Refill the folder list from the library."""
        self.folder_list.blockSignals(True)
        self.folder_list.clear()
        for path, protected in self.frame.catalog.folders():
            item = QListWidgetItem(path)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if protected else Qt.CheckState.Unchecked)
            item.setToolTip(f"{path}\n{'protected: cleanup never touches it' if protected else ''}")
            self.folder_list.addItem(item)
        self.folder_list.blockSignals(False)

    def add_folder_dialog(self) -> None:
        """Ask for a folder, then add and scan it."""
        folder = QFileDialog.getExistingDirectory(self.frame, "Add a folder to scan")
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        """Remember a folder and scan it at once.

        Args:
            folder: The folder (made absolute here).
        """
        folder = os.path.abspath(folder)
        self.frame.catalog.add_folder(folder)
        self.reload()
        self.scan_requested.emit([folder])

    def set_protected(self, folder: str, protected: bool) -> None:
        """Protect a folder (cleanup never touches it) or not.

        Args:
            folder: A folder of the library.
            protected: True to protect it.
        """
        self.frame.catalog.set_protected(folder, protected)
        self.reload()

    def _on_folder_list_item_changed(self, item: QListWidgetItem) -> None:
        self.set_protected(item.text(), item.checkState() == Qt.CheckState.Checked)

    def selected_folder(self) -> str | None:
        """The folder selected in the list.

        Returns:
            Its path, or ``None`` when none is selected.
        """
        item = self.folder_list.currentItem()
        return item.text() if item else None

    def remove_selected_folder(self) -> None:
        """Forget the selected folder once the user confirms."""
        folder = self.selected_folder()
        if folder is None:
            return
        answer = QMessageBox.question(
            self.frame, "Remove folder",
            f"Forget {folder}?\n\nIts photos leave the library; nothing is deleted from disk.")
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_folder(folder)

    def remove_folder(self, folder: str) -> None:
        """Forget a folder and its photos (files stay on disk).

        Args:
            folder: A folder of the library.
        """
        self.removing.emit(folder)
        self.frame.catalog.remove_folder(folder)
        self.reload()
        self.removed.emit(folder)

    def rescan_selected_folder(self) -> None:
        """Scan the selected folder again."""
        folder = self.selected_folder()
        if folder:
            self.scan_requested.emit([folder])

    def rescan_all(self) -> None:
        """Scan every folder of the library again."""
        roots = [p for p, _ in self.frame.catalog.folders()]
        if roots:
            self.scan_requested.emit(roots)
