"""The main window end to end, offscreen, hash-only, on copies of the DEV set and generated
photos: scan, library, duplicates, auto-mark, cleanup, undo, find similar, problems."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

import pytest
from helpers import file_sha256, write_photo_set
from PySide6.QtCore import QElapsedTimer, QMimeData, QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMenu

from photosim.core.catalog import Catalog
from photosim.core.cleanup import QUARANTINE_DIRNAME
from photosim.core.scan.imageio import DecodeError, open_upright
from photosim.gui.models.photos import PHOTO_ROLE
from photosim.library import Library

SCAN_TIMEOUT_MS = 120_000


def _scan(qtbot, window, folder: Path) -> None:
    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT_MS):
        window.folders.add_folder(str(folder))
    _settle(qtbot, window)


def _settle(qtbot, window) -> None:
    """Wait until the reloads that follow a scan, cleanup or undo are done."""
    qtbot.waitUntil(lambda: not window.busy(), timeout=SCAN_TIMEOUT_MS)


def _readable(folder: Path) -> list[Path]:
    out = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if name == "groundtruth.json" or name.endswith(".md"):
                continue
            try:
                open_upright(path, 16)
            except DecodeError:
                continue
            out.append(path)
    return out


def test_first_run_shows_add_a_folder(make_window) -> None:
    window = make_window()
    assert window.library_page.library_stack.currentWidget() is window.library_page.library_empty
    assert "Add a folder" in window.library_page.library_empty.title.text()
    assert window.windowTitle() == "photosim"
    assert window.width() >= 800


def test_scan_dev_set_fills_library_problems_and_exact_groups(qtbot, make_window, dev_copy):
    window = make_window()
    stalls: list[float] = []
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(10)

    def tick() -> None:
        stalls.append(clock.restart())

    probe.timeout.connect(tick)
    clock.start()
    probe.start()
    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT_MS) as blocker:
        window.folders.add_folder(str(dev_copy))
    probe.stop()
    _settle(qtbot, window)
    summary = blocker.args[0]
    assert not summary.cancelled
    # GUI-thread responsiveness while the DEV set was scanned (and thumbnails decoded).
    assert stalls and max(stalls[1:]) < 100, f"GUI thread stalled {max(stalls)} ms"

    readable = _readable(dev_copy)
    assert window.library_page.library_model.rowCount() == len(readable) == summary.seen - summary.errors
    shown = {window.library_page.library_model.photo(r).path for r in range(window.library_page.library_model.rowCount())}
    assert shown == {str(p) for p in readable}
    assert window.library_page.library_stack.currentWidget() is window.library_page.library_view
    assert window.problems_page.problems_table.rowCount() == summary.errors == 2
    reasons = [window.problems_page.problems_table.item(r, 1).text() for r in range(2)]
    assert all(reasons)

    by_hash = defaultdict(set)
    for path in readable:
        by_hash[file_sha256(path)].add(str(path))
    expected = {frozenset(s) for s in by_hash.values() if len(s) > 1}
    got = {frozenset(m.photo.path for m in g.members) for g in window.duplicates_page.dup_models["exact"].groups()}
    assert got == expected
    assert "groups" in window.duplicates_page.tier_combo.itemText(0)
    assert window.duplicates_page.dup_models["near"].rowCount() >= len(expected)


def test_auto_mark_cleanup_and_undo_round_trip(qtbot, make_window, dev_copy):
    window = make_window()
    _scan(qtbot, window, dev_copy)
    before = {str(p): file_sha256(p) for p in _readable(dev_copy)}
    window.duplicates_page.tier_combo.setCurrentIndex(0)  # exact
    marked = window.duplicates_page.apply_rule_to_all("oldest")
    assert marked and window.duplicates_page.move_button.isEnabled()
    assert window.duplicates_page.move_button.text().startswith(f"Move {len(marked)} photos (")
    plan = window.duplicates_page.plan_cleanup()
    assert {r.photo.path for r in plan.removals} == marked and not plan.refused
    with qtbot.waitSignal(window.cleanup_finished, timeout=SCAN_TIMEOUT_MS) as blocker:
        window.cleanup.run(plan, "quarantine")
    result = blocker.args[0]
    _settle(qtbot, window)
    assert sorted(result.moved) == sorted(marked)
    quarantine = dev_copy / QUARANTINE_DIRNAME / result.session
    for path in marked:
        assert not os.path.exists(path)
        assert (quarantine / os.path.relpath(path, dev_copy)).is_file()
    with Catalog(window.catalog_path) as catalog:
        rows = catalog.db.execute(
            "SELECT src, state FROM journal WHERE session=?", [result.session]).fetchall()
    assert sorted(r[0] for r in rows) == sorted(marked) and {r[1] for r in rows} == {"done"}
    assert window.library_page.library_model.rowCount() == len(before) - len(marked)
    assert window.duplicates_page.dup_models["exact"].rowCount() == 0

    dialog = window.cleanup.open_history()
    assert dialog.table.rowCount() == 1 and dialog.sessions[0].files == len(marked)
    dialog.close()
    with qtbot.waitSignal(window.undo_finished, timeout=SCAN_TIMEOUT_MS) as blocker:
        window.cleanup.undo_last()
    _settle(qtbot, window)
    assert not blocker.args[0].problems
    after = {str(p): file_sha256(p) for p in _readable(dev_copy)}
    assert after == before
    assert window.library_page.library_model.rowCount() == len(before)


def test_protected_folder_and_similar_refusals_are_shown(qtbot, make_window, tmp_path):
    photos = write_photo_set(tmp_path / "lib")
    window = make_window()
    _scan(qtbot, window, tmp_path / "lib")
    window.folders.set_protected(str(tmp_path / "lib"), True)
    window.duplicates_page.tier_combo.setCurrentIndex(1)  # near
    window.duplicates_page.apply_rule_to_all("keeper")
    plan = window.duplicates_page.plan_cleanup()
    assert not plan.removals and plan.refused
    assert {reason for _, reason in plan.refused} == {"in a protected folder"}
    from photosim.gui.dialogs.cleanup import CleanupConfirmDialog

    dialog = CleanupConfirmDialog(plan, "quarantine", window)
    qtbot.addWidget(dialog)
    assert not dialog.ok.isEnabled() and dialog.refused.rowCount() == len(plan.refused)
    assert os.path.exists(photos["copy"])


def test_find_similar_from_the_context_menu_ranks_the_exact_copy_first(
    qtbot, make_window, tmp_path
):
    photos = write_photo_set(tmp_path / "lib")
    window = make_window()
    _scan(qtbot, window, tmp_path / "lib")
    model = window.library_page.library_model
    row = next(r for r in range(model.rowCount())
               if model.photo(r).path == str(photos["original"]))
    menu = window._photo_menu(model.photo(row), QPoint(0, 0), window.library_page.library_view)
    action = next(a for a in menu.actions() if a.text() == "Find similar photos")
    with qtbot.waitSignal(window.search_finished, timeout=SCAN_TIMEOUT_MS) as blocker:
        action.trigger()
    result = blocker.args[0]
    assert result.hits[0].photo.path == str(photos["copy"])
    assert window.similar_page.results_model.photo(0).path == str(photos["copy"])
    assert window.similar_page.results_model.index(0, 0).data().startswith("100 %")
    assert window.tabs.currentIndex() == 2 and not window.similar_page.query_image.pixmap().isNull()
    # Browse on from a result, then back and forward.
    with qtbot.waitSignal(window.search_finished, timeout=SCAN_TIMEOUT_MS):
        window.find_similar(str(photos["different"]))
    assert window.similar_page.back_button.isEnabled() and not window.similar_page.forward_button.isEnabled()
    with qtbot.waitSignal(window.search_finished, timeout=SCAN_TIMEOUT_MS) as blocker:
        window.similar_page.back_button.click()
    assert blocker.args[0].query == str(photos["original"])
    assert window.similar_page.forward_button.isEnabled()
    menu.deleteLater()


def test_dropping_a_folder_scans_it_and_an_image_searches(qtbot, make_window, tmp_path):
    photos = write_photo_set(tmp_path / "lib")
    window = make_window()

    def drop(path: Path) -> None:
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        event = QDropEvent(window.rect().center().toPointF(), Qt.DropAction.CopyAction, mime,
                           Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
        window.dropEvent(event)

    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT_MS):
        drop(tmp_path / "lib")
    _settle(qtbot, window)
    assert window.library_page.library_model.rowCount() == len(photos)
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(photos["original"].read_bytes())
    with qtbot.waitSignal(window.search_finished, timeout=SCAN_TIMEOUT_MS) as blocker:
        drop(outside)
    assert blocker.args[0].hits[0].similarity == pytest.approx(1.0)


def test_not_duplicates_is_remembered_across_rescans(qtbot, make_window, tmp_path):
    write_photo_set(tmp_path / "lib")
    window = make_window()
    _scan(qtbot, window, tmp_path / "lib")
    window.duplicates_page.tier_combo.setCurrentIndex(1)
    assert window.duplicates_page.dup_model().rowCount() == 1
    window.duplicates_page.group_view.setCurrentIndex(window.duplicates_page.dup_model().index(0, 0))
    judged = {m.photo.content_hash for m in window.duplicates_page.dup_model().group(0).members}
    window.duplicates_page.mark_not_duplicates()
    assert window.duplicates_page.dup_model().rowCount() == 0
    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT_MS):
        window.folders.rescan_all()
    _settle(qtbot, window)
    groups = window.duplicates_page.dup_models["near"].groups()
    # No two different contents of the judged group are grouped again (a content left out
    # of it may still match one of them: that pair was never judged).
    for group in groups:
        assert len({m.photo.content_hash for m in group.members} & judged) <= 1


def test_keyboard_review_toggles_and_accepts(qtbot, make_window, tmp_path):
    write_photo_set(tmp_path / "lib")
    window = make_window()
    _scan(qtbot, window, tmp_path / "lib")
    window.tabs.setCurrentIndex(1)
    window.duplicates_page.tier_combo.setCurrentIndex(1)
    view, model = window.duplicates_page.group_view, window.duplicates_page.dup_model()
    view.setFocus()
    view.setCurrentIndex(model.index(0, 0))
    marked_before = model.marked()
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.current_member == 1
    qtbot.keyClick(view, Qt.Key.Key_Space)
    member = model.group(0).members[1].photo.path
    assert (member in model.marked()) != (member in marked_before)
    assert window.duplicates_page.move_button.text().startswith(f"Move {len(model.marked())} photo")
    qtbot.keyClick(view, Qt.Key.Key_Return)
    assert model.index(0, 0).data(Qt.ItemDataRole.UserRole + 12) is True


def test_compare_dialog_highlights_differences_and_viewer_zooms(qtbot, make_window, tmp_path):
    write_photo_set(tmp_path / "lib")
    window = make_window()
    _scan(qtbot, window, tmp_path / "lib")
    window.duplicates_page.tier_combo.setCurrentIndex(1)
    group = window.duplicates_page.dup_model().group(0)
    view = window.duplicates_page.group_view
    view.setCurrentIndex(window.duplicates_page.dup_model().index(0, 0))
    view.current_member = next(i for i, m in enumerate(group.members)
                               if m.photo.width != group.keeper.width)
    dialog = window.duplicates_page.compare_current()
    qtbot.addWidget(dialog)
    assert "Dimensions" in dialog.differences
    qtbot.waitUntil(lambda: not dialog.views[1].scene().itemsBoundingRect().isEmpty(),
                    timeout=10_000)
    dialog.views[0].set_scale(2.0)
    assert dialog.views[1].transform().m11() == pytest.approx(2.0)
    dialog.close()
    viewer = window.open_viewer(group.keeper.path)
    qtbot.waitUntil(lambda: viewer.status.text() == "", timeout=10_000)
    viewer.view.zoom(1.25)
    assert not viewer.view.fitted
    viewer.close()


def test_library_details_sort_and_thumbnails(qtbot, make_window, tmp_path):
    photos = write_photo_set(tmp_path / "lib")
    window = make_window()
    _scan(qtbot, window, tmp_path / "lib")
    model = window.library_page.library_model
    window.library_page.sort_combo.setCurrentIndex(window.library_page.sort_combo.findData("size"))
    sizes = [model.photo(r).size for r in range(model.rowCount())]
    assert sizes == sorted(sizes)
    window.library_page.sort_desc.setChecked(True)
    assert [model.photo(r).size for r in range(model.rowCount())] == sorted(sizes, reverse=True)
    window.library_page.library_view.setCurrentIndex(model.index(0, 0))
    photo = model.index(0, 0).data(PHOTO_ROLE)
    assert window.library_page.detail_labels["Path"].text() == photo.path
    assert "×" in window.library_page.detail_labels["Dimensions"].text()
    qtbot.waitUntil(lambda: window.thumbs._cache.get(photo.content_hash) is not None,
                    timeout=10_000)
    assert len(photos) == model.rowCount()


def test_cancel_and_pause_a_scan(qtbot, make_window, dev_copy):
    window = make_window()
    with qtbot.waitSignal(window.scan_finished, timeout=SCAN_TIMEOUT_MS) as blocker:
        window.folders.add_folder(str(dev_copy))
        assert window.scanner.status.isVisible()
        window.scanner.status.pause.setChecked(True)
        assert window.scanner.task.control.paused
        window.scanner.status.pause.setChecked(False)
        window.scanner.status.cancel.click()
    _settle(qtbot, window)
    assert blocker.args[0].cancelled
    assert not window.scanner.status.isVisible()


def test_failed_task_is_reported(qtbot, make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with qtbot.waitSignal(window.task_failed, timeout=30_000) as blocker:
        window.find_similar(str(bad))
    assert "find similar failed" in blocker.args[0]
    assert "find similar failed" in window.statusBar().currentMessage()


def test_window_size_is_remembered(qtbot, make_window, app_settings):
    window = make_window()
    window.resize(1100, 720)
    size = window.size()
    window.close()
    assert app_settings.store.value("window/geometry") is not None
    again = make_window()
    # The offscreen screen is 800 px wide: Qt clamps the restored width to fit it.
    assert again.height() == size.height()
    assert again.width() == max(again.minimumSizeHint().width(), min(size.width(), 800))


def test_time_based_progress_shows_rate(qtbot, make_window):
    from photosim.core.types import Progress, ScanStage

    window = make_window()
    window.scanner._processing_started = time.monotonic() - 2
    window.scanner.task = None
    window.scanner._on_progress(Progress(ScanStage.PROCESSING, 50, 100))
    assert "photos/s" in window.scanner.status.label.text() and "ETA" in window.scanner.status.label.text()
    assert window.scanner.status.bar.format() == "50 / 100"


def test_results_arriving_after_shutdown_are_ignored(make_window) -> None:  # type: ignore[no-untyped-def]
    # Worker signals are queued; one delivered after the window closed its catalog must not
    # raise or open a dialog (offscreen, a modal dialog would hang the app's exit).
    from photosim.core.cleanup import CleanupResult, UndoResult
    from photosim.core.types import Progress, ScanStage, ScanSummary

    window = make_window()
    window.shutdown()
    assert window.catalog is None
    window._on_task_failed("late failure")
    window.duplicates_page._on_duplicates_grouped({})
    window.cleanup._on_finished(CleanupResult("s", "quarantine"))
    window.cleanup._on_undone(UndoResult("s"))
    window._on_library_rows([])
    window.scanner._on_progress(Progress(ScanStage.PROCESSING, 50, 100))
    window.scanner._on_finished(ScanSummary())
    window.scanner._on_failed("late failure")


def test_scan_status_counts_the_neighbour_search(make_window) -> None:
    from photosim.core.types import Progress, ScanStage

    window = make_window()
    window.scanner._on_progress(Progress(ScanStage.INDEXING, 2048, 10_000, "finding neighbours"))
    bar = window.scanner.status.bar
    assert (bar.minimum(), bar.maximum(), bar.value()) == (0, 10_000, 2048)
    assert window.scanner.status.label.text() == "Indexing: neighbours of 2,048 of 10,000 photos"
    window.scanner._on_progress(Progress(ScanStage.INDEXING, 0, 1, "updating the index"))
    assert bar.maximum() == 0  # no count to show: a busy bar
    assert window.scanner.status.label.text() == "Updating the index…"


def test_cleanup_compares_metadata_in_a_worker_and_shows_what_it_keeps(
    qtbot, make_window, tmp_path, monkeypatch
):
    pyexiv2 = pytest.importorskip("pyexiv2", reason='needs pip install "photosim[metadata]"')
    from photosim.gui.dialogs.cleanup import CleanupConfirmDialog

    photos = write_photo_set(tmp_path / "lib")
    image = pyexiv2.Image(str(photos["reencoded"]))
    image.modify_xmp({"Xmp.dc.subject": ["beach"], "Xmp.xmp.Rating": "5"})
    image.close()
    window = make_window()
    _scan(qtbot, window, tmp_path / "lib")
    window.duplicates_page.tier_combo.setCurrentIndex(1)  # near
    window.duplicates_page.apply_rule_to_all("keeper")
    shown: list[CleanupConfirmDialog] = []

    def record(dialog: CleanupConfirmDialog) -> int:  # the user looks, then cancels
        shown.append(dialog)
        return CleanupConfirmDialog.DialogCode.Rejected

    monkeypatch.setattr(CleanupConfirmDialog, "exec", record)
    window.duplicates_page.start_cleanup()
    qtbot.waitUntil(lambda: bool(shown), timeout=SCAN_TIMEOUT_MS)
    (merge,) = shown[0].plan.merges
    assert merge.sources == [str(photos["reencoded"])] and merge.keeper == str(photos["original"])
    assert shown[0].merges.rowCount() == 1
    assert shown[0].merges.item(0, 1).text() == "1 keyword (beach), rating 5"
    assert os.path.exists(photos["reencoded"]) and not os.path.exists(merge.sidecar)


def test_verdicts_on_results_are_stored_and_learning_explains_itself(qtbot, make_window, tmp_path):
    photos = write_photo_set(tmp_path / "lib")
    window = make_window()
    _scan(qtbot, window, tmp_path / "lib")
    page = window.similar_page
    with qtbot.waitSignal(window.search_finished, timeout=SCAN_TIMEOUT_MS):
        window.find_similar(str(photos["original"]))
    assert page.current_query() == str(photos["original"])
    # The result's context menu offers the verdicts.
    rect = page.results_view.visualRect(page.results_model.index(0, 0))
    menu = page.results_menu(rect.center())
    assert isinstance(menu, QMenu)
    texts = [a.text() for a in menu.actions()]
    assert "Similar to the query" in texts and "Not similar to the query" in texts
    menu.deleteLater()
    status = window.statusBar()
    page.record_verdict(str(photos["original"]), str(photos["different"]), False)
    qtbot.waitUntil(lambda: "1 not similar" in status.currentMessage(), timeout=SCAN_TIMEOUT_MS)
    with Library(window.catalog_path) as library:
        assert library.similarity_verdicts() == (0, 1)
    page.learn()  # this library has hashes only: said in the status bar, nothing breaks
    qtbot.waitUntil(lambda: "learning needs CNN descriptors" in status.currentMessage(),
                    timeout=SCAN_TIMEOUT_MS)
