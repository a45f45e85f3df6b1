"""The compressed index (IVF-PQ with OPQ through faiss, exact float16 re-ranking): its layout,
recall against exact search, and serving a catalog in place of hnswlib (issue 16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import ColorGridEmbedder, write_photo_set

from photosim.config import Settings
from photosim.core.catalog import Catalog
from photosim.core.dedup.grouping import find_duplicates
from photosim.core.index import graph
from photosim.core.index.binary import BinaryHashIndex, binary_paths
from photosim.core.index.compressed import (
    COMPRESS_ABOVE,
    CompressedIndex,
    CompressedIndexError,
    Float16Store,
    compressed_paths,
    index_kind,
    layout,
    set_index_kind,
)
from photosim.core.index.vectors import HASH_MODEL, VectorIndex
from photosim.core.scan.pipeline import run_scan, scan
from photosim.core.search import find_similar


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 50) -> np.ndarray:
    """``(n, dim)`` float32 unit vectors around ``clusters`` centres (like photo descriptors:
    scenes, with spread)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.7 * rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_layout() -> None:
    big = layout(1280, 10_000_000, 32)
    # 32 bytes: 64 fast-scan sub-quantizers of 4 bits; 4,096 cells scanned exactly
    assert big == {"dim": 1280, "opq_dim": 256, "code_bytes": 32, "m": 64, "nbits": 4,
                   "nlist": 4096, "coarse": "flat"}
    assert layout(256, 1_000_000, 64)["nlist"] == 1024
    assert layout(256, 1_000_000_000, 16)["coarse"] == "hnsw"  # 32,768 cells: a graph
    # too few dimensions for 2 x 32 sub-quantizers, too few vectors: the 8-bit kind, fewer bits
    assert layout(48, 7, 32) == {"dim": 48, "opq_dim": 32, "code_bytes": 32, "m": 32,
                                 "nbits": 1, "nlist": 1, "coarse": "flat"}
    assert layout(48, 100_000, 16)["m"] == 32
    assert layout(48, 100_000, 32)["m"] == 32 and layout(48, 100_000, 32)["nbits"] == 8
    with pytest.raises(CompressedIndexError):
        layout(16, 1000, 32)


def test_float16_store_round_trip(tmp_path: Path) -> None:
    x = clustered(10, 8)
    store = Float16Store(tmp_path / "s.f16", 8)
    store.append(np.arange(10) * 3, x)
    store.append(np.array([3]), x[:1])  # label 3 again: the newer row wins
    got, known = store.vectors(np.array([0, 3, 27, 5]))
    assert known.tolist() == [True, True, True, False]
    np.testing.assert_allclose(got[[0, 1, 2]], x[[0, 0, 9]], atol=1e-3)
    assert not got[3].any()
    store.save()
    again = Float16Store(tmp_path / "s.f16", 8)
    np.testing.assert_array_equal(again.vectors(np.array([27]))[0], got[2:3])
    (tmp_path / "s.f16").write_bytes(b"\0" * 6)
    with pytest.raises(CompressedIndexError, match="does not match"):
        Float16Store(tmp_path / "s.f16", 8)


def test_recall_and_exact_similarities(tmp_path: Path) -> None:
    """Recall@10 against exact search on clustered vectors, similarities that are the exact
    cosines (of float16 descriptors), and RAM of a few dozen bytes per vector."""
    x = clustered(4000, 32)
    queries = clustered(50, 32, seed=1)
    index = CompressedIndex.create("m", x, compressed_paths(tmp_path / "c.db", "m"),
                                   code_bytes=8)
    assert index.shape["transform"] == "opq" and index.shape["nbits"] == 4  # fast scan
    index.add(np.arange(len(x)), x)
    labels, sims = index.knn(queries, 10)
    truth = np.argsort(-(queries @ x.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels.tolist(), truth.tolist())])
    assert recall >= 0.9
    exact = np.einsum("qkd,qd->qk", x.astype(np.float16).astype(np.float32)[labels], queries)
    np.testing.assert_allclose(sims, exact, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-7).all()
    assert index.memory_bytes < len(x) * 32 * 4  # smaller than the float32 vectors
    index.remove(int(labels[0, 0]))
    assert int(labels[0, 0]) not in index.knn(queries[:1], 10)[0][0].tolist()
    with pytest.raises(CompressedIndexError):
        index.knn(queries[:, :10], 3)


