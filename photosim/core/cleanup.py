"""Moving duplicates out of the library — safely, journaled, and undoable.

The safety rules live here, not in any widget, so the GUI, the CLI and tests all get them:

- a group never loses its last copy: at least one member of every group stays, and the
  copy that stays must still be on disk with the content that was judged;
- files in protected folders are never touched;
- members that are only *similar* (another shot of the scene) are never removed unless the
  caller explicitly allows it;
- before a file moves, its size, mtime and content hash must still be those in the catalog;
  an exact duplicate is also compared byte for byte with the copy that stays;
- every action is written to the journal before it happens, and marked done after;
- a photo's own sidecar files (:func:`companions_of`: its XMP sidecar, Apple's ``.AAE``
  edit file, Google Takeout's ``.json``) move with it and come back with it;
- the default destination is a quarantine folder inside the scanned root
  (``<root>/.photosim-quarantine/<session>/<relative path>``): same volume, so the move is an
  instant rename, the scan skips it, and undo is a rename back. The system Trash (send2trash)
  is an explicit choice; undo cannot take files back out of it.

Each cleanup is a *session*; :func:`undo_session` puts every file of a session back at its
original path (and its catalog row back), refusing to overwrite anything that is there now.

Crash consistency: each move is journaled as an intent (``pending``; ``restoring`` for an
undo) before the rename and marked done after it, in SQLite transactions synced to disk
(``synchronous=FULL`` while files move). If the process dies in between, the journal and the
disk disagree about one file; :func:`reconcile_journal`, run before every cleanup, undo and
history listing, settles it from what is on disk: a move that happened is marked done (so undo
restores it), one that did not is dropped. Undo also puts back any file its session's
quarantine folder still holds, journaled or not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import filecmp
import json
import logging
import os
import shutil
import stat
import time
import uuid
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field

from photosim.core.cancel import CancelToken
from photosim.core.catalog import Catalog, Photo, db_path, py_path
from photosim.core.dedup.grouping import Group
from photosim.core.dedup.keeper import choose_keep
from photosim.core.metadata import (
    MetadataError,
    MetadataMerge,
    PhotoMetadata,
    available,
    missing,
    read_metadata,
    sidecar_of,
    write_sidecar,
)
from photosim.core.scan.hashing import file_content_hash
from photosim.core.types import Error, Progress, ScanStage

logger = logging.getLogger(__name__)

QUARANTINE_DIRNAME = ".photosim-quarantine"
DESTINATIONS = ("quarantine", "trash")


class CleanupError(Error):
    """A cleanup or undo cannot be done as asked."""


@dataclass(frozen=True)
class Removal:
    """One file planned to move out.

    Attributes:
        photo: The file to move.
        keeper: The copy that stays (must still be intact when the move happens).
        group_id: The group both belong to.
        match: How ``photo`` matched: ``"exact"``, ``"near"`` or ``"similar"``.
        companions: The photo's own sidecar files (:func:`companions_of`), moved with it.
    """

    photo: Photo
    keeper: Photo
    group_id: int
    match: str
    companions: tuple[str, ...] = ()


@dataclass
class CleanupPlan:
    """What a cleanup would do, checked against the safety rules.

    Attributes:
        removals: Files that will move.
        refused: ``(path, reason)`` of marked files that must stay.
        merges: Metadata (keywords, rating, caption, GPS, date taken) that moving copies
            carry and their keeper lacks, written into the keeper's XMP sidecar before they
            move (:mod:`photosim.core.metadata`).
        notes: Remarks for the user (e.g. that metadata could not be compared).
    """

    removals: list[Removal] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    merges: list[MetadataMerge] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """Total size of the photos that will move, in bytes (sidecars not counted)."""
        return sum(r.photo.size for r in self.removals)

    @property
    def companions(self) -> int:
        """How many sidecar files move with the photos."""
        return sum(len(r.companions) for r in self.removals)


@dataclass
class CleanupResult:
    """What a cleanup did.

    Attributes:
        session: Session id (for :func:`undo_session`).
        destination: ``"quarantine"`` or ``"trash"``.
        moved: Paths moved out.
        bytes: Bytes moved out.
        skipped: ``(path, reason)`` of planned files left in place.
        cancelled: True if stopped early on request.
        merged: Sidecars that received the metadata of copies that moved out.
        companions: Sidecar files that moved out with their photos.
    """

    session: str
    destination: str
    moved: list[str] = field(default_factory=list)
    bytes: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    cancelled: bool = False
    companions: list[str] = field(default_factory=list)


@dataclass
class UndoResult:
    """What an undo did: ``restored`` photo paths, ``companions`` (sidecar files put back
    with them) and ``problems`` as ``(path, reason)``."""

    session: str
    restored: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    companions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SessionInfo:
    """One cleanup session for the history view."""

    id: str
    created_at: float
    destination: str
    status: str
    files: int
    bytes: int


# ---------------------------------------------------------------------------- companions
#: Sidecar files named after the whole file name (``IMG_1.jpg.xmp``): always that photo's.
_FULL_NAME_COMPANIONS = (".xmp", ".json")
#: Sidecar files named after the stem (``IMG_1.xmp``, ``IMG_1.AAE``): the photo's only when no
#: other file shares the stem (a RAW + JPEG pair shares ``IMG_1.xmp``: it stays).
_STEM_COMPANIONS = (".xmp", ".aae")


def companions_of(path: str, entries: Iterable[str] | None = None) -> list[str]:
    """The sidecar files that belong to the photo at ``path`` alone, which move with it.

    ``<name>.xmp`` (darktable, digiKam) and ``<name>.json`` (Google Takeout) always do;
    ``<stem>.xmp`` (Lightroom, Capture One) and ``<stem>.aae`` (Apple Photos edits) only when
    no other file in the folder has the same stem (a RAW and its JPEG share them; they then
    stay with the file that stays). Suffixes match in any case. Symbolic links and folders
    are never companions.

    Args:
        path: A photo's path.
        entries: The names in its folder, when already listed (else it is listed).

    Returns:
        Existing regular files, sorted; empty when the folder cannot be listed.
    """
    folder, name = os.path.split(path)
    stem = os.path.splitext(name)[0]
    if entries is None:
        entries = _listing(folder)
    full_name: list[str] = []
    by_stem: list[str] = []
    shared_stem = False
    for entry in entries:
        root, ext = os.path.splitext(entry)
        if entry == name or root not in (name, stem):
            continue
        if root == name and ext.lower() in _FULL_NAME_COMPANIONS:
            into = full_name
        elif root == stem and ext.lower() in _STEM_COMPANIONS:
            into = by_stem
        else:
            shared_stem = shared_stem or root == stem  # IMG_1.CR2 beside IMG_1.jpg
            continue
        full = os.path.join(folder, entry)
        if os.path.isfile(full) and not os.path.islink(full):
            into.append(full)
    return sorted(full_name + ([] if shared_stem else by_stem))


def _listing(folder: str) -> list[str]:
    """The names in a folder; empty when it cannot be listed."""
    try:
        return os.listdir(folder or ".")
    except OSError:
        return []


# ---------------------------------------------------------------------------- planning
def _protected_roots(catalog: Catalog) -> list[str]:
    return [p.rstrip(os.sep) + os.sep for p, protected in catalog.folders() if protected]


def _in_protected(path: str, roots: list[str]) -> bool:
    return any(path.startswith(root) for root in roots)


def plan_cleanup(
    catalog: Catalog,
    groups: Iterable[Group],
    marked: Iterable[str],
    allow_similar: bool = False,
    merge_metadata: bool = True,
) -> CleanupPlan:
    """Check marked files against the safety rules.

    Args:
        catalog: Open catalog (for protected folders).
        groups: The groups the marks refer to.
        marked: Paths the user (or an auto-mark rule) wants moved out.
        allow_similar: Also move members that are only similar, not duplicates.
        merge_metadata: Read the metadata of the copies and their keeper (a few milliseconds
            per file) and plan the merges of :func:`plan_merges`; without it, metadata is
            neither compared nor kept.

    Returns:
        The plan: every marked file either in ``removals`` or in ``refused`` with a reason.
    """
    marked_set = set(marked)
    protected = _protected_roots(catalog)
    plan = CleanupPlan()
    listings: dict[str, list[str]] = {}

    def companions(path: str) -> tuple[str, ...]:
        folder = os.path.dirname(path)
        if folder not in listings:
            listings[folder] = _listing(folder)
        return tuple(companions_of(path, listings[folder]))

    for group in groups:
        members = group.members
        # The copy that stays: the best-ranked member that is not marked, or — when the user
        # marked all of them — the group's keeper, which is then refused.
        stays = [m for m in members if m.photo.path not in marked_set]
        if not stays:
            stays = [members[0]]
            plan.refused.append((members[0].photo.path, "last copy of its group: it stays"))
        keeper = stays[0].photo
        for member in members:
            path = member.photo.path
            if path not in marked_set or member in stays:
                continue
            if _in_protected(path, protected):
                plan.refused.append((path, "in a protected folder"))
            elif member.match == "similar" and not allow_similar:
                plan.refused.append((path, "only similar (another shot), not a duplicate"))
            else:
                plan.removals.append(Removal(member.photo, keeper, group.id, member.match,
                                             companions(path)))
    if merge_metadata:
        plan_merges(plan)
    return plan


def plan_merges(plan: CleanupPlan) -> None:
    """Find what the copies about to move carry and their keeper lacks; plan keeping it.

    For each keeper, its metadata (with its sidecar) is compared with that of its moving
    copies (with theirs). What only copies carry becomes a :class:`MetadataMerge` into the
    keeper's XMP sidecar. When that sidecar cannot be written (read-only folder, an existing
    sidecar exiv2 cannot read), the copies that carry the metadata are refused instead: they
    stay, nothing is lost. Copies whose metadata cannot be read are moved as before (their
    pixels are a duplicate; the reason is logged).
    """
    if not plan.removals:
        return
    if not available():
        plan.notes.append(
            "metadata of the copies (keywords, ratings, captions, GPS) is not compared or "
            'kept: install it with pip install "photosim[metadata]"')
        return
    by_keeper: dict[str, list[Removal]] = {}
    for removal in plan.removals:
        by_keeper.setdefault(removal.keeper.path, []).append(removal)
    refused: dict[str, str] = {}
    for keeper, removals in by_keeper.items():
        copies = [(r.photo.path, _metadata_or_empty(r.photo.path)) for r in removals]
        if not any(md for _, md in copies):
            continue
        sidecar = sidecar_of(keeper)
        have, error = PhotoMetadata(), _unwritable(sidecar)
        if error is None:
            try:
                have = read_metadata(keeper)
            except MetadataError as exc:
                error = f"cannot read the keeper's metadata: {exc}"
        added, sources = missing(have, copies)
        if not added:
            continue
        plan.merges.append(MetadataMerge(keeper, sidecar, added, sources, error))
        if error:
            for path in sources:
                refused[path] = f"carries metadata its keeper lacks, which cannot be kept: {error}"
    if refused:
        plan.refused.extend(refused.items())
        plan.removals = [r for r in plan.removals if r.photo.path not in refused]


def _metadata_or_empty(path: str) -> PhotoMetadata:
    try:
        return read_metadata(path)
    except MetadataError as exc:
        logger.info("metadata not compared: %s", exc)
        return PhotoMetadata()


def _unwritable(sidecar: str) -> str | None:
    """Why the sidecar cannot be written, or None."""
    folder = os.path.dirname(sidecar) or "."
    if os.path.exists(sidecar):
        try:
            read_metadata(sidecar, sidecar=False)
        except MetadataError:
            return f"{os.path.basename(sidecar)} exists and is not a readable XMP sidecar"
        if not os.access(sidecar, os.W_OK) or not os.access(folder, os.W_OK):
            return f"{os.path.basename(sidecar)} is read-only"
    elif not os.access(folder, os.W_OK):
        return f"the folder {folder} is read-only"
    return None


def auto_mark(groups: Iterable[Group], rule: str = "keeper", folder: str | None = None) -> set[str]:
    """Apply an auto-mark rule to every group at once.

    In each group the rule picks one copy to keep among the duplicates (keeper, exact and
    near members); the other duplicates are marked. Members that are only similar are never
    marked by a rule. The ``keeper`` rule keeps the group's keeper, which grouping chose by
    :func:`~photosim.core.dedup.keeper.keeper_key` and by edit evidence (the copy the others
    match without an edited region).

    Args:
        groups: Duplicate groups.
        rule: A key of :data:`photosim.core.dedup.keeper.RULES`.
        folder: For the ``in_folder`` rule.

    Returns:
        Paths marked for moving out.
    """
    marked: set[str] = set()
    for group in groups:
        duplicates = [m.photo for m in group.members if m.match != "similar"]
        keep = group.keeper if rule == "keeper" else choose_keep(duplicates, rule, folder)
        marked.update(p.path for p in duplicates if p.path != keep.path)
    return marked


# ---------------------------------------------------------------------------- checks
def _verify_unchanged(photo: Photo) -> str | None:
    """Reason the file differs from its catalog row, or None when it is as judged."""
    try:
        st = os.stat(photo.path, follow_symlinks=False)
    except FileNotFoundError:
        return "file no longer exists"
    except OSError as exc:
        return f"cannot check file: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return "no longer a regular file"
    if (st.st_size, st.st_mtime_ns) != (photo.size, photo.mtime_ns):
        return "file changed since the scan (rescan first)"
    try:
        content_hash, _ = file_content_hash(photo.path)
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if content_hash != photo.content_hash:
        return "content changed since the scan (rescan first)"
    return None


def _root_of(catalog: Catalog, path: str) -> str:
    roots = sorted((p for p, _ in catalog.folders()), key=len, reverse=True)
    for root in roots:
        if path.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return os.path.dirname(path)


def _quarantine_path(catalog: Catalog, session: str, path: str) -> str:
    root = _root_of(catalog, path)
    return os.path.join(root, QUARANTINE_DIRNAME, session, os.path.relpath(path, root))


# ---------------------------------------------------------------------------- execution
def execute_cleanup(
    catalog: Catalog,
    plan: CleanupPlan,
    destination: str = "quarantine",
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, CleanupResult]:
    """Move the planned files out, journaling each action before it happens.

    Args:
        catalog: Open catalog; moved files leave ``photos`` (their rows are kept in the journal).
        plan: From :func:`plan_cleanup`.
        destination: ``"quarantine"`` (default, undoable) or ``"trash"`` (system Trash).
        cancel: Checked between files.

    Yields:
        Progress per file.

    Returns:
        What moved and what was skipped, with reasons.

    Raises:
        CleanupError: Unknown destination.
    """
    if destination not in DESTINATIONS:
        raise CleanupError(f"unknown destination {destination!r}: use quarantine or trash")
    cancel = cancel or CancelToken()
    reconcile_journal(catalog)
    session = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    result = CleanupResult(session, destination)
    with _synced(catalog):
        catalog.db.execute(
            "INSERT INTO cleanup_sessions(id, created_at, destination, status) "
            "VALUES (?, ?, ?, ?)",
            [session, time.time(), destination, "running"],
        )
        yield from _move_each(catalog, plan, destination, session, cancel, result)
        status = "cancelled" if result.cancelled else "done"
        catalog.db.execute("UPDATE cleanup_sessions SET status=? WHERE id=?", [status, session])
    total = len(plan.removals)
    yield Progress(ScanStage.DONE, total, total, "done")
    return result


def _move_each(
    catalog: Catalog,
    plan: CleanupPlan,
    destination: str,
    session: str,
    cancel: CancelToken,
    result: CleanupResult,
) -> Generator[Progress, None, None]:
    """The moves of :func:`execute_cleanup`: journal the intent, move, mark it done.

    The metadata merges go first: a copy moves only after what only it carried is in its
    keeper's sidecar."""
    total = len(plan.removals)
    blocked = _merge_each(catalog, plan, session, result)
    for done, removal in enumerate(plan.removals):
        if cancel.cancelled():
            result.cancelled = True
            break
        yield Progress(ScanStage.PROCESSING, done, total, removal.photo.path)
        reason = blocked.get(removal.photo.path) or _check(removal)
        if reason is not None:
            result.skipped.append((removal.photo.path, reason))
            continue
        photo = removal.photo
        dst = _quarantine_path(catalog, session, photo.path) if destination == "quarantine" else None
        cur = catalog.db.execute(
            "INSERT INTO journal(session, action, src, dst, size, mtime_ns, content_hash, keeper, "
            "photo_json, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            [
                session,
                destination,
                db_path(photo.path),
                db_path(dst) if dst else None,
                photo.size,
                photo.mtime_ns,
                photo.content_hash,
                db_path(removal.keeper.path),
                json.dumps(_photo_record(photo)),
                time.time(),
            ],
        )
        entry = cur.lastrowid
        try:
            _move_out(photo.path, dst)
        except OSError as exc:
            reason = f"could not move: {exc.strerror or exc}"
            catalog.db.execute(
                "UPDATE journal SET state='failed', error=?, updated_at=? WHERE id=?",
                [reason, time.time(), entry],
            )
            result.skipped.append((photo.path, reason))
            continue
        with catalog.transaction():
            catalog.db.execute(
                "UPDATE journal SET state='done', updated_at=? WHERE id=?", [time.time(), entry]
            )
            catalog.delete_paths([photo.path])
        result.moved.append(photo.path)
        result.bytes += photo.size
        _move_companions(catalog, removal, destination, session, result)


