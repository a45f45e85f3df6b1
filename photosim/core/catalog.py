"""The SQLite catalog: the single source of truth about a library.

Tables (schema version :data:`SCHEMA_VERSION`):

- ``meta(key, value)``: schema version and bookkeeping.
- ``folders(path, protected, added_at)``: roots the user scans.
- ``photos``: one row per file path, with stat data, content hash, metadata, perceptual
  hashes, whether the picture is greyscale (schema 5) and a status (``ok`` or ``error`` with a
  reason).
- ``embeddings(id, content_hash, model, vector)``: one float16 descriptor per content and
  model. ``id`` is the label of the descriptor in the hnswlib index; AUTOINCREMENT so a
  deleted id is never handed out again (a persisted index would keep its old vector).
- ``thumbnails(content_hash, jpeg)``: one JPEG thumbnail per content.
- ``verdicts(hash_a, hash_b, verdict)``: user decisions ("not a duplicate") on content pairs.
- ``cleanup_sessions`` and ``journal`` (schema 2): every file action, written before it
  happens, grouped by cleanup session, with what is needed to undo it.
- ``verifications(key, verdict)`` (schema 3): verdicts of the geometric verification of
  content pairs (JSON), keyed by both content hashes, the thresholds and the algorithm version.
- Schema 4: indexes ``photos_stat`` (covers ``(path, size, mtime_ns)``, so a rescan never
  reads the rows) and ``photos_errors``; and ``knn_graph(model, id, labels, sims)``: the
  neighbours of each vector (``embeddings.id``) as int64 labels and float32 similarities,
  best first, written by the scan and read by grouping (:mod:`photosim.core.index.graph`).
- Schema 6: ``similarity_verdicts(hash_a, hash_b, similar)``: the user's "similar" / "not
  similar" on content pairs; ``projections(model, data, report)``: the descriptor projection
  learned from them (:mod:`photosim.core.index.learned`), as an ``.npz`` blob.
- Schema 7: ``tags(model, content_hash, label, probability)``: the most probable ImageNet-1k
  classes of each content from the backbone's classifier head (:mod:`photosim.core.tags`),
  keyed by content like descriptors; ``tags_label`` indexes them by class for text search.
- Schema 8: ``sketches(content_hash, codes)``: the detail sketch of each content scanned since
  (up to 1000 ORB keypoint codes, uint64 little-endian, strongest first; 8 KB at most), the
  near-duplicate candidates of crops and pasted photos (:mod:`photosim.core.dedup.verify`).

Descriptors and thumbnails are keyed by content hash, so copies and moved files share them.
A connection belongs to the thread that opened it (SQLite's rule); the catalog runs in WAL mode
so readers in other threads or processes never block the scan's writer.

Paths are stored as TEXT; the rare path that is not valid UTF-8 (a surrogate-escaped
``str``) is stored as a BLOB of its raw bytes so it round-trips exactly.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from photosim.core.errors import explain, lock_timeout
from photosim.core.types import Error

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 8
STATUS_OK = "ok"
STATUS_ERROR = "error"
TAG_MODEL_META = "tag_model"  # meta key: the model of the last tags written
TAGS_VERSION_META = "tags_version"  # meta key: changes with every write to the tags table

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS folders (
    path TEXT PRIMARY KEY,
    protected INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS photos (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    folder TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT,
    width INTEGER,
    height INTEGER,
    format TEXT,
    taken_at TEXT,
    camera TEXT,
    phash INTEGER,
    dhash INTEGER,
    variants BLOB,
    status TEXT NOT NULL,
    error TEXT,
    scanned_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_content_hash ON photos(content_hash);
CREATE INDEX IF NOT EXISTS photos_folder ON photos(folder);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    content_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (content_hash, model)
);
CREATE TABLE IF NOT EXISTS thumbnails (
    content_hash TEXT PRIMARY KEY,
    jpeg BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    hash_a TEXT NOT NULL,
    hash_b TEXT NOT NULL,
    verdict TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (hash_a, hash_b)
);
"""

# Version 2: the cleanup journal (see photosim.core.cleanup).
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS cleanup_sessions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    destination TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL REFERENCES cleanup_sessions(id),
    action TEXT NOT NULL,
    src TEXT NOT NULL,
    dst TEXT,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    keeper TEXT NOT NULL,
    photo_json TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_session ON journal(session);
"""

# Version 3: geometric verification verdicts, so grouping never decodes a judged pair again.
_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS verifications (
    key TEXT PRIMARY KEY,
    verdict TEXT NOT NULL
);
"""