def planted_hashes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 128)`` hash vectors of photo-like structure (series sharing most bits: 25 % of
    bits flipped around 1 centre in 10), and for the first 200 of them a near copy with 6
    bits flipped (rows n..n+199)."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, (max(1, n // 10), 128), dtype=np.uint8)
    bits = centres[rng.integers(0, len(centres), n)] ^ (rng.random((n, 128)) < 0.25)
    copies = bits[:200].copy()
    for row in copies:
        row[rng.choice(128, 6, replace=False)] ^= 1
    bits = np.concatenate([bits, copies]).astype(np.float32)
    return (bits * 2 - 1) / np.sqrt(np.float32(128)), np.arange(n, n + 200)


def test_the_binary_hash_index_finds_near_copies_with_exact_hamming_similarities(
    tmp_path: Path,
) -> None:
    """16 bytes a code; the near copies (6 of 128 bits apart) found among 20,000 hashes; the
    similarities equal the hash vectors' inner products (1 - 2 H / 128), as with hnswlib."""
    x, copies = planted_hashes(20_000)
    paths = binary_paths(tmp_path / "c.db", HASH_MODEL)
    index = BinaryHashIndex.create(HASH_MODEL, x, paths)
    assert index.nlist == 128 and index.shape["nprobe"] == 32
    index.add(np.arange(len(x)), x)
    labels, sims = index.knn(x[:200], 5)
    found = np.mean([copies[i] in labels[i].tolist() for i in range(200)])
    assert found >= 0.97
    np.testing.assert_allclose(sims, np.einsum("qkd,qd->qk", x[labels], x[:200]), atol=1e-6)
    assert (labels[:, 0] == np.arange(200)).all() and (sims[:, 0] == 1.0).all()
    assert index.memory_bytes < len(x) * 25  # a float hnswlib index: about 650 B a photo
    # Forget a copy; replace another label's code: the index answers with the new one.
    index.remove(int(copies[0]))
    assert int(copies[0]) not in index.knn(x[:1], 5)[0][0].tolist()
    index.add(np.array([copies[1]]), x[:1] * -1)  # now the opposite of photo 0's hash
    assert int(copies[1]) not in index.knn(x[1:2], 5)[0][0].tolist()
    assert len(index) == len(x) - 1
    with pytest.raises(CompressedIndexError):
        index.knn(x[:, :64], 3)


def test_the_setting_chooses_the_index_kind(tmp_path: Path) -> None:
    with Catalog(tmp_path / "c.db") as catalog:
        assert index_kind(catalog, "m", 10) == "hnsw"
        assert index_kind(catalog, "m", COMPRESS_ABOVE + 1) == "ivfpq"
        assert index_kind(catalog, HASH_MODEL, 10) == "hnsw"
        assert index_kind(catalog, HASH_MODEL, COMPRESS_ABOVE + 1) == "ivfpq"  # binary IVF
        assert set_index_kind(catalog, "m", "ivfpq") and not set_index_kind(catalog, "m", "ivfpq")
        assert index_kind(catalog, "m", 10) == "ivfpq"
        set_index_kind(catalog, "m", "hnsw")
        assert index_kind(catalog, "m", COMPRESS_ABOVE + 1) == "hnsw"
        with pytest.raises(CompressedIndexError):
            set_index_kind(catalog, "m", "lsh")


