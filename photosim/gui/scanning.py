"""Scanning from the window: one scan at a time, the rest queued; progress, pause and cancel.

The scan itself is :meth:`photosim.library.Library.scan`, driven on the ``scan`` pool by a
:class:`~photosim.gui.tasks.Task`; this module shows its progress (counts, rate, ETA) in the
status bar, shows the photos committed so far, and reports the summary.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from photosim.gui import tasks
from photosim.gui.embedder import hash_only_notice, scan_embedder
from photosim.gui.widgets.common import ScanStatus
from photosim.library import Library, Progress, ScanStage, ScanSummary

if TYPE_CHECKING:
    from photosim.gui.windows.main_window import MainWindow

INCREMENTAL_INTERVAL_S = 0.25


class ScanController(QObject):
    """Run the window's scans in the background, one at a time.

    Args:
        frame: The main window: settings, library, status bar, Library page, thumbnails.

    Attributes:
        status: The progress bar with Pause and Cancel (the frame puts it in its status bar).
        task: The running scan, or ``None``.

    Signals:
        finished(object): A scan ended (its :class:`ScanSummary`), after the window reloaded.
    """

    finished = Signal(object)

    def __init__(self, frame: MainWindow) -> None:
        super().__init__(frame)
        self.frame = frame
        self.task: tasks.Task | None = None
        self._queue: list[str] = []
        self._processing_started: float | None = None
        self._last_incremental = 0.0
        self.status = ScanStatus(frame)
        self.status.pause_toggled.connect(self._on_status_pause_toggled)
        self.status.cancelled.connect(self.cancel)

    @property
    def running(self) -> bool:
        """True while a scan runs."""
        return self.task is not None

    def start(self, roots: list[str], quiet: bool = False, workers: int | None = None) -> None:
        """Scan ``roots`` in the background (queued behind a running scan).

        Args:
            roots: Folders to scan.
            quiet: Say nothing in the status bar when it starts (the start-up rescan).
            workers: Decode processes, instead of the settings' number.
        """
        if self.task is not None:
            self._queue += [r for r in roots if r not in self._queue]
            return
        overrides = {} if workers is None else {"workers": workers}
        settings = self.frame.settings.core(**overrides)
        path = self.frame.catalog_path

        def work(control: tasks.TaskControl):
            embedder = scan_embedder(settings)  # lazy: loads torch only if a file needs it
            with Library(path) as library:
                summary = yield from library.scan(roots, settings, embedder,
                                                  control.cancel_token)
            if summary.embed_note:
                task.signals.notice.emit(hash_only_notice(summary.embed_note))
            return summary

        task = tasks.Task("scan", work)
        task.signals.progress.connect(self._on_progress)
        task.signals.finished.connect(self._on_finished)
        task.signals.failed.connect(self._on_failed)
        self.task = task
        self._processing_started = None
        self.status.start("Looking for photos…")
        self.frame.library_page.show_scanning()
        if not quiet:
            self.frame.statusBar().showMessage(f"Scanning {', '.join(roots)}")
        self.frame.run_task(task, "scan")

    def cancel(self) -> None:
        """Stop the scan at the next batch (finished batches are kept); drop the queued ones."""
        self._queue.clear()
        if self.task is not None:
            self.task.control.cancel()
            self.status.label.setText("Cancelling…")

    def clear_queue(self) -> None:
        """Forget the scans queued behind the running one (at shutdown)."""
        self._queue.clear()

    def _on_status_pause_toggled(self, paused: bool) -> None:
        if self.task is None:
            return
        if paused:
            self.task.control.pause()
            self.status.label.setText("Paused")
        else:
            self.task.control.resume()

    @Slot(object)
    @tasks.while_open
    def _on_progress(self, progress: Progress) -> None:
        if self.task is not None and self.task.control.paused:
            return
        now = time.monotonic()
        if progress.stage == ScanStage.WALKING:
            self.status.update_counts(0, 0, f"Looking for photos… {progress.done} found")
        elif progress.stage == ScanStage.PROCESSING:
            if self._processing_started is None:
                self._processing_started = now
            elapsed = max(1e-6, now - self._processing_started)
            rate = progress.done / elapsed
            text = f"Scanning · {rate:.0f} photos/s" if progress.done else "Scanning · starting…"
            if rate > 0 and progress.total:
                eta = int((progress.total - progress.done) / rate)
                text += f" · ETA {eta // 60}:{eta % 60:02d}"
            if progress.errors:
                text += f" · {progress.errors} unreadable"
            self.status.update_counts(progress.done, progress.total, text)
            if now - self._last_incremental >= INCREMENTAL_INTERVAL_S:
                self._last_incremental = now
                self._append_new_photos()
        elif progress.stage == ScanStage.INDEXING:
            if progress.total > 1:  # the neighbour search of many new photos: a real count
                self.status.update_counts(
                    progress.done, progress.total,
                    f"Indexing: neighbours of {progress.done:,} of {progress.total:,} photos",
                )
            else:
                self.status.update_counts(0, 0, "Updating the index…")

    def _append_new_photos(self) -> None:
        """Show the batches committed so far (cheap: rows with a larger id than shown)."""
        page = self.frame.library_page
        page.append_photos(self.frame.catalog.photos_after(page.max_id()))

    @Slot(object)
    @tasks.while_open
    def _on_finished(self, summary: ScanSummary) -> None:
        self.task = None
        self.status.hide()
        parts = [f"{summary.seen} files", f"{summary.new} new", f"{summary.changed} changed",
                 f"{summary.removed} removed"]
        if summary.errors:
            parts.append(f"{summary.errors} unreadable (see Problems)")
        word = "Scan cancelled" if summary.cancelled else "Scan finished"
        self.frame.statusBar().showMessage(
            f"{word}: {', '.join(parts)} in {summary.seconds:.1f} s", 20000)
        self.frame.thumbs.forget_missing()
        queued, self._queue = self._queue, []
        self.frame.refresh_after_change()
        self.finished.emit(summary)
        if queued:
            self.start(queued)

    @Slot(str)
    @tasks.while_open
    def _on_failed(self, _message: str) -> None:
        self.task = None
        self.status.hide()
        self.frame.refresh_after_change()
