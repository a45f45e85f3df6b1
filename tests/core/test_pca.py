"""PCA of descriptors, and the vector index in PCA space with exact re-scoring."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from helpers import photo_row

import photosim.core.index.vectors as index_module
from photosim.config import Thresholds
from photosim.core.catalog import Catalog
from photosim.core.dedup.grouping import find_duplicates
from photosim.core.index.pca import PCA, PCAError, fit_pca
from photosim.core.index.vectors import (
    HASH_MODEL,
    IndexError_,
    VectorIndex,
    hash_vectors,
    index_paths,
    pca_dim,
    pca_min_descriptors,
    pca_path,
    set_pca_dim,
)
from photosim.core.scan.hashing import file_content_hash
from photosim.core.search import find_similar
from photosim.core.types import Error

MODEL = "m"


# ----------------------------------------------------------------------------- data
def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def low_rank(
    n: int, dim: int, rank: int, noise: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors (n, dim), basis (rank, dim))``: unit vectors of a random rank-``rank``
    linear subspace (spanned by the orthonormal ``basis``; the first coordinate carries an
    offset, like the positive mean of ReLU features) plus isotropic noise of standard
    deviation ``noise`` per coordinate."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(dim, rank)))[0].T
    coefficients = rng.normal(size=(n, rank)) * np.linspace(3.0, 1.0, rank)
    coefficients[:, 0] += 4.0
    return unit(unit(coefficients @ basis) + noise * rng.normal(size=(n, dim))), basis


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors in series of about 20 (bursts, trips) around random centres, with a slowly
    decaying spectrum like CNN descriptors and a shared positive offset (mean cosine of two
    unrelated vectors about 0.5)."""
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / np.sqrt(1.0 + np.arange(dim) / 8.0)
    centres = rng.normal(size=(max(1, n // 20), dim)) * spectrum
    x = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.normal(size=(n, dim)) * spectrum
    return unit(x + 0.3 * np.abs(rng.normal(size=dim)))


def hashes(n: int, start: int = 0) -> list[str]:
    return [f"{i:032x}" for i in range(start, start + n)]


def put(catalog: Catalog, vectors: np.ndarray, start: int = 0, model: str = MODEL) -> list[str]:
    content_hashes = hashes(len(vectors), start)
    with catalog.transaction():
        catalog.put_embeddings(model, content_hashes, vectors)
    return content_hashes


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    with Catalog(tmp_path / "c.db") as cat:
        yield cat


# ----------------------------------------------------------------------------- PCA
def test_low_rank_data_keeps_its_variance_and_subspace() -> None:
    x, basis = low_rank(2000, 128, rank=8, noise=0.01)
    pca = fit_pca(x, 8)
    assert pca.dim == 8 and pca.input_dim == 128 and not pca.whiten
    assert pca.mean.shape == (128,) and pca.components.shape == (8, 128)
    assert pca.eigenvalues.shape == (8,)
    assert {a.dtype for a in (pca.mean, pca.components, pca.eigenvalues)} == {np.dtype(np.float32)}
    assert pca.explained_variance > 0.95
    # Rows orthonormal, eigenvalues non-negative and decreasing.
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(8), atol=1e-5)
    assert np.all(pca.eigenvalues >= 0) and np.all(np.diff(pca.eigenvalues) <= 0)
    # The components span the planted subspace: each basis vector lies in their span.
    np.testing.assert_allclose(np.linalg.norm(basis @ pca.components.T, axis=1), 1.0, atol=0.01)
    # Fewer components keep less; the fraction is what the eigenvalues say.
    assert fit_pca(x, 2).explained_variance < pca.explained_variance
    centred = x.astype(np.float64) - x.mean(axis=0)
    total = float((centred**2).sum()) / (len(x) - 1)
    assert pca.explained_variance == pytest.approx(float(pca.eigenvalues.sum()) / total, rel=1e-4)


def test_eigenvalues_are_those_of_the_sample_covariance() -> None:
    x = clustered(600, 48, seed=3)
    pca = fit_pca(x, 10)
    reference = np.sort(np.linalg.eigvalsh(np.cov(x.astype(np.float64), rowvar=False)))[::-1]
    np.testing.assert_allclose(pca.eigenvalues, reference[:10], rtol=1e-4)
    np.testing.assert_allclose(pca.mean, x.mean(axis=0), atol=1e-6)
    assert pca.total_variance == pytest.approx(reference.sum(), rel=1e-6)


def test_transform_shape_dtype_and_unit_norm() -> None:
    x, _ = low_rank(1000, 64, rank=6, noise=0.005, seed=1)
    pca = fit_pca(x, 6)
    for data in (x[:50], x[:50].astype(np.float16)):
        y = pca.transform(data)
        assert y.shape == (50, 6) and y.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-5)
    # Data (almost) inside the subspace: projected cosines are the cosines of the centred
    # full vectors.
    y = pca.transform(x[:40])
    centred = unit(x[:40] - pca.mean)
    np.testing.assert_allclose(y @ y.T, centred @ centred.T, atol=0.02)
    with pytest.raises(PCAError, match=r"\(N, 64\)"):
        pca.transform(x[:3, :32])
    with pytest.raises(PCAError):
        pca.transform(x[0])


def test_whitening_equalises_the_variances() -> None:
    x, _ = low_rank(2000, 64, rank=6, noise=0.005, seed=2)
    plain, white = fit_pca(x, 6), fit_pca(x, 6, whiten=True)
    assert white.whiten and white.fingerprint != plain.fingerprint

    def spread(y: np.ndarray) -> float:
        values = np.linalg.eigvalsh(np.cov(y, rowvar=False))
        return float(values.max() / values.min())

    # The planted scales span 3:1 (variance 9:1); whitening evens them out.
    assert spread(plain.transform(x)) > 4.0
    assert spread(white.transform(x)) < 2.0
    np.testing.assert_allclose(np.linalg.norm(white.transform(x[:20]), axis=1), 1.0, atol=1e-5)


def test_save_load_round_trip(tmp_path: Path) -> None:
    x = clustered(400, 32, seed=4)
    for whiten in (False, True):
        pca = fit_pca(x, 8, whiten=whiten)
        path = tmp_path / f"p{int(whiten)}.pca.npz"
        pca.save(path)
        loaded = PCA.load(path)
        assert loaded.fingerprint == pca.fingerprint and len(pca.fingerprint) == 16
        assert loaded.whiten is whiten and loaded.total_variance == pca.total_variance
        np.testing.assert_array_equal(loaded.components, pca.components)
        np.testing.assert_array_equal(loaded.transform(x[:5]), pca.transform(x[:5]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p0.pca.npz", "p1.pca.npz"]
    # Another fit, another fingerprint; the same fit, the same fingerprint.
    assert fit_pca(x, 7).fingerprint != fit_pca(x, 8).fingerprint
    assert fit_pca(x, 8).fingerprint == PCA.load(tmp_path / "p0.pca.npz").fingerprint


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "npy", "wrong keys"])
def test_load_refuses_a_damaged_file(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "p.pca.npz"
    fit_pca(clustered(200, 16), 4).save(path)
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    else:
        with open(path, "wb") as f:
            np.savez(f, mean=np.zeros(4))
    with pytest.raises(PCAError, match="PCA file"):
        PCA.load(path)


def test_fit_errors() -> None:
    x = clustered(100, 16)
    assert issubclass(PCAError, Error)
    with pytest.raises(PCAError, match="needs more than 12 descriptors, got 10"):
        fit_pca(x[:10], 12)
    with pytest.raises(PCAError, match="more than 8 descriptors, got 8"):
        fit_pca(x[:8], 8)
    with pytest.raises(PCAError, match="below the descriptor dimension 16"):
        fit_pca(x, 16)
    with pytest.raises(PCAError, match="below the descriptor dimension"):
        fit_pca(x, 0)
    with pytest.raises(PCAError, match=r"\(N, D\)"):
        fit_pca(x[0], 4)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(PCAError, match="NaN"):
        fit_pca(bad, 4)
    # Rank 3 data cannot be whitened to 5 dimensions (but can be projected).
    flat = unit(np.random.default_rng(0).normal(size=(50, 3)) @ np.eye(3, 16))
    assert fit_pca(flat, 5).dim == 5
    with pytest.raises(PCAError, match="whiten"):
        fit_pca(flat, 5, whiten=True)


def test_sampling_is_seeded() -> None:
    x = clustered(1200, 32, seed=5)
    a = fit_pca(x, 8, max_samples=300, seed=0)
    assert a.fingerprint == fit_pca(x, 8, max_samples=300, seed=0).fingerprint
    assert a.fingerprint != fit_pca(x, 8, max_samples=300, seed=1).fingerprint
    assert fit_pca(x, 8, max_samples=5000).fingerprint == fit_pca(x, 8).fingerprint
    # A sample is a sample: it finds nearly the same subspace as all the data.
    overlap = np.linalg.norm(a.components[:4] @ fit_pca(x, 8).components.T, axis=1)
    assert overlap.min() > 0.9


# ----------------------------------------------------------------------------- index in memory
def test_index_with_pca_takes_full_dimension_vectors() -> None:
    x = clustered(300, 32)
    pca = fit_pca(x, 8)
    with pytest.raises(IndexError_, match="PCA dimension"):
        VectorIndex(MODEL, 32, pca=pca)
    index = VectorIndex(MODEL, 8, pca=pca)
    assert index.dim == 8 and index.input_dim == 32
    index.add(np.arange(300, dtype=np.int64), x)
    with pytest.raises(IndexError_, match="input dimension 32"):
        index.add(np.arange(2, dtype=np.int64), pca.transform(x[:2]))
    with pytest.raises(IndexError_, match="input dimension 32"):
        index.knn(pca.transform(x[:2]), 3)
    labels, sims = index.knn(x[:5], 4)
    assert labels.shape == (5, 4) and labels[:, 0].tolist() == list(range(5))
    # Without a catalog: cosines in PCA space.
    y = pca.transform(x)
    expected = np.einsum("mkd,md->mk", y[labels], y[:5])
    np.testing.assert_allclose(sims, expected, atol=1e-5)


def test_recall_and_exact_rescoring(catalog: Catalog) -> None:
    n, dim, k = 3000, 512, 10
    x = clustered(n, dim, seed=7)
    put(catalog, x)
    assert set_pca_dim(catalog, MODEL, 64)
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and index.pca is not None and index.dim == 64
    ids, _, stored = catalog.embeddings(MODEL)  # float16-rounded, as the index saw them
    queries = stored[::10]
    truth = ids[np.argsort(-(queries @ stored.T), axis=1, kind="stable")[:, :k]]

    def recall(labels: np.ndarray) -> float:
        return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(labels.tolist(), truth.tolist())]))

    compressed, compressed_sims = index.knn(queries, k)
    labels, sims = index.knn(queries, k, catalog=catalog)
    r_compressed, r_rescored = recall(compressed), recall(labels)
    print(f"recall@{k}: PCA space {r_compressed:.3f}, re-scored {r_rescored:.3f}")
    assert r_rescored >= 0.9 and r_rescored >= r_compressed
    assert labels.shape == sims.shape == (len(queries), k) and sims.dtype == np.float32
    assert np.all(np.diff(sims, axis=1) <= 0)  # best first
    # Re-scored similarities are the full-dimension cosines of the original vectors.
    row = {label: i for i, label in enumerate(ids.tolist())}
    exact = np.einsum("mkd,md->mk", x[np.vectorize(row.get)(labels)], x[::10])
    np.testing.assert_allclose(sims, exact, atol=2e-3)
    # ... which PCA-space similarities are not (centred, projected).
    assert np.abs(compressed_sims - exact).max() > 0.05
    # A candidate the catalog lost since the index last synced is scored -1, so it drops out.
    victim = int(labels[0, 0])
    catalog.db.execute("DELETE FROM embeddings WHERE id=?", [victim])
    again, again_sims = index.knn(queries[:1], k, catalog=catalog)
    assert victim not in again[0].tolist() and again_sims[0, 0] > 0.5