def _move_companions(
    catalog: Catalog, removal: Removal, destination: str, session: str, result: CleanupResult
) -> None:
    """Move the sidecar files of a photo that just moved out, each journaled like a photo
    (its ``photo_json`` names the photo it belongs to: undo puts it back without a catalog
    row). A sidecar that cannot move stays where it is, with the reason in ``skipped``; one
    that is gone or no longer a regular file is left alone."""
    photo = removal.photo
    for path in removal.companions:
        try:
            st = os.stat(path, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                continue
            content_hash, _ = file_content_hash(path)
        except OSError:
            continue  # gone since the plan: nothing to carry
        dst = _quarantine_path(catalog, session, path) if destination == "quarantine" else None
        cur = catalog.db.execute(
            "INSERT INTO journal(session, action, src, dst, size, mtime_ns, content_hash, keeper, "
            "photo_json, state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            [session, destination, db_path(path), db_path(dst) if dst else None, st.st_size,
             st.st_mtime_ns, content_hash, db_path(removal.keeper.path),
             json.dumps({"companion_of": photo.path}), time.time()],
        )
        entry = cur.lastrowid
        try:
            _move_out(path, dst)
        except OSError as exc:
            reason = f"could not move it with {os.path.basename(photo.path)}: {exc.strerror or exc}"
            _set_state(catalog, entry, "failed", reason)
            result.skipped.append((path, reason))
            continue
        _set_state(catalog, entry, "done")
        result.companions.append(path)


