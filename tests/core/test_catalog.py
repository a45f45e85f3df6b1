"""The SQLite catalog: schema versions, paths (including non-UTF-8 ones), descriptors, pruning."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from helpers import BASE_MTIME_NS, photo_row

from photosim.core.catalog import (
    SCHEMA_VERSION,
    Catalog,
    CatalogError,
    CatalogVersionError,
    IdHashes,
    db_path,
    py_path,
)

H1, H2, H3 = "1" * 32, "2" * 32, "3" * 32
NON_UTF8_NAME = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 byte 0xE9: not valid UTF-8


def test_create_and_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.db"
    with Catalog(path) as catalog:
        assert catalog.schema_version() == SCHEMA_VERSION
        assert catalog.get_meta("schema_version") == str(SCHEMA_VERSION)
        with catalog.transaction():
            catalog.upsert_photos([photo_row("/p/a.jpg", H1, 1, 2, folder="/p")])
            catalog.add_folder("/p")
    assert path.is_file()
    with Catalog(path) as catalog:
        assert catalog.schema_version() == SCHEMA_VERSION
        photo = catalog.photo_by_path("/p/a.jpg")
        assert photo is not None and photo.content_hash == H1 and photo.phash == 1
        assert catalog.folders() == [("/p", False)]
        assert catalog.counts()["photos"] == 1


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    Catalog(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", [str(SCHEMA_VERSION + 1)])
    conn.commit()
    conn.close()
    with pytest.raises(CatalogVersionError, match="newer"):
        Catalog(path)
    # It is a CatalogError too, which the CLI reports as one line.
    assert issubclass(CatalogVersionError, CatalogError)


def test_corrupt_file_raises_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not an SQLite database, just some text " * 200)
    with pytest.raises(CatalogError, match="not a usable photosim catalog"):
        Catalog(path)


def test_db_path_round_trip() -> None:
    assert db_path("/p/a.jpg") == "/p/a.jpg"
    raw = db_path("/p/" + NON_UTF8_NAME)
    assert raw == b"/p/caf\xe9.jpg"
    assert py_path(raw) == "/p/" + NON_UTF8_NAME


def test_non_utf8_path_round_trips(tmp_path: Path) -> None:
    path = "/p/" + NON_UTF8_NAME
    with Catalog(tmp_path / "c.db") as catalog:
        with catalog.transaction():
            catalog.upsert_photos([photo_row(path, H1, 1, 2, folder="/p")])
            catalog.upsert_photos([{**photo_row(path, H1, 1, 2, folder="/p"), "size": 7}])
        photo = catalog.photo_by_path(path)
        assert photo is not None
        assert photo.path == path and photo.size == 7  # upsert updated the same row
        assert [p.path for p in catalog.photos()] == [path]
        assert catalog.delete_paths([path]) == 1
        assert catalog.photo_by_path(path) is None


def test_non_utf8_root_stat_rows(tmp_path: Path) -> None:
    root = "/" + NON_UTF8_NAME
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.upsert_photos([photo_row(root + "/a.jpg", H1, 1, 2, folder=root)])
        assert [r[0] for r in catalog.stat_rows(root)] == [root + "/a.jpg"]


def test_stat_rows_include_non_utf8_paths(tmp_path: Path) -> None:
    path = "/p/" + NON_UTF8_NAME
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.upsert_photos([photo_row(path, H1, 1, 2, folder="/p", size=5, mtime_ns=9)])
        assert catalog.stat_rows("/p") == [(path, 5, 9)]


def test_stat_rows_prefix_semantics(tmp_path: Path) -> None:
    paths = [
        "/a/b",  # the root itself (a file scanned directly)
        "/a/b/x.jpg",
        "/a/b/deep/er/y.jpg",
        "/a/b2/z.jpg",  # sibling folder sharing the prefix
        "/a/b0/z.jpg",  # '0' is chr(ord('/') + 1): the upper bound itself
        "/a/b.jpg",
        "/a/bz.jpg",
        "/a/c/b/x.jpg",
    ]
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.upsert_photos(
            [photo_row(p, H1, 1, 2, folder="/a", size=i) for i, p in enumerate(paths)]
        )
        expected = {"/a/b", "/a/b/x.jpg", "/a/b/deep/er/y.jpg"}
        assert {r[0] for r in catalog.stat_rows("/a/b")} == expected
        # (scan passes os.path.abspath() roots, never with a trailing separator)
        assert {r[0] for r in catalog.stat_rows("/a/b/")} == expected - {"/a/b"}
        assert ("/a/b/x.jpg", 1, BASE_MTIME_NS) in catalog.stat_rows("/a/b")
        assert {r[0] for r in catalog.stat_rows("/a/b2")} == {"/a/b2/z.jpg"}
        assert {r[0] for r in catalog.stat_rows("/a")} == set(paths)


def test_error_paths_under_filters_root_and_reason(tmp_path: Path) -> None:
    rows = [
        ("/p/a.jpg", "decoder crashed (exit code -9)"),
        ("/p/b.jpg", "not an image: unrecognised content"),
        ("/p/" + NON_UTF8_NAME, "decoding took longer than 30 s"),
        ("/p2/c.jpg", "decoder crashed (exit code -11)"),
        ("/p/ok.jpg", None),
    ]
    with Catalog(tmp_path / "c.db") as catalog:
        for path, error in rows:
            row = photo_row(path, H1, 1, 2, folder="/p")
            if error is not None:
                row.update(status="error", error=error)
            catalog.upsert_photos([row])
        found = catalog.error_paths_under("/p", ("decoder crashed", "decoding took longer"))
        assert found == {"/p/a.jpg", "/p/" + NON_UTF8_NAME}
        assert catalog.error_paths_under("/p", ()) == set()


# What each schema added, undone to make a catalog as an older photosim left it.
_ADDED_BY = {
    4: ("DROP INDEX photos_stat", "DROP INDEX photos_errors"),
    5: ("ALTER TABLE photos DROP COLUMN grey", "ALTER TABLE photos DROP COLUMN capture"),
    6: ("DROP TABLE similarity_verdicts", "DROP TABLE projections"),
    7: ("DROP TABLE tags",),
}


def _older_catalog(tmp_path: Path, version: int) -> Path:
    """A catalog with one photo, as schema ``version`` wrote it."""
    path = tmp_path / "c.db"
    with Catalog(path) as catalog:
        catalog.upsert_photos([photo_row("/p/a.jpg", H1, 1, 2, folder="/p")])
    conn = sqlite3.connect(path)
    for later in range(SCHEMA_VERSION, version, -1):
        for statement in _ADDED_BY.get(later, ()):
            conn.execute(statement)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", [str(version)])
    conn.commit()
    conn.close()
    return path


def test_schema_3_catalog_gains_the_rescan_indexes(tmp_path: Path) -> None:
    path = _older_catalog(tmp_path, 3)
    with Catalog(path) as catalog:
        assert catalog.schema_version() == SCHEMA_VERSION
        plan = " ".join(
            str(r[-1])
            for r in catalog.db.execute(
                "EXPLAIN QUERY PLAN SELECT path, size, mtime_ns FROM photos "
                "WHERE path >= '/p/' AND path < '/p0'"
            )
        )
        assert "COVERING INDEX photos_stat" in plan
        assert catalog.stat_rows("/p") == [("/p/a.jpg", 100_000, BASE_MTIME_NS)]


def test_schema_4_catalog_gains_the_grey_column(tmp_path: Path) -> None:
    """Photos scanned before schema 5 read back with ``grey`` unknown (None); new rows keep
    what the scan found."""
    path = _older_catalog(tmp_path, 4)
    with Catalog(path) as catalog:
        assert catalog.schema_version() == SCHEMA_VERSION
        (old,) = catalog.photos()
        assert old.grey is None
        catalog.upsert_photos([{**photo_row("/p/b.jpg", H2, 1, 2, folder="/p"), "grey": 1}])
        assert {p.path: p.grey for p in catalog.photos()} == {"/p/a.jpg": None, "/p/b.jpg": True}
        assert catalog.known_content(H2)["grey"] == 1  # type: ignore[index]


def test_schema_6_catalog_gains_the_tags_table(tmp_path: Path) -> None:
    path = _older_catalog(tmp_path, 6)
    with Catalog(path) as catalog:
        assert catalog.schema_version() == SCHEMA_VERSION
        assert catalog.tag_models() == []
        assert catalog.missing_descriptor_under("/p", "m", "head") == [("/p/a.jpg", H1)]
        catalog.put_tags("head", [H1], np.array([[3, 1]]), np.array([[0.6, 0.3]]))
        assert catalog.tags(H1, "head") == [(3, pytest.approx(0.6)), (1, pytest.approx(0.3))]
        version = catalog.tags_version()
        catalog.put_tags("head", [H2], np.array([[7]]), np.array([[0.9]]))
        assert catalog.tags_version() != version
        hashes, labels, probs = catalog.all_tags("head")
        assert hashes == sorted([H1, H2])
        by_hash = dict(zip(hashes, zip(labels.tolist(), probs.tolist())))
        assert by_hash[H1][0] == [3, 1] and by_hash[H2][0] == [7, 0]
        assert by_hash[H1][1] == pytest.approx([0.6, 0.3])
        assert by_hash[H2][1] == pytest.approx([0.9, 0.0])
        assert catalog.all_tags("other")[0] == []


def test_schema_7_catalog_gains_the_sketches_table(tmp_path: Path) -> None:
    """Detail sketches round-trip as uint64 codes, strongest first; an orphan's goes with
    its thumbnail."""
    path = _older_catalog(tmp_path, 7)
    codes = np.array([2**64 - 1, 1, 2**63], np.uint64)
    with Catalog(path) as catalog:
        assert catalog.schema_version() == SCHEMA_VERSION
        assert catalog.sketches([H1, H2]) == {}
        catalog.put_sketch(H1, codes.astype("<u8").tobytes())
        catalog.put_sketch(H3, codes[:1].astype("<u8").tobytes())
        got = catalog.sketches([H1, H2, H3])
        assert set(got) == {H1, H3} and got[H1].dtype == np.uint64
        assert got[H1].tolist() == codes.tolist()
        catalog.prune_orphans()  # H3 has no photo
        assert set(catalog.sketches([H1, H3])) == {H1}


def test_embeddings_float16_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, 40)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with Catalog(tmp_path / "c.db") as catalog:
        assert catalog.embedding_stats("m") == (0, 0)
        assert catalog.embedding_dim("m") == 0
        with catalog.transaction():
            catalog.put_embeddings("m", [H1, H2, H3], vectors)
            catalog.put_embeddings("other", [H1], vectors[:1, :8])
        one = catalog.embedding(H2, "m")
        assert one is not None and one.dtype == np.float32 and one.shape == (40,)
        np.testing.assert_allclose(one, vectors[1], atol=1e-3)
        assert catalog.embedding(H2, "other") is None
        assert catalog.has_embedding(H1, "other") and not catalog.has_embedding(H2, "other")
        ids, hashes, got = catalog.embeddings("m")
        assert ids.dtype == np.int64 and list(hashes) == [H1, H2, H3]
        np.testing.assert_allclose(got, vectors, atol=1e-3)
        by_hash = catalog.embedding_ids_by_hash("m")
        assert set(by_hash) == {H1, H2, H3} and sorted(by_hash.values()) == sorted(ids.tolist())
        sub_ids, sub_hashes, sub = catalog.embeddings("m", ids=[by_hash[H3]])
        assert sub_hashes == [H3] and sub.shape == (1, 40)
        assert catalog.embedding_stats("m") == (3, int(ids.max()))
        assert catalog.embedding_dim("m") == 40
        assert catalog.models() == [("m", 3), ("other", 1)]
        # Replacing a descriptor keeps its id (the index label).
        with catalog.transaction():
            catalog.put_embeddings("m", [H1], -vectors[:1])
        assert catalog.embedding_ids_by_hash("m")[H1] == by_hash[H1]
        np.testing.assert_allclose(catalog.embedding(H1, "m"), -vectors[0], atol=1e-3)
        # One id, or the hashes of a query's results, without a catalog-wide dict.
        assert catalog.embedding_id("m", H2) == by_hash[H2]
        assert catalog.embedding_id("other", H2) is None
        other_id = catalog.embedding_id("other", H1)
        assert catalog.hashes_of_ids([by_hash[H3], other_id, 10**9]) == {by_hash[H3]: H3,
                                                                         other_id: H1}
        lazy = IdHashes(catalog)
        assert lazy[by_hash[H2]] == H2 and lazy.get(-1) is None and lazy.get(10**9, "") == ""
        with pytest.raises(KeyError):
            lazy[10**9]


def test_prune_orphans(tmp_path: Path) -> None:
    vectors = np.eye(4, dtype=np.float32)[:3]
    with Catalog(tmp_path / "c.db") as catalog:
        with catalog.transaction():
            catalog.upsert_photos(
                [photo_row("/p/a.jpg", H1, 1, 2), photo_row("/p/b.jpg", H2, 1, 2)]
            )
            catalog.put_embeddings("m", [H1, H2, H3], vectors)
            for h in (H1, H2, H3):
                catalog.put_thumbnail(h, b"\xff\xd8jpeg-" + h.encode())
        ids = catalog.embedding_ids_by_hash("m")
        assert catalog.prune_orphans() == [ids[H3]]  # H3 never had a photo
        assert (
            not catalog.has_thumbnail(H3)
            and catalog.thumbnail(H1) == b"\xff\xd8jpeg-" + H1.encode()
        )
        catalog.delete_paths(["/p/b.jpg"])
        assert catalog.prune_orphans() == [ids[H2]]
        assert catalog.embedding_ids_by_hash("m") == {H1: ids[H1]}
        assert not catalog.has_thumbnail(H2) and catalog.has_thumbnail(H1)
        assert catalog.prune_orphans() == []


def test_verdicts_are_order_independent(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.add_verdict(H2, H1)
        catalog.add_verdict(H1, H2)
        assert catalog.not_duplicate_pairs() == {(H1, H2)}


def test_counts_and_errors(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.upsert_photos(
            [
                photo_row("/p/a.jpg", H1, 1, 2),
                photo_row("/p/b.jpg", H1, 1, 2),
                {**photo_row("/p/c.jpg", H2, 1, 2), "status": "error", "error": "truncated"},
            ]
        )
        catalog.put_thumbnail(H1, b"x")
        assert catalog.counts() == {
            "photos": 3,
            "ok": 2,
            "errors": 1,
            "contents": 1,
            "thumbnails": 1,
        }
        assert catalog.errors() == [("/p/c.jpg", "truncated")]
        assert [p.path for p in catalog.photos_by_hash(H1)] == ["/p/a.jpg", "/p/b.jpg"]
        assert catalog.photos_by_hash(H2) == []  # error rows are not decoded photos
        assert len(catalog.photos(status=None)) == 3
        known = catalog.known_content(H1)
        assert known is not None and known["phash"] == 1 and known["width"] == 640
        assert catalog.known_content(H2) is None


def test_folders_and_remove_folder(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        catalog.add_folder("/p")
        catalog.add_folder("/q", protected=True)
        catalog.add_folder("/q")  # keeps the protected flag
        assert catalog.folders() == [("/p", False), ("/q", True)]
        catalog.set_protected("/q", False)
        assert catalog.folders() == [("/p", False), ("/q", False)]
        catalog.upsert_photos(
            [
                photo_row("/p/a.jpg", H1, 1, 2, folder="/p"),
                photo_row("/q/a.jpg", H1, 1, 2, folder="/q"),
            ]
        )
        assert catalog.remove_folder("/p") == 1
        assert catalog.folders() == [("/q", False)]
        assert [p.path for p in catalog.photos()] == ["/q/a.jpg"]


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        with pytest.raises(RuntimeError):
            with catalog.transaction():
                catalog.upsert_photos([photo_row("/p/a.jpg", H1, 1, 2)])
                raise RuntimeError("boom")
        assert catalog.photos(status=None) == []
