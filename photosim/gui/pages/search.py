"""The "Search" tab: find photos by words for what they show (their ImageNet tags)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from photosim.gui import tasks
from photosim.gui.models.photos import PHOTO_ROLE, PhotoListModel, format_tags
from photosim.gui.widgets.common import EmptyState, PhotoGrid
from photosim.library import Library, TagHit, TagSearchError, TagSearchResult

if TYPE_CHECKING:
    from photosim.gui.windows.main_window import MainWindow

PLACEHOLDER = "Search your photos: dog, church, fruit, golden retriever…"
GLOSS_CHARS = 110  # a WordNet gloss longer than this is cut (the whole one is the tooltip)


@dataclass(frozen=True)
class SearchOutcome:
    """What a search task returns: a result, or why the query could not run.

    A query the library cannot answer (no searchable word, no tags yet) is the user's to fix,
    not a failure of photosim: it comes back here as ``refusal`` and is shown in the page,
    instead of going through the task's ``failed`` signal (which the frame shows in a box).

    Attributes:
        serial: Which search of the page this answers (older answers are dropped).
        text: The query as typed.
        result: The hits, or None when refused.
        refusal: A user-ready sentence, or None.
    """

    serial: int
    text: str
    result: TagSearchResult | None
    refusal: str | None = None


def _html(text: str) -> str:
    """Plain text for the rich-text summary (quotes stay as typed)."""
    return html.escape(text, quote=False)


def _sentence(message: str) -> str:
    """Core messages start in lower case (they follow "photosim: " on the command line)."""
    message = message.strip()
    return message[:1].upper() + message[1:] if message else message


def _cut(text: str, limit: int = GLOSS_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _evidence(hit: TagHit, labels: frozenset[int]) -> str:
    """The tags of a hit that belong to the query's classes: why it matched."""
    matched = [t for t in hit.tags if t.label in labels]
    return f"matched: {format_tags(matched)}" if matched else ""


