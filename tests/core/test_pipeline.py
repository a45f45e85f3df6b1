"""The scan pipeline on real files: one decode per content, stat-only rescans, moves, deletions,
edits, hostile files, cancellation and hash-only scans upgraded with descriptors."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    BASE_MTIME_NS,
    CountingEmbedder,
    byte_copy,
    catalog_rows,
    count_files,
    make_photo,
    set_mtime,
    write_photo_set,
)
from PIL import Image

from photosim.config import Settings
from photosim.core.cancel import CancelToken
from photosim.core.catalog import Catalog
from photosim.core.index.vectors import HASH_MODEL, VectorIndex, index_paths
from photosim.core.scan.pipeline import _CoreSplit, run_scan, scan
from photosim.core.types import Progress, ScanStage, ScanSummary

MODEL = "test-colorgrid"
N_FILES = 7  # write_photo_set: original + 5 copies + a different photo
N_CONTENTS = 6  # the exact copy shares the original's content
SETTINGS = Settings(workers=1)


def drive(gen: Generator[Progress, None, ScanSummary]) -> tuple[list[Progress], ScanSummary]:
    """Iterate a scan generator, keeping every progress report and the summary."""
    progress: list[Progress] = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            return progress, stop.value


@dataclass
class Scanned:
    folder: Path
    paths: dict[str, Path]
    catalog: Catalog
    embedder: CountingEmbedder
    summary: ScanSummary
    progress: list[Progress]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Generator[Scanned, None, None]:
    """The photo set scanned once with the counting test embedder (read-only for tests)."""
    tmp = tmp_path_factory.mktemp("pipeline")
    paths = write_photo_set(tmp / "photos")
    catalog = Catalog(tmp / "c.db")
    embedder = CountingEmbedder()
    progress, summary = drive(scan(catalog, [str(tmp / "photos")], SETTINGS, embedder))
    yield Scanned(tmp / "photos", paths, catalog, embedder, summary, progress)
    catalog.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Generator[Scanned, None, None]:
    """Like ``scanned`` but private to one test, which may change files and rescan."""
    paths = write_photo_set(tmp_path / "photos")
    catalog = Catalog(tmp_path / "c.db")
    embedder = CountingEmbedder()
    progress, summary = drive(scan(catalog, [str(tmp_path / "photos")], SETTINGS, embedder))
    assert summary.errors == 0 and summary.embedded == N_CONTENTS
    yield Scanned(tmp_path / "photos", paths, catalog, embedder, summary, progress)
    catalog.close()


def rescan(s: Scanned, embedder: object = "same", **kw: object) -> ScanSummary:
    chosen = s.embedder if embedder == "same" else embedder
    return run_scan(scan(s.catalog, [str(s.folder)], SETTINGS, chosen, **kw))  # type: ignore[arg-type]


def index_hashes(catalog: Catalog, model: str) -> set[str]:
    """Content hashes labelled in the (re-opened) index; checks it holds the catalog's vectors."""
    index = VectorIndex.open(catalog, model)
    assert index is not None
    ids, hashes, vectors = catalog.embeddings(model)
    labels, sims = index.knn(vectors, len(index))
    for i, label in enumerate(ids.tolist()):
        found = dict(zip(labels[i].tolist(), sims[i].tolist()))
        assert found.get(label, 0.0) > 0.99, "the index does not hold the catalog's vector"
    by_label = dict(zip(ids.tolist(), hashes))
    return {by_label[label] for label in labels[0].tolist()}