def test_a_catalog_served_by_the_compressed_index(tmp_path: Path) -> None:
    """Forced to ivfpq, a small library finds the same duplicates and similar photos as with
    hnswlib; the index is saved, reloaded without retraining, and follows the catalog."""
    paths = write_photo_set(tmp_path / "photos")
    embedder = ColorGridEmbedder()
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "photos")], Settings(workers=1), embedder))
        model = embedder.model_id
        plain = find_similar(catalog, paths["original"], k=4, embedder=embedder)
        plain_groups = find_duplicates(catalog, "near").groups
        set_index_kind(catalog, model, "ivfpq")
        set_index_kind(catalog, HASH_MODEL, "ivfpq")
        index = VectorIndex.open(catalog, model)
        assert isinstance(index, CompressedIndex) and len(index) == 6  # 7 files, one byte copy
        hashes = VectorIndex.open(catalog, HASH_MODEL)
        assert isinstance(hashes, BinaryHashIndex) and len(hashes) == 6
        assert binary_paths(catalog.path, HASH_MODEL)[0].exists()
        faiss_file = compressed_paths(catalog.path, model)[0]
        built = faiss_file.stat().st_mtime_ns
        again = VectorIndex.open(catalog, model)
        assert faiss_file.stat().st_mtime_ns == built and len(again) == 6  # loaded, not rebuilt
        compressed = find_similar(catalog, paths["original"], k=4, embedder=embedder)
        assert [h.photo.path for h in compressed.hits] == [h.photo.path for h in plain.hits]
        np.testing.assert_allclose([h.similarity for h in compressed.hits],
                                   [h.similarity for h in plain.hits], atol=2e-3)
        def paths_of(groups: list) -> list[list[str]]:
            return sorted(sorted(m.photo.path for m in g.members) for g in groups)

        assert paths_of(find_duplicates(catalog, "near").groups) == paths_of(plain_groups)
        # The neighbour graph the scan stored, computed again from both compressed indexes:
        # the same groups.
        with catalog.transaction():
            catalog.db.execute("DELETE FROM knn_graph")
        assert paths_of(find_duplicates(catalog, "near").groups) == paths_of(plain_groups) != []
        assert graph.stored_rows(catalog, HASH_MODEL)[0] == 6
        # The catalog changes: a photo leaves, the index follows on the next open.
        paths["different"].unlink()
        run_scan(scan(catalog, [str(tmp_path / "photos")], Settings(workers=1), embedder))
        assert len(VectorIndex.open(catalog, model)) == 5
        # A damaged sidecar means a rebuild, not a failure.
        compressed_paths(catalog.path, model)[1].write_text("{not json")
        assert len(VectorIndex.open(catalog, model)) == 5


def test_the_command_line_sets_and_shows_the_index_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from photosim.cli import EXIT_OK, main

    write_photo_set(tmp_path / "photos")
    db = tmp_path / "c.db"
    # Hashes only: --index compresses the hash index (a binary inverted file).
    hashes_only = tmp_path / "hashes.db"
    assert main(["--catalog", str(hashes_only), "scan", "-q", "--model", "none", "--index",
                 "ivfpq", str(tmp_path / "photos")]) == EXIT_OK
    assert binary_paths(hashes_only, HASH_MODEL)[0].exists()
    assert main(["--catalog", str(hashes_only), "info"]) == EXIT_OK
    assert "binary IVF 16 B/photo" in capsys.readouterr().out
    embedder = ColorGridEmbedder()
    with Catalog(db) as catalog:
        run_scan(scan(catalog, [str(tmp_path / "photos")], Settings(workers=1), embedder))
        set_index_kind(catalog, embedder.model_id, "ivfpq")
        VectorIndex.open(catalog, embedder.model_id)
    assert main(["--catalog", str(db), "info"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"index:       {embedder.model_id}: 6 vectors, in sync" in out
    assert "IVF-PQ 32 B/photo" in out and "float16 re-ranking from" in out
    assert f"index:       {HASH_MODEL}: 6 vectors" in out
    assert "compressed (binary IVF) from the next use" not in out  # hnswlib: not asked for
    with Catalog(db) as catalog:
        set_index_kind(catalog, HASH_MODEL, "ivfpq")
        VectorIndex.open(catalog, HASH_MODEL)
    assert main(["--catalog", str(db), "info"]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"index:       {HASH_MODEL}: 6 vectors, in sync" in out
    assert "binary IVF 16 B/photo, 1 cells" in out and "exact Hamming distances" in out
