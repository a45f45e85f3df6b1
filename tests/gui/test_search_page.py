"""Tags in the window: the Search tab (text search), the details pane's "Shows" row, grid
tooltips and the Similar tab's query tags, on a library tagged by the numpy
:class:`~helpers.ColourTagger` (red: golden retriever 0.8 / Labrador 0.1; green: strawberry 0.6
/ lemon 0.3; blue: church 0.5 / mosque 0.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_photo_obj, tagged_library
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from photosim.gui.models.photos import PHOTO_ROLE, SIMILARITY_ROLE, PhotoListModel
from photosim.library import Tag

TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A catalog of two red photos (one with a byte copy), a green and a blue one, tagged."""
    return tagged_library(tmp_path_factory.mktemp("tagged"), extra_red=True)


@pytest.fixture
def window(qtbot, make_window, tagged):
    window = make_window(tagged[0])
    qtbot.waitUntil(lambda: not window.busy(), timeout=TIMEOUT_MS)  # the library load
    return window


def _no_message_box() -> bool:
    return not any(isinstance(w, QMessageBox) and w.isVisible()
                   for w in QApplication.topLevelWidgets())


def _search(qtbot, window, text: str):
    """Type ``text`` in the search box and press Enter; the result."""
    page = window.search_page
    window.show_search()
    page.query_edit.clear()
    qtbot.keyClicks(page.query_edit, text)
    with qtbot.waitSignal(window.searched_words, timeout=TIMEOUT_MS) as blocker:
        qtbot.keyClick(page.query_edit, Qt.Key.Key_Return)
    return blocker.args[0]


def test_search_tab_starts_with_an_explanation(window) -> None:
    page = window.search_page
    assert window.tabs.tabText(window.tabs.indexOf(page)) == "Search"
    assert window.tabs.indexOf(page) == window.tabs.indexOf(window.similar_page) + 1
    assert page.search_stack.currentWidget() is page.search_empty
    assert "ImageNet classes" in page.search_empty.text.text()
    assert page.query_edit.placeholderText().startswith("Search your photos: dog, church")
    assert page.query_edit.isClearButtonEnabled()
    assert page.k_spin.value() == 40 and page.k_spin.prefix() == "show "


def test_typing_dogs_and_enter_ranks_the_red_photos(qtbot, window, tagged) -> None:
    _, paths = tagged
    result = _search(qtbot, window, "dogs")
    page = window.search_page
    red = {str(paths[k]) for k in ("red", "red2", "red copy")}
    assert {h.photo.path for h in result.hits} == red
    model = page.results_model
    assert {model.photo(r).path for r in range(model.rowCount())} == red
    first = model.index(0, 0)
    assert first.data(SIMILARITY_ROLE) == pytest.approx(0.9, abs=1e-3)
    assert first.data().startswith("90 %  ")
    tip = first.data(Qt.ItemDataRole.ToolTipRole)
    assert "match 0.900" in tip and "matched: golden retriever 80 %" in tip
    assert "shows: golden retriever 80 %" in tip
    summary = page.summary.text()
    assert "<b>dog</b> — " in summary and "ImageNet classes" in summary and "3 photos" in summary
    assert page.search_stack.currentIndex() == 1
    # The tab's grid is the window's current view: the Photo menu acts on its photo.
    page.results_view.setCurrentIndex(first)
    assert window.selected_photo() == first.data(PHOTO_ROLE)
    menu = page.results_menu(page.results_view.visualRect(first).center())
    assert menu is not None and menu.actions()[0].text() == "Find similar photos"
    menu.deleteLater()
    # The search button and a smaller count search again.
    page.k_spin.setValue(1)
    with qtbot.waitSignal(window.searched_words, timeout=TIMEOUT_MS) as blocker:
        page.k_spin.editingFinished.emit()
    assert len(blocker.args[0].hits) == 1 and model.rowCount() == 1
    assert "the best 1 photos" in page.summary.text()
    page.query_edit.setText("a church")
    with qtbot.waitSignal(window.searched_words, timeout=TIMEOUT_MS) as blocker:
        page.search_button.click()
    assert [h.photo.path for h in blocker.args[0].hits] == [str(paths["blue"])]