# ----------------------------------------------------------------------------- first scan
def test_first_scan_fills_the_catalog(scanned: Scanned) -> None:
    catalog, paths = scanned.catalog, scanned.paths
    rows = catalog_rows(catalog)
    assert sorted(rows) == sorted(str(p) for p in paths.values())
    assert all(p.status == "ok" and p.error is None for p in rows.values())
    assert all(p.folder == str(scanned.folder) for p in rows.values())
    photo = {name: rows[str(path)] for name, path in paths.items()}
    assert (photo["original"].width, photo["original"].height) == (640, 480)
    assert (photo["resized"].width, photo["resized"].height) == (320, 240)
    assert (photo["cropped"].width, photo["cropped"].height) == (576, 432)
    # Stored as 480x640 with EXIF Orientation 6: recorded upright.
    with Image.open(paths["rotated"]) as img:
        assert img.size == (480, 640)
    assert (photo["rotated"].width, photo["rotated"].height) == (640, 480)
    assert photo["copy"].content_hash == photo["original"].content_hash
    assert photo["rotated"].phash == photo["original"].phash  # same upright pixels
    for name, p in photo.items():
        st = os.stat(paths[name])
        assert (p.size, p.mtime_ns, p.format) == (st.st_size, st.st_mtime_ns, "JPEG")
    contents = {p.content_hash for p in rows.values()}
    assert len(contents) == N_CONTENTS
    for h in contents:
        jpeg = catalog.thumbnail(h)
        assert jpeg is not None
        with Image.open(io.BytesIO(jpeg)) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= SETTINGS.thumb_size
            assert thumb.width > thumb.height  # every photo of the set is landscape upright
    assert set(catalog.embedding_ids_by_hash(MODEL)) == contents
    assert set(catalog.embedding_ids_by_hash(HASH_MODEL)) == contents
    assert catalog.embedding_dim(MODEL) == 48 and catalog.embedding_dim(HASH_MODEL) == 128
    assert catalog.get_meta("model") == MODEL
    assert catalog.folders() == [(str(scanned.folder), False)]
    for model in (MODEL, HASH_MODEL):
        assert all(p.is_file() for p in index_paths(catalog.path, model))
        assert index_hashes(catalog, model) == contents


def test_first_scan_summary(scanned: Scanned) -> None:
    s = scanned.summary
    assert (s.seen, s.new, s.changed, s.unchanged, s.removed, s.errors) == (
        N_FILES,
        N_FILES,
        0,
        0,
        0,
        0,
    )
    assert s.decoded == N_CONTENTS  # the exact copy is not decoded a second time
    assert s.embedded == N_CONTENTS and scanned.embedder.images == N_CONTENTS
    assert not s.cancelled and s.embed_note is None and s.error_samples == []
    assert s.seconds > 0 and s.images_per_second > 0


def test_first_scan_summary_accounts_for_every_file(scanned: Scanned) -> None:
    s = scanned.summary
    assert s.decoded + s.reused + s.errors == s.new + s.changed


def test_progress_reports(scanned: Scanned) -> None:
    progress = scanned.progress
    stages = [p.stage for p in progress]
    assert stages[-2:] == [ScanStage.INDEXING, ScanStage.DONE]
    processing = [p for p in progress if p.stage is ScanStage.PROCESSING]
    assert processing, "no PROCESSING progress"
    first_other = next(i for i, st in enumerate(stages) if st is not ScanStage.WALKING)
    assert all(
        st is ScanStage.PROCESSING for st in stages[first_other : first_other + len(processing)]
    )
    assert all(p.total == N_FILES for p in processing)
    done = [p.done for p in processing]
    assert done == sorted(done) and done[-1] == N_FILES
    assert progress[-1].done == progress[-1].total == N_FILES and progress[-1].errors == 0


# ----------------------------------------------------------------------------- rescans
def test_rescan_is_stat_only(fresh: Scanned) -> None:
    before, calls = fresh.embedder.images, fresh.embedder.calls
    s = rescan(fresh)
    assert (s.seen, s.unchanged, s.new, s.changed, s.removed) == (N_FILES, N_FILES, 0, 0, 0)
    assert (s.decoded, s.embedded, s.reused, s.errors) == (0, 0, 0, 0)
    # Nothing to do: the embedder is not even probed (a lazy one would not load torch).
    assert fresh.embedder.images == before and fresh.embedder.calls == calls


def test_moved_file_keeps_its_content_and_descriptor_id(fresh: Scanned) -> None:
    catalog = fresh.catalog
    old = fresh.paths["different"]
    content = catalog_rows(catalog)[str(old)].content_hash
    assert content is not None
    descriptor_id = catalog.embedding_ids_by_hash(MODEL)[content]
    moved = fresh.folder / "moved here.jpg"
    os.rename(old, moved)
    s = rescan(fresh)
    assert (s.seen, s.new, s.removed, s.unchanged, s.errors) == (N_FILES, 1, 1, N_FILES - 1, 0)
    rows = catalog_rows(catalog)
    assert str(old) not in rows and rows[str(moved)].content_hash == content
    assert catalog.embedding_ids_by_hash(MODEL)[content] == descriptor_id
    assert content in index_hashes(catalog, MODEL)


