"""Approximate nearest-neighbour index over descriptors (hnswlib).

HNSW (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
Hierarchical Navigable Small World graphs", TPAMI 2018) through hnswlib, in inner-product space
on L2-normalised vectors, so ``similarity = 1 - distance`` is the cosine similarity.

One index per model id, labelled by the catalog's ``embeddings.id``. The index file is a
cache: it is saved beside the catalog with a sidecar of its live labels, updated incrementally
(``add_items``, ``mark_deleted``, ``resize_index``), and rebuilt from the catalog whenever it
disagrees with it (model, dimension, live labels). The catalog stays the source of truth.

Two kinds of vectors live in the catalog:

- CNN descriptors (model ids such as ``"efficientnet_b1-avg"``);
- :data:`HASH_MODEL`: the 128 bits of pHash and dHash as a ``±1/sqrt(128)`` vector, so the
  inner product of two of them is exactly ``1 - 2 * hamming / 128``. The same HNSW machinery then
  serves as the hash index that finds perceptual-hash candidates without comparing all pairs.

For very large libraries a descriptor index may live in a PCA space (:mod:`photosim.core.index.pca`):
the catalog's ``meta`` key ``pca_dim:<model>`` asks for it (see :func:`set_pca_dim`). The
projection is learned once from the catalog's own descriptors and saved beside the catalog
(:func:`pca_path`); the index sidecar records its fingerprint, so an index is only reused with
the projection it was built with. Queries search the small index for twice the candidates and
re-score them with the full descriptors from the catalog (``knn(..., catalog=)``): search
compressed, re-rank with the originals. The hash index never uses PCA.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from pathlib import Path

import hnswlib
import numpy as np

from photosim.core.catalog import Catalog
from photosim.core.errors import explain
from photosim.core.index.pca import MAX_SAMPLES, PCA, PCAError, fit_pca
from photosim.core.scan.hashing import to_unsigned64
from photosim.core.types import Error

logger = logging.getLogger(__name__)

HASH_MODEL = "hash128"
HASH_BITS = 128
M = 16
EF_CONSTRUCTION = 200
EF_SEARCH = 64
_INDEX_FORMAT = 1
#: ``meta`` key of a model's PCA setting: the index dimension, "0" or absent for none.
PCA_META_KEY = "pca_dim:{model}"
#: A PCA to d dimensions is learned only from at least ``max(PCA_MIN_FACTOR * d, PCA_MIN)``
#: descriptors; a smaller catalog keeps a full-dimension index (and needs no compression).
PCA_MIN_FACTOR = 4
PCA_MIN = 1000
PCA_SEED = 0
#: Candidates fetched in PCA space per neighbour wanted, before exact re-scoring.
RESCORE_FACTOR = 2


class IndexError_(Error):
    """The vector index cannot serve a request."""


def hash_vectors(phash: np.ndarray, dhash: np.ndarray) -> np.ndarray:
    """Binary perceptual hashes as unit vectors whose inner product encodes Hamming distance.

    Args:
        phash: ``(N,)`` int64 pHash values (signed 64-bit).
        dhash: ``(N,)`` int64 dHash values.

    Returns:
        ``(N, 128)`` float32; row ``i`` holds bit ``b`` of ``phash[i] || dhash[i]`` as
        ``±1/sqrt(128)``. For two rows, ``dot = 1 - 2 * H / 128`` where H is the total Hamming
        distance of both hashes (so ``H = 64 * (1 - dot)``).
    """
    words = np.stack(
        [np.asarray(phash, dtype=np.int64), np.asarray(dhash, dtype=np.int64)], axis=1
    ).view(np.uint64)
    shifts = np.arange(63, -1, -1, dtype=np.uint64)
    bits = ((words[:, :, None] >> shifts) & np.uint64(1)).reshape(len(words), HASH_BITS)
    return (bits.astype(np.float32) * 2.0 - 1.0) / np.sqrt(np.float32(HASH_BITS))


def hash_vector(phash: int, dhash: int) -> np.ndarray:
    """One :func:`hash_vectors` row, ``(128,)`` float32."""
    p = np.array([to_unsigned64(phash)], dtype=np.uint64).view(np.int64)
    d = np.array([to_unsigned64(dhash)], dtype=np.uint64).view(np.int64)
    return hash_vectors(p, d)[0]


def index_paths(catalog_path: Path, model: str) -> tuple[Path, Path, Path]:
    """Files of one model's index beside a catalog: ``(.hnsw, .json sidecar, .ids.npy)``."""
    stem = f"{catalog_path.stem}.{model}"
    folder = catalog_path.parent
    return folder / f"{stem}.hnsw", folder / f"{stem}.json", folder / f"{stem}.ids.npy"


