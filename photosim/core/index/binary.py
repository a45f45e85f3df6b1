"""Compressed perceptual-hash index for archive-scale libraries: the 128 hash bits as 16-byte
binary codes in a binary inverted file (faiss ``IndexBinaryIVF``), exact Hamming distances.

The hash index (:data:`~photosim.core.index.vectors.HASH_MODEL`) holds each content's pHash and
dHash as a 128-d float vector (:func:`~photosim.core.index.vectors.hash_vectors`) in hnswlib:
about 650 bytes a photo with the graph, 6.5 GB at 10M photos. Above
:data:`~photosim.core.index.compressed.COMPRESS_ABOVE` contents (or with ``scan --index
ivfpq``) it becomes this index instead:

- the codes themselves, 16 bytes a photo, plus faiss's 8-byte id: 240 MB at 10M;
- ``nlist`` coarse cells (about ``sqrt(N)``) whose centroids are binary codes trained by
  k-means (faiss binarizes float k-means), searched :data:`PROBE_SHARE` of them deep;
- distances are the exact Hamming distances of the codes found, returned as the same
  similarity hnswlib gives (``1 - 2 H / 128``), so the hash thresholds are unchanged; only
  which neighbours are found is approximate (a neighbour in a cell not probed is missed).

The binary inverted file is the binary counterpart of IVFADC (Jégou et al., TPAMI 2011) as
built in faiss (Douze et al., The Faiss library, 2024).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from photosim.core.catalog import Catalog
from photosim.core.index.compressed import (
    SEED,
    TRAIN_MAX,
    CatalogMirror,
    CompressedIndexError,
    LabelBitmap,
    _faiss,
)

logger = logging.getLogger(__name__)

BITS = 128  # pHash || dHash (HASH_BITS)
CODE_BYTES = BITS // 8
PROBE_SHARE = 1 / 4  # share of the cells searched per query (1/8: 0.82 of 22-bit copies)
_FORMAT = 1


def binary_paths(catalog_path: Path, model: str) -> tuple[Path, Path, Path]:
    """Files of the binary hash index beside a catalog: ``(.bivf faiss index, .bivf.json
    sidecar, .bivf.live.npy live labels)``."""
    stem = f"{catalog_path.stem}.{model}"
    folder = catalog_path.parent
    return folder / f"{stem}.bivf", folder / f"{stem}.bivf.json", folder / f"{stem}.bivf.live.npy"


def pack(vectors: np.ndarray) -> np.ndarray:
    """``(N, 128)`` float32 ±1/sqrt(128) hash vectors -> ``(N, 16)`` uint8 codes (bit set
    where the component is positive, most significant bit first).

    Raises:
        CompressedIndexError: The vectors are not ``(N, 128)``.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[1] != BITS:
        raise CompressedIndexError(f"hash vectors must be (N, {BITS}), not {vectors.shape}")
    return np.packbits(vectors > 0, axis=1)