def test_moved_file_is_not_decoded_again(fresh: Scanned) -> None:
    before = fresh.embedder.images
    os.rename(fresh.paths["different"], fresh.folder / "moved.jpg")
    s = rescan(fresh)
    assert (s.decoded, s.embedded, s.reused, s.removed) == (0, 0, 1, 1)
    assert fresh.embedder.images == before


def test_deleted_file_leaves_the_catalog_and_its_descriptor_is_pruned(fresh: Scanned) -> None:
    catalog = fresh.catalog
    gone = fresh.paths["different"]
    content = catalog_rows(catalog)[str(gone)].content_hash
    assert content is not None
    os.remove(gone)
    s = rescan(fresh)
    assert (s.seen, s.removed, s.unchanged, s.new) == (N_FILES - 1, 1, N_FILES - 1, 0)
    assert str(gone) not in catalog_rows(catalog)
    for model in (MODEL, HASH_MODEL):
        assert content not in catalog.embedding_ids_by_hash(model)
        assert content not in index_hashes(catalog, model)
        assert len(VectorIndex.open(catalog, model) or []) == N_CONTENTS - 1
    assert not catalog.has_thumbnail(content)
    # A deleted exact copy leaves the shared content alone.
    os.remove(fresh.paths["copy"])
    rescan(fresh)
    original = catalog_rows(catalog)[str(fresh.paths["original"])].content_hash
    assert original is not None and catalog.has_embedding(original, MODEL)
    assert catalog.has_thumbnail(original)


def test_changed_file_is_decoded_again(fresh: Scanned) -> None:
    catalog = fresh.catalog
    path = fresh.paths["different"]
    old = catalog_rows(catalog)[str(path)]
    before = fresh.embedder.images
    make_photo(path, 99)
    set_mtime(path, BASE_MTIME_NS + 100 * 10**9)
    s = rescan(fresh)
    assert (s.changed, s.new, s.unchanged, s.decoded, s.embedded) == (1, 0, N_FILES - 1, 1, 1)
    assert fresh.embedder.images == before + 1
    new = catalog_rows(catalog)[str(path)]
    assert new.id == old.id and new.content_hash != old.content_hash
    assert new.mtime_ns == BASE_MTIME_NS + 100 * 10**9
    assert new.phash != old.phash
    assert old.content_hash not in catalog.embedding_ids_by_hash(MODEL)
    assert new.content_hash in catalog.embedding_ids_by_hash(MODEL)
    assert not catalog.has_thumbnail(old.content_hash or "") and catalog.has_thumbnail(
        new.content_hash or ""
    )


def test_touched_file_with_same_content_is_reused(fresh: Scanned) -> None:
    path = fresh.paths["resized"]
    set_mtime(path, BASE_MTIME_NS + 500 * 10**9)
    before = fresh.embedder.images
    s = rescan(fresh)
    # Content already known (same hash): metadata, thumbnail and descriptor are reused.
    assert (s.changed, s.decoded, s.reused, s.embedded) == (1, 0, 1, 0)
    assert fresh.embedder.images == before
    assert catalog_rows(fresh.catalog)[str(path)].mtime_ns == BASE_MTIME_NS + 500 * 10**9


def test_new_copy_of_known_content_is_reused(fresh: Scanned) -> None:
    (fresh.folder / "sub").mkdir()
    byte_copy(fresh.paths["different"], fresh.folder / "sub" / "again.jpg")
    s = rescan(fresh)
    assert (s.new, s.decoded, s.reused, s.embedded) == (1, 0, 1, 0)