# Version 4: indexes for rescans (a covering index of the stat tuple lets a rescan read
# (path, size, mtime_ns) without touching the rows; a partial index finds the few errors),
# and the k-nearest-neighbour graph of each vector index (see photosim.core.index.graph).
_SCHEMA_V4 = """
CREATE INDEX IF NOT EXISTS photos_stat ON photos(path, size, mtime_ns);
CREATE INDEX IF NOT EXISTS photos_errors ON photos(path) WHERE status='error';
CREATE TABLE IF NOT EXISTS knn_graph (
    model TEXT NOT NULL,
    id INTEGER NOT NULL,
    labels BLOB NOT NULL,
    sims BLOB NOT NULL,
    PRIMARY KEY (model, id)
) WITHOUT ROWID;
"""

# Version 5: whether a photo is greyscale (the keeper rule prefers colour) and the camera's
# record of the exposure (two shots are never copies); NULL for photos scanned before.
_SCHEMA_V5 = """
ALTER TABLE photos ADD COLUMN grey INTEGER;
ALTER TABLE photos ADD COLUMN capture TEXT;
"""

# Version 6: the user's "similar" / "not similar" verdicts on pairs that find similar showed
# (apart from "not duplicates": two shots of one scene are similar and not duplicates), and
# the descriptor projection learned from them (see photosim.core.index.learned).
_SCHEMA_V6 = """
CREATE TABLE IF NOT EXISTS similarity_verdicts (
    hash_a TEXT NOT NULL,
    hash_b TEXT NOT NULL,
    similar INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (hash_a, hash_b)
);
CREATE TABLE IF NOT EXISTS projections (
    model TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    report TEXT NOT NULL,
    trained_at REAL NOT NULL
);
"""

# Version 7: each content's top ImageNet-1k classes from the classifier head (tags for text
# search, photosim.core.tags). Always the same number of rows per tagged content (the scan's
# TAGS_PER_PHOTO), so "has tags" is "has rows" and floors apply when reading.
_SCHEMA_V7 = """
CREATE TABLE IF NOT EXISTS tags (
    model TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    label INTEGER NOT NULL,
    probability REAL NOT NULL,
    PRIMARY KEY (model, content_hash, label)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_label ON tags(model, label, probability);
"""

# Version 8: each content's detail sketch (ORB keypoint codes computed by the scan, for
# near-duplicate candidates: photosim.core.dedup.verify.detail_sketch).
_SCHEMA_V8 = """
CREATE TABLE IF NOT EXISTS sketches (
    content_hash TEXT PRIMARY KEY,
    codes BLOB NOT NULL
) WITHOUT ROWID;
"""

# Step-wise forward migrations: MIGRATIONS[n] turns schema n-1 into schema n.
MIGRATIONS: dict[int, str] = {
    1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4, 5: _SCHEMA_V5, 6: _SCHEMA_V6,
    7: _SCHEMA_V7, 8: _SCHEMA_V8,
}

_PHOTO_COLUMNS = (
    "id, path, folder, size, mtime_ns, content_hash, width, height, format, taken_at, "
    "camera, phash, dhash, status, error, variants, grey, capture"
)
_GREY = _PHOTO_COLUMNS.split(", ").index("grey")  # stored as 0/1, read back as a bool


class CatalogError(Error):
    """The catalog cannot be opened or used."""


class CatalogVersionError(CatalogError):
    """The catalog was written by a newer photosim with a schema this version cannot read."""


def db_path(path: str) -> str | bytes:
    """Convert a filesystem path to its catalog form (TEXT, or BLOB for non-UTF-8 names)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def py_path(value: str | bytes) -> str:
    """Inverse of :func:`db_path`."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


