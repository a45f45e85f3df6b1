"""PCA of descriptors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photosim.core.pca import PCA, PCAError, fit_pca
from photosim.core.types import Error


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
