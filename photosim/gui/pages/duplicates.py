"""The "Duplicates" tab: groups of one tier, keep/remove marks, auto-mark rules, cleanup."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from photosim.gui import tasks
from photosim.gui.dialogs.cleanup import CleanupConfirmDialog, move_label
from photosim.gui.dialogs.viewer import CompareDialog
from photosim.gui.models.duplicates import DuplicatesModel
from photosim.gui.models.photos import format_bytes
from photosim.gui.widgets.common import EmptyState
from photosim.gui.widgets.groups import GroupView
from photosim.library import RULES, TIERS, CleanupPlan, DuplicatesError, Library

if TYPE_CHECKING:
    from photosim.gui.windows.main_window import MainWindow

TIER_LABELS = {"exact": "Exact copies", "near": "Near-duplicates", "similar": "Similar"}


class DuplicatesPage(QWidget):
    """Review duplicate groups tier by tier and move the marked copies out.

    Grouping runs on the window's task pool through :class:`photosim.library.Library`; the
    safety rules of a cleanup are the library's (:meth:`plan_cleanup`), and the cleanup itself
    runs in the window's cleanup controller (:meth:`CleanupController.run`), which also owns
    undo and history.

    Args:
        frame: The main window.

    Signals:
        loaded(): Grouping finished and the tier models are filled.
    """

    loaded = Signal()

    def __init__(self, frame: MainWindow) -> None:
        super().__init__(frame)
        self.frame = frame
        self.dup_models = {t: DuplicatesModel(frame.thumbs, self) for t in TIERS}
        self.dup_notes: dict[str, str] = {t: "" for t in TIERS}
        self.tier_combo = QComboBox(self)
        for t in TIERS:
            self.tier_combo.addItem(TIER_LABELS[t], t)
        self.tier_combo.currentIndexChanged.connect(self._on_tier_changed)
        self.tier_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.tier_combo.setMinimumContentsLength(26)
        self.rule_combo = QComboBox(self)
        for key, text in RULES.items():
            self.rule_combo.addItem(text, key)
        self.rule_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.rule_combo.setMinimumContentsLength(24)
        self.apply_rule = QPushButton("Apply to all groups", self)
        self.apply_rule.clicked.connect(self.apply_auto_mark)
        self.not_dup_button = QPushButton("Not duplicates", self)
        self.not_dup_button.setToolTip("Remember that this group's photos are different "
                                       "(kept across rescans)")
        self.not_dup_button.clicked.connect(self.mark_not_duplicates)
        self.compare_button = QPushButton("Compare…", self)
        self.compare_button.setToolTip("Compare the selected photo with the group's keeper")
        self.compare_button.clicked.connect(self.compare_current)
        self.move_button = QPushButton(move_label(0, 0), self)
        self.move_button.setEnabled(False)
        self.move_button.clicked.connect(self.start_cleanup)
        undo = QPushButton("Undo last cleanup", self)
        undo.clicked.connect(frame.cleanup.undo_last)
        history = QPushButton("History…", self)
        history.clicked.connect(frame.cleanup.open_history)
        self.dup_summary = QLabel(self)
        self.dup_summary.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Tier:", self))
        top.addWidget(self.tier_combo)
        top.addSpacing(12)
        top.addWidget(QLabel("Auto-mark:", self))
        top.addWidget(self.rule_combo, 1)
        top.addWidget(self.apply_rule)
        bottom = QHBoxLayout()
        bottom.addWidget(self.not_dup_button)
        bottom.addWidget(self.compare_button)
        bottom.addStretch(1)
        bottom.addWidget(undo)
        bottom.addWidget(history)
        bottom.addWidget(self.move_button)
        self.group_view = GroupView(self)
        self.group_view.thumb_size = 120
        self.group_view.setModel(self.dup_models["exact"])
        self.group_view.toggled.connect(self._on_group_view_toggled)
        self.group_view.accepted.connect(self._on_group_view_accepted)
        self.group_view.member_activated.connect(self._on_group_view_member_activated)
        self.group_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.group_view.customContextMenuRequested.connect(self._on_group_view_context_menu)
        self.dup_empty = EmptyState("No duplicate groups", "Add a folder to find duplicates.",
                                    None, self)
        self.dup_stack = QStackedWidget(self)
        self.dup_stack.addWidget(self.dup_empty)
        self.dup_stack.addWidget(self.group_view)
        hint = QLabel("Keys: ↑↓ groups · ←→ photos · Space keep/remove · Enter accept group · "
                      "hover a photo for why it matched", self)
        hint.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.dup_summary)
        layout.addWidget(self.dup_stack, 1)
        layout.addWidget(hint)
        layout.addLayout(bottom)

    def reload(self) -> None:
        """Group every tier in a worker; the models fill when it is done."""
        path, settings = self.frame.catalog_path, self.frame.settings.core()

        def work(_control):
            out = {}
            with Library(path) as library:
                for tier in TIERS:
                    try:
                        out[tier] = library.duplicates(tier, settings.thresholds,
                                                       k=settings.knn)
                    except DuplicatesError as exc:
                        out[tier] = str(exc)
            return out

        task = tasks.Task("find duplicates", work)
        task.signals.finished.connect(self._on_duplicates_grouped)
        self.frame.run_task(task)

    @Slot(object)
    def _on_duplicates_grouped(self, results: dict) -> None:
        if self.frame.closed:  # a queued result after the window shut down
            return
        for i, tier in enumerate(TIERS):
            result = results[tier]
            model = self.dup_models[tier]
            if isinstance(result, str):
                model.set_groups([])
                self.dup_notes[tier] = result
                self.tier_combo.setItemText(i, f"{TIER_LABELS[tier]} (unavailable)")
                continue
            model.set_groups(result.groups, Library.auto_mark(result.groups, "keeper"))
            self.dup_notes[tier] = " ".join(result.notes)
            self.tier_combo.setItemText(
                i, f"{TIER_LABELS[tier]} — {len(result.groups)} groups, "
                   f"{format_bytes(model.reclaimable_bytes())}")
        self._on_tier_changed()
        self.loaded.emit()

    def current_tier(self) -> str:
        return self.tier_combo.currentData()

    def dup_model(self) -> DuplicatesModel:
        """The model of the selected tier."""
        return self.dup_models[self.current_tier()]

    def _on_tier_changed(self, *_args) -> None:
        model = self.dup_model()
        if self.group_view.model() is not model:
            self.group_view.setModel(model)
        n = model.rowCount()
        note = self.dup_notes[self.current_tier()]
        self.dup_summary.setText(
            (f"{n} groups · {format_bytes(model.reclaimable_bytes())} reclaimable. " if n else "")
            + note)
        if not n:
            self.dup_empty.set_text(
                "No groups in this tier",
                note or ("Add a folder to find duplicates." if not self.frame.catalog.folders()
                         else "No duplicates found here. Try another tier."))
        self.dup_stack.setCurrentIndex(1 if n else 0)
        if n and not self.group_view.currentIndex().isValid():
            self.group_view.setCurrentIndex(model.index(0, 0))
        self._update_move_button()

    def _update_move_button(self) -> None:
        model = self.dup_model()
        marked = model.marked()
        self.move_button.setText(move_label(len(marked), model.marked_bytes()))
        self.move_button.setEnabled(bool(marked))

    def _on_group_view_toggled(self, row: int, member: int) -> None:
        self.dup_model().toggle(row, member)
        self._update_move_button()

    def _on_group_view_accepted(self, row: int) -> None:
        self.dup_model().accept(row)

    def _on_group_view_member_activated(self, row: int, member: int) -> None:
        self.frame.open_viewer(self.dup_model().group(row).members[member].photo.path)

    def _on_group_view_context_menu(self, pos: QPoint) -> None:
        index = self.group_view.indexAt(pos)
        member = self.group_view.member_at(pos)
        if not index.isValid():
            return
        self.group_view.setCurrentIndex(index)
        menu = QMenu(self)
        if member is not None:
            self.group_view.current_member = member
            photo = self.dup_model().group(index.row()).members[member].photo
            menu.addAction("Keep / remove", lambda: self._on_group_view_toggled(index.row(),
                                                                                 member))
            menu.addAction("Compare with the keeper…", self.compare_current)
            menu.addAction("Find similar photos", lambda: self.frame.find_similar(photo.path))
            menu.addAction("Open viewer", lambda: self.frame.open_viewer(photo.path))
            menu.addAction("Show in folder", lambda: self.frame.show_in_folder(photo.path))
            menu.addSeparator()
        menu.addAction("Not duplicates", self.mark_not_duplicates)
        menu.popup(self.group_view.viewport().mapToGlobal(pos))

    def apply_auto_mark(self) -> None:
        """Apply the chosen rule to every group of the visible tier."""
        rule = self.rule_combo.currentData()
        folder = None
        if rule == "in_folder":
            folder = QFileDialog.getExistingDirectory(self, "Keep the copy inside this folder")
            if not folder:
                return
        self.apply_rule_to_all(rule, folder)

    def apply_rule_to_all(self, rule: str, folder: str | None = None) -> set[str]:
        """Mark every group of the visible tier with an auto-mark rule (core ``auto_mark``)."""
        model = self.dup_model()
        marked = Library.auto_mark(model.groups(), rule, folder)
        model.set_marked(marked)
        self._update_move_button()
        self.frame.statusBar().showMessage(f"{RULES[rule]}: {len(marked)} photos marked", 8000)
        return marked

    def mark_not_duplicates(self) -> None:
        """Remember the current group as "not duplicates" and drop it."""
        row = self.group_view.current_row()
        if row < 0:
            return
        model = self.dup_model()
        group = model.group(row)
        hashes = sorted({m.photo.content_hash for m in group.members if m.photo.content_hash})
        for a, b in itertools.combinations(hashes, 2):
            self.frame.catalog.not_duplicates(a, b)
        model.remove_group(row)
        self._update_move_button()
        self.frame.statusBar().showMessage(f"Group {group.id} remembered as not duplicates", 8000)

    def compare_current(self) -> CompareDialog | None:
        """Compare the selected photo of the current group with the group's keeper."""
        row = self.group_view.current_row()
        if row < 0:
            return None
        group = self.dup_model().group(row)
        member = self.group_view.current_member or 1
        other = group.members[min(member, len(group.members) - 1)].photo
        dialog = CompareDialog(group.keeper, other, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def plan_cleanup(self) -> CleanupPlan:
        """Check the visible tier's marks against core's safety rules (metadata not yet
        compared: :meth:`start_cleanup` does that in a worker)."""
        model = self.dup_model()
        return self.frame.catalog.plan_cleanup(model.groups(), model.marked(),
                                               merge_metadata=False)

    def start_cleanup(self) -> tasks.Task:
        """Plan the cleanup, compare the copies' metadata in a worker (it reads every file to
        move), then ask for confirmation.

        Returns:
            The started task.
        """
        plan = self.plan_cleanup()
        self.frame.statusBar().showMessage("Comparing the metadata of the copies to move…")
        task = tasks.Task("compare metadata", lambda _control: Library.plan_merges(plan))
        task.signals.finished.connect(self.confirm_cleanup)
        return self.frame.run_task(task)

    @Slot(object)
    @tasks.while_open
    def confirm_cleanup(self, plan: CleanupPlan) -> None:
        """Show what the cleanup will do (moves, refusals, metadata kept) and run it if
        confirmed."""
        self.frame.statusBar().clearMessage()
        dialog = CleanupConfirmDialog(plan, self.frame.settings.get("destination"), self)
        if dialog.exec() == CleanupConfirmDialog.DialogCode.Accepted:
            self.frame.cleanup.run(plan, dialog.chosen_destination())