# ----------------------------------------------------------------------------- hostile files
def test_badinput_scan_completes(badinput_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((badinput_dir / "manifest.json").read_text())
    expected = {str(badinput_dir / f["path"]): f["expected"] for f in manifest["files"]}
    with Catalog(tmp_path / "c.db") as catalog:
        s = run_scan(scan(catalog, [str(badinput_dir)], Settings(workers=2)))
        assert not s.cancelled
        assert s.seen == len(expected) == 39
        assert s.seen == count_files(badinput_dir, skip_suffixes=(".md", ".json"))
        rows = catalog_rows(catalog)
        assert set(rows) == set(expected)
        for path, photo in rows.items():
            assert photo.status in ("ok", "error"), path
            if photo.status == "error":
                assert photo.error and photo.error.strip(), path
            else:
                assert photo.width and photo.height and photo.content_hash, path
            want = expected[path]
            if want in ("error", "bomb_error"):
                assert photo.status == "error", (path, photo.error)
            elif want == "decodes":
                assert photo.status == "ok", (path, photo.error)
        bombs = [p for p, w in expected.items() if w == "bomb_error"]
        assert all(rows[p].error.startswith("decompression bomb") for p in bombs)  # type: ignore[union-attr]
        assert s.errors == sum(1 for p in rows.values() if p.status == "error")
        assert s.errors + s.decoded + s.reused <= s.seen
        # Broken files are not retried on a rescan: stat-only.
        again = run_scan(scan(catalog, [str(badinput_dir)], Settings(workers=2)))
        assert (again.unchanged, again.decoded, again.errors) == (39, 0, 0)


def test_unreadable_file_is_recorded(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files with mode 000")
    folder = tmp_path / "photos"
    make_photo(folder / "ok.jpg", 1, size=(128, 96))
    locked = make_photo(folder / "locked.jpg", 2, size=(128, 96))
    os.chmod(locked, 0)
    try:
        with Catalog(tmp_path / "c.db") as catalog:
            s = run_scan(scan(catalog, [str(folder)], SETTINGS))
            assert s.errors == 1
            row = catalog_rows(catalog)[str(locked)]
            assert row.status == "error" and "cannot read file" in (row.error or "")
    finally:
        os.chmod(locked, 0o644)


@pytest.mark.parametrize(
    ("reason", "retried"),
    [("decoder crashed (exit code -9)", True), ("not an image: unrecognised content", False)],
)
def test_rescan_retries_files_that_failed_for_transient_reasons(
    tmp_path: Path, reason: str, retried: bool
) -> None:
    # A worker crash or hang says more about the machine than the file: rescans retry it,
    # while a real decoding error on an unchanged file is not decoded again.
    folder = tmp_path / "photos"
    photo = make_photo(folder / "a.jpg", 1, size=(128, 96))
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS))
        catalog.db.execute(
            "UPDATE photos SET status='error', error=? WHERE path=?", [reason, str(photo)]
        )
        s = run_scan(scan(catalog, [str(folder)], SETTINGS))
        row = catalog_rows(catalog)[str(photo)]
        assert (s.changed, s.unchanged) == ((1, 0) if retried else (0, 1))
        assert row.status == ("ok" if retried else "error")