# ----------------------------------------------------------------------------- open
def spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count PCA fits and vectors added to any index."""
    calls = {"fits": 0, "added": 0}
    real_fit, real_add = index_module.fit_pca, VectorIndex.add

    def fit(*args: object, **kw: object) -> PCA:
        calls["fits"] += 1
        return real_fit(*args, **kw)  # type: ignore[arg-type]

    def add(self: VectorIndex, ids: np.ndarray, vectors: np.ndarray) -> None:
        calls["added"] += len(ids)
        real_add(self, ids, vectors)

    monkeypatch.setattr(index_module, "fit_pca", fit)
    monkeypatch.setattr(VectorIndex, "add", add)
    return calls


def test_open_learns_saves_reuses_and_relearns_the_pca(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(monkeypatch)
    put(catalog, clustered(pca_min_descriptors(32), 128))
    assert pca_min_descriptors(32) == 1000 and pca_min_descriptors(300) == 1200
    set_pca_dim(catalog, MODEL, 32)
    assert catalog.get_meta("pca_dim:m") == "32" and pca_dim(catalog, MODEL) == 32
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and index.pca is not None
    assert (index.dim, index.input_dim, len(index)) == (32, 128, 1000)
    assert calls == {"fits": 1, "added": 1000}
    npz = pca_path(catalog.path, MODEL)
    assert npz == catalog.path.parent / "c.m.pca.npz" and npz.is_file()
    sidecar = json.loads(index_paths(catalog.path, MODEL)[1].read_text())
    fingerprint = PCA.load(npz).fingerprint
    assert sidecar["pca"] == fingerprint == index.pca.fingerprint and sidecar["dim"] == 32
    assert sidecar["input_dim"] == 128
    assert sidecar["explained_variance"] == pytest.approx(index.pca.explained_variance)

    # Reopened: the saved PCA and index, nothing learned or added.
    again = VectorIndex.open(catalog, MODEL)
    assert again is not None and again.pca is not None
    assert again.pca.fingerprint == fingerprint and calls == {"fits": 1, "added": 1000}
    # New descriptors are projected with the same PCA.
    put(catalog, clustered(10, 128, seed=9), start=5000)
    again = VectorIndex.open(catalog, MODEL)
    assert again is not None and len(again) == 1010 and again.pca is not None
    assert again.pca.fingerprint == fingerprint and calls == {"fits": 1, "added": 1010}

    # The PCA file deleted: learned again, saved again, the index rebuilt.
    npz.unlink()
    rebuilt = VectorIndex.open(catalog, MODEL)
    assert rebuilt is not None and rebuilt.pca is not None and len(rebuilt) == 1010
    assert calls == {"fits": 2, "added": 2020}
    assert npz.is_file() and PCA.load(npz).fingerprint == rebuilt.pca.fingerprint
    assert json.loads(index_paths(catalog.path, MODEL)[1].read_text())["pca"] == (
        rebuilt.pca.fingerprint
    )
    # An unreadable PCA file: the same.
    npz.write_bytes(b"garbage")
    assert VectorIndex.open(catalog, MODEL) is not None
    assert calls == {"fits": 3, "added": 3030} and PCA.load(npz).dim == 32


def test_a_changed_setting_rebuilds(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = spy(monkeypatch)
    put(catalog, clustered(1000, 64))
    set_pca_dim(catalog, MODEL, 16)
    first = VectorIndex.open(catalog, MODEL)
    assert first is not None and first.dim == 16
    assert set_pca_dim(catalog, MODEL, 8) and not set_pca_dim(catalog, MODEL, 8)
    second = VectorIndex.open(catalog, MODEL)
    assert second is not None and second.dim == 8 and second.pca is not None
    assert PCA.load(pca_path(catalog.path, MODEL)).dim == 8
    assert calls == {"fits": 2, "added": 2000}
    # Off: a full-dimension index again.
    set_pca_dim(catalog, MODEL, 0)
    third = VectorIndex.open(catalog, MODEL)
    assert third is not None and third.pca is None and third.dim == 64
    assert json.loads(index_paths(catalog.path, MODEL)[1].read_text())["pca"] is None
    assert calls == {"fits": 2, "added": 3000}
    # A dimension that reduces nothing is no PCA.
    set_pca_dim(catalog, MODEL, 64)
    assert VectorIndex.open(catalog, MODEL).pca is None  # type: ignore[union-attr]
    assert calls["added"] == 3000
    with pytest.raises(IndexError_, match="0 \\(off\\) or positive"):
        set_pca_dim(catalog, MODEL, -1)
    catalog.set_meta("pca_dim:m", "lots")
    assert pca_dim(catalog, MODEL) == 0


def test_too_few_descriptors_keep_the_full_dimension(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    x = clustered(1000, 64)
    put(catalog, x[:999])
    set_pca_dim(catalog, MODEL, 16)
    with caplog.at_level(logging.INFO, logger="photosim.core.index.vectors"):
        index = VectorIndex.open(catalog, MODEL)
    assert index is not None and index.pca is None and index.dim == 64 and len(index) == 999
    assert not pca_path(catalog.path, MODEL).exists()
    waiting = [r for r in caplog.records if "waits for 1000 descriptors" in r.getMessage()]
    assert len(waiting) == 1 and waiting[0].levelno == logging.INFO
    # The thousandth descriptor: learned, and the index rebuilt in PCA space.
    put(catalog, x[999:], start=999)
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and index.pca is not None and index.dim == 16 and len(index) == 1000


def test_the_hash_index_never_uses_pca(catalog: Catalog) -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(-(2**62), 2**62, size=(1000, 2))
    with catalog.transaction():
        catalog.put_embeddings(HASH_MODEL, hashes(1000), hash_vectors(codes[:, 0], codes[:, 1]))
    with pytest.raises(IndexError_, match="never uses PCA"):
        set_pca_dim(catalog, HASH_MODEL, 32)
    catalog.set_meta(f"pca_dim:{HASH_MODEL}", "32")  # written by hand: still ignored
    index = VectorIndex.open(catalog, HASH_MODEL)
    assert index is not None and index.pca is None and index.dim == 128
    assert not pca_path(catalog.path, HASH_MODEL).exists()


# ----------------------------------------------------------------------------- callers
def paired_library(catalog: Catalog, tmp_path: Path) -> tuple[np.ndarray, list[str], Path]:
    """1000 contents in 500 pairs (cosine about 0.97) near a 24-d subspace, with photo rows and
    random hashes; the first content is a real file (the query). PCA to 32-d is on."""
    base, _ = low_rank(500, 128, rank=24, noise=0.02, seed=11)
    rng = np.random.default_rng(12)
    x = np.empty((1000, 128), np.float32)
    x[0::2] = base
    x[1::2] = unit(base + 0.03 * rng.normal(size=base.shape))
    query = tmp_path / "query.bin"
    query.write_bytes(b"the query photo")
    content_hashes = [file_content_hash(str(query))[0], *hashes(999)]
    codes = rng.integers(-(2**62), 2**62, size=(1000, 2))
    with catalog.transaction():
        catalog.upsert_photos(
            photo_row(str(query) if i == 0 else f"/synthetic/{i:04d}.jpg", h, int(p), int(d))
            for i, (h, (p, d)) in enumerate(zip(content_hashes, codes))
        )
        catalog.put_embeddings(MODEL, content_hashes, x)
        catalog.put_embeddings(HASH_MODEL, content_hashes, hash_vectors(codes[:, 0], codes[:, 1]))
        catalog.set_meta("model", MODEL)
    set_pca_dim(catalog, MODEL, 32)
    return x, content_hashes, query


def test_find_similar_reports_exact_cosines(catalog: Catalog, tmp_path: Path) -> None:
    x, content_hashes, query = paired_library(catalog, tmp_path)
    result = find_similar(catalog, query, k=5)
    index = VectorIndex.open(catalog, MODEL)
    assert index is not None and index.pca is not None and result.mode == "descriptors"
    row = {h: i for i, h in enumerate(content_hashes)}
    assert len(result.hits) == 5 and result.hits[0].photo.content_hash == content_hashes[1]
    for hit in result.hits:
        assert hit.similarity == pytest.approx(float(x[0] @ x[row[hit.photo.content_hash]]), abs=2e-3)


def test_duplicates_report_exact_cosines(catalog: Catalog, tmp_path: Path) -> None:
    x, content_hashes, _ = paired_library(catalog, tmp_path)
    th = Thresholds(verify=False, keypoint_candidates=False, similar_cosine=0.9)
    result = find_duplicates(catalog, "similar", th)
    assert VectorIndex.open(catalog, MODEL).pca is not None  # type: ignore[union-attr]
    row = {h: i for i, h in enumerate(content_hashes)}
    # Every planted pair (cosine >= 0.92) is found, and nothing else (unrelated: < 0.9).
    assert len(result.groups) == 500 and all(len(g.members) == 2 for g in result.groups)
    for group in result.groups:
        a, b = (row[m.photo.content_hash or ""] for m in group.members)
        assert {a // 2} == {b // 2}  # the planted pair
        cosine = group.members[1].evidence["cosine"]
        assert cosine == pytest.approx(float(x[a] @ x[b]), abs=2e-3)
