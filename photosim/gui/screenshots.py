"""Render the main views to PNGs: ``python -m photosim.gui.screenshots OUTDIR [FOLDER]``.

Scans FOLDER (default: ``../shared/data/dev`` beside the checkout) with the default model (its
weights install with photosim) into a temporary catalog, then grabs the library, duplicates,
similar results, a text search, problems, compare and cleanup confirmation. Nothing in FOLDER is changed. Run under ``xvfb-run`` (or offscreen).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QWidget

DEFAULT_FOLDER = Path(__file__).resolve().parents[3] / "shared" / "data" / "dev"
SEARCH_WORDS = "building"  # a general word: 14 ImageNet classes (palace, church, mosque…)


def _wait(app: QApplication, done, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _pause(app: QApplication, seconds: float) -> None:
    _wait(app, lambda: False, seconds)


def _grab(widget: QWidget, path: Path) -> Path:
    widget.grab().save(str(path))
    print(path)
    return path


def render(outdir: Path, folder: Path) -> list[Path]:
    """Write the screenshots; returns their paths."""
    from photosim.gui.app import create_app
    from photosim.gui.dialogs.cleanup import CleanupConfirmDialog
    from photosim.gui.settings import AppSettings
    from photosim.gui.windows.main_window import MainWindow

    app = create_app([sys.argv[0]])
    outdir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="photosim-shots-") as tmp:
        settings = AppSettings(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        settings.set("workers", 1)
        window = MainWindow(Path(tmp) / "catalog.db", settings, rescan_on_start=False)
        window.quiet_errors = True
        window.resize(1440, 900)
        window.show()
        out.append(_grab(window, outdir / "empty-first-run.png"))
        finished = []
        window.scan_finished.connect(finished.append)
        window.folders.add_folder(str(folder))
        _pause(app, 1.3)
        out.append(_grab(window, outdir / "scanning.png"))
        _wait(app, lambda: bool(finished) and not window.busy())
        model = window.library_page.library_model
        # Of the photos in view, the one the model is surest about (its details show its tags).
        sure = {r: max((t.probability for t in window.content_tags(model.photo(r).content_hash)),
                       default=0.0) for r in range(min(16, model.rowCount()))}
        row = max(sure, key=sure.get, default=0)
        window.library_page.library_view.setCurrentIndex(model.index(row, 0))
        _pause(app, 1.5)
        out.append(_grab(window, outdir / "library.png"))

        window.tabs.setCurrentIndex(1)
        window.duplicates_page.tier_combo.setCurrentIndex(1)
        window.duplicates_page.group_view.setCurrentIndex(window.duplicates_page.dup_model().index(0, 0))
        _pause(app, 1.5)
        out.append(_grab(window, outdir / "duplicates.png"))

        plan = window.duplicates_page.plan_cleanup()
        dialog = CleanupConfirmDialog(plan, "quarantine", window)
        dialog.show()
        _pause(app, 0.3)
        out.append(_grab(dialog, outdir / "cleanup-confirm.png"))
        dialog.close()

        group = window.duplicates_page.dup_model().group(0)
        window.duplicates_page.group_view.current_member = 1
        compare = window.duplicates_page.compare_current()
        _wait(app, lambda: not any(t in window._tasks for t in compare.tasks), 10)
        _pause(app, 0.5)
        out.append(_grab(compare, outdir / "compare.png"))
        compare.close()

        searched = []
        window.search_finished.connect(searched.append)
        window.find_similar(group.keeper.path)
        _wait(app, lambda: bool(searched) and not window.busy())
        _pause(app, 1.5)
        out.append(_grab(window, outdir / "similar.png"))

        words = []
        window.searched_words.connect(words.append)
        window.show_search()
        window.search_page.query_edit.setText(SEARCH_WORDS)
        window.search_page.search()
        _wait(app, lambda: bool(words) and not window.busy())
        _pause(app, 1.5)
        out.append(_grab(window, outdir / "search.png"))

        window.tabs.setCurrentWidget(window.problems_page)
        _pause(app, 0.2)
        out.append(_grab(window, outdir / "problems.png"))
        window.close()
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__)
        return 2
    folder = Path(argv[1]) if len(argv) > 1 else DEFAULT_FOLDER
    render(Path(argv[0]), folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
