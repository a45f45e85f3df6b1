"""Principal component analysis of global descriptors, for a smaller vector index.

A learned linear projection of CNN descriptors to fewer dimensions, as in Jégou & Chum,
"Negative evidences and co-occurrences in image retrieval: the benefit of PCA and whitening"
(ECCV 2012) and Babenko & Lempitsky, "Aggregating Deep Convolutional Features for Image
Retrieval" (SPoC, ICCV 2015): centre on the collection's mean, keep the ``d`` principal
directions of the covariance, optionally whiten (divide each coordinate by the square root of
its eigenvalue), then L2-normalise again.

photosim uses it to shrink the hnswlib index of very large libraries (1M x 1280-d float32 is
about 5.3 GB of RAM; 256-d about 1.3 GB). Whitening is off by default: it reweights the
dimensions, so cosine similarities in the projected space stop resembling those of the full
descriptors and the tier thresholds lose their meaning. Without whitening the projected cosine
is the cosine of the centred descriptors restricted to the principal subspace, good enough to
find candidates; :meth:`photosim.core.index.vectors.VectorIndex.knn` re-scores them with the full
descriptors kept in the catalog.

Everything here is numpy (no scikit-learn): the covariance is accumulated in float64 chunks
and diagonalised with ``numpy.linalg.eigh``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from photosim.core.types import Error

MAX_SAMPLES = 100_000
_FORMAT = 1
_CHUNK = 8192  # rows per float64 covariance update (8192 x 1280 x 8 B = 84 MB)
# Eigenvalues below this fraction of the largest are "no variance": whitening would divide
# noise by ~0.
_DEGENERATE = 1e-10


class PCAError(Error):
    """A PCA cannot be fitted, applied, saved or loaded."""


@dataclass(frozen=True, eq=False)
class PCA:
    """A fitted projection ``(N, D) -> (N, d)``.

    Compare two of them by :attr:`fingerprint` (``==`` is identity: the fields are arrays).

    Attributes:
        mean: ``(D,)`` float32, the mean descriptor of the fitting sample.
        components: ``(d, D)`` float32, the principal directions, rows orthonormal, by
            decreasing eigenvalue.
        eigenvalues: ``(d,)`` float32, variance of the sample along each component (>= 0,
            decreasing).
        total_variance: Total variance of the sample (sum of all D eigenvalues, the trace of
            the covariance), float.
        whiten: Divide each projected coordinate by ``sqrt(eigenvalue)`` before normalising.

    Raises:
        PCAError: The arrays do not have consistent shapes.
    """

    mean: np.ndarray
    components: np.ndarray
    eigenvalues: np.ndarray
    total_variance: float
    whiten: bool = False

    def __post_init__(self) -> None:
        mean = np.array(self.mean, dtype=np.float32)
        components = np.array(self.components, dtype=np.float32)
        eigenvalues = np.array(self.eigenvalues, dtype=np.float32)
        if mean.ndim != 1 or components.ndim != 2 or eigenvalues.ndim != 1:
            raise PCAError("PCA arrays must be mean (D,), components (d, D), eigenvalues (d,)")
        d, big_d = components.shape
        if mean.shape[0] != big_d or eigenvalues.shape[0] != d or not 0 < d < big_d:
            raise PCAError(
                f"inconsistent PCA shapes: mean {mean.shape}, components {components.shape}, "
                f"eigenvalues {eigenvalues.shape}"
            )
        for array in (mean, components, eigenvalues):
            array.flags.writeable = False  # frozen means frozen: the fingerprint is cached
        # A frozen dataclass only lets __post_init__ normalise its fields this way.
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "components", components)
        object.__setattr__(self, "eigenvalues", eigenvalues)
        object.__setattr__(self, "total_variance", float(self.total_variance))
        object.__setattr__(self, "whiten", bool(self.whiten))

    @property
    def dim(self) -> int:
        """Output dimension d."""
        return int(self.components.shape[0])

    @property
    def input_dim(self) -> int:
        """Input dimension D."""
        return int(self.components.shape[1])

    @property
    def explained_variance(self) -> float:
        """Fraction of the sample's total variance the d components keep, in [0, 1]."""
        if self.total_variance <= 0.0:
            return 0.0
        return min(1.0, float(self.eigenvalues.astype(np.float64).sum()) / self.total_variance)

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits of a SHA-256 over the parameters that define :meth:`transform`.

        An index records it, so an index is only reused with the projection it was built
        with.
        """
        digest = hashlib.sha256()
        digest.update(f"pca/{_FORMAT}/{self.input_dim}/{self.dim}/{int(self.whiten)}".encode())
        for array in (self.mean, self.components, self.eigenvalues):
            digest.update(np.ascontiguousarray(array, dtype="<f4").tobytes())
        return digest.hexdigest()[:16]

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project descriptors.

        Args:
            vectors: ``(N, D)`` float array (float32 or float16), L2-normalised descriptors.

        Returns:
            ``(N, d)`` float32, each row L2-normalised (a vector equal to the mean, which has
            no direction, maps to zeros).

        Raises:
            PCAError: ``vectors`` is not ``(N, D)``.
        """
        x = np.asarray(vectors)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise PCAError(f"PCA expects (N, {self.input_dim}) vectors, got {x.shape}")
        y = (x.astype(np.float32, copy=False) - self.mean) @ self.components.T
        if self.whiten:
            y /= np.sqrt(np.maximum(self.eigenvalues, np.finfo(np.float32).tiny))
        norms = np.linalg.norm(y, axis=1, keepdims=True)
        y /= np.maximum(norms, np.finfo(np.float32).tiny)
        return y.astype(np.float32, copy=False)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the parameters to an ``.npz`` file, atomically (temporary file + rename).

        Args:
            path: Destination, usually ``<catalog stem>.<model>.pca.npz``.

        Raises:
            PCAError: The file cannot be written.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    format=np.int64(_FORMAT),
                    mean=self.mean,
                    components=self.components,
                    eigenvalues=self.eigenvalues,
                    total_variance=np.float64(self.total_variance),
                    whiten=np.bool_(self.whiten),
                )
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise PCAError(f"cannot write the PCA file {path}: {exc}") from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PCA:
        """Read a PCA written by :meth:`save`.

        Args:
            path: The ``.npz`` file.

        Returns:
            The PCA, with the same :attr:`fingerprint` as the one saved.

        Raises:
            PCAError: The file is missing, unreadable, of another format or inconsistent.
        """
        try:
            # Our own file object: np.load leaks its handle when the zip is truncated.
            with open(path, "rb") as f:
                data = np.load(f, allow_pickle=False)
                if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
                    raise PCAError(f"{path} is not a PCA file (.npz)")
                with data:
                    if int(data["format"]) != _FORMAT:
                        raise PCAError(
                            f"{path}: PCA file format {int(data['format'])} != {_FORMAT}"
                        )
                    return cls(
                        mean=data["mean"],
                        components=data["components"],
                        eigenvalues=data["eigenvalues"],
                        total_variance=float(data["total_variance"]),
                        whiten=bool(data["whiten"]),
                    )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise PCAError(f"cannot read the PCA file {path}: {exc}") from exc


