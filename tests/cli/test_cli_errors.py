"""When the disk or the system says no: one line saying what to do, exit 1, nothing lost."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import pytest
from helpers import write_photo_set

from photosim.cli import EXIT_ERROR, EXIT_OK, main
from photosim.core import catalog as catalog_module
from photosim.core.catalog import Catalog
from photosim.core.errors import explain


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("photosim: ")
    return lines[0]


@pytest.fixture
def scanned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    folder = tmp_path / "photos"
    write_photo_set(folder)
    catalog = tmp_path / "c.db"
    rc, _, _ = run(capsys, "scan", str(folder), "--model", "none", "-q", "--workers", "1",
                   "--catalog", str(catalog))
    assert rc == EXIT_OK
    return folder, catalog


def test_disk_full_while_scanning(
    scanned: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLite's own "database or disk is full" (a page limit just above the catalog's size)."""
    folder, catalog = scanned
    more = tmp_path / "more"
    write_photo_set(more, seed=5, other_seed=6)
    real_init = Catalog.__init__

    def full_disk(self: Catalog, path: object) -> None:
        real_init(self, path)  # type: ignore[arg-type]
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count = {pages + 1}")

    monkeypatch.setattr(Catalog, "__init__", full_disk)
    rc, _, err = run(capsys, "scan", str(more), "--model", "none", "-q", "--workers", "1",
                     "--catalog", str(catalog))
    assert rc == EXIT_ERROR
    line = _one_line(err)
    assert f"the disk holding the catalog {catalog} is full: free some space" in line
    monkeypatch.undo()
    with Catalog(catalog) as cat:  # intact, and what was there before is still there
        assert cat.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert {Path(p.path).parent for p in cat.photos()} >= {folder}
    rc, _, _ = run(capsys, "scan", str(more), "--model", "none", "-q", "--workers", "1",
                   "--catalog", str(catalog))
    assert rc == EXIT_OK  # with space again, the scan completes
    with Catalog(catalog) as cat:
        assert len(cat.photos()) == 14


def test_catalog_locked_by_another_process(
    scanned: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer holds the catalog (WAL: readers never wait, writers do)."""
    folder, catalog = scanned
    monkeypatch.setenv("PHOTOSIM_LOCK_TIMEOUT", "0.2")
    holder = sqlite3.connect(str(catalog), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        rc, _, err = run(capsys, "scan", str(folder), "--model", "none", "-q", "--workers", "1",
                         "--catalog", str(catalog))
        assert run(capsys, "info", "--catalog", str(catalog))[0] == EXIT_OK  # reads go on
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rc == EXIT_ERROR
    line = _one_line(err)
    assert "is in use by another photosim (or another program)" in line
    assert "$PHOTOSIM_LOCK_TIMEOUT" in line
    rc, _, _ = run(capsys, "scan", str(folder), "--model", "none", "-q", "--workers", "1",
                   "--catalog", str(catalog))
    assert rc == EXIT_OK


def test_read_only_catalog(
    scanned: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Opened read-only by SQLite (file permissions do not stop root, who runs CI)."""
    _, catalog = scanned
    more = tmp_path / "more"
    write_photo_set(more, seed=7, other_seed=8)
    real_connect = sqlite3.connect

    def read_only(path: str, **kwargs: object) -> sqlite3.Connection:
        return real_connect(f"file:{path}?mode=ro", uri=True, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog_module.sqlite3, "connect", read_only)
    rc, _, err = run(capsys, "scan", str(more), "--model", "none", "-q", "--workers", "1",
                     "--catalog", str(catalog))
    assert rc == EXIT_ERROR
    assert f"the catalog {catalog} is read-only: make the file and its folder writable" in (
        _one_line(err)
    )


def test_corrupt_catalog_is_refused_then_rebuilt_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    write_photo_set(folder)
    catalog = tmp_path / "c.db"
    garbage = b"this is not an SQLite file " * 200
    catalog.write_bytes(garbage)
    rc, _, err = run(capsys, "info", "--catalog", str(catalog))
    assert rc == EXIT_ERROR
    line = _one_line(err)
    assert f"{catalog} is not a usable photosim catalog" in line
    assert "photosim scan --rebuild FOLDER" in line
    assert catalog.read_bytes() == garbage  # never overwritten silently

    rc, _, err = run(capsys, "scan", str(folder), "--rebuild", "--model", "none", "-q",
                     "--workers", "1", "--catalog", str(catalog))
    assert rc == EXIT_OK, err
    (kept,) = tmp_path.glob("c.db.unusable-*")
    assert kept.read_bytes() == garbage and "moved the unusable catalog aside" in err
    with Catalog(catalog) as cat:
        assert len(cat.photos()) == 7


def test_rebuild_leaves_a_usable_catalog_alone(
    scanned: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, catalog = scanned
    rc, _, _ = run(capsys, "scan", str(folder), "--rebuild", "--model", "none", "-q",
                   "--catalog", str(catalog))
    assert rc == EXIT_OK
    assert not list(catalog.parent.glob("*.unusable-*"))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.ENOSPC, "no space left on the disk while writing /lib/x.hnsw: free some space"),
        (errno.EROFS, "/lib/x.hnsw is on a read-only disk"),
        (errno.EACCES, "permission denied: /lib/x.hnsw: give your user access to it"),
    ],
)
def test_os_errors_are_explained(code: int, expected: str) -> None:
    import os

    message = explain(OSError(code, os.strerror(code), "/lib/x.hnsw"))
    assert message is not None and message.startswith(expected) and "\n" not in message


def test_unknown_errors_are_not_explained_away() -> None:
    assert explain(OSError(errno.EIO, "I/O error", "/x")) is None
    assert explain(ValueError("bug")) is None


def test_disk_full_for_the_index_files_costs_only_the_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The vector index beside the catalog is a cache: if it cannot be written the scan still
    succeeds, the half-written files are not trusted, and the next use rebuilds them."""
    from photosim.core.index import vectors as index_module

    folder = tmp_path / "photos"
    write_photo_set(folder)
    catalog = tmp_path / "c.db"

    def no_space(path: object, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(index_module.np, "save", no_space)
    rc, _, err = run(capsys, "scan", str(folder), "--model", "none", "-q", "--workers", "1",
                     "--catalog", str(catalog))
    assert rc == EXIT_OK, err
    assert "could not be saved beside the catalog (no space left on the disk" in caplog.text
    assert not list(tmp_path.glob("c.*.json"))  # no sidecar: the files are not trusted
    monkeypatch.undo()
    rc, out, _ = run(capsys, "duplicates", "--json", "--catalog", str(catalog))
    assert rc == EXIT_OK and len(json.loads(out)["groups"]) == 1  # grouping unaffected
    with Catalog(catalog) as cat:
        assert len(index_module.VectorIndex.open(cat, index_module.HASH_MODEL)) == 6
    assert list(tmp_path.glob("c.*.json"))  # rebuilt from the catalog and saved