# ----------------------------------------------------------------------------- cancel
class GatedEmbedder(CountingEmbedder):
    """Blocks each batch until released, so a test can cancel while inference is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def embed(self, images):  # type: ignore[no-untyped-def]
        if not len(images):  # the scan's load probe
            return super().embed(images)
        self.started.set()
        assert self.release.wait(10), "test never released the batch"
        return super().embed(images)


def test_cancel_during_inference_keeps_and_counts_that_batch(tmp_path: Path) -> None:
    paths = write_photo_set(tmp_path / "photos")
    embedder = GatedEmbedder()
    cancel = CancelToken()
    with Catalog(tmp_path / "c.db") as catalog:
        gen = scan(catalog, [str(tmp_path / "photos")], Settings(workers=1, batch_size=2),
                   embedder, cancel)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                summary = stop.value
                break
            if embedder.started.is_set() and not cancel.cancelled():
                cancel.cancel()
                embedder.release.set()
        stored = len(catalog.embedding_ids_by_hash(MODEL))
    assert summary.cancelled
    assert embedder.images == 2 and stored == 2  # the in-flight batch was kept...
    assert summary.embedded == stored  # ...and counted
    assert len(paths) > stored


@pytest.mark.parametrize("when", ["first progress", "first commit"])
def test_cancel_keeps_finished_batches_and_next_scan_resumes(tmp_path: Path, when: str) -> None:
    paths = write_photo_set(tmp_path / "photos")
    for i in range(5):  # a few more contents, so there are several batches
        paths[f"extra{i}"] = make_photo(
            tmp_path / "photos" / f"extra{i}.jpg", 200 + i, size=(320, 240)
        )
    n = len(paths)
    settings = Settings(workers=1, batch_size=2)
    cancel = CancelToken()
    with Catalog(tmp_path / "c.db") as catalog:
        gen = scan(catalog, [str(tmp_path / "photos")], settings, CountingEmbedder(), cancel)
        stages = []
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                summary = stop.value
                break
            stages.append(p.stage)
            if p.stage is ScanStage.PROCESSING and (when == "first progress" or p.done > 0):
                cancel.cancel()
        assert summary.cancelled
        assert stages[-1] is ScanStage.DONE  # the index is still brought up to date
        kept = catalog_rows(catalog)
        assert len(kept) < n
        if when == "first commit":
            assert len(kept) >= 2
        # What was committed is complete: rows, thumbnails, descriptors.
        # The summary counts exactly the descriptors that were stored.
        assert summary.embedded == len(catalog.embedding_ids_by_hash(MODEL))
        for photo in kept.values():
            assert photo.status == "ok" and catalog.has_thumbnail(photo.content_hash or "")
            assert catalog.has_embedding(photo.content_hash or "", MODEL)
        embedder = CountingEmbedder()
        s = run_scan(scan(catalog, [str(tmp_path / "photos")], settings, embedder))
        assert not s.cancelled and s.new == n - len(kept) and s.unchanged == len(kept)
        rows = catalog_rows(catalog)
        assert sorted(rows) == sorted(str(p) for p in paths.values())
        assert all(p.status == "ok" for p in rows.values())
        assert len(catalog.embedding_ids_by_hash(MODEL)) == n - 1


# ----------------------------------------------------------------------------- hash-only
def test_hash_only_scan_then_descriptors_are_added(tmp_path: Path) -> None:
    paths = write_photo_set(tmp_path / "photos")
    with Catalog(tmp_path / "c.db") as catalog:
        s = run_scan(scan(catalog, [str(tmp_path / "photos")], SETTINGS, None))
        assert (s.new, s.decoded, s.embedded, s.errors) == (N_FILES, N_CONTENTS, 0, 0)
        assert catalog.models() == [(HASH_MODEL, N_CONTENTS)]
        assert catalog.get_meta("model") is None
        rows = catalog_rows(catalog)
        assert all(p.status == "ok" and p.phash is not None for p in rows.values())
        assert catalog.counts()["thumbnails"] == N_CONTENTS
        # The same catalog scanned again with an embedder: unchanged files get descriptors.
        embedder = CountingEmbedder()
        s = run_scan(scan(catalog, [str(tmp_path / "photos")], SETTINGS, embedder))
        assert (s.new, s.changed, s.unchanged) == (0, 0, N_FILES)
        assert (s.decoded, s.embedded, s.reused, s.errors) == (N_CONTENTS, N_CONTENTS, 0, 0)
        assert embedder.images == N_CONTENTS
        assert dict(catalog.models()) == {HASH_MODEL: N_CONTENTS, MODEL: N_CONTENTS}
        assert catalog.get_meta("model") == MODEL
        assert catalog_rows(catalog) == rows  # rows unchanged
        # And a third scan has nothing left to do.
        s = run_scan(scan(catalog, [str(tmp_path / "photos")], SETTINGS, embedder))
        assert (s.decoded, s.embedded) == (0, 0) and embedder.images == N_CONTENTS
        assert paths  # (fixture used)


def test_failing_embedder_degrades_to_hash_only(tmp_path: Path) -> None:
    class Broken(CountingEmbedder):
        def embed(self, images):  # type: ignore[no-untyped-def]
            raise RuntimeError("CUDA out of memory (simulated)")

    write_photo_set(tmp_path / "photos")
    with Catalog(tmp_path / "c.db") as catalog:
        s = run_scan(scan(catalog, [str(tmp_path / "photos")], SETTINGS, Broken()))
        assert s.embedded == 0 and s.errors == 0
        assert s.embed_note is not None and "CUDA out of memory" in s.embed_note
        rows = catalog_rows(catalog)
        assert len(rows) == N_FILES and all(p.status == "ok" for p in rows.values())
        assert catalog.embedding_stats(MODEL) == (0, 0)


def test_rescans_stay_stat_only_while_descriptors_cannot_be_made(tmp_path: Path) -> None:
    # Weights missing: every rescan used to re-decode the whole library to retry descriptors.
    from photosim.core.types import Error

    class NoWeights(CountingEmbedder):
        def embed(self, images):  # type: ignore[no-untyped-def]
            self.calls += 1
            raise Error("weights are missing (simulated)")

    write_photo_set(tmp_path / "photos")
    embedder = NoWeights()
    with Catalog(tmp_path / "c.db") as catalog:
        first = run_scan(scan(catalog, [str(tmp_path / "photos")], SETTINGS, embedder))
        assert first.decoded == N_CONTENTS and first.embedded == 0
        assert first.embed_note == "weights are missing (simulated)"
        again = run_scan(scan(catalog, [str(tmp_path / "photos")], SETTINGS, embedder))
        assert again.unchanged == N_FILES and again.decoded == 0
        assert again.embed_note == "weights are missing (simulated)"
        assert embedder.calls == 2  # one cheap empty-batch probe per scan, nothing more


# ----------------------------------------------------------------------------- names
NON_UTF8 = os.fsdecode(b"caf\xe9 photo.jpg")


def test_non_utf8_file_name_is_scanned(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    make_photo(folder / NON_UTF8, 5, size=(200, 150))
    with Catalog(tmp_path / "c.db") as catalog:
        s = run_scan(scan(catalog, [str(folder)], SETTINGS))
        assert (s.new, s.errors, s.decoded) == (1, 0, 1)
        photo = catalog.photo_by_path(str(folder / NON_UTF8))
        assert photo is not None and photo.status == "ok" and photo.width == 200


def test_non_utf8_file_name_rescan_and_delete(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    path = make_photo(folder / NON_UTF8, 5, size=(200, 150))
    make_photo(folder / "plain.jpg", 6, size=(200, 150))
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS))
        s = run_scan(scan(catalog, [str(folder)], SETTINGS))
        assert (s.unchanged, s.new) == (2, 0)
        os.remove(path)
        s = run_scan(scan(catalog, [str(folder)], SETTINGS))
        assert s.removed == 1
        assert catalog.photo_by_path(str(path)) is None


def test_two_roots_and_removed_root_folder(tmp_path: Path) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    make_photo(a / "x.jpg", 1, size=(160, 120))
    make_photo(b / "y.jpg", 2, size=(160, 120))
    with Catalog(tmp_path / "c.db") as catalog:
        s = run_scan(scan(catalog, [str(a), str(b)], SETTINGS))
        assert (s.seen, s.new) == (2, 2)
        assert [f for f, _ in catalog.folders()] == [str(a), str(b)]
        shutil.rmtree(b)
        s = run_scan(scan(catalog, [str(a), str(b)], SETTINGS))
        assert (s.seen, s.removed, s.unchanged) == (1, 1, 1)
        assert [p.path for p in catalog.photos()] == [str(a / "x.jpg")]


def test_index_follows_a_replaced_file(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    path = make_photo(folder / "a.jpg", 1, size=(320, 240))
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS))
        make_photo(path, 2, size=(320, 240))
        set_mtime(path, BASE_MTIME_NS)
        s = run_scan(scan(catalog, [str(folder)], SETTINGS))
        assert (s.changed, s.decoded) == (1, 1)
        new = catalog.photo_by_path(str(path))
        assert new is not None
        assert index_hashes(catalog, HASH_MODEL) == {new.content_hash}


def test_dev_copy_rescan_after_cleanup(dev_copy: Path, tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        s = run_scan(scan(catalog, [str(dev_copy)], Settings(workers=2)))
        assert (s.seen, s.errors) == (165, 2)
        broken = [path for path, _ in catalog.errors()]
        assert all(Path(p).name == "ukbench09268_corrupt.jpg" for p in broken)
        for path in broken:
            os.remove(path)
        s = run_scan(scan(catalog, [str(dev_copy)], Settings(workers=2)))
        assert (s.seen, s.removed, s.unchanged, s.decoded) == (163, 2, 163, 0)
        assert catalog.errors() == [] and catalog.counts()["photos"] == 163


def test_unchanged_rescan_skips_indexing(tmp_path: Path) -> None:
    write_photo_set(tmp_path / "photos")
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "photos")], SETTINGS))
        hnsw = index_paths(catalog.path, HASH_MODEL)[0]
        stamp = hnsw.stat().st_mtime_ns
        stages = [p.stage for p in drive(scan(catalog, [str(tmp_path / "photos")], SETTINGS))[0]]
        assert ScanStage.INDEXING not in stages and hnsw.stat().st_mtime_ns == stamp


def test_a_killed_scan_keeps_hash_vectors_with_its_batches(tmp_path: Path) -> None:
    # A scan killed between batches (or before its index stage) must not leave decoded
    # contents without their hash vector: an unchanged rescan skips the index stage.
    write_photo_set(tmp_path / "photos")
    settings = Settings(workers=1, batch_size=2)
    with Catalog(tmp_path / "c.db") as catalog:
        gen = scan(catalog, [str(tmp_path / "photos")], settings)
        for progress in gen:
            if progress.stage == ScanStage.PROCESSING and progress.done >= 2:
                break
        gen.close()  # killed: no index stage ran
        contents = catalog.counts()["contents"]
        assert 0 < contents < N_CONTENTS
        assert catalog.embedding_stats(HASH_MODEL)[0] == contents
        summary = run_scan(scan(catalog, [str(tmp_path / "photos")], settings))
        assert summary.new > 0
        assert catalog.embedding_stats(HASH_MODEL)[0] == N_CONTENTS
        assert len(VectorIndex.open(catalog, HASH_MODEL) or []) == N_CONTENTS


# ----------------------------------------------------------------------------- core split
class _FakePool:
    def __init__(self, decode_cpu_s: float, files: int) -> None:
        self.cpu_seconds, self.completed = decode_cpu_s * files, files


@pytest.mark.parametrize(
    ("cores", "inference_ms", "decode_ms", "expected"),
    [
        (2, 50, 40, 1),  # this machine, float32: one inference thread, decoders fill the rest
        (16, 50, 40, 9),  # round(16 * 50 / 90)
        (8, 10, 90, 1),  # cheap model, costly photos: decoding gets the cores
        (8, 200, 10, 8),  # costly model: every core infers (decoders take the gaps)
    ],
)
def test_core_split_follows_the_stage_costs(
    cores: int, inference_ms: float, decode_ms: float, expected: int
) -> None:
    split = _CoreSplit(cores)
    assert split.threads == max(1, cores // 2)
    pool = _FakePool(decode_ms / 1e3, 100)
    for _ in range(8):  # first batch is warm-up; wall time shrinks as threads are added
        split.update(32, 32 * inference_ms / 1e3 / split.threads, pool)  # type: ignore[arg-type]
    assert split.threads == expected


class ThreadedEmbedder(CountingEmbedder):
    """A CPU embedder with a thread knob that records the count each batch ran with."""

    def __init__(self) -> None:
        super().__init__()
        self.threads = 99
        self.seen: list[tuple[int, str, int]] = []

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        self.seen.append((self.threads, threading.current_thread().name, len(images)))
        return super().embed(images)


def test_scan_sets_inference_threads_on_the_inference_thread(tmp_path: Path) -> None:
    write_photo_set(tmp_path / "photos")
    embedder = ThreadedEmbedder()
    with Catalog(tmp_path / "c.db") as catalog:
        s = run_scan(scan(catalog, [str(tmp_path / "photos")], Settings(workers=1, batch_size=2),
                          embedder))
    assert s.embedded == N_CONTENTS
    # The load probe (an empty batch) and every batch run on the inference thread; batches
    # run with the thread count of the core split.
    assert all(name.startswith("photosim-inference") for _, name, _ in embedder.seen)
    batches = [threads for threads, _, n in embedder.seen if n]
    assert batches
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert all(1 <= threads <= (cores or 1) for threads in batches)


def test_closing_the_scan_while_the_model_loads_stops_its_workers(tmp_path: Path) -> None:
    import multiprocessing

    write_photo_set(tmp_path / "photos")
    with Catalog(tmp_path / "c.db") as catalog:
        gen = scan(catalog, [str(tmp_path / "photos")], SETTINGS, CountingEmbedder())
        for progress in gen:
            if progress.message == "loading the model":
                break
        else:
            pytest.fail("the scan never reported loading the model")
        gen.close()  # the consumer goes away (a closed window, Ctrl-C in a caller)
    alive = [p for p in multiprocessing.active_children() if p.name == "photosim-decode"]
    assert alive == []