def fit_pca(
    vectors: np.ndarray,
    dim: int,
    whiten: bool = False,
    max_samples: int = MAX_SAMPLES,
    seed: int = 0,
) -> PCA:
    """Learn a PCA of descriptors (Jégou & Chum 2012; SPoC, Babenko & Lempitsky 2015).

    Args:
        vectors: ``(N, D)`` float array of descriptors (float16 or float32).
        dim: Output dimension d, ``1 <= d < D``.
        whiten: Whiten the projection (see :class:`PCA`).
        max_samples: Fit on at most this many rows, a seeded uniform sample without
            replacement when ``N`` is larger.
        seed: Seed of that sample (same data and seed give the same PCA).

    Returns:
        The fitted :class:`PCA`; component signs are fixed (the largest-magnitude entry of
        each is positive) so a refit on the same data gives the same fingerprint.

    Raises:
        PCAError: ``vectors`` is not a finite 2-D array, ``dim`` is not below D, there are
            not more vectors than ``dim`` (the covariance of N vectors has rank below N), or
            ``whiten`` is asked of data spanning fewer than ``dim`` directions.
    """
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise PCAError(f"PCA needs an (N, D) array of descriptors, got shape {x.shape}")
    n, big_d = x.shape
    if not 1 <= dim < big_d:
        raise PCAError(
            f"PCA dimension {dim} must be at least 1 and below the descriptor dimension {big_d}"
        )
    if n <= dim:
        raise PCAError(f"PCA to {dim} dimensions needs more than {dim} descriptors, got {n}")
    if n > max_samples:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
        x = x[rows]
        n = max_samples

    mean = np.zeros(big_d, np.float64)
    for start in range(0, n, _CHUNK):
        chunk = x[start : start + _CHUNK].astype(np.float64)
        if not np.isfinite(chunk).all():
            raise PCAError("PCA input contains NaN or infinite values")
        mean += chunk.sum(axis=0)
    mean /= n
    cov = np.zeros((big_d, big_d), np.float64)
    for start in range(0, n, _CHUNK):
        centred = x[start : start + _CHUNK].astype(np.float64) - mean
        cov += centred.T @ centred
    cov /= n - 1

    values, vectors_ = np.linalg.eigh(cov)  # ascending
    top = np.argsort(values)[::-1][:dim]
    eigenvalues = np.maximum(values[top], 0.0)
    components = vectors_[:, top].T
    # Eigenvectors are defined up to sign: pick one deterministically.
    signs = np.sign(components[np.arange(dim), np.abs(components).argmax(axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    if whiten and eigenvalues[-1] <= _DEGENERATE * max(eigenvalues[0], 0.0):
        raise PCAError(
            f"cannot whiten to {dim} dimensions: the descriptors vary along fewer directions"
        )
    return PCA(
        mean=mean.astype(np.float32),
        components=components.astype(np.float32),
        eigenvalues=eigenvalues.astype(np.float32),
        total_variance=float(np.trace(cov)),
        whiten=whiten,
    )