def _companion(record: str | None) -> bool:
    """True when a journal entry's ``photo_json`` is that of a sidecar file, not a photo."""
    return bool(record) and '"companion_of"' in record[:20]  # type: ignore[index]


def _merge_each(
    catalog: Catalog, plan: CleanupPlan, session: str, result: CleanupResult
) -> dict[str, str]:
    """Write the plan's metadata merges, each journaled (``metadata``) before it happens.

    An existing sidecar is first copied into the session's quarantine folder (the journal's
    ``dst``), so undo puts it back byte for byte; a new sidecar is removed by undo. The
    journal's ``content_hash`` is the sidecar's hash after the merge: undo leaves a sidecar
    that was edited since.

    Returns:
        ``{copy path: reason}`` of the copies that must stay because their merge failed.
    """
    blocked: dict[str, str] = {}
    for merge in plan.merges:
        if merge.error:
            continue  # the plan refused its copies already
        sidecar = merge.sidecar
        backup = _quarantine_path(catalog, session, sidecar) if os.path.exists(sidecar) else None
        cur = catalog.db.execute(
            "INSERT INTO journal(session, action, src, dst, size, mtime_ns, content_hash, keeper, "
            "photo_json, state, updated_at) VALUES (?, 'metadata', ?, ?, 0, 0, '', ?, ?, "
            "'pending', ?)",
            [session, db_path(sidecar), db_path(backup) if backup else None, db_path(merge.keeper),
             json.dumps({"added": merge.added.describe(), "sources": merge.sources}), time.time()],
        )
        entry = cur.lastrowid
        try:
            if backup:
                os.makedirs(os.path.dirname(backup), exist_ok=True)
                shutil.copy2(sidecar, backup)
            write_sidecar(sidecar, merge.added)
            written, _ = file_content_hash(sidecar)
        except (MetadataError, OSError) as exc:
            reason = f"its metadata could not be kept in {sidecar}: {exc}"
            if backup and os.path.exists(backup):
                os.replace(backup, sidecar)  # whatever the write did, the old sidecar is back
            _set_state(catalog, entry, "failed", reason)
            for path in merge.sources:
                blocked[path] = reason
            continue
        catalog.db.execute(
            "UPDATE journal SET state='done', content_hash=?, updated_at=? WHERE id=?",
            [written, time.time(), entry],
        )
        result.merged.append(sidecar)
    return blocked


