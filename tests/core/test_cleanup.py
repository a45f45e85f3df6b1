"""Cleanup: safety rules, quarantine moves, journal, undo (photosim.core.cleanup)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import catalog_rows, drain, file_sha256, make_photo_obj, write_photo_set
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photosim.config import Settings
from photosim.core.catalog import Catalog
from photosim.core.cleanup import (
    QUARANTINE_DIRNAME,
    CleanupError,
    auto_mark,
    companions_of,
    execute_cleanup,
    last_undoable_session,
    plan_cleanup,
    sessions,
    undo_session,
)
from photosim.core.dedup.grouping import Group, Member, find_duplicates
from photosim.core.dedup.keeper import RULES
from photosim.core.scan.pipeline import run_scan, scan

SETTINGS = Settings(workers=1)




@pytest.fixture
def library(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    paths = write_photo_set(folder)
    catalog = Catalog(tmp_path / "c.db")
    run_scan(scan(catalog, [str(folder)], SETTINGS))
    yield folder, paths, catalog
    catalog.close()


def test_keeper_rule_cleanup_moves_duplicates_to_quarantine_and_undo_restores(library) -> None:  # type: ignore[no-untyped-def]
    folder, paths, catalog = library
    before = {p: file_sha256(p) for p in folder.iterdir() if p.is_file()}
    groups = find_duplicates(catalog, "near").groups
    assert len(groups) == 1
    marked = auto_mark(groups, "keeper")
    assert str(paths["original"]) not in marked and str(paths["copy"]) in marked
    assert str(paths["different"]) not in marked
    plan = plan_cleanup(catalog, groups, marked)
    assert {r.photo.path for r in plan.removals} == marked and not plan.refused
    result = drain(execute_cleanup(catalog, plan))

    assert sorted(result.moved) == sorted(marked) and not result.skipped
    assert result.bytes == plan.bytes > 0
    for path in marked:
        assert not os.path.exists(path)
        moved = folder / QUARANTINE_DIRNAME / result.session / Path(path).name
        assert moved.is_file() and file_sha256(moved) == before[Path(path)]
    assert set(catalog_rows(catalog)) == {str(paths["original"]), str(paths["different"])}
    journal = catalog.db.execute(
        "SELECT state FROM journal WHERE session=?", [result.session]
    ).fetchall()
    assert [s for (s,) in journal] == ["done"] * len(marked)
    # A rescan does not see the quarantine (hidden photosim folder).
    again = run_scan(scan(catalog, [str(folder)], SETTINGS))
    assert again.new == 0 and again.removed == 0

    assert last_undoable_session(catalog) == result.session
    undone = undo_session(catalog, result.session)
    assert sorted(undone.restored) == sorted(marked) and not undone.problems
    after = {p: file_sha256(p) for p in folder.iterdir() if p.is_file()}
    assert after == before  # every file back, byte-identical, nothing else left behind
    assert not (folder / QUARANTINE_DIRNAME).exists()
    assert set(catalog_rows(catalog)) == {str(p) for p in paths.values()}
    assert last_undoable_session(catalog) is None
    assert [s.status for s in sessions(catalog)] == ["undone"]


def test_companions_of_names_only_the_photos_own_sidecars(tmp_path: Path) -> None:
    """``name.xmp`` and ``name.json`` always belong to the photo; ``stem.xmp`` and
    ``stem.AAE`` only when no other file shares the stem (a RAW + JPEG pair)."""
    for name in ("IMG_1.jpg", "IMG_1.jpg.xmp", "IMG_1.jpg.json", "IMG_1.AAE", "IMG_1.jpg.bak",
                 "IMG_10.xmp", "IMG_2.jpg", "IMG_2.CR2", "IMG_2.xmp", "IMG_2.jpg.XMP",
                 "IMG_3.jpg", "target.xmp"):
        (tmp_path / name).write_bytes(b"x")
    os.symlink(tmp_path / "target.xmp", tmp_path / "IMG_3.xmp")
    (tmp_path / "IMG_3.aae").mkdir()

    def names(photo: str) -> list[str]:
        return [Path(p).name for p in companions_of(str(tmp_path / photo))]

    assert names("IMG_1.jpg") == ["IMG_1.AAE", "IMG_1.jpg.json", "IMG_1.jpg.xmp"]
    assert names("IMG_2.jpg") == ["IMG_2.jpg.XMP"]  # IMG_2.xmp stays with IMG_2.CR2
    assert names("IMG_2.CR2") == []
    assert names("IMG_3.jpg") == []  # a link and a folder are never moved
    assert companions_of(str(tmp_path / "gone" / "IMG_1.jpg")) == []


def test_a_copys_sidecars_move_with_it_and_come_back_with_undo(library) -> None:  # type: ignore[no-untyped-def]
    """The copy's XMP sidecar and Apple edit file go into the quarantine with it, the
    keeper's and another file's stay; history counts photos; undo puts all back."""
    folder, paths, catalog = library
    copy = paths["copy"]
    (folder / "copy.jpg.xmp").write_bytes(b"<not read: metadata off>")
    (folder / "copy.AAE").write_bytes(b"<plist>crop</plist>")
    (folder / "original.jpg.xmp").write_bytes(b"keeper's own")
    before = {p: file_sha256(p) for p in folder.iterdir() if p.is_file()}
    groups = find_duplicates(catalog, "exact").groups
    plan = plan_cleanup(catalog, groups, {str(copy)}, merge_metadata=False)
    (removal,) = plan.removals
    assert removal.companions == (str(folder / "copy.AAE"), str(folder / "copy.jpg.xmp"))
    assert plan.companions == 2 and plan.bytes == copy.stat().st_size
    result = drain(execute_cleanup(catalog, plan))
    assert result.moved == [str(copy)] and sorted(result.companions) == list(removal.companions)
    held = folder / QUARANTINE_DIRNAME / result.session
    assert sorted(p.name for p in held.iterdir()) == ["copy.AAE", "copy.jpg", "copy.jpg.xmp"]
    assert (folder / "original.jpg.xmp").read_bytes() == b"keeper's own"
    (info,) = sessions(catalog)
    assert (info.files, info.bytes) == (1, plan.bytes)  # photos only, as the cleanup said
    undone = undo_session(catalog, result.session)
    assert undone.restored == [str(copy)] and not undone.problems
    assert sorted(undone.companions) == list(removal.companions)
    assert {p: file_sha256(p) for p in folder.iterdir() if p.is_file()} == before
    assert not (folder / QUARANTINE_DIRNAME).exists()


def test_a_sidecar_that_cannot_move_stays_and_the_photo_still_moves(  # type: ignore[no-untyped-def]
    library, monkeypatch
) -> None:
    from photosim.core import cleanup

    folder, paths, catalog = library
    sidecar = folder / "copy.jpg.xmp"
    sidecar.write_bytes(b"x")
    real = cleanup._move_out

    def refuse_sidecars(src: str, dst: str | None) -> None:
        if src.endswith(".xmp"):
            raise PermissionError(13, "Permission denied")
        real(src, dst)

    monkeypatch.setattr(cleanup, "_move_out", refuse_sidecars)
    groups = find_duplicates(catalog, "exact").groups
    plan = plan_cleanup(catalog, groups, {str(paths["copy"])}, merge_metadata=False)
    result = drain(execute_cleanup(catalog, plan))
    assert result.moved == [str(paths["copy"])] and result.companions == []
    assert [(p, "Permission denied" in r) for p, r in result.skipped] == [(str(sidecar), True)]
    assert sidecar.read_bytes() == b"x"
    states = catalog.db.execute(
        "SELECT state FROM journal WHERE session=? ORDER BY id", [result.session]).fetchall()
    assert [s for (s,) in states] == ["done", "failed"]
    assert undo_session(catalog, result.session).restored == [str(paths["copy"])]


def test_file_changed_after_the_scan_is_skipped(library) -> None:  # type: ignore[no-untyped-def]
    _, paths, catalog = library
    groups = find_duplicates(catalog, "near").groups
    victim = paths["resized"]
    victim.write_bytes(victim.read_bytes() + b"\0")  # changed after it was judged
    plan = plan_cleanup(catalog, groups, {str(victim)})
    result = drain(execute_cleanup(catalog, plan))
    assert result.moved == [] and victim.exists()
    assert result.skipped == [(str(victim), "file changed since the scan (rescan first)")]


def test_missing_keeper_blocks_the_move(library) -> None:  # type: ignore[no-untyped-def]
    _, paths, catalog = library
    groups = find_duplicates(catalog, "exact").groups
    keeper = groups[0].members[0].photo.path
    other = groups[0].members[1].photo.path
    os.remove(keeper)  # the copy that should stay vanished behind our back
    result = drain(execute_cleanup(catalog, plan_cleanup(catalog, groups, {other})))
    assert result.moved == [] and os.path.exists(other)
    assert "not intact" in result.skipped[0][1]


def test_marking_every_copy_keeps_the_keeper(library) -> None:  # type: ignore[no-untyped-def]
    _, _, catalog = library
    groups = find_duplicates(catalog, "near").groups
    everything = {m.photo.path for m in groups[0].members}
    plan = plan_cleanup(catalog, groups, everything)
    keeper = groups[0].members[0].photo.path
    assert keeper not in {r.photo.path for r in plan.removals}
    assert (keeper, "last copy of its group: it stays") in plan.refused


def test_protected_folder_is_never_touched(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    paths = write_photo_set(photos / "mine")
    backup = photos / "backup"
    backup.mkdir()
    (backup / "copy2.jpg").write_bytes(paths["original"].read_bytes())
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(photos)], SETTINGS))
        run_scan(scan(catalog, [str(backup)], SETTINGS))
        catalog.set_protected(str(backup), True)
        groups = find_duplicates(catalog, "exact").groups
        marked = {m.photo.path for g in groups for m in g.members} - {str(paths["original"])}
        plan = plan_cleanup(catalog, groups, marked)
        assert (str(backup / "copy2.jpg"), "in a protected folder") in plan.refused
        result = drain(execute_cleanup(catalog, plan))
        assert (backup / "copy2.jpg").exists() and str(backup / "copy2.jpg") not in result.moved


def test_similar_members_are_not_removed_by_default() -> None:
    keeper = make_photo_obj(path="/p/a.jpg")
    similar = make_photo_obj(path="/p/b.jpg", content_hash="b" * 32)
    group = Group(1, "similar", [Member(keeper, "keeper", ""), Member(similar, "similar", "")])

    class _NoFolders:
        def folders(self) -> list[tuple[str, bool]]:
            return []

    assert auto_mark([group], "keeper") == set()  # rules never mark similar shots
    plan = plan_cleanup(_NoFolders(), [group], {"/p/b.jpg"})  # type: ignore[arg-type]
    assert plan.removals == [] and plan.refused[0][1].startswith("only similar")
    allowed = plan_cleanup(_NoFolders(), [group], {"/p/b.jpg"}, allow_similar=True)  # type: ignore[arg-type]
    assert [r.photo.path for r in allowed.removals] == ["/p/b.jpg"]


def test_trash_destination_and_unknown_destination(library, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, paths, catalog = library
    trashed: list[str] = []
    monkeypatch.setattr("send2trash.send2trash", lambda p: (trashed.append(p), os.remove(p)))
    groups = find_duplicates(catalog, "exact").groups
    plan = plan_cleanup(catalog, groups, {str(paths["copy"])})
    with pytest.raises(CleanupError):
        drain(execute_cleanup(catalog, plan, destination="shredder"))
    result = drain(execute_cleanup(catalog, plan, destination="trash"))
    assert trashed == [str(paths["copy"])] and result.moved == trashed
    undone = undo_session(catalog, result.session)
    assert undone.restored == [] and "Trash" in undone.problems[0][1]
    assert last_undoable_session(catalog) is None  # nothing photosim itself can put back


def test_undo_never_overwrites(library) -> None:  # type: ignore[no-untyped-def]
    _, paths, catalog = library
    groups = find_duplicates(catalog, "exact").groups
    result = drain(execute_cleanup(catalog, plan_cleanup(catalog, groups, {str(paths["copy"])})))
    paths["copy"].write_bytes(b"something new the user put there")
    undone = undo_session(catalog, result.session)
    assert undone.restored == [] and "original path" in undone.problems[0][1]
    assert paths["copy"].read_bytes() == b"something new the user put there"
    with pytest.raises(CleanupError):
        undo_session(catalog, "no-such-session")


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_keeps_one_copy_per_group(library, rule: str) -> None:  # type: ignore[no-untyped-def]
    folder, _, catalog = library
    groups = find_duplicates(catalog, "near").groups
    marked = auto_mark(groups, rule, folder=str(folder))
    for group in groups:
        assert len([m for m in group.members if m.photo.path not in marked]) == 1


# ----------------------------------------------------------------------------- property
_PATHS = [f"/lib/{d}/{n}.jpg" for d in ("a", "b", "prot") for n in range(3)]


def _groups_from(draw_groups: list[list[int]]) -> list[Group]:
    groups = []
    for gid, indexes in enumerate(draw_groups, 1):
        members = []
        for rank, i in enumerate(indexes):
            photo = make_photo_obj(path=_PATHS[i], content_hash=f"{i:032x}", size=100 + i)
            match = "keeper" if rank == 0 else ("exact", "near", "similar")[i % 3]
            members.append(Member(photo, match, ""))
        groups.append(Group(gid, "near", members))
    return groups


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    layout=st.lists(st.integers(0, len(_PATHS) - 1), min_size=2, max_size=len(_PATHS), unique=True)
    .flatmap(lambda idx: st.lists(st.integers(1, 3), min_size=1, max_size=4)
             .map(lambda sizes, idx=idx: _split(idx, sizes))),
    rule=st.sampled_from(sorted(RULES)),
    extra_marks=st.sets(st.sampled_from(_PATHS)),
    unmarks=st.sets(st.sampled_from(_PATHS)),
)
def test_no_marks_or_rules_remove_a_last_copy_or_touch_protected(
    layout: list[list[int]], rule: str, extra_marks: set[str], unmarks: set[str]
) -> None:
    groups = [g for g in _groups_from(layout) if len(g.members) >= 2]

    class _Folders:
        def folders(self) -> list[tuple[str, bool]]:
            return [("/lib/a", False), ("/lib/b", False), ("/lib/prot", True)]

    marked = (auto_mark(groups, rule, folder="/lib/b") | extra_marks) - unmarks
    plan = plan_cleanup(_Folders(), groups, marked)  # type: ignore[arg-type]
    removed = {r.photo.path for r in plan.removals}
    for group in groups:
        paths = {m.photo.path for m in group.members}
        assert paths - removed, "a group lost its last copy"
    assert not any(p.startswith("/lib/prot/") for p in removed)
    assert removed <= marked
    # Every removal names a keeper that stays.
    assert all(r.keeper.path not in removed for r in plan.removals)


def _split(indexes: list[int], sizes: list[int]) -> list[list[int]]:
    out, start = [], 0
    for size in sizes:
        chunk = indexes[start : start + size + 1]
        if chunk:
            out.append(chunk)
        start += size + 1
    return out
