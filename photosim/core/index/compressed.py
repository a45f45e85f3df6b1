"""Compressed vector index for archive-scale libraries: IVF-PQ with an OPQ rotation (faiss),
candidates re-ranked exactly from float16 descriptors kept on disk.

hnswlib (:mod:`photosim.core.index.vectors`) keeps every vector in RAM as float32: 1M photos of
1280-d descriptors take 5.3 GB, so 10M do not fit a laptop. This index keeps a short code per
photo instead:

- an OPQ rotation, reducing to at most :data:`OPQ_MAX_DIM` dimensions (Ge et al., Optimized
  Product Quantization, TPAMI 2014), so the product quantizer's sub-vectors carry balanced
  variance;
- an inverted file of ``nlist`` coarse cells (IVFADC: Jégou, Douze & Schmid, Product
  Quantization for Nearest Neighbor Search, TPAMI 2011), searched ``nprobe`` cells deep. The
  coarse quantizer is exact (a flat scan of the centroids) up to :data:`FLAT_COARSE_MAX` cells
  and an HNSW graph over the centroids above (Malkov & Yashunin, TPAMI 2018), searched
  :data:`COARSE_EF` deep: at faiss's default depth of 16 the graph put vectors into cells that
  are not their nearest, and no ``nprobe`` found them again (recall@10 stalled at 0.90 at 1M
  vectors, 4,096 cells; 0.995 with the exact quantizer);
- a product quantizer on the residuals with ``code_bytes`` bytes per photo (16 to 64), plus
  faiss's 8-byte id: ``2 * code_bytes`` sub-quantizers of 16 centroids (4 bits), scanned with
  SIMD look-up tables ("fast scan": André, Kermarrec & Le Scouarnec, Cache locality is not
  enough: high-performance nearest neighbor search with product quantization fast scan, VLDB
  2015), about 3x faster than ``code_bytes`` sub-quantizers of 256 centroids at equal recall
  here; tiny indexes (under :data:`FASTSCAN_MIN_TRAIN` training vectors) use the 8-bit kind;
- the exact cosine of the first :data:`RERANK` candidates, from a :class:`Float16Store` (the
  full descriptors as float16, memory-mapped from a file beside the catalog): the similarities
  returned, and so the tier thresholds and "find similar", are exact cosines; only which
  neighbours are found is approximate.

Everything goes through faiss (Douze et al., The Faiss library, 2024). Vectors are
L2-normalised, so L2 distance in the coarse and PQ stages ranks like the inner product.

:meth:`CompressedIndex.open` serves a catalog the way :meth:`VectorIndex.open
<photosim.core.index.vectors.VectorIndex.open>` does (same ``knn``, ``sync``, ``save``), and
``VectorIndex.open`` hands over to it above :data:`COMPRESS_ABOVE` descriptors or when the
catalog's ``index_kind:<model>`` setting asks for it (:func:`index_kind`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import mmap
import threading
from pathlib import Path
from typing import Any

import numpy as np

from photosim.core.catalog import Catalog
from photosim.core.types import Error

logger = logging.getLogger(__name__)

#: Descriptors of one model above which the library's index is compressed (``auto``).
COMPRESS_ABOVE = 1_000_000
CODE_BYTES = 32  # bytes per photo of the PQ code (16, 32 or 64 in the benchmarks)
OPQ_MAX_DIM = 256  # OPQ reduces wider descriptors to this many dimensions
NPROBE = 128  # coarse cells searched per query (10M: recall@10 0.957, p99 4.2 ms)
FLAT_COARSE_MAX = 16_384  # coarse cells up to which the centroids are scanned exactly
COARSE_EF = 128  # search depth of the HNSW coarse quantizer above FLAT_COARSE_MAX cells
FASTSCAN_MIN_TRAIN = 1_024  # fewer training vectors: 8-bit PQ (fewer bits for tiny ones)
RERANK = 100  # candidates re-scored exactly per query (at least k)
TRAIN_MAX = 200_000  # vectors the quantizers are trained on (a seeded sample: 39 a cell)
OPQ_ITERATIONS = 8  # faiss's default 50 costs minutes at 256-d for little recall
OPQ_MIN_TRAIN = 2560  # fewer training vectors: a random rotation (Jégou et al. 2011) instead
SEED = 0
KINDS = ("auto", "hnsw", "ivfpq")
KIND_META_KEY = "index_kind:{model}"
_FORMAT = 2  # 2: exact or deep coarse quantizer, 4-bit fast-scan PQ


class CompressedIndexError(Error):
    """The compressed index cannot be built or used (faiss missing, too few vectors, a bad
    file)."""


def index_kind(catalog: Catalog, model: str, count: int) -> str:
    """``"hnsw"`` or ``"ivfpq"``: what ``model``'s index in ``catalog`` should be now.

    The ``meta`` setting ``index_kind:<model>`` (:func:`set_index_kind`) decides; ``auto`` (or
    no setting) compresses above :data:`COMPRESS_ABOVE` vectors. For the perceptual-hash
    index, ``"ivfpq"`` means its compressed kind, a binary inverted file
    (:class:`~photosim.core.index.binary.BinaryHashIndex`).
    """
    kind = catalog.get_meta(KIND_META_KEY.format(model=model)) or "auto"
    if kind == "auto":
        return "ivfpq" if count > COMPRESS_ABOVE else "hnsw"
    return kind if kind in KINDS else "hnsw"


def set_index_kind(catalog: Catalog, model: str, kind: str) -> bool:
    """Choose ``model``'s index: ``"auto"``, ``"hnsw"`` or ``"ivfpq"``; True when it changed.

    Raises:
        CompressedIndexError: Unknown kind.
    """
    if kind not in KINDS:
        raise CompressedIndexError(f"unknown index kind {kind!r}: one of {', '.join(KINDS)}")
    key = KIND_META_KEY.format(model=model)
    if (catalog.get_meta(key) or "auto") == kind:
        return False
    catalog.set_meta(key, kind)
    return True


def compressed_paths(catalog_path: Path, model: str) -> tuple[Path, Path, Path]:
    """Files of one model's compressed index beside a catalog: ``(.ivfpq faiss index,
    .ivfpq.json sidecar, .f16 float16 store)``; the store's label map is ``.f16.ids.npy``."""
    stem = f"{catalog_path.stem}.{model}"
    folder = catalog_path.parent
    return folder / f"{stem}.ivfpq", folder / f"{stem}.ivfpq.json", folder / f"{stem}.f16"


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # a dependency: only a broken install lacks it
        raise CompressedIndexError(
            f"the compressed index needs faiss ({exc}); pip install faiss-cpu"
        ) from exc
    return faiss