@contextlib.contextmanager
def _synced(catalog: Catalog) -> Iterator[None]:
    """Every commit inside reaches the disk before the next file moves (``synchronous=FULL``).

    The catalog normally runs ``synchronous=NORMAL`` (WAL): a killed process loses nothing,
    but a power cut may drop the last commits, and a journal entry must never be lost after
    the file it describes has moved.
    """
    catalog.db.execute("PRAGMA synchronous=FULL")
    try:
        yield
    finally:
        catalog.db.execute("PRAGMA synchronous=NORMAL")


def _check(removal: Removal) -> str | None:
    reason = _verify_unchanged(removal.photo)
    if reason is not None:
        return reason
    keeper_reason = _verify_unchanged(removal.keeper)
    if keeper_reason is not None:
        return f"the copy that stays is not intact ({keeper_reason})"
    same_content = removal.photo.content_hash == removal.keeper.content_hash
    if same_content and not filecmp.cmp(removal.photo.path, removal.keeper.path, shallow=False):
        return "not byte-identical to the copy that stays"
    return None


def _move_out(src: str, dst: str | None) -> None:
    if dst is None:
        from send2trash import send2trash  # lazy: only the Trash path needs it

        send2trash(src)
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.lexists(dst):
        raise FileExistsError(f"{dst} already exists")
    # Same volume: an atomic rename that keeps mtime. Across volumes shutil.move copies
    # (with metadata) and deletes the source only after the copy succeeded.
    shutil.move(src, dst)