def cells(count: int) -> int:
    """Coarse cells for ``count`` codes: about ``sqrt(count)``, a power of two, at most
    ``count / 39`` (k-means wants 39 training points a centroid), at least 1."""
    nlist = 2 ** max(0, round(math.log2(math.sqrt(max(1, count)))))
    return max(1, min(nlist, count // 39, 65536))


class BinaryHashIndex(CatalogMirror):
    """Binary IVF over the 128-bit perceptual hashes (module docstring); the same ``knn``,
    ``sync``, ``save`` and ``len`` as :class:`~photosim.core.index.vectors.VectorIndex`.

    Args:
        model: The hash model id.
        paths: :func:`binary_paths`.
        index: The trained ``faiss.IndexBinaryIVF``.
        catalog_id: The catalog its labels belong to ("" outside a catalog).
    """

    kind = "binary-ivf"
    dim = BITS
    pca = None

    def __init__(self, model: str, paths: tuple[Path, Path, Path], index,
                 catalog_id: str = "") -> None:
        self.model, self.paths, self.catalog_id = model, paths, catalog_id
        self.input_dim = BITS
        self._index = index
        self.nlist = int(index.nlist)
        self._index.nprobe = max(1, math.ceil(self.nlist * PROBE_SHARE))
        self._live = LabelBitmap()
        self._lock = threading.Lock()

    @classmethod
    def create(cls, model: str, sample: np.ndarray, paths: tuple[Path, Path, Path],
               count: int | None = None, catalog_id: str = "") -> BinaryHashIndex:
        """Train a new, empty index on ``sample`` (files at ``paths`` are replaced).

        Args:
            model: The hash model id.
            sample: ``(n, 128)`` float32 hash vectors (up to :data:`TRAIN_MAX`, a seeded
                subsample, are used).
            paths: :func:`binary_paths`.
            count: How many codes the index will hold (sizes ``nlist``); ``n`` when None.
            catalog_id: Recorded in the sidecar.

        Raises:
            CompressedIndexError: faiss missing, no training vector, or not ``(n, 128)``.
        """
        faiss = _faiss()
        codes = pack(sample)
        if not len(codes):
            raise CompressedIndexError("a binary hash index needs at least 1 training vector")
        if len(codes) > TRAIN_MAX:
            pick = np.random.default_rng(SEED).choice(len(codes), TRAIN_MAX, replace=False)
            codes = codes[np.sort(pick)]
        nlist = max(1, min(cells(count or len(codes)), len(codes) // 39 or 1))
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(BITS), BITS, nlist)
        index.cp.seed = SEED
        index.train(codes)
        for path in paths[1:]:
            path.unlink(missing_ok=True)
        logger.info("binary hash index: %d cells trained on %d codes", nlist, len(codes))
        return cls(model, paths, index, catalog_id)

    @classmethod
    def open(cls, catalog: Catalog, model: str) -> BinaryHashIndex | None:
        """The binary hash index beside ``catalog``, in line with the catalog: the saved one
        when its sidecar names this catalog, else trained on a seeded sample of the catalog's
        hash vectors and filled.

        Returns:
            The index, or None when the catalog holds no hash vectors.

        Raises:
            CompressedIndexError: faiss missing.
        """
        count, _ = catalog.embedding_stats(model)
        if count == 0:
            return None
        paths = binary_paths(catalog.path, model)
        index = None
        try:
            meta = json.loads(paths[1].read_text())
            if (meta.get("format") == _FORMAT and meta.get("model") == model
                    and meta.get("catalog_id") == catalog.catalog_id):
                index = cls(model, paths, _faiss().read_index_binary(str(paths[0])),
                            catalog.catalog_id)
                index.set_live(np.load(paths[2]))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            logger.info("binary hash index not loaded (%s); rebuilding", exc)
            index = None
        if index is None:
            ids = catalog.embedding_ids(model)
            if len(ids) > TRAIN_MAX:
                ids = np.sort(np.random.default_rng(SEED).choice(ids, TRAIN_MAX, replace=False))
            _, _, sample = catalog.embeddings(model, ids=ids.tolist())
            index = cls.create(model, sample, paths, count=count, catalog_id=catalog.catalog_id)
        index.sync(catalog)
        return index

    def save(self) -> None:
        """Write the faiss index, the live labels and the sidecar. The files are a cache of
        the catalog: a failed write removes the sidecar (the next open rebuilds) and is
        logged, never raised."""
        faiss = _faiss()
        try:
            with self._lock:
                faiss.write_index_binary(self._index, str(self.paths[0]))
                np.save(self.paths[2], self.live_ids())
            self.paths[1].write_text(json.dumps({
                "format": _FORMAT, "kind": self.kind, "model": self.model,
                "catalog_id": self.catalog_id, "count": len(self), "nlist": self.nlist,
                "code_bytes": CODE_BYTES, "memory_bytes": self.memory_bytes,
            }))
        except (OSError, RuntimeError) as exc:
            logger.warning("the binary hash index could not be saved (%s); it is rebuilt "
                           "from the catalog on next use", exc)
            self.paths[1].unlink(missing_ok=True)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) ``(N, 128)`` float32 hash vectors under ``(N,)`` int64 labels.

        Raises:
            CompressedIndexError: The vectors are not ``(N, 128)``.
        """
        codes = pack(vectors)
        ids = np.asarray(ids, np.int64)
        with self._lock:
            again = ids[self._is_live(ids)]
            if len(again):
                self._index.remove_ids(again)
            self._index.add_with_ids(codes, ids)
            self._mark(ids, True)

    @property
    def memory_bytes(self) -> int:
        """RAM the index holds: 16-byte codes and 8-byte ids, and the centroids."""
        return int(self._index.ntotal * (CODE_BYTES + 8) + self.nlist * CODE_BYTES)

    def set_nprobe(self, nprobe: int) -> None:
        """Coarse cells searched per query (more: better recall, slower)."""
        self._index.nprobe = max(1, min(nprobe, self.nlist))

    def knn(self, vectors: np.ndarray, k: int, catalog: Catalog | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes of each query hash vector by Hamming distance.

        Args:
            vectors: ``(M, 128)`` float32 hash vectors (:func:`hash_vectors
                <photosim.core.index.vectors.hash_vectors>`).
            k: Neighbours wanted; clamped to the number of live codes.
            catalog: Unused; accepted so callers treat every index kind alike.

        Returns:
            ``(labels (M, k') int64, similarities (M, k') float32)``, best first;
            similarity ``1 - 2 H / 128`` for Hamming distance H (the inner product of the
            hash vectors). Fewer than k' found are padded with label -1 at similarity -1.

        Raises:
            CompressedIndexError: The queries are not ``(M, 128)``.
        """
        codes = pack(vectors)
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(codes), 0), np.int64), np.zeros((len(codes), 0), np.float32)
        with self._lock:
            distances, labels = self._index.search(codes, k)
        labels = labels.astype(np.int64)
        sims = (1.0 - 2.0 * distances.astype(np.float32) / BITS).astype(np.float32)
        sims[labels < 0] = -1.0
        return labels, sims

    @property
    def shape(self) -> dict[str, Any]:
        """``{"code_bytes", "nlist", "nprobe"}``."""
        return {"code_bytes": CODE_BYTES, "nlist": self.nlist, "nprobe": int(self._index.nprobe)}
