"""The k-nearest-neighbour graph: written by the scan, extended incrementally, read by
grouping with the same result as querying the indexes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import CountingEmbedder, make_photo, write_photo_set
from PIL import Image

from photosim.config import Settings, Thresholds
from photosim.core.catalog import Catalog
from photosim.core.dedup.grouping import find_duplicates, forget_verdicts, group_pairs
from photosim.core.index import graph
from photosim.core.index.vectors import HASH_MODEL
from photosim.core.scan.pipeline import run_scan, scan

SETTINGS = Settings(workers=1)


def rows(catalog: Catalog, model: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {
        label: (np.frombuffer(a, np.int64), np.frombuffer(b, np.float32))
        for label, a, b in catalog.db.execute(
            "SELECT id, labels, sims FROM knn_graph WHERE model=?", [model]
        )
    }


def label_of(catalog: Catalog, model: str, path: Path) -> int:
    photo = catalog.photo_by_path(str(path))
    assert photo is not None and photo.content_hash
    return catalog.embedding_ids_by_hash(model)[photo.content_hash]


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path / "photos"
    paths = write_photo_set(folder)
    # A copy rotated in its pixels (not by EXIF): only an orientation query finds it.
    turned = folder / "turned.png"
    Image.open(paths["original"]).transpose(Image.Transpose.ROTATE_90).save(turned)
    paths["turned"] = turned
    return folder, paths


def test_scan_writes_a_row_per_vector_best_first(
    tmp_path: Path, library: tuple[Path, dict[str, Path]]
) -> None:
    folder, paths = library
    embedder = CountingEmbedder()
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS, embedder))
        for model in (HASH_MODEL, embedder.model_id):
            stored = rows(catalog, model)
            assert set(stored) == set(catalog.embedding_ids_by_hash(model).values())
            for label, (labels, sims) in stored.items():
                assert label not in labels.tolist()
                assert len(set(labels.tolist())) == len(labels)
                assert (np.diff(sims) <= 0).all()
                assert (sims >= graph.storage_floor(model) - 1e-6).all()
        # The rotated copy is a hash neighbour of the original through an orientation query.
        original = label_of(catalog, HASH_MODEL, paths["original"])
        turned = label_of(catalog, HASH_MODEL, paths["turned"])
        labels, sims = rows(catalog, HASH_MODEL)[original]
        assert turned in labels.tolist()
        assert sims[labels.tolist().index(turned)] > graph.hash_floor(8)


def test_the_graph_grows_with_the_library_and_forgets_deleted_photos(
    tmp_path: Path, library: tuple[Path, dict[str, Path]]
) -> None:
    folder, paths = library
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS))
        before = rows(catalog, HASH_MODEL)
        # New photos: rows are added for their vectors only; old rows are kept as they are.
        make_photo(folder / "new.jpg", 99)
        Image.open(paths["resized"]).save(folder / "resized_again.png")
        run_scan(scan(catalog, [str(folder)], SETTINGS))
        after = rows(catalog, HASH_MODEL)
        assert len(after) == len(before) + 2
        for label, (labels, _) in before.items():
            np.testing.assert_array_equal(after[label][0], labels)
        # The new copy links to the original through its own row (edges are read both ways).
        result = find_duplicates(catalog, "near", Thresholds(verify=False))
        groups = [{Path(m.photo.path).name for m in g.members} for g in result.groups]
        assert any({"original.jpg", "resized_again.png"} <= g for g in groups)
        # A deleted photo's row goes with its vector.
        gone = label_of(catalog, HASH_MODEL, paths["different"])
        paths["different"].unlink()
        run_scan(scan(catalog, [str(folder)], SETTINGS))
        assert gone not in rows(catalog, HASH_MODEL)


def test_grouping_rebuilds_missing_rows(
    tmp_path: Path, library: tuple[Path, dict[str, Path]]
) -> None:
    folder, _ = library
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS))
        expected = group_pairs(find_duplicates(catalog, "near", Thresholds(verify=False)).groups)
        catalog.db.execute("DELETE FROM knn_graph")  # a catalog from before the graph
        result = find_duplicates(catalog, "near", Thresholds(verify=False))
        assert group_pairs(result.groups) == expected and expected
        assert len(rows(catalog, HASH_MODEL)) == catalog.embedding_stats(HASH_MODEL)[0]


@pytest.mark.parametrize("verify", [False, True])
def test_graph_grouping_equals_querying_the_indexes(
    tmp_path: Path,
    library: tuple[Path, dict[str, Path]],
    monkeypatch: pytest.MonkeyPatch,
    verify: bool,
) -> None:
    folder, _ = library
    make_photo(folder / "other.jpg", 41)
    embedder = CountingEmbedder()
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(folder)], SETTINGS, embedder))
        th = Thresholds(verify=verify)
        for tier in ("near", "similar"):
            forget_verdicts()
            from_graph = find_duplicates(catalog, tier, th)
            with monkeypatch.context() as m:
                m.setattr(graph, "covers", lambda *a: False)
                forget_verdicts()
                queried = find_duplicates(catalog, tier, th)
            assert group_pairs(from_graph.groups) == group_pairs(queried.groups)
            assert from_graph.candidates == queried.candidates
            assert from_graph.groups, tier


def test_covers_falls_back_for_looser_thresholds_or_more_neighbours() -> None:
    assert graph.covers(HASH_MODEL, graph.GRAPH_K, graph.hash_floor(36))
    assert not graph.covers(HASH_MODEL, graph.GRAPH_K, graph.hash_floor(60))
    assert not graph.covers(HASH_MODEL, graph.GRAPH_K + 1, graph.hash_floor(22))
    assert graph.covers("m", 16, 0.8) and not graph.covers("m", 16, 0.3)


def test_a_scan_reports_and_can_stop_the_neighbour_search(
    tmp_path: Path, library: tuple[Path, dict[str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from photosim.core.cancel import CancelToken

    folder, _ = library
    monkeypatch.setattr(graph, "_CHUNK", 2)  # several chunks for the few test photos
    cancel = CancelToken()
    with Catalog(tmp_path / "c.db") as catalog:
        reports = []
        for progress in scan(catalog, [str(folder)], SETTINGS, cancel=cancel):
            if progress.message == "finding neighbours":
                reports.append((progress.done, progress.total))
                cancel.cancel()  # stop after the first chunk
        vectors = catalog.embedding_stats(HASH_MODEL)[0]
        assert reports == [(2, vectors)]  # progress per chunk, then the scan stopped
        assert len(rows(catalog, HASH_MODEL)) == 2
        # Grouping adds the missing rows and finds what a complete graph finds.
        result = find_duplicates(catalog, "near", Thresholds(verify=False))
        assert len(rows(catalog, HASH_MODEL)) == vectors
        catalog.db.execute("DELETE FROM knn_graph")
        again = find_duplicates(catalog, "near", Thresholds(verify=False))
        assert group_pairs(result.groups) == group_pairs(again.groups) and result.groups