def _photo_record(photo: Photo) -> dict:
    record = dataclasses.asdict(photo)
    record.pop("id")
    record["variants"] = photo.variants.hex() if photo.variants else None
    return record


# ---------------------------------------------------------------------------- undo
def undo_session(catalog: Catalog, session: str) -> UndoResult:
    """Put every file of a cleanup session back at its original path.

    Files are restored newest action first; a path that is occupied now is never overwritten
    (the file stays in quarantine and the problem is reported). Catalog rows come back too,
    so the library looks as before without a rescan.

    Raises:
        CleanupError: Unknown session.
    """
    row = catalog.db.execute(
        "SELECT destination FROM cleanup_sessions WHERE id=?", [session]
    ).fetchone()
    if row is None:
        raise CleanupError(f"no cleanup session {session!r} (see `photosim history`)")
    reconcile_journal(catalog)
    result = UndoResult(session)
    entries = catalog.db.execute(
        "SELECT id, action, src, dst, photo_json FROM journal "
        "WHERE session=? AND state='done' ORDER BY id DESC",
        [session],
    ).fetchall()
    with _synced(catalog):
        for entry, action, src_v, dst_v, record in entries:
            src = py_path(src_v)
            if action == "metadata":
                _undo_merge(catalog, entry, src, py_path(dst_v) if dst_v else None, result)
                continue
            if action == "trash" or dst_v is None:
                result.problems.append((src, "in the system Trash: restore it from there"))
                continue
            dst = py_path(dst_v)
            if os.path.lexists(src):
                result.problems.append((src, f"a file is at the original path now; left {dst}"))
                continue
            catalog.db.execute(
                "UPDATE journal SET state='restoring', updated_at=? WHERE id=?",
                [time.time(), entry],
            )
            try:
                os.makedirs(os.path.dirname(src), exist_ok=True)
                shutil.move(dst, src)
            except OSError as exc:
                catalog.db.execute(
                    "UPDATE journal SET state='done', updated_at=? WHERE id=?",
                    [time.time(), entry],
                )
                result.problems.append((src, f"could not restore: {exc.strerror or exc}"))
                continue
            _mark_restored(catalog, entry, record)
            (result.companions if _companion(record) else result.restored).append(src)
            _remove_empty_parents(os.path.dirname(dst), QUARANTINE_DIRNAME)
        _restore_unjournaled(catalog, session, result)
        status = "undone" if not result.problems else "partly undone"
        catalog.db.execute("UPDATE cleanup_sessions SET status=? WHERE id=?", [status, session])
    return result


