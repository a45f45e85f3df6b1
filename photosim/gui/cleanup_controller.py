"""Cleanup from the window: move the marked copies out, undo a session, show the history.

The Duplicates page decides what to move (its plan is the library's safety check); this
module runs the move and the undo on the ``work`` pool through
:class:`photosim.library.Library` (journaled, so both survive a crash) and says in the
status bar what happened.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal, Slot

from photosim.gui import tasks
from photosim.gui.dialogs.cleanup import HistoryDialog
from photosim.gui.models.photos import format_bytes
from photosim.library import CleanupPlan, CleanupResult, Library, UndoResult

if TYPE_CHECKING:
    from photosim.gui.windows.main_window import MainWindow


class CleanupController(QObject):
    """Run cleanups and undos in the background; open the cleanup history.

    Args:
        frame: The main window: its library, task runner and status bar.

    Signals:
        finished(object): A cleanup ended (its ``CleanupResult``), after the window reloaded.
        undone(object): An undo ended (its ``UndoResult``), after the window reloaded.
    """

    finished = Signal(object)
    undone = Signal(object)

    def __init__(self, frame: MainWindow) -> None:
        super().__init__(frame)
        self.frame = frame

    def run(self, plan: CleanupPlan, destination: str) -> tasks.Task:
        """Move the planned files out in a worker (journaled, undoable).

        Args:
            plan: The checked plan (:meth:`DuplicatesPage.plan_cleanup`).
            destination: ``"quarantine"`` or ``"trash"``.

        Returns:
            The started task.
        """
        path = self.frame.catalog_path

        def work(control: tasks.TaskControl):
            with Library(path) as library:
                return (yield from library.cleanup(plan, destination, control.cancel_token))

        task = tasks.Task("cleanup", work)
        task.signals.progress.connect(
            lambda p: self.frame.statusBar().showMessage(f"Moving out {p.done} / {p.total}…"))
        task.signals.finished.connect(self._on_finished)
        return self.frame.run_task(task)

    @Slot(object)
    @tasks.while_open
    def _on_finished(self, result: CleanupResult) -> None:
        where = "the quarantine folder" if result.destination == "quarantine" else "the Trash"
        sidecars = (f" with {len(result.companions)} sidecar file"
                    f"{'s' if len(result.companions) != 1 else ''}" if result.companions else "")
        text = f"Moved {len(result.moved)} photos ({format_bytes(result.bytes)}){sidecars} to {where}."
        if result.skipped:
            text += f" {len(result.skipped)} skipped: " + "; ".join(
                f"{os.path.basename(p)}: {r}" for p, r in result.skipped[:5])
        self.frame.statusBar().showMessage(
            text + "  (Cleanup ▸ Undo last cleanup puts them back)", 30000)
        self.frame.refresh_after_change()
        self.finished.emit(result)

    def undo_last(self) -> None:
        """Put every file of the newest undoable session back."""
        session = self.frame.catalog.last_undoable_session()
        if session is None:
            self.frame.statusBar().showMessage("Nothing to undo: no cleanup in quarantine.", 8000)
            return
        self.undo(session)

    def undo(self, session: str) -> tasks.Task:
        """Undo one cleanup session in a worker.

        Args:
            session: The session's id.

        Returns:
            The started task.
        """
        path = self.frame.catalog_path

        def work(_control):
            with Library(path) as library:
                return library.undo(session)

        task = tasks.Task("undo", work)
        task.signals.finished.connect(self._on_undone)
        return self.frame.run_task(task)

    @Slot(object)
    @tasks.while_open
    def _on_undone(self, result: UndoResult) -> None:
        text = f"Put back {len(result.restored)} photos."
        if result.problems:
            text += f" {len(result.problems)} problems: " + "; ".join(
                f"{os.path.basename(p)}: {r}" for p, r in result.problems[:5])
        self.frame.statusBar().showMessage(text, 30000)
        self.frame.refresh_after_change()
        self.undone.emit(result)

    def open_history(self) -> HistoryDialog:
        """Show the cleanup sessions; one still in quarantine can be undone from there.

        Returns:
            The (non-modal) dialog.
        """
        dialog = HistoryDialog(self.frame.catalog.history(), self.frame)
        dialog.undo_requested.connect(self.undo)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog
