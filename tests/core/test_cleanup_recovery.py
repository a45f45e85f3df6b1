"""Cleanup and undo interrupted at the worst instant: the journal is settled from the disk.

Each test stops the process's work exactly where a kill would leave the journal and the disk
disagreeing (the file moved, its entry not yet marked; or the other way round), by raising
from inside the move. ``tests/crash_trials.py`` does the same with real SIGKILLs.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from helpers import catalog_rows, drain, file_sha256, write_photo_set

from photosim.config import Settings
from photosim.core import cleanup
from photosim.core.catalog import Catalog
from photosim.core.cleanup import (
    QUARANTINE_DIRNAME,
    auto_mark,
    execute_cleanup,
    last_undoable_session,
    plan_cleanup,
    reconcile_journal,
    sessions,
    undo_session,
)
from photosim.core.dedup.grouping import find_duplicates
from photosim.core.scan.pipeline import run_scan, scan


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""




@pytest.fixture
def library(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    write_photo_set(folder)
    catalog = Catalog(tmp_path / "c.db")
    run_scan(scan(catalog, [str(folder)], Settings(workers=1)))
    before = {str(p): file_sha256(p) for p in folder.iterdir() if p.is_file()}
    yield folder, catalog, before
    catalog.close()


def _plan(catalog: Catalog):  # type: ignore[no-untyped-def]
    groups = find_duplicates(catalog, "near").groups
    return plan_cleanup(catalog, groups, auto_mark(groups, "keeper"))


def _killed_on_move(monkeypatch: pytest.MonkeyPatch, nth: int, after_move: bool) -> None:
    """Make the ``nth`` move out die just before or just after the file moves."""
    real = cleanup._move_out
    calls = [0]

    def move(src: str, dst: str | None) -> None:
        calls[0] += 1
        if calls[0] == nth and not after_move:
            raise Killed
        real(src, dst)
        if calls[0] == nth:
            raise Killed

    monkeypatch.setattr(cleanup, "_move_out", move)


def _assert_library_restored(folder: Path, catalog: Catalog, before: dict[str, str]) -> None:
    now = {str(p): file_sha256(p) for p in folder.iterdir() if p.is_file()}
    assert now == before  # every photo back at its path, byte for byte
    assert not (folder / QUARANTINE_DIRNAME).exists()
    assert set(catalog_rows(catalog)) == set(before)
    assert catalog.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("after_move", [True, False], ids=["after-move", "before-move"])
def test_cleanup_killed_around_a_move_then_undo_restores_everything(
    library, monkeypatch: pytest.MonkeyPatch, after_move: bool
) -> None:  # type: ignore[no-untyped-def]
    folder, catalog, before = library
    plan = _plan(catalog)
    assert len(plan.removals) >= 3
    _killed_on_move(monkeypatch, 2, after_move)
    with pytest.raises(Killed):
        drain(execute_cleanup(catalog, plan))
    monkeypatch.undo()
    second = plan.removals[1].photo.path
    state = catalog.db.execute("SELECT state FROM journal WHERE src=?", [second]).fetchone()[0]
    assert state == "pending"  # the journal and the disk disagree about this one file
    assert os.path.exists(second) is not after_move

    notes = reconcile_journal(catalog)
    assert len(notes) == 1 and second in notes[0]
    state = catalog.db.execute("SELECT state FROM journal WHERE src=?", [second]).fetchone()[0]
    assert state == ("done" if after_move else "dropped")
    assert (second in catalog_rows(catalog)) is not after_move
    (info,) = sessions(catalog)
    assert info.status == "interrupted" and info.files == (2 if after_move else 1)

    session = last_undoable_session(catalog)
    assert session == info.id
    result = undo_session(catalog, session)
    assert not result.problems and len(result.restored) == info.files
    _assert_library_restored(folder, catalog, before)
    assert last_undoable_session(catalog) is None


def test_undo_killed_after_moving_a_file_back(
    library, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    folder, catalog, before = library
    result = drain(execute_cleanup(catalog, _plan(catalog)))
    assert len(result.moved) >= 3
    real = cleanup._mark_restored
    calls = [0]

    def mark(*args: object) -> None:
        calls[0] += 1
        if calls[0] == 2:
            raise Killed  # the second file is back on disk, its entry still 'restoring'
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cleanup, "_mark_restored", mark)
    with pytest.raises(Killed):
        undo_session(catalog, result.session)
    monkeypatch.undo()
    states = [s for (s,) in catalog.db.execute("SELECT state FROM journal ORDER BY id DESC")]
    assert states[:2] == ["undone", "restoring"]

    again = undo_session(catalog, result.session)  # reconciles first, then goes on
    assert not again.problems
    _assert_library_restored(folder, catalog, before)
    assert [s.status for s in sessions(catalog)] == ["undone"]


def test_undo_killed_before_moving_a_file_back(
    library, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    folder, catalog, before = library
    result = drain(execute_cleanup(catalog, _plan(catalog)))
    real = shutil.move
    calls = [0]

    def move(src: str, dst: str) -> str:
        calls[0] += 1
        if calls[0] == 2:
            raise Killed  # entry marked 'restoring', the file not moved yet
        return real(src, dst)

    monkeypatch.setattr(cleanup.shutil, "move", move)
    with pytest.raises(Killed):
        undo_session(catalog, result.session)
    monkeypatch.undo()
    assert reconcile_journal(catalog)  # 'restoring' -> 'done': still to put back
    again = undo_session(catalog, result.session)
    assert not again.problems
    _assert_library_restored(folder, catalog, before)


def test_undo_puts_back_a_file_the_journal_does_not_know(library) -> None:  # type: ignore[no-untyped-def]
    folder, catalog, before = library
    result = drain(execute_cleanup(catalog, _plan(catalog)))
    # A file in the session's quarantine without a 'done' entry (journal written by an older
    # version, or edited by hand): undo still puts it back; the next scan reads it.
    moved = result.moved[0]
    catalog.db.execute("UPDATE journal SET state='failed' WHERE src=?", [moved])
    outcome = undo_session(catalog, result.session)
    assert moved in outcome.restored and not outcome.problems
    assert {str(p): file_sha256(p) for p in folder.iterdir() if p.is_file()} == before
    assert not (folder / QUARANTINE_DIRNAME).exists()
    run_scan(scan(catalog, [str(folder)], Settings(workers=1)))
    assert set(catalog_rows(catalog)) == set(before)


def test_partial_copy_across_volumes_is_removed_only_when_the_original_is_whole(
    library, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A move across volumes copies, then deletes: killed between, both files exist."""
    folder, catalog, before = library
    plan = _plan(catalog)

    def copy_then_die(src: str, dst: str | None) -> None:
        assert dst is not None
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read()[:100])  # a partial copy
        raise Killed

    monkeypatch.setattr(cleanup, "_move_out", copy_then_die)
    with pytest.raises(Killed):
        drain(execute_cleanup(catalog, plan))
    monkeypatch.undo()
    reconcile_journal(catalog)
    assert {str(p): file_sha256(p) for p in folder.iterdir() if p.is_file()} == before
    leftovers = [f for _, _, files in os.walk(folder / QUARANTINE_DIRNAME) for f in files]
    assert leftovers == []


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "No space left on device"), (errno.EACCES, "Permission denied")],
)
def test_a_move_the_system_refuses_is_skipped_with_its_reason(
    library, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:  # type: ignore[no-untyped-def]
    """A full quarantine disk or a photo we may not move: that file stays, the rest go."""
    folder, catalog, before = library
    plan = _plan(catalog)
    refused = plan.removals[0].photo.path
    real = cleanup._move_out

    def move(src: str, dst: str | None) -> None:
        if src == refused:
            raise OSError(code, os.strerror(code), dst)
        real(src, dst)

    monkeypatch.setattr(cleanup, "_move_out", move)
    result = drain(execute_cleanup(catalog, plan))
    assert result.skipped == [(refused, f"could not move: {words}")]
    assert len(result.moved) == len(plan.removals) - 1
    assert os.path.exists(refused) and refused in catalog_rows(catalog)
    state = catalog.db.execute("SELECT state FROM journal WHERE src=?", [refused]).fetchone()
    assert state == ("failed",)
    monkeypatch.undo()
    assert not undo_session(catalog, result.session).problems
    _assert_library_restored(folder, catalog, before)