def pca_path(catalog_path: Path, model: str) -> Path:
    """The PCA file of one model's index beside a catalog: ``<stem>.<model>.pca.npz``."""
    return catalog_path.parent / f"{catalog_path.stem}.{model}.pca.npz"


def pca_dim(catalog: Catalog, model: str) -> int:
    """The PCA dimension asked for ``model``'s index in ``catalog`` (0: none).

    An unreadable or negative value counts as 0 (and is logged).
    """
    value = catalog.get_meta(PCA_META_KEY.format(model=model))
    if not value:
        return 0
    try:
        dim = int(value)
    except ValueError:
        logger.warning("ignoring the PCA setting %r of %s: not an integer", value, model)
        return 0
    return max(dim, 0)


def pca_min_descriptors(dim: int) -> int:
    """Descriptors a catalog needs before a PCA to ``dim`` dimensions is learned from it."""
    return max(PCA_MIN_FACTOR * dim, PCA_MIN)


def set_pca_dim(catalog: Catalog, model: str, dim: int) -> bool:
    """Ask for ``model``'s index to be built in ``dim`` PCA dimensions (0 turns PCA off).

    The next :meth:`VectorIndex.open` applies it (learning the PCA, rebuilding the index).

    Args:
        catalog: The catalog that keeps the setting (``meta`` key ``pca_dim:<model>``).
        model: A descriptor model id.
        dim: Index dimension after PCA, or 0.

    Returns:
        True when the setting changed.

    Raises:
        IndexError_: ``dim`` is negative, or ``model`` is :data:`HASH_MODEL`.
    """
    if model == HASH_MODEL:
        raise IndexError_("the perceptual-hash index never uses PCA")
    if dim < 0:
        raise IndexError_(f"the PCA dimension must be 0 (off) or positive, not {dim}")
    if pca_dim(catalog, model) == dim:
        return False
    catalog.set_meta(PCA_META_KEY.format(model=model), str(dim))
    return True


def _catalog_pca(catalog: Catalog, model: str, count: int) -> tuple[PCA | None, bool]:
    """The PCA ``model``'s index should use now: ``(pca or None, learned just now)``.

    Uses the saved projection when it fits the setting. Otherwise learns one from a seeded
    sample of the catalog's descriptors and saves it, once the catalog holds at least
    ``max(4 * d, 1000)`` of them (the minimum gates learning only: a saved projection keeps
    serving a catalog that shrank, so the index does not flip between the two forms). None
    when PCA is off or would not reduce anything.
    """
    if model == HASH_MODEL:
        return None, False
    dim = pca_dim(catalog, model)
    if dim == 0:
        return None, False
    full = catalog.embedding_dim(model)
    if dim >= full:
        logger.info("index %s: PCA to %d-d asked of %d-d descriptors: full-dimension index",
                    model, dim, full)
        return None, False
    path = pca_path(catalog.path, model)
    reason = "no PCA file yet"
    if path.exists():
        try:
            pca = PCA.load(path)
            if pca.dim == dim and pca.input_dim == full and not pca.whiten:
                return pca, False
            reason = f"{path.name} is {pca.input_dim} -> {pca.dim}-d"
        except PCAError as exc:
            reason = str(exc)
    minimum = pca_min_descriptors(dim)
    if count < minimum:
        logger.info(
            "index %s: PCA to %d-d waits for %d descriptors (%d so far): full-dimension index",
            model, dim, minimum, count,
        )
        return None, False
    logger.info("index %s: learning a PCA %d -> %d-d (%s)", model, full, dim, reason)
    ids = np.array(sorted(catalog.embedding_ids_by_hash(model).values()), dtype=np.int64)
    if len(ids) > MAX_SAMPLES:
        rng = np.random.default_rng(PCA_SEED)
        ids = np.sort(rng.choice(ids, size=MAX_SAMPLES, replace=False))
    _, _, sample = catalog.embeddings(model, ids=ids.tolist())
    try:
        pca = fit_pca(sample, dim, max_samples=MAX_SAMPLES, seed=PCA_SEED)
    except PCAError as exc:  # e.g. non-finite descriptors: search still works, uncompressed
        logger.warning("index %s: no PCA (%s): full-dimension index", model, exc)
        return None, False
    try:
        pca.save(path)
    except PCAError as exc:
        # The index still works; the next open learns the PCA again and rebuilds.
        logger.warning("index %s: %s", model, exc)
    logger.info("index %s: PCA %d -> %d-d keeps %.1f %% of the variance (%d descriptors)",
                model, full, dim, 100.0 * pca.explained_variance, len(sample))
    return pca, True


