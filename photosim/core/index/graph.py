"""The k-nearest-neighbour graph of each vector index, built by the scan, read by grouping.

Grouping needs the neighbours of every content. Querying the indexes for all of them at
grouping time costs minutes at 100k photos (8 hash queries per content, one orientation
each), and it would be paid again after every threshold change. Instead the scan's index
stage queries the index once for each *new* vector and stores the neighbours in the catalog
(table ``knn_graph``, schema 4); grouping reads the stored rows and applies its thresholds to
them. The graph is extended as photos are added, so its cost belongs to the scan.

A row holds, for one vector (label = ``embeddings.id``), its neighbours with their
similarity, best first, down to a storage floor (:data:`HASH_FLOOR_SUM`, :data:`MIN_COSINE`):
a grouping asking for looser thresholds, or more neighbours than :data:`GRAPH_K`, queries the
index itself (:func:`covers`). Edges are read in both directions, so a photo added after
another still links to it through its own row. Rows of deleted vectors are pruned with the
vectors; labels of deleted vectors are skipped when read.

- Hash rows (:data:`~photosim.core.index.vectors.HASH_MODEL`) come from querying the hash index with
  all 8 orientations of the content (the union of their k + 1 neighbours, best similarity
  per neighbour), so a rotated or mirrored copy is a neighbour of the upright one.
- Descriptor rows come from the descriptor index, re-scored with the full descriptors when the
  index is PCA-reduced (see :meth:`photosim.core.index.vectors.VectorIndex.knn`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

import numpy as np

from photosim.core.catalog import Catalog
from photosim.core.index.vectors import HASH_BITS, HASH_MODEL, VectorIndex, hash_vectors

logger = logging.getLogger(__name__)

GRAPH_K = 16  # neighbours per query (the default Settings.knn)
HASH_FLOOR_SUM = 48  # hash rows keep neighbours within this pHash + dHash distance (bits)
MIN_COSINE = 0.5  # descriptor rows keep neighbours at or above this cosine
_CHUNK = 2048  # vectors queried per round


def hash_floor(hash_sum: int) -> float:
    """Hash-vector similarity of a total pHash + dHash distance of ``hash_sum`` bits.

    Half a bit of slack: hash vectors are stored as float16, so an inner product at exactly
    the threshold can round just below it.
    """
    return 1.0 - 2.0 * (hash_sum + 0.5) / HASH_BITS


def storage_floor(model: str) -> float:
    """The smallest similarity the graph stores for ``model``."""
    return hash_floor(HASH_FLOOR_SUM) if model == HASH_MODEL else MIN_COSINE


def covers(model: str, k: int, min_similarity: float) -> bool:
    """True when the stored graph holds every neighbour a query of ``k`` neighbours down to
    ``min_similarity`` would return."""
    return k <= GRAPH_K and min_similarity >= storage_floor(model) - 1e-9


def orientation_codes(catalog: Catalog, hashes: Iterable[str]) -> dict[str, np.ndarray]:
    """``content hash -> (V, 2) int64`` pHash/dHash of each orientation, upright first."""
    wanted = list(hashes)
    codes: dict[str, np.ndarray] = {}
    for start in range(0, len(wanted), 900):  # SQLite's variable limit
        chunk = wanted[start : start + 900]
        marks = ",".join("?" * len(chunk))
        for h, phash, dhash, variants in catalog.db.execute(
            f"SELECT content_hash, phash, dhash, variants FROM photos "
            f"WHERE status='ok' AND content_hash IN ({marks}) GROUP BY content_hash",
            chunk,
        ):
            upright = np.array([[phash or 0, dhash or 0]], dtype=np.int64)
            extra = np.frombuffer(variants, np.int64).reshape(-1, 2) if variants else None
            codes[h] = upright if extra is None else np.concatenate([upright, extra])
    return codes


def _query_rows(
    index: VectorIndex,
    queries: np.ndarray,
    owners: np.ndarray,
    labels: list[int],
    k: int,
    floor: float,
    catalog: Catalog,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Neighbour rows of ``labels`` from ``queries`` (row i belongs to ``labels[owners[i]]``)."""
    found, sims = index.knn(queries, k + 1, catalog=catalog)
    rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for slot, label in enumerate(labels):
        mine = owners == slot
        nbr, sim = found[mine].reshape(-1), sims[mine].reshape(-1)
        keep = (nbr != label) & (nbr >= 0) & (sim >= floor)
        nbr, sim = nbr[keep], sim[keep]
        if len(nbr):
            # Best similarity per neighbour (a neighbour may answer several orientations).
            order = np.lexsort((-sim, nbr))
            nbr, sim = nbr[order], sim[order]
            first = np.ones(len(nbr), bool)
            first[1:] = nbr[1:] != nbr[:-1]
            nbr, sim = nbr[first], sim[first]
            best = np.argsort(-sim, kind="stable")
            nbr, sim = nbr[best], sim[best]
        rows[label] = (nbr.astype(np.int64), sim.astype(np.float32))
    return rows