def layout(dim: int, count: int, code_bytes: int = CODE_BYTES) -> dict[str, Any]:
    """The index's shape for ``count`` vectors of ``dim`` dimensions.

    Returns:
        ``{"dim", "opq_dim", "code_bytes", "m", "nbits", "nlist", "coarse"}``: OPQ output
        dimension (a multiple of ``m``, at most :data:`OPQ_MAX_DIM` and ``dim``); ``m``
        sub-quantizers of ``nbits`` bits (``2 * code_bytes`` of 4 bits, the fast-scan kind,
        when ``dim`` allows; else ``code_bytes`` of 8 bits); coarse cells (about
        ``sqrt(count)``, a power of two, at least 1, at most ``count / 39``: faiss's k-means
        wants 39 training points per centroid; 4,096 cells at 10M photos) and the coarse
        quantizer, ``"flat"`` or ``"hnsw"`` (above :data:`FLAT_COARSE_MAX` cells).

    Raises:
        CompressedIndexError: ``dim`` is smaller than ``code_bytes``.
    """
    if dim < code_bytes:
        raise CompressedIndexError(f"{dim}-d vectors cannot take {code_bytes}-byte PQ codes")
    fastscan = min(dim, OPQ_MAX_DIM) >= 2 * code_bytes and count >= FASTSCAN_MIN_TRAIN
    m = 2 * code_bytes if fastscan else code_bytes
    opq_dim = min(dim, OPQ_MAX_DIM) // m * m
    nbits = 4 if fastscan else max(1, min(8, int(math.log2(max(2, count // 4)))))
    cells = math.sqrt(max(1, count))
    nlist = 2 ** max(0, round(math.log2(cells)))
    nlist = max(1, min(nlist, count // 39, 65536))
    return {"dim": dim, "opq_dim": opq_dim, "code_bytes": code_bytes, "m": m, "nbits": nbits,
            "nlist": nlist, "coarse": "flat" if nlist <= FLAT_COARSE_MAX else "hnsw"}


class Float16Store:
    """Full descriptors as float16 rows of a file, memory-mapped for reading; labels map to rows.

    Append-only: a re-added label gets a new row, a removed one keeps its row until the index
    is rebuilt. ``2 * dim`` bytes per vector on disk (25.6 GB for 10M 1280-d descriptors, the
    same as the catalog's copy); only the rows a query reads come into memory, as page cache.

    Args:
        path: The rows file (created when missing); the label map is ``path + ".ids.npy"``.
        dim: Vector dimension D.
    """

    def __init__(self, path: Path, dim: int) -> None:
        self.path, self.dim = Path(path), dim
        self._ids_path = self.path.with_name(self.path.name + ".ids.npy")
        self._labels = np.zeros(0, np.int64)  # row -> label
        self._map: np.ndarray | None = None
        self._rows_sorted = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if self.path.exists() and self._ids_path.exists():
            self._labels = np.load(self._ids_path)
            if self.path.stat().st_size != len(self._labels) * dim * 2:
                raise CompressedIndexError(f"{self.path} does not match its label map")
        else:
            self.path.write_bytes(b"")
        self._reindex()

    def _reindex(self) -> None:
        # The last row of each label wins; sorted for searchsorted lookups.
        order = np.argsort(self._labels, kind="stable")
        labels = self._labels[order]
        last = np.ones(len(labels), bool)
        last[:-1] = labels[1:] != labels[:-1]
        self._rows_sorted = (labels[last], order[last])
        self._map = None

    def __len__(self) -> int:
        return len(self._labels)

    def append(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Write ``(N, D)`` vectors for ``(N,)`` int64 labels (as float16)."""
        data = np.ascontiguousarray(vectors, dtype=np.float16)
        with open(self.path, "ab") as fh:
            fh.write(data.tobytes())
        self._labels = np.concatenate([self._labels, np.asarray(labels, np.int64)])
        self._reindex()

    def save(self) -> None:
        """Write the label map (the rows are written as they are appended)."""
        np.save(self._ids_path, self._labels)

    def vectors(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors (N, D) float32, known (N,) bool)`` of ``labels``; unknown ones are 0."""
        labels = np.asarray(labels, np.int64).reshape(-1)
        keys, rows = self._rows_sorted
        out = np.zeros((len(labels), self.dim), np.float32)
        if not len(keys):
            return out, np.zeros(len(labels), bool)
        slot = np.minimum(np.searchsorted(keys, labels), len(keys) - 1)
        known = keys[slot] == labels
        if self._map is None:
            self._map = np.memmap(self.path, np.float16, "r", shape=(len(self._labels), self.dim))
            # Candidates are scattered rows: without this hint every page fault reads ahead
            # (128 KB and more), and 100 candidates a query read megabytes from disk.
            with contextlib.suppress(AttributeError, OSError, ValueError):
                self._map._mmap.madvise(mmap.MADV_RANDOM)  # type: ignore[union-attr]
        out[known] = self._map[rows[slot[known]]]
        return out, known


class LabelBitmap:
    """The live labels of an index, as a bitmap over labels (catalog ids are dense): 10M
    photos take 10 MB, where a Python set of them would take about 700 MB."""

    def __init__(self) -> None:
        self._alive = np.zeros(0, bool)
        self.count = 0

    def contains(self, labels: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: which of ``(N,)`` int64 labels are live."""
        inside = (labels >= 0) & (labels < len(self._alive))
        out = np.zeros(len(labels), bool)
        out[inside] = self._alive[labels[inside]]
        return out

    def mark(self, labels: np.ndarray, alive: bool) -> None:
        """Mark ``(N,)`` int64 labels live or not (negative labels are ignored)."""
        if alive and len(labels) and labels.max() >= len(self._alive):
            grown = np.zeros(max(int(labels.max()) + 1, 2 * len(self._alive)), bool)
            grown[: len(self._alive)] = self._alive
            self._alive = grown
        labels = labels[(labels >= 0) & (labels < len(self._alive))]
        labels = np.unique(labels)
        self.count += int((self._alive[labels] != alive).sum()) * (1 if alive else -1)
        self._alive[labels] = alive

    def reset(self, labels: np.ndarray) -> None:
        """Take ``labels`` as the live ones."""
        self._alive = np.zeros(0, bool)
        self.count = 0
        self.mark(np.asarray(labels, np.int64), True)

    def labels(self) -> np.ndarray:
        """``(N,)`` int64 live labels, sorted."""
        return np.flatnonzero(self._alive).astype(np.int64)


class CatalogMirror:
    """What the compressed indexes share: live labels in a :class:`LabelBitmap`, and
    :meth:`sync` with a catalog, and removal from the faiss index. Subclasses set ``model``,
    ``_live``, ``_index`` (a faiss index with ids) and ``_lock``, and define ``add`` and
    ``save``."""

    model: str
    _live: LabelBitmap
    _index: Any
    _lock: threading.Lock

    def remove(self, label: int) -> None:
        """Forget one label."""
        self.remove_many(np.array([label], np.int64))

    def remove_many(self, labels: np.ndarray) -> None:
        """Forget ``(N,)`` int64 labels (a compressed index's float16 rows stay until a
        rebuild)."""
        labels = np.asarray(labels, np.int64)
        with self._lock:
            self._index.remove_ids(labels)
            self._mark(labels, False)

    def __len__(self) -> int:
        return self._live.count

    def sync(self, catalog: Catalog, save: bool = True) -> tuple[int, int]:
        """Add the catalog's vectors the index lacks, drop labels the catalog lost.

        Returns:
            ``(added, deleted)`` label counts.
        """
        wanted = catalog.embedding_ids(self.model)
        live = self.live_ids()
        missing = np.setdiff1d(wanted, live, assume_unique=True)
        extra = np.setdiff1d(live, wanted, assume_unique=True)
        for start in range(0, len(missing), 65536):
            chunk = missing[start : start + 65536].tolist()
            ids, _, vectors = catalog.embeddings(self.model, ids=chunk)
            if len(ids):
                self.add(ids, vectors)
        if len(extra):
            self.remove_many(extra)
        if (len(missing) or len(extra)) and save:
            self.save()
        return len(missing), len(extra)

    def _is_live(self, labels: np.ndarray) -> np.ndarray:
        return self._live.contains(labels)

    def _mark(self, labels: np.ndarray, alive: bool) -> None:
        self._live.mark(labels, alive)

    def set_live(self, labels: np.ndarray) -> None:
        """Take ``labels`` as the live ones (those a saved index holds)."""
        self._live.reset(labels)

    def live_ids(self) -> np.ndarray:
        """``(N,)`` int64 live labels, sorted (a :class:`LabelBitmap`)."""
        return self._live.labels()


class CompressedIndex(CatalogMirror):
    """IVF-PQ with OPQ over one model's vectors, with exact float16 re-ranking.

    Build with :meth:`create` (training on a sample) then :meth:`add`; or :meth:`open` one
    that mirrors a catalog. Thread-safe like :class:`VectorIndex
    <photosim.core.index.vectors.VectorIndex>` (one lock around faiss calls).

    Args:
        model: Model id of the vectors.
        dim: Vector dimension D (full; the index reduces it internally).
        paths: :func:`compressed_paths` (index, sidecar, float16 store).
        index: The trained faiss index (``IndexPreTransform(OPQ, IVFPQ)``).
        shape: :func:`layout`'s dict it was built with, plus ``"transform"``: ``"opq"``, or
            ``"random rotation"`` when trained on fewer than :data:`OPQ_MIN_TRAIN` vectors.
        catalog_id: The catalog its labels belong to ("" outside a catalog).
    """

    kind = "ivfpq"

    def __init__(self, model: str, dim: int, paths: tuple[Path, Path, Path], index,
                 shape: dict[str, Any], catalog_id: str = "") -> None:
        self.model, self.dim, self.paths = model, dim, paths
        self.input_dim = dim
        self.pca = None  # (the OPQ stage reduces the dimension itself)
        self.shape, self.catalog_id = shape, catalog_id
        self._index = index
        self._ivf = _faiss().extract_index_ivf(index)
        self._ivf.nprobe = min(NPROBE, shape["nlist"])
        self.store = Float16Store(paths[2], dim)
        self._live = LabelBitmap()
        self._lock = threading.Lock()
        self.rerank = RERANK

    # ------------------------------------------------------------------ build
    @classmethod
    def create(
        cls, model: str, sample: np.ndarray, paths: tuple[Path, Path, Path],
        count: int | None = None, code_bytes: int = CODE_BYTES, catalog_id: str = "",
    ) -> CompressedIndex:
        """Train a new, empty index on ``sample`` (files at ``paths`` are replaced).

        Args:
            model: Model id.
            sample: ``(n, D)`` float32 L2-normalised training vectors (up to
                :data:`TRAIN_MAX` are used, a seeded subsample).
            paths: :func:`compressed_paths`.
            count: How many vectors the index will hold (sizes ``nlist``); ``n`` when None.
            code_bytes: PQ code bytes per vector.
            catalog_id: Recorded in the sidecar.

        Raises:
            CompressedIndexError: faiss missing; ``D < code_bytes``; fewer than 2 vectors.
        """
        faiss = _faiss()
        sample = np.ascontiguousarray(sample, np.float32)
        if sample.ndim != 2 or len(sample) < 2:
            raise CompressedIndexError("a compressed index needs at least 2 training vectors")
        if len(sample) > TRAIN_MAX:
            pick = np.random.default_rng(SEED).choice(len(sample), TRAIN_MAX, replace=False)
            sample = sample[np.sort(pick)]
        dim = sample.shape[1]
        shape = layout(dim, count or len(sample), code_bytes)
        if shape["nbits"] == 4 and len(sample) < FASTSCAN_MIN_TRAIN:
            shape = layout(dim, len(sample), code_bytes)  # too few to train: 8-bit kind
        shape["nlist"] = max(1, min(shape["nlist"], len(sample) // 39))
        if shape["nbits"] != 4:
            shape["nbits"] = min(shape["nbits"],
                                 max(1, int(math.log2(max(2, len(sample) // 4)))))
        if len(sample) >= OPQ_MIN_TRAIN:
            rotation = faiss.OPQMatrix(dim, shape["m"], shape["opq_dim"])
            rotation.niter = OPQ_ITERATIONS
            shape["transform"] = "opq"
        else:  # OPQ's own PQ needs 256 points a centroid set: a random rotation instead
            rotation = faiss.RandomRotationMatrix(dim, shape["opq_dim"])
            rotation.init(SEED)
            shape["transform"] = "random rotation"
        if shape["coarse"] == "flat":
            quantizer = faiss.IndexFlatL2(shape["opq_dim"])
        else:
            quantizer = faiss.IndexHNSWFlat(shape["opq_dim"], 32)
            quantizer.hnsw.efSearch = COARSE_EF
        if shape["nbits"] == 4:
            ivfpq = faiss.IndexIVFPQFastScan(quantizer, shape["opq_dim"], shape["nlist"],
                                             shape["m"], 4)
        else:
            ivfpq = faiss.IndexIVFPQ(quantizer, shape["opq_dim"], shape["nlist"], shape["m"],
                                     shape["nbits"])
        ivfpq.cp.seed = SEED
        ivfpq.pq.cp.seed = SEED
        index = faiss.IndexPreTransform(rotation, ivfpq)
        index.train(sample)
        for path in paths[1:]:
            path.unlink(missing_ok=True)
        path_ids = paths[2].with_name(paths[2].name + ".ids.npy")
        path_ids.unlink(missing_ok=True)
        logger.info("compressed index %s: trained %s on %d vectors", model, shape, len(sample))
        return cls(model, dim, paths, index, shape, catalog_id)

    # ------------------------------------------------------------------ open / save
    @classmethod
    def open(cls, catalog: Catalog, model: str) -> CompressedIndex | None:
        """The compressed index of ``model`` beside ``catalog``, in line with the catalog.

        Loads the saved one when its sidecar names this catalog and model; otherwise trains a
        new one on a seeded sample of the catalog's descriptors (up to :data:`TRAIN_MAX`) and
        adds them all.

        Returns:
            The index, or None when the catalog holds no vectors of that model.

        Raises:
            CompressedIndexError: faiss missing, or too few vectors to train on.
        """
        count, _ = catalog.embedding_stats(model)
        if count == 0:
            return None
        paths = compressed_paths(catalog.path, model)
        dim = catalog.embedding_dim(model)
        index = None
        try:
            meta = json.loads(paths[1].read_text())
            if (meta.get("format") == _FORMAT and meta.get("model") == model
                    and meta.get("catalog_id") == catalog.catalog_id and meta.get("dim") == dim):
                loaded = _faiss().read_index(str(paths[0]))
                index = cls(model, dim, paths, loaded, meta["shape"], catalog.catalog_id)
                index.set_live(np.load(paths[1].with_suffix(".live.npy")))
        except (OSError, ValueError, KeyError, RuntimeError, CompressedIndexError) as exc:
            logger.info("compressed index for %s not loaded (%s); rebuilding", model, exc)
            index = None
        if index is None:
            ids = catalog.embedding_ids(model)  # sorted int64, no per-row objects
            if len(ids) > TRAIN_MAX:
                rng = np.random.default_rng(SEED)
                ids = np.sort(rng.choice(ids, TRAIN_MAX, replace=False))
            _, _, sample = catalog.embeddings(model, ids=ids.tolist())
            index = cls.create(model, sample, paths, count=count,
                               catalog_id=catalog.catalog_id)
        index.sync(catalog)
        return index

    def save(self) -> None:
        """Write the faiss index, the live labels, the store's label map and the sidecar. The
        files are a cache of the catalog: a failed write removes the sidecar (the next open
        rebuilds) and is logged, never raised."""
        faiss = _faiss()
        try:
            with self._lock:
                faiss.write_index(self._index, str(self.paths[0]))
                np.save(self.paths[1].with_suffix(".live.npy"), self.live_ids())
                self.store.save()
            self.paths[1].write_text(json.dumps({
                "format": _FORMAT, "kind": self.kind, "model": self.model,
                "catalog_id": self.catalog_id, "dim": self.dim, "count": len(self),
                "shape": self.shape, "memory_bytes": self.memory_bytes,
            }))
        except (OSError, RuntimeError) as exc:
            logger.warning("the compressed %s index could not be saved (%s); it is rebuilt "
                           "from the catalog on next use", self.model, exc)
            self.paths[1].unlink(missing_ok=True)

    # ------------------------------------------------------------------ updates
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add (or replace) ``(N, D)`` float32 L2-normalised vectors under ``(N,)`` labels.

        Raises:
            CompressedIndexError: The dimension is not ``D``.
        """
        vectors = np.ascontiguousarray(vectors, np.float32)
        ids = np.asarray(ids, np.int64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise CompressedIndexError(
                f"vector dimension {vectors.shape[1:]} != index dimension {self.dim}")
        with self._lock:
            again = ids[self._is_live(ids)]
            if len(again):
                self._index.remove_ids(again)
            self._index.add_with_ids(vectors, ids)
            self.store.append(ids, vectors)
            self._mark(ids, True)

    # ------------------------------------------------------------------ queries

    @property
    def memory_bytes(self) -> int:
        """RAM the index holds: PQ codes and ids of every vector, the coarse centroids and
        their graph, the OPQ matrix (the float16 store is on disk)."""
        n = self._ivf.ntotal
        d = self.shape["opq_dim"]
        coarse = self.shape["nlist"] * d * 4 * (2 if self.shape.get("coarse") == "hnsw" else 1)
        return int(n * (self.shape["code_bytes"] + 8) + coarse + self.dim * d * 4)

    def set_nprobe(self, nprobe: int) -> None:
        """Coarse cells searched per query (more: better recall, slower)."""
        self._ivf.nprobe = max(1, min(nprobe, self.shape["nlist"]))

    def knn(self, vectors: np.ndarray, k: int, catalog: Catalog | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar vectors of each query: the first ``max(k, rerank)`` candidates
        of the compressed search, re-scored with their float16 descriptors.

        Args:
            vectors: ``(M, D)`` float32 L2-normalised queries.
            k: Neighbours wanted; clamped to the number of live vectors.
            catalog: Unused (the store holds the full descriptors); accepted so callers treat
                both index kinds alike.

        Returns:
            ``(labels (M, k') int64, cosine similarities (M, k') float32)``, best first, by
            the exact cosine of the float16 descriptors. Fewer than k' candidates found (a
            tiny ``nprobe``) are padded with label -1 at similarity -1.

        Raises:
            CompressedIndexError: The queries are not ``(M, D)``.
        """
        queries = np.ascontiguousarray(vectors, np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise CompressedIndexError(
                f"query dimension {queries.shape[1:]} != index dimension {self.dim}")
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        fetch = min(max(k, self.rerank), len(self))
        with self._lock:
            _, labels = self._index.search(queries, fetch)
        labels = labels.astype(np.int64)
        full, known = self.store.vectors(labels)
        full = full.reshape(len(queries), fetch, self.dim)
        sims = np.einsum("mfd,md->mf", full, queries)
        sims[~known.reshape(labels.shape) | (labels < 0)] = -1.0
        best = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        out_labels = np.take_along_axis(labels, best, axis=1)
        out_sims = np.take_along_axis(sims, best, axis=1).astype(np.float32)
        out_labels[out_sims <= -1.0] = -1
        return out_labels, out_sims