class SearchPage(QWidget):
    """Text search: photos whose tags (ImageNet classes from the scan) match words.

    The search runs on the window's task pool through :class:`photosim.library.Library`; the
    page shows what the words were read as, the ranked photos with their scores, and, in the
    same place, why a query could not run.

    Args:
        frame: The main window: task pool, catalog path, tags, photo menu, viewer.
        thumb: Thumbnail side in the grid, pixels.

    Signals:
        searched(object): A search ended (its :class:`~photosim.library.TagSearchResult`).
        refused(str): A query could not run (the sentence shown).
    """

    searched = Signal(object)
    refused = Signal(str)

    def __init__(self, frame: MainWindow, thumb: int) -> None:
        super().__init__(frame)
        self.frame = frame
        self._serial = 0
        self._last: tuple[str, int] | None = None  # the (text, k) of the search shown
        self.query_edit = QLineEdit(self)
        self.query_edit.setPlaceholderText(PLACEHOLDER)
        self.query_edit.setClearButtonEnabled(True)
        self.query_edit.returnPressed.connect(self._on_query_edit_return_pressed)
        self.search_button = QPushButton("Search", self)
        self.search_button.clicked.connect(self._on_query_edit_return_pressed)
        self.k_spin = QSpinBox(self)
        self.k_spin.setRange(1, 500)
        self.k_spin.setValue(40)
        self.k_spin.setPrefix("show ")
        self.k_spin.editingFinished.connect(self._on_k_spin_editing_finished)
        top = QHBoxLayout()
        top.addWidget(self.query_edit, 1)
        top.addWidget(self.search_button)
        top.addWidget(self.k_spin)
        self.summary = QLabel(self)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.results_model = PhotoListModel(
            frame.thumbs, thumb, self, tag_lookup=frame.content_tags, score_name="match")
        self.results_view = PhotoGrid(thumb, self)
        self.results_view.setModel(self.results_model)
        self.results_view.customContextMenuRequested.connect(self._on_results_view_context_menu)
        self.results_view.activated.connect(self._on_results_view_activated)
        self.search_empty = EmptyState(
            "Search by words",
            "Finds photos by what they show, from the ImageNet classes photosim tagged them "
            "with during the scan. Type a word such as dog, church, fruit, car or flower and "
            "press Enter: a general word finds every kind below it (“dog” finds all the dog "
            "breeds). Photos scanned without a model (hash-only) have no tags.", None, self)
        body_widget = QWidget(self)
        body = QVBoxLayout(body_widget)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.summary)
        body.addWidget(self.results_view, 1)
        self.search_stack = QStackedWidget(self)
        self.search_stack.addWidget(self.search_empty)
        self.search_stack.addWidget(body_widget)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.search_stack, 1)

    def focus_query(self) -> None:
        """Put the cursor in the search box, its text selected (to type a new query)."""
        self.query_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.query_edit.selectAll()

    def search(self, text: str | None = None) -> tasks.Task:
        """Find the photos that show ``text`` (default: the search box's text).

        A query that cannot run (no searchable word, a library without tags) is answered in
        the page (``refused``), never as a failed task.
        """
        if text is None:
            text = self.query_edit.text()
        elif text != self.query_edit.text():
            self.query_edit.setText(text)
        self._serial += 1
        serial, k = self._serial, self.k_spin.value()
        self._last = (text, k)
        catalog_path = self.frame.catalog_path
        self.search_stack.setCurrentIndex(1)
        self.summary.setText(f"Searching for “{_html(text.strip())}”…")

        def work(_control: Any) -> SearchOutcome:
            try:
                with Library(catalog_path) as library:
                    return SearchOutcome(serial, text, library.search(text, k=k))
            except TagSearchError as exc:  # TagQueryError too: the user's to fix, not a bug
                return SearchOutcome(serial, text, None, _sentence(str(exc)))

        task = tasks.Task("search", work)
        task.signals.finished.connect(self._on_search_finished)
        task.signals.failed.connect(self._on_search_failed)
        return self.frame.run_task(task)

    @Slot()
    def _on_query_edit_return_pressed(self) -> None:
        self.search()

    @Slot()
    def _on_k_spin_editing_finished(self) -> None:
        # editingFinished also fires on focus loss: search again only for a new count.
        if self._last is not None and self._last[1] != self.k_spin.value():
            self.search(self._last[0])

    @Slot(object)
    @tasks.while_open
    def _on_search_finished(self, outcome: SearchOutcome) -> None:
        if outcome.serial != self._serial:  # a newer search is on its way
            return
        if outcome.result is None:
            self.results_model.set_photos([], [])
            self.summary.setText(_html(outcome.refusal or ""))
            self.summary.setToolTip("")
            self.refused.emit(outcome.refusal or "")
            return
        result = outcome.result
        labels = frozenset().union(*(c.labels for c in result.query.concepts))
        self.results_model.set_photos(
            [h.photo for h in result.hits], [h.score for h in result.hits],
            [_evidence(h, labels) for h in result.hits])
        self.summary.setText(self._describe(result, outcome.text))
        self.summary.setToolTip("\n\n".join(f"{c.lemma}: {c.gloss}" for c in result.query.concepts))
        if result.hits:
            self.results_view.scrollToTop()
        self.searched.emit(result)

    @Slot(str)
    @tasks.while_open
    def _on_search_failed(self, message: str) -> None:
        # An unexpected failure (the frame also reports it); the message stays here too.
        self.results_model.set_photos([], [])
        self.summary.setText(_html(message))

    def _describe(self, result: TagSearchResult, text: str) -> str:
        """What was searched, how many photos were found, and the result's notes (HTML)."""
        k = self._last[1] if self._last else len(result.hits)
        parts = []
        for c in result.query.concepts:
            n = len(c.labels)
            parts.append(f"<b>{_html(c.lemma)}</b> — {_html(_cut(c.gloss))} "
                         f"({n:,} ImageNet class{'es' if n != 1 else ''})")
        what = "; ".join(parts) or (f"<b>{_html(text.strip())}</b> "
                                    f"({_html(result.model)})")
        n = len(result.hits)
        if not n:
            found = "no photo shows it" if len(result.query.concepts) < 2 else \
                "no photo shows them"
        elif n >= k:
            found = f"the best {n} photos (raise “show” for more)"
        else:
            found = f"{n} photo{'s' if n != 1 else ''}"
        lines = [f"{what} · {found}"]
        lines += [_html(_sentence(note)) for note in result.notes]
        return "<br>".join(lines)

    def _on_results_view_context_menu(self, pos: QPoint) -> None:
        menu = self.results_menu(pos)
        if menu is not None:
            menu.popup(self.results_view.viewport().mapToGlobal(pos))

    def results_menu(self, pos: QPoint) -> QMenu | None:
        """The context menu of the result at ``pos`` (view coordinates), or None."""
        index = self.results_view.indexAt(pos)
        if not index.isValid():
            return None
        return self.frame._photo_menu(index.data(PHOTO_ROLE), pos, self.results_view)

    def _on_results_view_activated(self, index: QModelIndex) -> None:
        self.frame.open_viewer(index.data(PHOTO_ROLE).path)