def _undo_merge(
    catalog: Catalog, entry: int, sidecar: str, backup: str | None, result: UndoResult
) -> None:
    """Take a metadata merge back: the old sidecar returns, a new one goes (unless edited)."""
    (written,) = catalog.db.execute(
        "SELECT content_hash FROM journal WHERE id=?", [entry]).fetchone()
    try:
        now = file_content_hash(sidecar)[0] if os.path.exists(sidecar) else None
    except OSError as exc:
        result.problems.append((sidecar, f"cannot read it: {exc.strerror or exc}"))
        return
    if now is not None and now != written:
        kept = f"; the one before the merge is {backup}" if backup else ""
        result.problems.append((sidecar, f"edited since the cleanup merged into it: left{kept}"))
        return
    try:
        if backup:
            os.replace(backup, sidecar)
            _remove_empty_parents(os.path.dirname(backup), QUARANTINE_DIRNAME)
        elif now is not None:
            os.remove(sidecar)
    except OSError as exc:
        result.problems.append((sidecar, f"could not undo the merge: {exc.strerror or exc}"))
        return
    _set_state(catalog, entry, "undone")


def _mark_restored(catalog: Catalog, entry: int, record: str) -> None:
    """The journal entry is undone and the photo's catalog row is back (a sidecar file has
    none), in one transaction."""
    with catalog.transaction():
        if not _companion(record):
            values = json.loads(record)
            values["variants"] = bytes.fromhex(values["variants"]) if values["variants"] else None
            catalog.upsert_photos([values])
        catalog.db.execute(
            "UPDATE journal SET state='undone', updated_at=? WHERE id=?", [time.time(), entry]
        )