@dataclass
class Photo:
    """One row of ``photos``.

    Attributes:
        id: Row id.
        path: Absolute path.
        folder: The scanned root this file was found under.
        size: File size, bytes.
        mtime_ns: Modification time, nanoseconds since the epoch.
        content_hash: xxh3-128 hex of the bytes, None if the file could not be read.
        width: Pixels after EXIF orientation (None on error).
        height: Pixels after EXIF orientation (None on error).
        format: Pillow format name from the content.
        taken_at: EXIF date taken, ISO-8601, or None.
        camera: EXIF camera make and model, or None.
        phash: 64-bit pHash as signed int64.
        dhash: 64-bit dHash as signed int64.
        status: ``"ok"`` or ``"error"``.
        error: Reason when status is ``"error"``.
        variants: pHash and dHash of the 7 other orientations, 14 int64 (112 bytes), or None.
        grey: The picture carries no colour (schema 5); None when not known (scanned by an
            older photosim).
        capture: The camera's record of the exposure (schema 5, see
            :class:`photosim.core.types.DecodedImage`), or None.
    """

    id: int
    path: str
    folder: str
    size: int
    mtime_ns: int
    content_hash: str | None
    width: int | None
    height: int | None
    format: str | None
    taken_at: str | None
    camera: str | None
    phash: int | None
    dhash: int | None
    status: str
    error: str | None
    variants: bytes | None = None
    grey: bool | None = None
    capture: str | None = None

    @property
    def pixels(self) -> int:
        """Width times height, 0 when unknown."""
        return (self.width or 0) * (self.height or 0)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Photo:
        """Build from a row selected with the ``_PHOTO_COLUMNS`` column order."""
        values = list(row)
        values[1] = py_path(values[1])
        values[2] = py_path(values[2])
        if values[_GREY] is not None:
            values[_GREY] = bool(values[_GREY])
        return cls(*values)