@pytest.mark.parametrize(("text", "expected"), [
    ("", "The query has no words"),
    ("the of", "has only common words"),
    ("qwxzv", "No tag matches 'qwxzv'"),
])
def test_a_query_without_searchable_words_is_answered_in_the_label(
    qtbot, window, text, expected
) -> None:
    page = window.search_page
    failed: list[str] = []
    window.task_failed.connect(failed.append)
    window.quiet_errors = False  # a generic failure would open a box: there must be none
    window.show_search()
    qtbot.keyClicks(page.query_edit, text)
    with qtbot.waitSignal(page.refused, timeout=TIMEOUT_MS) as blocker:
        qtbot.keyClick(page.query_edit, Qt.Key.Key_Return)
    assert expected in blocker.args[0]
    assert expected in page.summary.text() and page.results_model.rowCount() == 0
    assert page.search_stack.currentIndex() == 1
    assert not failed and _no_message_box()
    # Still usable: a good query works next.
    result = _search(qtbot, window, "fruit")
    assert [h.photo.path for h in result.hits] and "fruit" in page.summary.text()
    assert not failed and _no_message_box()


def test_a_library_without_tags_says_so(qtbot, make_window) -> None:
    window = make_window()  # an empty catalog: nothing tagged
    page = window.search_page
    with qtbot.waitSignal(page.refused, timeout=TIMEOUT_MS) as blocker:
        window.search_words("dog")
    assert "no tags yet" in blocker.args[0] and "no tags yet" in page.summary.text()
    assert window.tabs.currentWidget() is page


def test_details_pane_and_tooltips_show_tags(qtbot, window, tagged) -> None:
    _, paths = tagged
    page = window.library_page
    model = page.library_model
    rows = {model.photo(r).path: r for r in range(model.rowCount())}
    shows = page.detail_labels["Shows"]
    page.library_view.setCurrentIndex(model.index(rows[str(paths["red"])], 0))
    assert shows.text() == "golden retriever 80 %"  # Labrador's 10 % is below the floor
    page.library_view.setCurrentIndex(model.index(rows[str(paths["blue"])], 0))
    assert shows.text() == "church 50 %, mosque 40 %"
    tip = model.index(rows[str(paths["red"])], 0).data(Qt.ItemDataRole.ToolTipRole)
    assert "shows: golden retriever 80 %" in tip


def test_the_similar_tab_shows_the_querys_tags(qtbot, window, tagged) -> None:
    _, paths = tagged
    with qtbot.waitSignal(window.search_finished, timeout=TIMEOUT_MS) as blocker:
        window.find_similar(str(paths["green"]))
    assert [t.name for t in blocker.args[0].query_tags][:1] == ["strawberry"]
    assert "Shows: strawberry 60 %, lemon 30 %" in window.similar_page.query_text.text()


def test_ctrl_k_focuses_the_search_box(qtbot, window) -> None:
    assert window.search_words_action.shortcut() == QKeySequence("Ctrl+K")
    assert window.search_words_action in window.menuBar().actions()[1].menu().actions()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=TIMEOUT_MS)
    window.tabs.setCurrentWidget(window.library_page)
    window.library_page.library_view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert window.tabs.currentWidget() is window.search_page
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.search_page.query_edit,
                    timeout=TIMEOUT_MS)


def test_no_tags_after_shutdown(window) -> None:
    photo = window.library_page.library_model.photo(0)
    assert window.content_tags(photo.content_hash)
    window.shutdown()
    assert window.content_tags(photo.content_hash) == []


def test_photo_model_tag_lookup_is_cached_and_cleared(qtmodeltester) -> None:
    calls: list[str] = []

    def lookup(content_hash: str) -> list[Tag]:
        calls.append(content_hash)
        return [Tag(207, "golden retriever", 0.8)] if content_hash.endswith("1") else []

    a = make_photo_obj(id=1, path="/p/a.jpg", content_hash="0" * 31 + "1")
    b = make_photo_obj(id=2, path="/p/b.jpg", content_hash="0" * 31 + "2")
    model = PhotoListModel(tag_lookup=lookup, score_name="match")
    model.set_photos([a, b], [0.9, 0.5], ["matched: golden retriever 80 %", ""])
    qtmodeltester.check(model, force_py=True)
    for _ in range(3):
        tip_a = model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
        tip_b = model.index(1, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert tip_a.endswith("match 0.900\nmatched: golden retriever 80 %\n"
                          "shows: golden retriever 80 %")
    assert "shows" not in tip_b and "matched" not in tip_b
    assert sorted(calls) == [a.content_hash, b.content_hash]  # once per content
    model.set_photos([a])
    model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert len(calls) == 3  # set_photos forgot the cache
    with pytest.raises(ValueError):
        model.set_photos([a], None, ["note"])