def stored_rows(catalog: Catalog, model: str) -> tuple[int, int]:
    """``(rows, largest label)`` of the graph of ``model`` (``(0, 0)`` when it has none)."""
    count, top = catalog.db.execute(
        "SELECT count(*), coalesce(max(id), 0) FROM knn_graph WHERE model=?", [model]
    ).fetchone()
    return int(count), int(top)


def extend_graph(
    catalog: Catalog, model: str, index: VectorIndex | None = None
) -> Iterator[tuple[int, int]]:
    """Add the graph rows of every vector of ``model`` that has none, a chunk at a time.

    A generator so that the scan can report progress and stop between chunks (each chunk is
    committed; rows still missing are added by the next scan or grouping).

    Args:
        catalog: Open catalog.
        model: Model id (a descriptor model or :data:`~photosim.core.index.vectors.HASH_MODEL`).
        index: The model's open index (opened, and synced, when None).

    Yields:
        ``(rows added so far, rows to add)`` after each committed chunk.
    """
    if stored_rows(catalog, model) == catalog.embedding_stats(model):
        return  # a row for every vector (rows of deleted vectors leave with them)
    missing = [
        int(r[0])
        for r in catalog.db.execute(
            "SELECT id FROM embeddings WHERE model=? AND id NOT IN "
            "(SELECT id FROM knn_graph WHERE model=?) ORDER BY id",
            [model, model],
        )
    ]
    if not missing:
        return
    index = index or VectorIndex.open(catalog, model)
    if index is None:
        return
    started = time.perf_counter()
    floor = storage_floor(model)
    for start in range(0, len(missing), _CHUNK):
        ids, hashes, vectors = catalog.embeddings(model, ids=missing[start : start + _CHUNK])
        labels = [int(i) for i in ids.tolist()]
        if model == HASH_MODEL:
            codes = orientation_codes(catalog, hashes)
            per = [codes.get(h, np.zeros((0, 2), np.int64)) for h in hashes]
            owners = np.repeat(np.arange(len(labels)), [len(c) for c in per])
            stacked = np.concatenate(per) if per else np.zeros((0, 2), np.int64)
            queries = hash_vectors(stacked[:, 0], stacked[:, 1])
            # A content without stored codes (should not happen) still queries its vector.
            lacking = [slot for slot, c in enumerate(per) if not len(c)]
            if lacking:
                queries = np.concatenate([queries, vectors[lacking]])
                owners = np.concatenate([owners, np.array(lacking, dtype=owners.dtype)])
        else:
            queries, owners = vectors, np.arange(len(labels))
        rows = _query_rows(index, queries, owners, labels, GRAPH_K, floor, catalog)
        with catalog.transaction():
            catalog.db.conn.executemany(
                "INSERT OR REPLACE INTO knn_graph(model, id, labels, sims) VALUES (?, ?, ?, ?)",
                [(model, label, nbr.tobytes(), sim.astype(np.float32).tobytes())
                 for label, (nbr, sim) in rows.items()],
            )
        done = min(start + _CHUNK, len(missing))
        logger.debug("knn graph %s: %d of %d rows", model, done, len(missing))
        yield done, len(missing)
    logger.info(
        "knn graph %s: +%d rows in %.2f s", model, len(missing), time.perf_counter() - started
    )


def update_graph(catalog: Catalog, model: str, index: VectorIndex | None = None) -> int:
    """Add every missing graph row of ``model`` (see :func:`extend_graph`).

    Returns:
        Number of rows added.
    """
    added = 0
    for done, _ in extend_graph(catalog, model, index):
        added = done
    return added


def read_edges(
    catalog: Catalog, model: str, min_similarity: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stored edge of ``model`` at or above ``min_similarity``, as label arrays.

    Returns:
        ``(a, b, similarity)``: ``(E,)`` int64, int64, float32; one entry per row and
        neighbour (an edge stored from both ends appears twice). Labels of deleted vectors
        may appear: callers map labels through the live ``embeddings`` ids.
    """
    rows = catalog.db.execute(
        "SELECT id, labels, sims FROM knn_graph WHERE model=?", [model]
    ).fetchall()
    if not rows:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    # One buffer per column, not one array per row: 100k rows read in tens of milliseconds.
    targets = np.frombuffer(b"".join(r[1] for r in rows), np.int64)
    sims = np.frombuffer(b"".join(r[2] for r in rows), np.float32)
    lengths = np.fromiter((len(r[2]) // 4 for r in rows), np.int64, count=len(rows))
    sources = np.repeat(np.fromiter((r[0] for r in rows), np.int64, count=len(rows)), lengths)
    keep = sims >= np.float32(min_similarity)
    return sources[keep], targets[keep], sims[keep]