class IdHashes:
    """``embedding id -> content hash``, read from the catalog when asked and remembered:
    what a query's few results need, without a catalog-wide dict (10M ids would take about
    1.5 GB of Python objects and seconds to read).

    Args:
        catalog: Open catalog.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._known: dict[int, str] = {}

    def fetch(self, ids: Iterable[int]) -> None:
        """Read the hashes of ``ids`` not known yet (one query a chunk of 900)."""
        missing = [int(i) for i in ids if int(i) not in self._known and int(i) >= 0]
        if missing:
            self._known.update(self._catalog.hashes_of_ids(missing))

    def get(self, label: int, default: str | None = None) -> str | None:
        """The content hash of ``label``, or ``default``."""
        label = int(label)
        if label not in self._known:
            self.fetch([label])
        return self._known.get(label, default)

    def __getitem__(self, label: int) -> str:
        """The content hash of ``label``.

        Raises:
            KeyError: No vector has that id.
        """
        found = self.get(label)
        if found is None:
            raise KeyError(label)
        return found


class Catalog:
    """A photosim catalog file.

    Args:
        path: SQLite file; created with its parent folders if missing.

    Raises:
        CatalogVersionError: The file was written by a newer schema.
        CatalogError: The file is not a usable SQLite database.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=lock_timeout(), isolation_level=None)
        try:
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            if self.get_meta("catalog_id") is None:
                self.set_meta("catalog_id", uuid.uuid4().hex)
        except sqlite3.OperationalError as exc:
            conn.close()
            # Locked, read-only, full, unreachable: the file is fine, the situation is not.
            raise CatalogError(explain(exc, self.path) or f"cannot open {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CatalogError(
                f"{self.path} is not a usable photosim catalog ({exc}); it was left as it is: "
                f"`photosim scan --rebuild FOLDER...` moves it aside and builds a new catalog "
                f"from your photos, or choose another with --catalog"
            ) from exc
        except BaseException:
            conn.close()
            raise

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def catalog_id(self) -> str:
        """Random id given to this catalog file at creation (ties index files to it)."""
        return self.get_meta("catalog_id") or ""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One explicit transaction (the scan commits one per batch)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            # SQLite has already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR):
            # a second ROLLBACK would raise and hide the error that matters.
            if self.db.conn.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def schema_version(self) -> int:
        """The schema version stored in ``meta`` (0 for a new file)."""
        if "meta" not in self.db.table_names():
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise CatalogVersionError(
                f"{self.path} was written by a newer photosim (catalog schema {current}; "
                f"this version reads up to {SCHEMA_VERSION}). Upgrade photosim, or pass "
                "--catalog with another file."
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            logger.info("migrating catalog %s to schema %d", self.path, version)
            with self.transaction():
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                    [str(version)],
                )

    def get_meta(self, key: str) -> str | None:
        """Read a ``meta`` value."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Write a ``meta`` value."""
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [key, value])

    # ------------------------------------------------------------------ folders
    def add_folder(self, path: str, protected: bool = False) -> None:
        """Remember a scanned root (absolute path); keeps its protected flag if known."""
        self.db.execute(
            "INSERT INTO folders(path, protected, added_at) VALUES (?, ?, ?) "
            "ON CONFLICT(path) DO NOTHING",
            [db_path(path), int(protected), time.time()],
        )

    def set_protected(self, path: str, protected: bool) -> None:
        """Mark a root as protected (never touched by cleanup) or not."""
        self.db.execute(
            "UPDATE folders SET protected=? WHERE path=?", [int(protected), db_path(path)]
        )

    def folders(self) -> list[tuple[str, bool]]:
        """All roots as ``(path, protected)``, sorted by path."""
        rows = self.db.execute("SELECT path, protected FROM folders ORDER BY path").fetchall()
        return [(py_path(p), bool(v)) for p, v in rows]

    def remove_folder(self, path: str) -> int:
        """Forget a root and every photo under it. Returns the number of photos removed."""
        with self.transaction():
            cur = self.db.execute("DELETE FROM photos WHERE folder=?", [db_path(path)])
            self.db.execute("DELETE FROM folders WHERE path=?", [db_path(path)])
        return cur.rowcount

    # ------------------------------------------------------------------ photos
    def _rows_under(self, root: str, columns: str, where: str = "1", args: Sequence[Any] = ()):
        """Rows of ``columns`` (the first must be ``path``) for photos at or below ``root``
        that satisfy ``where``; paths come back as ``str``."""
        prefix = root.rstrip(os.sep) + os.sep
        upper = prefix[:-1] + chr(ord(os.sep) + 1)
        rows: list[tuple[Any, ...]] = []
        if isinstance(db_path(root), str):  # else every path below is a BLOB too
            rows = self.db.execute(
                f"SELECT {columns} FROM photos WHERE (path = ? OR (path >= ? AND path < ?)) "
                f"AND ({where})",
                [root, prefix, upper, *args],
            ).fetchall()
        # Non-UTF-8 paths are BLOBs, which SQLite sorts after all TEXT (so ``path >= x''``
        # is an index range holding exactly the BLOBs): match them by bytes.
        raw_root, raw_prefix = os.fsencode(root), os.fsencode(prefix)
        blobs = [
            (py_path(r[0]), *r[1:])
            for r in self.db.execute(
                f"SELECT {columns} FROM photos WHERE path >= x'' AND ({where})", args
            )
            if r[0] == raw_root or r[0].startswith(raw_prefix)
        ]
        return rows + blobs if blobs else rows

    def stat_rows(self, root: str) -> list[tuple[str, int, int]]:
        """``(path, size bytes, mtime_ns)`` of every photo under ``root``, any status: what a
        rescan diffs the walk against (plain tuples, for set operations)."""
        return self._rows_under(root, "path, size, mtime_ns")

    def error_paths_under(self, root: str, prefixes: Sequence[str]) -> set[str]:
        """Paths at or below ``root`` recorded with an error that starts with one of
        ``prefixes`` (reads the ``photos_errors`` index, not the whole table)."""
        if not prefixes:
            return set()
        prefix = root.rstrip(os.sep) + os.sep
        paths = set()
        for raw, error in self.db.execute("SELECT path, error FROM photos WHERE status='error'"):
            path = py_path(raw)
            if (path == root or path.startswith(prefix)) and (error or "").startswith(
                tuple(prefixes)
            ):
                paths.add(path)
        return paths

    def missing_descriptor_under(
        self, root: str, model: str, tag_model: str = ""
    ) -> list[tuple[str, str]]:
        """``(path, content_hash)`` of decoded photos under ``root`` whose content has no
        descriptor of ``model`` (or, with ``tag_model``, no tags of it)."""
        where = (
            "status='ok' AND (content_hash NOT IN "
            "(SELECT content_hash FROM embeddings WHERE model=?)"
        )
        args = [model]
        if tag_model:
            where += " OR content_hash NOT IN (SELECT content_hash FROM tags WHERE model=?)"
            args.append(tag_model)
        return self._rows_under(root, "path, content_hash", where + ")", args)

    def upsert_photos(self, rows: Iterable[dict[str, Any]]) -> None:
        """Insert or replace photo rows (keys: the ``photos`` columns except ``id``)."""
        now = time.time()
        for row in rows:
            values = dict(row)
            values["path"] = db_path(values["path"])
            values["folder"] = db_path(values["folder"])
            values.setdefault("scanned_at", now)
            columns = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            updates = ", ".join(f"{c}=excluded.{c}" for c in values if c != "path")
            self.db.execute(
                f"INSERT INTO photos({columns}) VALUES ({marks}) "
                f"ON CONFLICT(path) DO UPDATE SET {updates}",
                list(values.values()),
            )

    def delete_paths(self, paths: Iterable[str]) -> int:
        """Delete photo rows by path. Returns how many were deleted."""
        count = 0
        for path in paths:
            count += self.db.execute("DELETE FROM photos WHERE path=?", [db_path(path)]).rowcount
        return count

    def photos(self, status: str | None = STATUS_OK) -> list[Photo]:
        """Photo rows ordered by id; all statuses when ``status`` is None."""
        sql = f"SELECT {_PHOTO_COLUMNS} FROM photos"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status=?"
            params.append(status)
        return [Photo.from_row(r) for r in self.db.execute(sql + " ORDER BY id", params)]

    def photos_after(self, last_id: int, limit: int = 20000) -> list[Photo]:
        """Decoded photos with ``id > last_id`` in id order, at most ``limit`` (for showing
        the batches a running scan commits without re-reading the whole library)."""
        rows = self.db.execute(
            f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE id > ? AND status='ok' "
            "ORDER BY id LIMIT ?",
            [last_id, limit],
        )
        return [Photo.from_row(r) for r in rows]

    def photo_by_path(self, path: str) -> Photo | None:
        """The row of one path, or None."""
        row = self.db.execute(
            f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE path=?", [db_path(path)]
        ).fetchone()
        return Photo.from_row(row) if row else None

    def photos_by_hash(self, content_hash: str) -> list[Photo]:
        """Decoded photos with this content hash."""
        rows = self.db.execute(
            f"SELECT {_PHOTO_COLUMNS} FROM photos WHERE content_hash=? AND status='ok'",
            [content_hash],
        )
        return [Photo.from_row(r) for r in rows]

    def known_content(self, content_hash: str) -> dict[str, Any] | None:
        """Decoded metadata of any photo with this content, for reuse by a copy; else None."""
        row = self.db.execute(
            "SELECT width, height, format, taken_at, camera, phash, dhash, variants, grey, "
            "capture FROM photos WHERE content_hash=? AND status='ok' LIMIT 1",
            [content_hash],
        ).fetchone()
        if row is None:
            return None
        keys = ("width", "height", "format", "taken_at", "camera", "phash", "dhash", "variants",
                "grey", "capture")
        return dict(zip(keys, row))

    def counts(self) -> dict[str, int]:
        """Row counts for ``photosim info``: photos, ok, errors, contents, thumbnails."""
        one = lambda sql: int(self.db.execute(sql).fetchone()[0])  # noqa: E731
        return {
            "photos": one("SELECT count(*) FROM photos"),
            "ok": one("SELECT count(*) FROM photos WHERE status='ok'"),
            "errors": one("SELECT count(*) FROM photos WHERE status='error'"),
            "contents": one(
                "SELECT count(DISTINCT content_hash) FROM photos WHERE status='ok'"
            ),
            "thumbnails": one("SELECT count(*) FROM thumbnails"),
        }

    def errors(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every file recorded with an error, sorted by path."""
        rows = self.db.execute("SELECT path, error FROM photos WHERE status='error'")
        return sorted((py_path(p), e or "") for p, e in rows)

    # ------------------------------------------------------------------ thumbnails
    def has_thumbnail(self, content_hash: str) -> bool:
        """True if a thumbnail is stored for this content."""
        return (
            self.db.execute(
                "SELECT 1 FROM thumbnails WHERE content_hash=?", [content_hash]
            ).fetchone()
            is not None
        )

    def put_thumbnail(self, content_hash: str, jpeg: bytes) -> None:
        """Store a JPEG thumbnail for a content hash (replacing any)."""
        self.db.execute(
            "INSERT OR REPLACE INTO thumbnails(content_hash, jpeg) VALUES (?, ?)",
            [content_hash, jpeg],
        )

    def thumbnail(self, content_hash: str) -> bytes | None:
        """The stored JPEG thumbnail bytes, or None."""
        row = self.db.execute(
            "SELECT jpeg FROM thumbnails WHERE content_hash=?", [content_hash]
        ).fetchone()
        return bytes(row[0]) if row else None

    # ------------------------------------------------------------------ sketches
    def put_sketch(self, content_hash: str, codes: bytes) -> None:
        """Store a content's detail sketch (uint64 little-endian codes; replacing any)."""
        self.db.execute(
            "INSERT OR REPLACE INTO sketches(content_hash, codes) VALUES (?, ?)",
            [content_hash, codes],
        )

    def sketches(self, hashes: Iterable[str], chunk: int = 500) -> dict[str, np.ndarray]:
        """The stored detail sketches of these contents: ``{content hash: (N,) uint64}``
        (contents scanned before schema 8, or without keypoints, are absent)."""
        out: dict[str, np.ndarray] = {}
        hashes = list(hashes)
        for start in range(0, len(hashes), chunk):
            part = hashes[start : start + chunk]
            marks = ",".join("?" * len(part))
            for h, codes in self.db.execute(
                f"SELECT content_hash, codes FROM sketches WHERE content_hash IN ({marks})", part
            ):
                out[h] = np.frombuffer(codes, "<u8").astype(np.uint64)
        return out

    # ------------------------------------------------------------------ embeddings
    def has_embedding(self, content_hash: str, model: str) -> bool:
        """True if a descriptor of this model is stored for this content."""
        return (
            self.db.execute(
                "SELECT 1 FROM embeddings WHERE content_hash=? AND model=?",
                [content_hash, model],
            ).fetchone()
            is not None
        )

    def put_embeddings(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store descriptors.

        Args:
            model: Model id (e.g. ``"efficientnet_b1-avg"``).
            hashes: N content hashes.
            vectors: ``(N, D)`` float array, L2-normalised; stored as float16.
        """
        data = np.ascontiguousarray(vectors, dtype=np.float16)
        for content_hash, vector in zip(hashes, data):
            self.db.execute(
                "INSERT INTO embeddings(content_hash, model, vector) VALUES (?, ?, ?) "
                "ON CONFLICT(content_hash, model) DO UPDATE SET vector=excluded.vector",
                [content_hash, model, vector.tobytes()],
            )

    def embedding(self, content_hash: str, model: str) -> np.ndarray | None:
        """One descriptor as ``(D,)`` float32, or None."""
        row = self.db.execute(
            "SELECT vector FROM embeddings WHERE content_hash=? AND model=?",
            [content_hash, model],
        ).fetchone()
        return np.frombuffer(row[0], dtype=np.float16).astype(np.float32) if row else None

    def embedding_stats(self, model: str) -> tuple[int, int]:
        """``(count, max id)`` of the descriptors of a model (``(0, 0)`` when none)."""
        row = self.db.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM embeddings WHERE model=?", [model]
        ).fetchone()
        return int(row[0]), int(row[1])

    def embeddings(
        self, model: str, ids: Iterable[int] | None = None
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Descriptors of a model.

        Args:
            model: Model id.
            ids: Only these embedding ids (all when None).

        Returns:
            ``(ids (N,) int64, content hashes (N,), vectors (N, D) float32)``.
        """
        if ids is None:
            rows = self.db.execute(
                "SELECT id, content_hash, vector FROM embeddings WHERE model=? ORDER BY id",
                [model],
            ).fetchall()
        else:
            rows = []
            wanted = list(ids)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" for _ in chunk)
                rows += self.db.execute(
                    f"SELECT id, content_hash, vector FROM embeddings "
                    f"WHERE model=? AND id IN ({marks}) ORDER BY id",
                    [model, *chunk],
                ).fetchall()
        if not rows:
            return np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32)
        out_ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float16)
        return out_ids, [r[1] for r in rows], vectors.reshape(len(rows), -1).astype(np.float32)

    def embedding_dim(self, model: str) -> int:
        """Dimension D of a model's stored descriptors (0 when there are none)."""
        row = self.db.execute(
            "SELECT length(vector) FROM embeddings WHERE model=? LIMIT 1", [model]
        ).fetchone()
        return int(row[0]) // 2 if row else 0

    def embedding_ids(self, model: str) -> np.ndarray:
        """``(N,)`` int64 sorted embedding ids of one model (no per-row Python objects kept:
        10M ids take 80 MB)."""
        cursor = self.db.execute("SELECT id FROM embeddings WHERE model=? ORDER BY id", [model])
        return np.fromiter((row[0] for row in cursor), np.int64)

    def embedding_id(self, model: str, content_hash: str) -> int | None:
        """The embedding id of one content's vector of ``model``, or None."""
        row = self.db.execute(
            "SELECT id FROM embeddings WHERE content_hash=? AND model=?", [content_hash, model]
        ).fetchone()
        return None if row is None else int(row[0])

    def hashes_of_ids(self, ids: Iterable[int]) -> dict[int, str]:
        """``embedding id -> content hash`` of these ids (unknown ids are left out)."""
        wanted = sorted({int(i) for i in ids})
        out: dict[int, str] = {}
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 900]
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(
                f"SELECT id, content_hash FROM embeddings WHERE id IN ({marks})", chunk))
        return out

    def embedding_ids_by_hash(self, model: str) -> dict[str, int]:
        """``content hash -> embedding id`` for one model."""
        rows = self.db.execute(
            "SELECT content_hash, id FROM embeddings WHERE model=?", [model]
        )
        return {h: i for h, i in rows}

    def models(self) -> list[tuple[str, int]]:
        """``(model id, descriptor count)`` for every model with stored descriptors."""
        rows = self.db.execute(
            "SELECT model, count(*) FROM embeddings GROUP BY model ORDER BY model"
        )
        return [(m, int(c)) for m, c in rows]

    # ------------------------------------------------------------------ tags
    def put_tags(
        self, model: str, hashes: Sequence[str], labels: np.ndarray, probabilities: np.ndarray
    ) -> None:
        """Store the top classes of N contents (replacing what was stored for them); ``meta``
        remembers ``model`` as the library's tag model (:data:`TAG_MODEL_META`).

        Args:
            model: Tag model (the backbone's registry name, e.g. ``"efficientnet_lite0"``).
            hashes: N content hashes.
            labels: ``(N, k)`` int class indices.
            probabilities: ``(N, k)`` float probabilities in [0, 1].
        """
        self.set_meta(TAG_MODEL_META, model)
        self.set_meta(TAGS_VERSION_META, uuid.uuid4().hex)
        for content_hash, row_labels, row_probs in zip(hashes, labels, probabilities):
            self.db.execute(
                "DELETE FROM tags WHERE model=? AND content_hash=?", [model, content_hash]
            )
            self.db.conn.executemany(
                "INSERT INTO tags(model, content_hash, label, probability) VALUES (?, ?, ?, ?)",
                [
                    (model, content_hash, int(label), float(p))
                    for label, p in zip(row_labels, row_probs)
                ],
            )

    def has_tags(self, content_hash: str, model: str) -> bool:
        """True if tags of ``model`` are stored for this content."""
        return (
            self.db.execute(
                "SELECT 1 FROM tags WHERE model=? AND content_hash=? LIMIT 1",
                [model, content_hash],
            ).fetchone()
            is not None
        )

    def tags(self, content_hash: str, model: str) -> list[tuple[int, float]]:
        """``(class index, probability)`` stored for one content, most probable first."""
        rows = self.db.execute(
            "SELECT label, probability FROM tags WHERE model=? AND content_hash=? "
            "ORDER BY probability DESC, label",
            [model, content_hash],
        )
        return [(int(label), float(p)) for label, p in rows]

    def tag_models(self) -> list[tuple[str, int]]:
        """``(tag model, tagged contents)`` for every model with stored tags."""
        rows = self.db.execute(
            "SELECT model, count(DISTINCT content_hash) FROM tags GROUP BY model ORDER BY model"
        )
        return [(m, int(c)) for m, c in rows]

    def all_tags(self, model: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every stored tag of ``model``, one row per content.

        Returns:
            ``(content hashes (N,), labels (N, k) int16, probabilities (N, k) float32)``,
            each row most probable first, k the most classes any content has (rows with
            fewer are padded with label 0 at probability 0).
        """
        rows = self.db.execute(
            "SELECT content_hash, label, probability FROM tags WHERE model=? "
            "ORDER BY content_hash, probability DESC",
            [model],
        ).fetchall()
        hashes: list[str] = []
        slots: list[int] = []
        for content_hash, _, _ in rows:
            if not hashes or hashes[-1] != content_hash:
                hashes.append(content_hash)
                slots.append(0)
            else:
                slots.append(slots[-1] + 1)
        k = max(slots, default=-1) + 1
        labels = np.zeros((len(hashes), k), np.int16)
        probabilities = np.zeros((len(hashes), k), np.float32)
        if rows:
            owner = np.cumsum([slot == 0 for slot in slots]) - 1
            labels[owner, slots] = [r[1] for r in rows]
            probabilities[owner, slots] = [r[2] for r in rows]
        return hashes, labels, probabilities

    def tags_version(self) -> str:
        """Changes whenever tags are written or pruned (for caches of :meth:`all_tags`)."""
        return self.get_meta(TAGS_VERSION_META) or ""

    # ------------------------------------------------------------------ verdicts
    def add_verdict(self, hash_a: str, hash_b: str, verdict: str = "not_duplicate") -> None:
        """Remember a user's decision on a content pair (order-independent)."""
        a, b = sorted((hash_a, hash_b))
        self.db.execute(
            "INSERT OR REPLACE INTO verdicts(hash_a, hash_b, verdict, created_at) "
            "VALUES (?, ?, ?, ?)",
            [a, b, verdict, time.time()],
        )

    def not_duplicate_pairs(self) -> set[tuple[str, str]]:
        """Content pairs (sorted tuples) the user marked as not duplicates."""
        rows = self.db.execute(
            "SELECT hash_a, hash_b FROM verdicts WHERE verdict='not_duplicate'"
        )
        return {(a, b) for a, b in rows}

    def add_similarity_verdict(self, hash_a: str, hash_b: str, similar: bool) -> None:
        """Remember that the user found two contents similar (or not); order-independent,
        a later verdict on the same pair replaces the earlier one.

        Raises:
            ValueError: ``hash_a == hash_b`` (a content is always similar to itself).
        """
        if hash_a == hash_b:
            raise ValueError("a verdict needs two different contents")
        a, b = sorted((hash_a, hash_b))
        self.db.execute(
            "INSERT OR REPLACE INTO similarity_verdicts(hash_a, hash_b, similar, created_at) "
            "VALUES (?, ?, ?, ?)",
            [a, b, int(bool(similar)), time.time()],
        )

    def similarity_verdicts(self) -> list[tuple[str, str, bool]]:
        """Every ``(hash_a, hash_b, similar)`` verdict, oldest first."""
        rows = self.db.execute(
            "SELECT hash_a, hash_b, similar FROM similarity_verdicts ORDER BY created_at, rowid"
        )
        return [(a, b, bool(s)) for a, b, s in rows]

    def clear_similarity_verdicts(self) -> int:
        """Forget every similarity verdict; returns how many there were."""
        return int(self.db.execute("DELETE FROM similarity_verdicts").rowcount or 0)

    # ------------------------------------------------------------------ projections
    def put_projection(self, model: str, data: bytes, report: str) -> None:
        """Store the learned projection of ``model`` (replacing one stored before)."""
        self.db.execute(
            "INSERT OR REPLACE INTO projections(model, data, report, trained_at) "
            "VALUES (?, ?, ?, ?)",
            [model, data, report, time.time()],
        )

    def projection(self, model: str) -> tuple[bytes, str, float] | None:
        """``(data, report JSON, trained at: Unix seconds)`` of ``model``'s projection."""
        row = self.db.execute(
            "SELECT data, report, trained_at FROM projections WHERE model=?", [model]
        ).fetchone()
        return (bytes(row[0]), row[1], float(row[2])) if row else None

    def delete_projection(self, model: str) -> bool:
        """Forget ``model``'s projection; True when there was one."""
        return bool(self.db.execute("DELETE FROM projections WHERE model=?", [model]).rowcount)

    # ------------------------------------------------------------------ verifications
    def verifications(self) -> list[tuple[str, str]]:
        """Every stored ``(key, verdict JSON)`` of the geometric verification."""
        return [(k, v) for k, v in self.db.execute("SELECT key, verdict FROM verifications")]

    def put_verifications(self, rows: Iterable[tuple[str, str]]) -> None:
        """Store ``(key, verdict JSON)`` rows (replacing equal keys), in one transaction."""
        with self.transaction():
            for key, verdict in rows:
                self.db.execute(
                    "INSERT OR REPLACE INTO verifications(key, verdict) VALUES (?, ?)",
                    [key, verdict],
                )

    # ------------------------------------------------------------------ housekeeping
    def prune_orphans(self) -> list[int]:
        """Delete descriptors and thumbnails whose content no longer has any photo.

        Returns:
            The embedding ids deleted (to mark deleted in the vector index).
        """
        live = "SELECT content_hash FROM photos WHERE content_hash IS NOT NULL"
        dead = [
            int(r[0])
            for r in self.db.execute(
                f"SELECT id FROM embeddings WHERE content_hash NOT IN ({live})"
            )
        ]
        self.db.execute(f"DELETE FROM embeddings WHERE content_hash NOT IN ({live})")
        self.db.execute(f"DELETE FROM thumbnails WHERE content_hash NOT IN ({live})")
        self.db.execute(f"DELETE FROM sketches WHERE content_hash NOT IN ({live})")
        if self.db.execute(f"DELETE FROM tags WHERE content_hash NOT IN ({live})").rowcount:
            self.set_meta(TAGS_VERSION_META, uuid.uuid4().hex)
        self.db.execute("DELETE FROM knn_graph WHERE id NOT IN (SELECT id FROM embeddings)")
        return dead