def _restore_unjournaled(catalog: Catalog, session: str, result: UndoResult) -> None:
    """Put back every file still in the session's quarantine folders (belt and braces).

    After :func:`reconcile_journal` every moved file has a ``done`` entry, so this normally
    finds nothing; it guarantees that no photo stays in a folder that scans never look into.
    Files come back without a catalog row: the next scan reads them.
    """
    for root, _ in catalog.folders():
        base = os.path.join(root, QUARANTINE_DIRNAME, session)
        if not os.path.isdir(base):
            continue
        for folder, _dirs, files in os.walk(base, topdown=False):
            for name in files:
                held = os.path.join(folder, name)
                original = os.path.join(root, os.path.relpath(held, base))
                if os.path.lexists(original):
                    result.problems.append(
                        (original, f"a file is at the original path now; left {held}")
                    )
                    continue
                try:
                    os.makedirs(os.path.dirname(original), exist_ok=True)
                    os.rename(held, original)
                except OSError as exc:
                    result.problems.append((original, f"could not restore: {exc.strerror or exc}"))
                    continue
                result.restored.append(original)
            _remove_empty_parents(folder, QUARANTINE_DIRNAME)


# ---------------------------------------------------------------------------- recovery
def reconcile_journal(catalog: Catalog) -> list[str]:
    """Settle journal entries left half-way by a process that died, from what is on disk.

    - ``pending`` (a move out was about to happen): if the file left its path (and, for the
      quarantine, is at its destination) the move happened: the entry becomes ``done`` and the
      photo leaves the catalog, so undo puts it back. If the file is still at its path, the
      move did not happen: ``dropped``, and a partial copy at the destination (a move across
      volumes copies first) is removed when the original is intact.
    - ``restoring`` (an undo was about to move the file back): if it is back at its path and
      gone from the quarantine, ``undone`` and its catalog row comes back; if it is still in the
      quarantine, ``done`` again (a partial copy at the original path is removed).
    - a session still ``running`` with no pending entry left is ``interrupted``.

    Never deletes a photo: only a copy whose original is present and intact.

    Args:
        catalog: Open catalog.

    Returns:
        One line per settled entry, for the log.
    """
    rows = catalog.db.execute(
        "SELECT id, action, src, dst, size, photo_json, state FROM journal "
        "WHERE state IN ('pending', 'restoring') ORDER BY id"
    ).fetchall()
    notes: list[str] = []
    for entry, action, src_v, dst_v, size, record, state in rows:
        src, dst = py_path(src_v), (py_path(dst_v) if dst_v else None)
        at_src, at_dst = os.path.lexists(src), bool(dst) and os.path.lexists(dst)  # type: ignore[arg-type]
        if action == "metadata":
            notes.append(_settle_merge(catalog, entry, src, dst, state))
            continue
        if state == "pending":
            moved = not at_src and (action == "trash" or at_dst)
            if moved:
                with catalog.transaction():
                    _set_state(catalog, entry, "done")
                    catalog.delete_paths([src])
                notes.append(f"{src}: moved to {dst or 'the Trash'} before an interruption")
            elif not at_src:  # gone from both places: not by our hand
                _set_state(catalog, entry, "failed", f"missing from {src} and {dst}")
                notes.append(f"{src}: missing from its path and from {dst}")
            else:
                if at_dst and _same_size(src, size):
                    os.remove(dst)  # type: ignore[arg-type]  # a partial copy; the original is whole
                _set_state(catalog, entry, "dropped", "interrupted before the move")
                notes.append(f"{src}: left in place (interrupted before the move)")
        else:  # restoring
            if at_src and not at_dst:
                _mark_restored(catalog, entry, record)
                notes.append(f"{src}: restored before an interruption")
            else:
                if at_src and at_dst and _same_size(dst, size):  # type: ignore[arg-type]
                    os.remove(src)  # a partial copy of the quarantined file
                _set_state(catalog, entry, "done")
                notes.append(f"{src}: still in quarantine (interrupted before the undo moved it)")
    catalog.db.execute(
        "UPDATE cleanup_sessions SET status='interrupted' WHERE status='running' AND NOT EXISTS "
        "(SELECT 1 FROM journal j WHERE j.session = cleanup_sessions.id AND j.state='pending')"
    )
    for note in notes:
        logger.warning("journal: %s", note)
    return notes


