"""The main window: the frame around the pages.

The frame holds the menus and their actions, one tab per page (:mod:`photosim.gui.pages`:
library, duplicates, similar, search, problems), the folders dock (:class:`FoldersPane`), the
status bar with the scan's progress (:class:`ScanController`), the banner, drag and drop,
settings, geometry and shutdown; cleanup, undo and history are the :class:`CleanupController`'s. It runs
every part's background work (:meth:`MainWindow.run_task`) and reports its failures.

Thin by design: every retrieval decision is a core call run on a named pool
(:mod:`photosim.gui.tasks`); this module turns results into models and widgets.
Every use case goes through the application layer (:class:`photosim.library.Library`): the
window's own library connection (GUI thread) only reads, and records the user's small
decisions (folders, protected flags, "not duplicates" verdicts); workers open their own.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from photosim import __version__
from photosim.gui import tasks
from photosim.gui.cleanup_controller import CleanupController
from photosim.gui.dialogs.settings_dialog import SettingsDialog
from photosim.gui.dialogs.viewer import ViewerDialog
from photosim.gui.models.photos import PHOTO_ROLE
from photosim.gui.pages.duplicates import DuplicatesPage
from photosim.gui.pages.library import LibraryPage
from photosim.gui.pages.problems import ProblemsPage
from photosim.gui.pages.search import SearchPage
from photosim.gui.pages.similar import SimilarPage
from photosim.gui.scanning import ScanController
from photosim.gui.settings import AppSettings
from photosim.gui.thumbnails import ThumbnailCache
from photosim.gui.widgets.common import Banner, PhotoGrid
from photosim.gui.widgets.folders import FoldersPane
from photosim.library import Library, Photo, Tag, sniff

logger = logging.getLogger(__name__)

DEFAULT_SIZE = (1280, 820)


def _is_image_file(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return sniff(fh.read(64)) is not None
    except OSError:
        return False


class MainWindow(QMainWindow):
    """The photosim window.

    Args:
        catalog_path: The catalog file (opened here and, separately, in every worker).
        settings: Persisted settings (also stores the window geometry).
        rescan_on_start: Quietly rescan the known folders once the window is up.

    Attributes:
        folders: The folders dock (:class:`FoldersPane`).
        scanner: Starts, queues, pauses and cancels scans (:class:`ScanController`).
        cleanup: Runs cleanups and undos, opens the history (:class:`CleanupController`).

    Signals:
        scan_finished(object): A scan ended (its :class:`ScanSummary`).
        library_loaded(): The library model was refilled from the catalog.
        duplicates_loaded(): Grouping finished and the tier models are filled.
        search_finished(object): A similar search ended (its ``SearchResult``).
        searched_words(object): A text search ended (its ``TagSearchResult``).
        cleanup_finished(object): A cleanup ended (its ``CleanupResult``).
        undo_finished(object): An undo ended (its ``UndoResult``).
        task_failed(str): A background task failed (also shown to the user).
    """

    scan_finished = Signal(object)
    library_loaded = Signal()
    duplicates_loaded = Signal()
    search_finished = Signal(object)
    searched_words = Signal(object)
    cleanup_finished = Signal(object)
    undo_finished = Signal(object)
    task_failed = Signal(str)

    def __init__(
        self, catalog_path: Path, settings: AppSettings, rescan_on_start: bool = True
    ) -> None:
        super().__init__()
        self.catalog_path = Path(catalog_path)
        self.settings = settings
        self.catalog = Library(self.catalog_path)
        self.thumbs = ThumbnailCache(
            self.catalog_path, self.settings.get("grid_thumb_size"), self)
        self._tasks: set[tasks.Task] = set()
        self._dialogs: list[QWidget] = []
        self.quiet_errors = False  # tests: failures go to the log and task_failed only
        self.setWindowTitle("photosim")
        self.setAcceptDrops(True)
        self._build()
        self._restore_geometry()
        self.folders.reload()
        self.reload_library()
        self.reload_problems()
        if rescan_on_start and self.catalog.folders():
            self.scanner.start([p for p, _ in self.catalog.folders()], quiet=True)

    # ================================================================== building
    def _build(self) -> None:
        thumb = self.settings.get("grid_thumb_size")
        self.banner = Banner(self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.cleanup = CleanupController(self)
        self.cleanup.finished.connect(self.cleanup_finished)
        self.cleanup.undone.connect(self.undo_finished)
        self.scanner = ScanController(self)
        self.scanner.finished.connect(self.scan_finished)
        self.statusBar().addPermanentWidget(self.scanner.status)
        self.folders = FoldersPane(self)
        self.folders.scan_requested.connect(self.scanner.start)
        self.folders.removing.connect(self._on_folder_removing)
        self.folders.removed.connect(lambda _folder: self.refresh_after_change())
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.folders)
        self.resizeDocks([self.folders], [260], Qt.Orientation.Horizontal)
        self._build_actions()
        self.library_page = LibraryPage(self, thumb)
        self.tabs.addTab(self.library_page, "Library")
        self.duplicates_page = DuplicatesPage(self)
        self.duplicates_page.loaded.connect(self.duplicates_loaded)
        self.tabs.addTab(self.duplicates_page, "Duplicates")
        self.similar_page = SimilarPage(self, thumb)
        self.similar_page.searched.connect(self.search_finished)
        self.tabs.addTab(self.similar_page, "Similar")
        self.search_page = SearchPage(self, thumb)
        self.search_page.searched.connect(self.searched_words)
        self.tabs.addTab(self.search_page, "Search")
        self.problems_page = ProblemsPage(self)
        self.tabs.addTab(self.problems_page, "Problems")

    def _action(self, text: str, slot, shortcut=None, menu: QMenu | None = None) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if menu is not None:
            menu.addAction(action)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.add_folder_action = self._action("&Add folder…", self.folders.add_folder_dialog,
                                              QKeySequence.StandardKey.Open, file_menu)
        self.rescan_action = self._action("&Rescan all", self.folders.rescan_all, "F5", file_menu)
        self.similar_file_action = self._action(
            "Find similar to a &file…", self.find_similar_dialog, "Ctrl+Shift+F", file_menu)
        file_menu.addSeparator()
        self._action("&Settings…", self.open_settings, QKeySequence.StandardKey.Preferences,
                     file_menu)
        file_menu.addSeparator()
        self._action("&Quit", self.close, QKeySequence.StandardKey.Quit, file_menu)
        photo_menu = bar.addMenu("&Photo")
        self.find_similar_action = self._action(
            "Find &similar photos", self.find_similar_selected, "Ctrl+F", photo_menu)
        self.open_action = self._action("&Open viewer", self.open_selected_viewer, "Ctrl+Return",
                                        photo_menu)
        self.show_in_folder_action = self._action(
            "Show in &folder", self.show_selected_in_folder, "Ctrl+Shift+O", photo_menu)
        photo_menu.addSeparator()
        self.search_words_action = self._action(
            "Search by &words…", self.show_search, "Ctrl+K", photo_menu)
        tools = bar.addMenu("&Cleanup")
        self.undo_action = self._action("&Undo last cleanup", self.cleanup.undo_last,
                                        QKeySequence.StandardKey.Undo, tools)
        self._action("Cleanup &history…", self.cleanup.open_history, "Ctrl+H", tools)
        help_menu = bar.addMenu("&Help")
        self._action("Open &log folder", self._open_log_folder, None, help_menu)
        self._action("&About photosim", self._about, None, help_menu)

    # ================================================================== tasks
    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` closed the window's library (late results are dropped)."""
        return self.catalog is None

    def run_task(self, task: tasks.Task, pool: str = "work") -> tasks.Task:
        """Run a page's task on a named pool; its failures and notices show in the frame."""
        return self._run(task, pool)

    def _run(self, task: tasks.Task, pool: str = "work") -> tasks.Task:
        self._tasks.add(task)
        task.signals.failed.connect(self._on_task_failed)
        task.signals.notice.connect(self.banner.show_message)
        task.signals.finished.connect(lambda _r: self._tasks.discard(task))
        task.signals.failed.connect(lambda _m: self._tasks.discard(task))
        return tasks.start(task, pool)

    @Slot(str)
    @tasks.while_open
    def _on_task_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 15000)
        self.task_failed.emit(message)
        if not self.quiet_errors:
            QMessageBox.warning(self, "photosim", f"{message}\n\nDetails are in the log file.")

    def busy(self) -> bool:
        """True while any background task of this window is running or queued."""
        return bool(self._tasks)

    # ================================================================== folders, reloads
    def _on_folder_removing(self, _folder: str) -> None:
        if self.scanner.running:
            self.scanner.cancel()

    def refresh_after_change(self) -> None:
        """Reload everything derived from the catalog (after a scan, cleanup or undo)."""
        if self.catalog is None:  # a late signal after shutdown
            return
        self.reload_library()
        self.reload_problems()
        self.reload_duplicates()

    # ================================================================== library
    def reload_library(self) -> None:
        """Refill the library model from the catalog (read in a worker)."""
        path = self.catalog_path

        def work(_control):
            with Library(path) as library:
                return library.photos()

        task = tasks.Task("load library", work)
        task.signals.finished.connect(self._on_library_rows)
        self._run(task)

    @Slot(object)
    @tasks.while_open
    def _on_library_rows(self, photos: list[Photo]) -> None:
        self.library_page.set_photos(photos)
        self.library_loaded.emit()

    def content_tags(self, content_hash: str) -> list[Tag]:
        """What a content shows, from the window's library (GUI thread: one small read).

        Empty when it has no tags, after :meth:`shutdown`, or when the read fails (a tooltip
        must not raise; the failure is logged).
        """
        if self.catalog is None or not content_hash:
            return []
        try:
            return self.catalog.content_tags(content_hash)
        except Exception:  # a locked or damaged catalog: no tags, the rest still works
            logger.warning("cannot read the tags of %s", content_hash, exc_info=True)
            return []

    def _current_view(self) -> PhotoGrid | None:
        page = self.tabs.currentWidget()
        views = {self.library_page: self.library_page.library_view,
                 self.similar_page: self.similar_page.results_view,
                 self.search_page: self.search_page.results_view}
        return views.get(page)

    def selected_photo(self) -> Photo | None:
        """The current photo of the visible grid (or duplicates view)."""
        if self.tabs.currentWidget() is self.duplicates_page:
            view = self.duplicates_page.group_view
            row = view.current_row()
            if row < 0:
                return None
            return view.model().group(row).members[view.current_member].photo
        view = self._current_view()
        if view is None:
            return None
        index = view.currentIndex()
        return index.data(PHOTO_ROLE) if index.isValid() else None

    def _photo_menu(self, photo: Photo, pos: QPoint, view: QWidget) -> QMenu:
        menu = QMenu(self)
        menu.addAction("Find similar photos", lambda: self.find_similar(photo.path))
        menu.addAction("Open viewer", lambda: self.open_viewer(photo.path))
        menu.addAction("Show in folder", lambda: self.show_in_folder(photo.path))
        return menu

    def open_selected_viewer(self) -> None:
        photo = self.selected_photo()
        if photo is not None:
            self.open_viewer(photo.path)

    def open_viewer(self, path: str) -> ViewerDialog:
        """Open the zoomable viewer on one file."""
        dialog = ViewerDialog(path, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def show_selected_in_folder(self) -> None:
        photo = self.selected_photo()
        if photo is not None:
            self.show_in_folder(photo.path)

    def show_in_folder(self, path: str) -> None:
        """Open the file manager on the photo's folder."""
        QDesktopServices.openUrl(QUrl.fromLocalFile(os.path.dirname(path)))

    # ================================================================== problems
    def reload_problems(self) -> None:
        """Refill the Problems view from ``catalog.errors()``."""
        errors = self.catalog.errors()
        self.problems_page.show_errors(errors)
        self.tabs.setTabText(self.tabs.indexOf(self.problems_page),
                             f"Problems ({len(errors)})" if errors else "Problems")

    # ================================================================== duplicates
    def reload_duplicates(self) -> None:
        """Group every tier again (after a scan, a cleanup, an undo or new settings)."""
        self.duplicates_page.reload()

    # ================================================================== similar
    def find_similar_selected(self) -> None:
        photo = self.selected_photo()
        if photo is not None:
            self.find_similar(photo.path)

    def find_similar_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Find photos similar to…")
        if path:
            self.find_similar(path)

    def find_similar(self, path: str, record: bool = True) -> tasks.Task:
        """Show the Similar tab and rank the library against an image file (any file, in the
        library or not); see :meth:`SimilarPage.find_similar`."""
        self.tabs.setCurrentWidget(self.similar_page)
        return self.similar_page.find_similar(path, record)

    # ================================================================== search
    def show_search(self) -> None:
        """Show the Search tab with the cursor in its search box."""
        self.tabs.setCurrentWidget(self.search_page)
        self.search_page.focus_query()

    def search_words(self, text: str) -> tasks.Task:
        """Show the Search tab and find the photos that show ``text`` (see
        :meth:`SearchPage.search`)."""
        self.tabs.setCurrentWidget(self.search_page)
        return self.search_page.search(text)

    # ================================================================== drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        for url in event.mimeData().urls():
            self.handle_dropped_path(url.toLocalFile())
        event.acceptProposedAction()

    def handle_dropped_path(self, path: str) -> None:
        """A folder is added and scanned; an image file is used as a similar-search query."""
        if os.path.isdir(path):
            self.folders.add_folder(path)
        elif os.path.isfile(path) and _is_image_file(path):
            self.find_similar(path)
        else:
            self.statusBar().showMessage(f"Not a folder or an image: {path}", 8000)

    # ================================================================== settings, misc
    def open_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self)
        if dialog.exec() == SettingsDialog.DialogCode.Accepted:
            size = self.settings.get("grid_thumb_size")
            self.library_page.library_view.set_thumb_size(size)
            self.similar_page.results_view.set_thumb_size(size)
            self.search_page.results_view.set_thumb_size(size)
            self.reload_duplicates()

    def _open_log_folder(self) -> None:
        from photosim.config import log_dir

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_dir())))

    def _about(self) -> None:
        QMessageBox.about(self, "About photosim",
                          f"<b>photosim {__version__}</b><br>Find duplicate and similar photos "
                          f"on your own disk.<br>Catalog: {self.catalog_path}")

    def _restore_geometry(self) -> None:
        geometry = self.settings.store.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(*DEFAULT_SIZE)
        state = self.settings.store.value("window/state")
        if state is not None:
            self.restoreState(state)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.settings.store.setValue("window/geometry", self.saveGeometry())
        self.settings.store.setValue("window/state", self.saveState())
        self.settings.store.sync()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Cancel running work, wait for every pool and the thumbnail thread, close."""
        if self.catalog is None:
            return
        self.scanner.clear_queue()
        for task in list(self._tasks):
            task.control.cancel()
        tasks.wait_all()
        self.thumbs.close()
        if self.catalog is not None:
            self.catalog.close()
            self.catalog = None  # type: ignore[assignment]