class VectorIndex:
    """A persisted hnswlib index over the catalog's vectors of one model.

    Args:
        model: Model id whose vectors it holds.
        dim: Dimension of the hnswlib index: the vectors' D, or ``pca.dim`` with a PCA.
        paths: ``(.hnsw, .json, .ids.npy)`` files to save to (None keeps it in memory only).
        load_capacity: When > 0, load the saved index with this capacity instead of a new one.
        catalog_id: Id of the catalog the labels belong to, saved in the sidecar.
        pca: Optional projection: the index then lives in PCA space, while :meth:`add` and
            :meth:`knn` still take full-dimension vectors (``pca.input_dim``) and project
            them (never already-projected ones: one kind of input, no ambiguity).

    Raises:
        IndexError_: ``dim`` differs from ``pca.dim``.

    Thread safety: ``add_items`` is not safe next to ``knn_query`` in hnswlib, so every call
    that touches the index holds one lock.
    """

    def __init__(
        self,
        model: str,
        dim: int,
        paths: tuple[Path, Path, Path] | None = None,
        load_capacity: int = 0,
        catalog_id: str = "",
        pca: PCA | None = None,
    ) -> None:
        if pca is not None and pca.dim != dim:
            raise IndexError_(f"index dimension {dim} != PCA dimension {pca.dim}")
        self.model = model
        self.dim = dim
        self.pca = pca
        self.paths = paths
        self.catalog_id = catalog_id
        self._lock = threading.Lock()
        self._index = hnswlib.Index(space="ip", dim=dim)
        if load_capacity and paths is not None:
            self._index.load_index(str(paths[0]), max_elements=load_capacity)
        else:
            self._index.init_index(max_elements=1024, ef_construction=EF_CONSTRUCTION, M=M)
        self._index.set_ef(EF_SEARCH)
        self._live: set[int] = set()

    @property
    def input_dim(self) -> int:
        """Dimension of the vectors :meth:`add` and :meth:`knn` take (D, also with a PCA)."""
        return self.pca.input_dim if self.pca is not None else self.dim

    # ------------------------------------------------------------------ open / save
    @classmethod
    def open(cls, catalog: Catalog, model: str) -> VectorIndex | None:
        """Load the index of ``model`` beside ``catalog`` and bring it in line with the catalog.

        With a PCA setting of d dimensions (:func:`set_pca_dim`; never for
        :data:`HASH_MODEL`) the index lives in PCA space: the projection is loaded from
        :func:`pca_path`, or, once the catalog holds ``max(4 * d, 1000)`` descriptors of the
        model, learned from up to 100k of them (a seeded sample) and saved there; before that
        the index keeps the full dimension (and says so in the log). The saved index is reused
        only when its sidecar names the same projection; a projection learned now (file
        missing, unreadable or for another dimension) always means a new index.

        Above :data:`~photosim.core.index.compressed.COMPRESS_ABOVE` descriptors, or when the
        catalog's ``index_kind:<model>`` setting says ``ivfpq``, the model's index is a
        :class:`~photosim.core.index.compressed.CompressedIndex` instead (IVF-PQ with exact
        float16 re-ranking; same ``knn``, ``sync``, ``save``, ``len``), and the hash index
        (:data:`HASH_MODEL`) a :class:`~photosim.core.index.binary.BinaryHashIndex` (16-byte
        binary codes, exact Hamming distances).

        Returns:
            The index, or None when the catalog holds no vectors of that model.
        """
        count, _ = catalog.embedding_stats(model)
        if count == 0:
            return None
        from photosim.core.index.compressed import CompressedIndex, index_kind

        if index_kind(catalog, model, count) == "ivfpq":
            if model == HASH_MODEL:
                from photosim.core.index.binary import BinaryHashIndex

                return BinaryHashIndex.open(catalog, model)  # type: ignore[return-value]
            return CompressedIndex.open(catalog, model)  # type: ignore[return-value]
        paths = index_paths(catalog.path, model)
        pca, learned = _catalog_pca(catalog, model, count)
        dim = pca.dim if pca is not None else catalog.embedding_dim(model)
        fingerprint = pca.fingerprint if pca is not None else None
        index = None
        try:
            meta = json.loads(paths[1].read_text())
            if (
                meta.get("format") == _INDEX_FORMAT
                and meta.get("model") == model
                and meta.get("catalog_id") == catalog.catalog_id
                and meta.get("dim") == dim
                and meta.get("pca") == fingerprint
                and not learned
            ):
                index = cls(
                    model, dim, paths, int(meta["capacity"]), catalog.catalog_id, pca
                )
                index._live = set(np.load(paths[2]).tolist())
            else:
                logger.info("index for %s does not match the catalog or its PCA; rebuilding",
                            model)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            logger.info("index for %s not loaded (%s); rebuilding", model, exc)
            index = None
        if index is None:
            index = cls(model, dim, paths, 0, catalog.catalog_id, pca)
        index.sync(catalog)
        return index

    def save(self) -> None:
        """Write the index, its live labels and its sidecar (no-op without paths).

        The files are a cache of the catalog: if they cannot be written (a full or read-only
        disk), the sidecar is removed so that no half-written index is trusted, a warning is
        logged, and the next use rebuilds the index from the catalog. Nothing is raised.
        """
        if self.paths is None:
            return
        try:
            self._write()
        except (OSError, RuntimeError) as exc:  # hnswlib reports write errors as RuntimeError
            logger.warning(
                "the %s index could not be saved beside the catalog (%s); it is rebuilt from "
                "the catalog on next use", self.model, explain(exc) or exc,
            )
            with contextlib.suppress(OSError):
                self.paths[1].unlink(missing_ok=True)

    def _write(self) -> None:
        assert self.paths is not None
        hnsw_path, meta_path, ids_path = self.paths
        with self._lock:
            self._index.save_index(str(hnsw_path))
            np.save(ids_path, np.fromiter(self._live, dtype=np.int64, count=len(self._live)))
            meta = {
                "format": _INDEX_FORMAT,
                "model": self.model,
                "catalog_id": self.catalog_id,
                "dim": self.dim,
                "count": len(self._live),
                "capacity": self._index.get_max_elements(),
                # Fingerprint of the projection (None: full dimension), and what `info` shows.
                "pca": self.pca.fingerprint if self.pca is not None else None,
                "input_dim": self.input_dim,
                "explained_variance": (
                    round(self.pca.explained_variance, 6) if self.pca is not None else None
                ),
            }
        meta_path.write_text(json.dumps(meta))

    # ------------------------------------------------------------------ updates
    def sync(self, catalog: Catalog, save: bool = True) -> tuple[int, int]:
        """Add the catalog's vectors the index lacks and delete labels the catalog lost.

        Returns:
            ``(added, deleted)`` label counts.
        """
        wanted = set(catalog.embedding_ids_by_hash(self.model).values())
        missing = sorted(wanted - self._live)
        extra = sorted(self._live - wanted)
        for start in range(0, len(missing), 4096):
            ids, _, vectors = catalog.embeddings(self.model, ids=missing[start : start + 4096])
            if len(ids):
                self.add(ids, vectors)
        for label in extra:
            self.remove(label)
        if (missing or extra) and save:
            self.save()
        if missing or extra:
            logger.info("index %s: +%d -%d labels", self.model, len(missing), len(extra))
        return len(missing), len(extra)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace vectors.

        Args:
            ids: ``(N,)`` int64 labels (catalog embedding ids).
            vectors: ``(N, D)`` float32, L2-normalised, ``D = input_dim``: full-dimension
                descriptors also with a PCA, which projects them.

        Raises:
            IndexError_: The dimension does not match the index.
        """
        if vectors.ndim != 2 or vectors.shape[1] != self.input_dim:
            raise IndexError_(
                f"vector dimension {vectors.shape[1:]} != index input dimension {self.input_dim}"
            )
        if self.pca is not None:
            vectors = self.pca.transform(vectors)
        with self._lock:
            needed = self._index.get_current_count() + len(ids)
            capacity = self._index.get_max_elements()
            if needed > capacity:
                self._index.resize_index(max(needed, capacity * 2))
            # Re-adding a live label updates its vector in place (hnswlib semantics).
            self._index.add_items(np.asarray(vectors, dtype=np.float32), ids)
            self._live.update(int(i) for i in ids.tolist())

    def remove(self, label: int) -> None:
        """Mark one label deleted (it stays in the graph but is never returned)."""
        with self._lock:
            if label in self._live:
                self._index.mark_deleted(label)
                self._live.discard(label)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._live)

    def knn(
        self, vectors: np.ndarray, k: int, catalog: Catalog | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar vectors of each query.

        With a PCA and a ``catalog``, ``2k`` candidates are found in PCA space and re-scored
        with the catalog's full descriptors: the result is the top k by the same inner
        product a full-dimension index would return (exact, up to which candidates the
        compressed search found). Without a catalog the similarities are PCA-space cosines
        (of the centred, projected descriptors): fine for ranking, not for the tier
        thresholds. Without a PCA, ``catalog`` changes nothing.

        Args:
            vectors: ``(M, D)`` float32 L2-normalised queries, ``D = input_dim``
                (full-dimension also with a PCA).
            k: Neighbours wanted; clamped to the number of live vectors.
            catalog: The catalog this index mirrors (its descriptors of ``model``), for exact
                re-scoring.

        Returns:
            ``(labels (M, k') int64, cosine similarities (M, k') float32)``, best first,
            ``k' = min(k, len(self))``. A candidate the catalog no longer holds (deleted since
            the last sync) is re-scored -1.

        Raises:
            IndexError_: The queries are not ``(M, input_dim)``.
        """
        queries = np.asarray(vectors, np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.input_dim:
            raise IndexError_(
                f"query dimension {queries.shape[1:]} != index input dimension {self.input_dim}"
            )
        k = min(k, len(self._live))
        if k == 0:
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        rescore = self.pca is not None and catalog is not None
        fetch = min(RESCORE_FACTOR * k, len(self._live)) if rescore else k
        projected = self.pca.transform(queries) if self.pca is not None else queries
        with self._lock:
            self._index.set_ef(max(EF_SEARCH, fetch))
            labels, distances = self._index.knn_query(projected, k=fetch)
        labels = labels.astype(np.int64)
        if catalog is None or self.pca is None:
            return labels, (1.0 - distances).astype(np.float32)
        return self._rescore(catalog, queries, labels, k)

    def _rescore(
        self, catalog: Catalog, queries: np.ndarray, labels: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of ``queries (M, D)`` with candidates ``labels (M, F)``
        from the catalog's full descriptors; the top k of each row, best first."""
        wanted = np.unique(labels)
        ids, _, full = catalog.embeddings(self.model, ids=wanted.tolist())
        order = np.argsort(ids)
        ids, full = ids[order], full[order]
        if len(ids) == 0:
            sims = np.full(labels.shape, -1.0, np.float32)
        else:
            rows = np.minimum(np.searchsorted(ids, labels), len(ids) - 1)
            known = ids[rows] == labels
            sims = np.empty(labels.shape, np.float32)
            # Gather (chunk, F, D) candidate blocks of about 32 MB at a time.
            chunk = max(1, (1 << 23) // (labels.shape[1] * full.shape[1]))
            for start in range(0, len(queries), chunk):
                block = full[rows[start : start + chunk]]
                q = queries[start : start + chunk, :, None]
                sims[start : start + chunk] = (block @ q)[:, :, 0]
            sims[~known] = -1.0
        best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return (
            np.take_along_axis(labels, best, axis=1),
            np.take_along_axis(sims, best, axis=1),
        )
