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
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import hnswlib
import numpy as np

from photosim.core.catalog import Catalog
from photosim.core.hashing import to_unsigned64
from photosim.core.types import Error

logger = logging.getLogger(__name__)

HASH_MODEL = "hash128"
HASH_BITS = 128
M = 16
EF_CONSTRUCTION = 200
EF_SEARCH = 64
_INDEX_FORMAT = 1


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


class VectorIndex:
    """A persisted hnswlib index over the catalog's vectors of one model.

    Args:
        model: Model id whose vectors it holds.
        dim: Vector dimension D.
        paths: ``(.hnsw, .json, .ids.npy)`` files to save to (None keeps it in memory only).
        load_capacity: When > 0, load the saved index with this capacity instead of a new one.
        catalog_id: Id of the catalog the labels belong to, saved in the sidecar.

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
    ) -> None:
        self.model = model
        self.dim = dim
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

    # ------------------------------------------------------------------ open / save
    @classmethod
    def open(cls, catalog: Catalog, model: str) -> VectorIndex | None:
        """Load the index of ``model`` beside ``catalog`` and bring it in line with the catalog.

        Returns:
            The index, or None when the catalog holds no vectors of that model.
        """
        count, _ = catalog.embedding_stats(model)
        if count == 0:
            return None
        paths = index_paths(catalog.path, model)
        index = None
        try:
            meta = json.loads(paths[1].read_text())
            if (
                meta.get("format") == _INDEX_FORMAT
                and meta.get("model") == model
                and meta.get("catalog_id") == catalog.catalog_id
            ):
                index = cls(
                    model, int(meta["dim"]), paths, int(meta["capacity"]), catalog.catalog_id
                )
                index._live = set(np.load(paths[2]).tolist())
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            logger.info("index for %s not loaded (%s); rebuilding", model, exc)
            index = None
        if index is None:
            index = cls(model, catalog.embedding_dim(model), paths, 0, catalog.catalog_id)
        index.sync(catalog)
        return index

    def save(self) -> None:
        """Write the index, its live labels and its sidecar (no-op without paths)."""
        if self.paths is None:
            return
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
            vectors: ``(N, D)`` float32, L2-normalised.

        Raises:
            IndexError_: The dimension does not match the index.
        """
        if vectors.shape[1] != self.dim:
            raise IndexError_(f"vector dimension {vectors.shape[1]} != index dimension {self.dim}")
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

    def knn(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar vectors of each query.

        Args:
            vectors: ``(M, D)`` float32 L2-normalised queries.
            k: Neighbours wanted; clamped to the number of live vectors.

        Returns:
            ``(labels (M, k') int64, cosine similarities (M, k') float32)``, best first,
            ``k' = min(k, len(self))``.
        """
        k = min(k, len(self._live))
        if k == 0:
            return np.zeros((len(vectors), 0), np.int64), np.zeros((len(vectors), 0), np.float32)
        with self._lock:
            self._index.set_ef(max(EF_SEARCH, k))
            labels, distances = self._index.knn_query(np.asarray(vectors, np.float32), k=k)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)