def _settle_merge(
    catalog: Catalog, entry: int, sidecar: str, backup: str | None, state: str
) -> str:
    """A metadata merge cut short: the sidecar goes back to what it was before it (the
    copies it was for never moved: they move only after the merge is done)."""
    if state == "restoring":  # undo never marks merges so; settle as done
        _set_state(catalog, entry, "done")
        return f"{sidecar}: merge kept"
    if backup and os.path.exists(backup):
        os.replace(backup, sidecar)
        _remove_empty_parents(os.path.dirname(backup), QUARANTINE_DIRNAME)
    elif not backup and os.path.exists(sidecar):
        os.remove(sidecar)  # created by the interrupted merge
    _set_state(catalog, entry, "dropped", "interrupted before the merge was done")
    return f"{sidecar}: metadata merge rolled back (interrupted)"


def _set_state(catalog: Catalog, entry: int, state: str, error: str | None = None) -> None:
    catalog.db.execute(
        "UPDATE journal SET state=?, error=coalesce(?, error), updated_at=? WHERE id=?",
        [state, error, time.time(), entry],
    )


def _same_size(path: str, size: int) -> bool:
    try:
        return os.stat(path, follow_symlinks=False).st_size == size
    except OSError:
        return False


def _remove_empty_parents(folder: str, stop_name: str) -> None:
    """Remove empty folders upwards, up to and including the quarantine folder itself."""
    while True:
        try:
            os.rmdir(folder)
        except OSError:
            return
        if os.path.basename(folder) == stop_name:
            return
        folder = os.path.dirname(folder)


def sessions(catalog: Catalog) -> list[SessionInfo]:
    """Cleanup sessions, newest first (after :func:`reconcile_journal`)."""
    reconcile_journal(catalog)
    rows = catalog.db.execute(
        "SELECT s.id, s.created_at, s.destination, s.status, "
        "count(j.id), coalesce(sum(j.size), 0) FROM cleanup_sessions s "
        "LEFT JOIN journal j ON j.session = s.id AND j.state IN ('done', 'undone') "
        "AND j.action != 'metadata' AND j.photo_json NOT LIKE '{\"companion_of\"%' "
        "GROUP BY s.id ORDER BY s.created_at DESC, s.id DESC"
    )
    return [SessionInfo(*r) for r in rows]


def last_undoable_session(catalog: Catalog) -> str | None:
    """The newest quarantine session that still has files to put back, or None (after
    :func:`reconcile_journal`)."""
    reconcile_journal(catalog)
    row = catalog.db.execute(
        "SELECT s.id FROM cleanup_sessions s JOIN journal j ON j.session = s.id "
        "WHERE j.state = 'done' AND s.destination = 'quarantine' AND j.action != 'metadata' "
        "ORDER BY s.created_at DESC, s.id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None
