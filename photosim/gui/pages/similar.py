"""The "Similar" tab: a query image, its ranked similar photos, back/forward through queries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QSlider,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from photosim.gui import tasks
from photosim.gui.embedder import get_embedder
from photosim.gui.images import load_qimage
from photosim.gui.models.photos import PHOTO_ROLE, PhotoListModel, format_tags
from photosim.gui.widgets.common import EmptyState, PhotoGrid
from photosim.library import Library, SearchResult

if TYPE_CHECKING:
    from photosim.gui.windows.main_window import MainWindow

QUERY_SIDE = 320


class SimilarPage(QWidget):
    """Find similar: rank the library against any image file, in the library or not.

    The search runs on the window's task pool through :class:`photosim.library.Library`; the
    page only shows the query, its results and the history of queries.

    Args:
        frame: The main window: task pool, settings, catalog path, photo menu, viewer.
        thumb: Thumbnail side in the grid, pixels.

    Signals:
        searched(object): A search ended (its :class:`~photosim.library.SearchResult`).
    """

    searched = Signal(object)

    def __init__(self, frame: MainWindow, thumb: int) -> None:
        super().__init__(frame)
        self.frame = frame
        self._history: list[str] = []
        self._history_pos = -1
        self.results_model = PhotoListModel(frame.thumbs, thumb, self,
                                            tag_lookup=frame.content_tags)
        self.results_view = PhotoGrid(thumb, self)
        self.results_view.setModel(self.results_model)
        self.results_view.customContextMenuRequested.connect(self._on_results_view_context_menu)
        self.results_view.activated.connect(self._on_results_view_activated)
        self.back_button = QPushButton("◀ Back", self)
        self.forward_button = QPushButton("Forward ▶", self)
        self.back_button.clicked.connect(lambda: self._go_history(-1))
        self.forward_button.clicked.connect(lambda: self._go_history(1))
        self.k_spin = QSpinBox(self)
        self.k_spin.setRange(1, 500)
        self.k_spin.setValue(40)
        self.k_spin.setPrefix("show ")
        self.min_slider, self.min_label = self._similarity_slider()
        self.k_spin.editingFinished.connect(self._rerun_query)
        top = QHBoxLayout()
        top.addWidget(self.back_button)
        top.addWidget(self.forward_button)
        top.addStretch(1)
        top.addWidget(self.k_spin)
        top.addWidget(self.min_label)
        top.addWidget(self.min_slider)
        self.query_image = QLabel(self)
        self.query_image.setFixedSize(QUERY_SIDE, QUERY_SIDE)
        self.query_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.query_text = QLabel(self)
        self.query_text.setWordWrap(True)
        self.query_text.setFixedWidth(QUERY_SIDE)
        self.query_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Query</b>", self))
        left.addWidget(self.query_image)
        left.addWidget(self.query_text)
        left.addStretch(1)
        self.similar_empty = EmptyState(
            "Find similar photos",
            "Right-click a photo in the library and choose “Find similar photos” (Ctrl+F), "
            "or drop any image file on this window.", None, self)
        self.similar_stack = QStackedWidget(self)
        self.similar_stack.addWidget(self.similar_empty)
        body_widget = QWidget(self)
        body = QHBoxLayout(body_widget)
        body.setContentsMargins(0, 0, 0, 0)
        body.addLayout(left)
        body.addWidget(self.results_view, 1)
        self.similar_stack.addWidget(body_widget)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.similar_stack, 1)
        self._update_history_buttons()

    def _similarity_slider(self) -> tuple[QSlider, QLabel]:
        """The minimum-similarity slider, its label, and a tooltip with the calibrated tiers."""
        slider = QSlider(Qt.Orientation.Horizontal, self)
        slider.setRange(0, 100)
        slider.setValue(0)
        label = QLabel("min similarity: any", self)
        calibrated = self.frame.settings.core().thresholds
        slider.setToolTip(
            f"Hide results below this similarity. Calibrated on real photos: other shots of "
            f"the same scene score from {calibrated.similar_cosine * 100:.0f} %, copies "
            f"usually from {calibrated.near_cosine * 100:.0f} %; photos of different scenes "
            f"stay below {calibrated.similar_cosine * 100:.0f} %."
        )
        slider.valueChanged.connect(
            lambda v: label.setText(f"min similarity: {v} %" if v else "min similarity: any"))
        slider.sliderReleased.connect(self._rerun_query)
        return slider, label

    def find_similar(self, path: str, record: bool = True) -> tasks.Task:
        """Rank the library against an image file (any file, in the library or not)."""
        if record:
            del self._history[self._history_pos + 1:]
            self._history.append(path)
            self._history_pos = len(self._history) - 1
        self._update_history_buttons()
        self.similar_stack.setCurrentIndex(1)
        self.query_text.setText(f"{path}\n\nSearching…")
        catalog_path, settings = self.frame.catalog_path, self.frame.settings.core()
        k = self.k_spin.value()
        floor = self.min_slider.value() / 100 or None

        def work(_control: Any) -> tuple[SearchResult, Any]:
            embedder, note = get_embedder(settings) if settings.model != "none" else (None, None)
            if note:
                task.signals.notice.emit(note)
            with Library(catalog_path) as library:
                result = library.similar(path, k=k, embedder=embedder, min_similarity=floor,
                                         rerank=settings.rerank)
            try:
                image = load_qimage(path, QUERY_SIDE)
            except Exception:  # the result still stands without a preview
                image = None
            return result, image

        task = tasks.Task("find similar", work)
        task.signals.finished.connect(self._on_search_finished)
        task.signals.failed.connect(lambda m: self.query_text.setText(f"{path}\n\n{m}"))
        return self.frame.run_task(task)

    @Slot(object)
    def _on_search_finished(self, payload: tuple[SearchResult, Any]) -> None:
        if self.frame.closed:  # a queued result after the window shut down
            return
        result, image = payload
        if image is not None:
            self.query_image.setPixmap(QPixmap.fromImage(image).scaled(
                QUERY_SIDE, QUERY_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))
        else:
            self.query_image.setText("(no preview)")
        mode = "CNN descriptors" if result.mode == "descriptors" else "perceptual hashes"
        if result.rerank != "none":
            mode += {"diffusion": ", re-ranked through the library's neighbour graph",
                     "qe": ", re-ranked by query expansion"}.get(result.rerank, "")
        shows = f"\nShows: {format_tags(result.query_tags)}" if result.query_tags else ""
        text = (f"{result.query}{shows}\n\n{len(result.hits)} results, ranked by {mode}"
                f"{'' if result.in_catalog else ' (query not in the library)'}.")
        if result.notes:
            text += "\n\n" + " ".join(result.notes)
        self.query_text.setText(text)
        self.results_model.set_photos([h.photo for h in result.hits],
                                      [h.similarity for h in result.hits])
        self.searched.emit(result)

    def _on_results_view_context_menu(self, pos: QPoint) -> None:
        menu = self.results_menu(pos)
        if menu is not None:
            menu.popup(self.results_view.viewport().mapToGlobal(pos))

    def results_menu(self, pos: QPoint) -> QMenu | None:
        """The context menu of the result at ``pos`` (view coordinates), or None."""
        index = self.results_view.indexAt(pos)
        if index.isValid():
            photo = index.data(PHOTO_ROLE)
            menu = self.frame._photo_menu(photo, pos, self.results_view)
            menu.actions()[0].setText("Find similar photos (browse from here)")
            query = self.current_query()
            if query is not None:
                menu.addSeparator()
                menu.addAction("Similar to the query",
                               lambda: self.record_verdict(query, photo.path, True))
                menu.addAction("Not similar to the query",
                               lambda: self.record_verdict(query, photo.path, False))
                menu.addAction("Learn from my verdicts", self.learn)
                menu.addAction("Forget what was learned", self.forget_learning)
            return menu
        return None

    def current_query(self) -> str | None:
        """The path of the query shown, or None."""
        if 0 <= self._history_pos < len(self._history):
            return self._history[self._history_pos]
        return None

    def record_verdict(self, query: str, photo: str, similar: bool) -> tasks.Task:
        """Remember the user's verdict on a result (in a worker: the catalog is SQLite)."""

        def job(library: Library) -> str:
            library.similarity_verdict(query, photo, similar)
            yes, no = library.similarity_verdicts()
            word = "similar" if similar else "not similar"
            return (f"Marked {word}. {yes} similar and {no} not similar verdicts: "
                    "“Learn from my verdicts” teaches find similar your taste.")

        return self._library_job("verdict", job)

    def learn(self) -> tasks.Task:
        """Learn the library's similarity from the verdicts, then search again."""

        def job(library: Library) -> str:
            report = library.learn().report
            if not report["kept"]:
                return (f"Not learned: on {report['held_out']} held-back verdicts it did not "
                        "separate similar from not similar better. More verdicts may help.")
            return (f"Learned from {report['verdicts']} verdicts: find similar and the "
                    "similar tier now use it.")

        return self._library_job("learn", job, search_again=True)

    def forget_learning(self) -> tasks.Task:
        """Forget the learned similarity (the verdicts stay), then search again."""

        def job(library: Library) -> str:
            had, _ = library.reset_learning()
            return "The learned similarity is forgotten." if had else "Nothing was learned yet."

        return self._library_job("forget learning", job, search_again=True)

    def _library_job(
        self, name: str, job: Callable[[Library], str], search_again: bool = False
    ) -> tasks.Task:
        """Run ``job`` on the library in a worker; its message (or error) goes to the status
        bar, and with ``search_again`` the current query runs again once it succeeded."""
        catalog_path = self.frame.catalog_path

        def work(_control: Any) -> str:
            with Library(catalog_path) as library:
                return job(library)

        task = tasks.Task(name, work)
        task.signals.finished.connect(self._show_status)
        if search_again:
            task.signals.finished.connect(lambda _m: self._rerun_query())
        task.signals.failed.connect(self._show_status)
        return self.frame.run_task(task)

    @Slot(object)
    def _show_status(self, message: object) -> None:
        if not self.frame.closed:
            self.frame.statusBar().showMessage(str(message), 15000)

    def _on_results_view_activated(self, index: QModelIndex) -> None:
        self.frame.open_viewer(index.data(PHOTO_ROLE).path)

    def _rerun_query(self) -> None:
        if 0 <= self._history_pos < len(self._history):
            self.find_similar(self._history[self._history_pos], record=False)

    def _go_history(self, step: int) -> None:
        pos = self._history_pos + step
        if 0 <= pos < len(self._history):
            self._history_pos = pos
            self.find_similar(self._history[pos], record=False)

    def _update_history_buttons(self) -> None:
        self.back_button.setEnabled(self._history_pos > 0)
        self.forward_button.setEnabled(self._history_pos < len(self._history) - 1)
