"""The hnswlib vector index: updates, queries, and staying in line with the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photosim.core.catalog import Catalog
from photosim.core.index.vectors import (
    HASH_BITS,
    IndexError_,
    VectorIndex,
    hash_vector,
    hash_vectors,
    index_paths,
)
from photosim.core.scan.hashing import hamming, to_signed64

MODEL = "m"
DIM = 16


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def hashes(n: int, start: int = 0) -> list[str]:
    return [f"{i:032x}" for i in range(start, start + n)]


def put(catalog: Catalog, content_hashes: list[str], vectors: np.ndarray) -> None:
    with catalog.transaction():
        catalog.put_embeddings(MODEL, content_hashes, vectors)


def self_similarity(index: VectorIndex, catalog: Catalog) -> dict[str, float]:
    """content hash -> similarity the index gives each catalog vector with its own label."""
    ids, content_hashes, vectors = catalog.embeddings(MODEL)
    labels, sims = index.knn(vectors, len(index))
    out = {}
    for i, label in enumerate(ids.tolist()):
        found = dict(zip(labels[i].tolist(), sims[i].tolist()))
        out[content_hashes[i]] = found.get(label, float("nan"))
    return out


# ----------------------------------------------------------------------------- in memory
def test_add_knn_remove() -> None:
    vectors = unit_vectors(30)
    labels = np.arange(100, 130, dtype=np.int64)
    index = VectorIndex(MODEL, DIM)
    assert len(index) == 0
    empty_labels, empty_sims = index.knn(vectors[:2], 5)
    assert empty_labels.shape == (2, 0) and empty_sims.shape == (2, 0)
    index.add(labels, vectors)
    assert len(index) == 30
    found, sims = index.knn(vectors[:3], 4)
    assert found.shape == (3, 4) and found.dtype == np.int64 and sims.dtype == np.float32
    assert found[:, 0].tolist() == [100, 101, 102]
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 1e-6)  # best first
    # Similarities are cosines.
    np.testing.assert_allclose(sims[0, 1], vectors[0] @ vectors[found[0, 1] - 100], atol=1e-5)
    index.remove(100)
    index.remove(100)  # removing twice is harmless
    index.remove(999)  # unknown label: ignored
    assert len(index) == 29
    found, _ = index.knn(vectors[:1], 29)
    assert 100 not in found[0].tolist() and sorted(found[0].tolist()) == list(range(101, 130))


def test_knn_clamps_k_to_the_live_count() -> None:
    index = VectorIndex(MODEL, DIM)
    index.add(np.arange(5, dtype=np.int64), unit_vectors(5))
    labels, sims = index.knn(unit_vectors(2, seed=1), 50)
    assert labels.shape == sims.shape == (2, 5)
    assert sorted(labels[0].tolist()) == [0, 1, 2, 3, 4]


def test_re_adding_a_label_replaces_its_vector() -> None:
    vectors = unit_vectors(10)
    index = VectorIndex(MODEL, DIM)
    index.add(np.arange(10, dtype=np.int64), vectors)
    index.add(np.array([3], dtype=np.int64), -vectors[3:4])
    assert len(index) == 10
    labels, sims = index.knn(-vectors[3:4], 1)
    assert labels[0, 0] == 3 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_grows_past_its_initial_capacity() -> None:
    index = VectorIndex(MODEL, 8)
    vectors = unit_vectors(1500, 8)
    for start in range(0, 1500, 500):
        index.add(np.arange(start, start + 500, dtype=np.int64), vectors[start : start + 500])
    assert len(index) == 1500
    labels, _ = index.knn(vectors[1499:1500], 1)
    assert labels[0, 0] == 1499


def test_dimension_mismatch_is_refused() -> None:
    index = VectorIndex(MODEL, DIM)
    with pytest.raises(IndexError_, match="dimension"):
        index.add(np.arange(2, dtype=np.int64), unit_vectors(2, dim=DIM + 1))


# ----------------------------------------------------------------------------- persisted
@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    with Catalog(tmp_path / "c.db") as cat:
        yield cat


def test_open_without_vectors_is_none(catalog: Catalog) -> None:
    assert VectorIndex.open(catalog, MODEL) is None
    assert not any(p.exists() for p in index_paths(catalog.path, MODEL))


def test_open_builds_and_saves_beside_the_catalog(catalog: Catalog) -> None:
    put(catalog, hashes(40), unit_vectors(40))
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and len(index) == 40 and index.dim == DIM
    hnsw, meta, ids = index_paths(catalog.path, MODEL)
    assert hnsw.parent == catalog.path.parent and hnsw.name.startswith("c.")
    assert hnsw.is_file() and meta.is_file() and ids.is_file()
    sidecar = json.loads(meta.read_text())
    assert sidecar["model"] == MODEL and sidecar["dim"] == DIM and sidecar["count"] == 40
    # Reopened from the files: nothing to add or delete.
    again = VectorIndex.open(catalog, MODEL)
    assert again is not None and again.sync(catalog) == (0, 0)
    assert (
        set(self_similarity(again, catalog).values())
        and min(self_similarity(again, catalog).values()) > 0.999
    )


@pytest.mark.parametrize(
    "damage",
    [
        "delete sidecar",
        "corrupt sidecar",
        "corrupt index",
        "truncate index",
        "delete ids",
        "corrupt ids",
    ],
)
def test_open_rebuilds_a_damaged_cache(catalog: Catalog, damage: str) -> None:
    put(catalog, hashes(40), unit_vectors(40))
    assert VectorIndex.open(catalog, MODEL) is not None
    hnsw, meta, ids = index_paths(catalog.path, MODEL)
    if damage == "delete sidecar":
        meta.unlink()
    elif damage == "corrupt sidecar":
        meta.write_text("{not json")
    elif damage == "corrupt index":
        hnsw.write_bytes(bytes(range(256)) * 20)
    elif damage == "truncate index":
        hnsw.write_bytes(hnsw.read_bytes()[:100])
    elif damage == "delete ids":
        ids.unlink()
    else:
        ids.write_bytes(b"garbage")
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and len(index) == 40
    sims = self_similarity(index, catalog)
    assert len(sims) == 40 and min(sims.values()) > 0.999
    assert json.loads(meta.read_text())["count"] == 40  # saved again


def test_open_follows_the_catalog(catalog: Catalog) -> None:
    vectors = unit_vectors(60)
    put(catalog, hashes(40), vectors[:40])
    assert len(VectorIndex.open(catalog, MODEL) or []) == 40
    # The catalog gained vectors.
    put(catalog, hashes(20, start=40), vectors[40:])
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and len(index) == 60
    sims = self_similarity(index, catalog)
    assert len(sims) == 60 and min(sims.values()) > 0.999
    # The catalog lost vectors (photos gone, descriptors pruned).
    catalog.db.execute("DELETE FROM embeddings WHERE content_hash IN (?, ?)", hashes(2))
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and len(index) == 58
    labels, _ = index.knn(vectors[:1], 58)
    assert len(set(labels[0].tolist()) & set(catalog.embedding_ids_by_hash(MODEL).values())) == 58


def test_each_model_has_its_own_index_files(catalog: Catalog) -> None:
    models = ["hash128", "efficientnet_b1-avg", "test-colorgrid", MODEL]
    assert len({index_paths(catalog.path, m)[0] for m in models}) == len(models)
    put(catalog, hashes(5), unit_vectors(5))
    with catalog.transaction():
        catalog.put_embeddings("other", hashes(5), unit_vectors(5, dim=8))
    assert VectorIndex.open(catalog, MODEL) is not None
    assert VectorIndex.open(catalog, "other") is not None
    sidecar = index_paths(catalog.path, MODEL)[1]
    assert json.loads(sidecar.read_text())["model"] == MODEL


def test_reused_label_gets_the_new_vector(catalog: Catalog) -> None:
    vectors = unit_vectors(4)
    put(catalog, hashes(3), vectors[:3])
    assert VectorIndex.open(catalog, MODEL) is not None
    newest = hashes(3)[-1]
    catalog.db.execute("DELETE FROM embeddings WHERE content_hash=?", [newest])
    put(catalog, hashes(1, start=10), vectors[3:])  # new content, after the prune
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and len(index) == 3
    assert min(self_similarity(index, catalog).values()) > 0.999


# ----------------------------------------------------------------------------- hash vectors
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@settings(max_examples=300, deadline=None, database=None)
@given(p1=INT64, d1=INT64, p2=INT64, d2=INT64)
def test_hash_vector_inner_product_encodes_hamming_distance(
    p1: int, d1: int, p2: int, d2: int
) -> None:
    v = hash_vectors(np.array([p1, p2], np.int64), np.array([d1, d2], np.int64))
    assert v.shape == (2, HASH_BITS) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    distance = hamming(p1, p2) + hamming(d1, d2)
    assert float(v[0] @ v[1]) == pytest.approx(1.0 - 2.0 * distance / HASH_BITS, abs=1e-5)
    # hash_vector accepts signed or unsigned 64-bit values alike.
    np.testing.assert_array_equal(hash_vector(p1, d1), v[0])
    np.testing.assert_array_equal(hash_vector(p1 % 2**64, d1 % 2**64), v[0])


def test_hash_vector_bit_layout() -> None:
    # pHash bits first, most significant bit first.
    v = hash_vector(to_signed64(1 << 63), 1)
    positive = np.flatnonzero(v > 0).tolist()
    assert positive == [0, 127]
