"""Find similar: rank the library against a query image.

The query is a path. If the catalog knows its content (same content hash, wherever the file
lives) its stored descriptor is used; otherwise the file is decoded and embedded on the fly, so
any image works, in the library or not. Ranking is by cosine similarity of CNN descriptors
through the vector index, optionally re-ranked by alpha-query expansion or by diffusion on the
library's k-nearest-neighbour graph (:mod:`photosim.core.index.rerank`). Without descriptors,
photos are ranked by perceptual-hash similarity (``1 - hamming / 128`` over pHash and dHash),
and the result says so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from photosim.core.catalog import Catalog, IdHashes, Photo
from photosim.core.dedup.keeper import rank
from photosim.core.index import graph
from photosim.core.index import learned as _learned
from photosim.core.index import rerank as _rerank
from photosim.core.index.vectors import HASH_BITS, HASH_MODEL, VectorIndex, hash_vector
from photosim.core.scan.hashing import file_content_hash
from photosim.core.scan.imageio import DecodeError, decode_file
from photosim.core.tags import TAGS_PER_PHOTO, Tag, photo_tags, vocabulary
from photosim.core.types import DecodeRequest, Embedder, Error, TaggingEmbedder

logger = logging.getLogger(__name__)


class SearchError(Error):
    """The query cannot be answered (unreadable query, empty library)."""


@dataclass
class Hit:
    """One ranked result.

    Attributes:
        photo: The catalog row.
        similarity: Cosine similarity in [-1, 1] (descriptors) or hash similarity in [0, 1].
    """

    photo: Photo
    similarity: float


@dataclass
class SearchResult:
    """The answer to one query.

    Attributes:
        query: The query path as given.
        in_catalog: True when the query's content is in the catalog.
        mode: ``"descriptors"`` or ``"hashes"``.
        model: Descriptor model id, or None in hash mode.
        hits: Results, most similar first (after re-ranking: in its order, each still with
            its cosine similarity to the query).
        notes: Plain-language remarks.
        rerank: The re-ranking applied: ``"none"``, ``"qe"`` or ``"diffusion"``.
        query_tags: The query's tags (:mod:`photosim.core.tags`): stored ones for a photo of
            the library, computed with its descriptor for another image when the embedder
            has a classifier head; empty otherwise.
    """

    query: str
    in_catalog: bool
    mode: str
    model: str | None
    hits: list[Hit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rerank: str = "none"
    query_tags: list[Tag] = field(default_factory=list)


# Diffusion graphs by (catalog file, model, stored graph rows, largest label): built once per
# library state (a second at 100k photos), reused by every query until the library changes.
_DIFFUSIONS: dict[tuple[str, str, int, int], _rerank.Diffusion | None] = {}


# Codes of a learned projection by (catalog file, model, descriptors, largest id, trained at).
_CODES: dict[tuple[str, str, int, int, float], dict[str, np.ndarray]] = {}
LEARNED_CANDIDATES = 1000  # plain results a learned projection re-scores


def codes_for(
    catalog: Catalog, model: str, projection: _learned.Projection
) -> dict[str, np.ndarray]:
    """The library's codes of a learned projection (:func:`photosim.core.index.learned.
    library_codes`), cached until the descriptors or the projection change."""
    stored = catalog.projection(model)
    key = (str(catalog.path), model, *catalog.embedding_stats(model)[:2],
           stored[2] if stored else 0.0)
    if key not in _CODES:
        for old in [k for k in _CODES if k[:2] == key[:2]]:
            del _CODES[old]
        _CODES[key] = _learned.library_codes(catalog, model, projection)
    return _CODES[key]


def diffusion_for(catalog: Catalog, model: str) -> _rerank.Diffusion | None:
    """The :class:`~photosim.core.index.rerank.Diffusion` of a catalog's stored graph, cached
    until the graph changes (None when the library has no edge)."""
    graph.update_graph(catalog, model)
    key = (str(catalog.path), model, *graph.stored_rows(catalog, model))
    if key not in _DIFFUSIONS:
        for old in [k for k in _DIFFUSIONS if k[:2] == key[:2]]:
            del _DIFFUSIONS[old]
        _DIFFUSIONS[key] = _rerank.Diffusion.from_catalog(catalog, model)
    return _DIFFUSIONS[key]


def _query_vector(
    catalog: Catalog,
    path: str,
    content_hash: str | None,
    model: str,
    embedder: Embedder | None,
) -> tuple[np.ndarray, list[Tag]]:
    """The query's vector for ``model`` and its tags: stored if known, else computed from the
    file (tags only when ``embedder`` has a classifier head)."""
    tags = photo_tags(catalog, content_hash) if content_hash is not None else []
    if content_hash is not None:
        stored = catalog.embedding(content_hash, model)
        if stored is not None:
            return stored, tags
    try:
        size = embedder.input_size if (embedder is not None and model != HASH_MODEL) else 0
        image = decode_file(DecodeRequest(path, model_size=size, thumb_size=64))
    except DecodeError as exc:
        raise SearchError(f"cannot read the query image {path}: {exc}") from exc
    if model == HASH_MODEL:
        return hash_vector(image.phash, image.dhash), tags
    if embedder is None or embedder.model_id != model:
        raise SearchError(
            f"no {model} descriptor is stored for {path} and no such model is loaded"
        )
    assert image.model_input is not None
    if isinstance(embedder, TaggingEmbedder) and embedder.tag_model and not tags:
        vectors, labels, probabilities = embedder.embed_and_tag([image.model_input], TAGS_PER_PHOTO)
        pairs = zip(labels[0].tolist(), probabilities[0].tolist())
        return vectors[0], vocabulary().tags(pairs)
    return embedder.embed([image.model_input])[0], tags


def find_similar(
    catalog: Catalog,
    path: str | os.PathLike[str],
    k: int = 20,
    embedder: Embedder | None = None,
    model: str | None = None,
    min_similarity: float | None = None,
    rerank: str = "none",
) -> SearchResult:
    """Rank the catalog's photos by similarity to an image file.

    Args:
        catalog: Open catalog.
        path: Query image; in the catalog or anywhere else.
        k: Number of photos to return (copies of one content count separately).
        embedder: Describes a query whose content is not in the catalog; may be None when the
            query is known or in hash mode.
        model: Descriptor model id; None uses the model of the last scan.
        min_similarity: Drop hits below this similarity (cosine to the query).
        rerank: ``"none"``; ``"qe"``: alpha-query expansion with the first results
            (Radenović et al. 2018); ``"diffusion"``: diffusion on the stored kNN graph over
            the first :data:`~photosim.core.index.rerank.DIFFUSION_TRUNCATE` results (Iscen et
            al. 2017). Ignored, with a note, in hash mode.

    Returns:
        Ranked hits. The query file itself is never among them; its copies are.

    Raises:
        SearchError: The query cannot be read, or the library is empty.
        ValueError: Unknown ``rerank``.
    """
    if rerank not in _rerank.RERANKS:
        raise ValueError(f"unknown re-ranking {rerank!r}: one of {', '.join(_rerank.RERANKS)}")
    query = os.path.abspath(os.fspath(path))
    try:
        content_hash = file_content_hash(query)[0]
    except OSError as exc:
        raise SearchError(f"cannot read the query image {query}: {exc.strerror or exc}") from exc
    in_catalog = bool(catalog.photos_by_hash(content_hash))
    known_hash = content_hash if in_catalog else None

    model = model or catalog.get_meta("model")
    notes: list[str] = []
    has_stored = bool(model) and catalog.has_embedding(content_hash, model)  # type: ignore[arg-type]
    if model and catalog.embedding_stats(model)[0] > 0 and (
        has_stored or (embedder is not None and embedder.model_id == model)
    ):
        mode = "descriptors"
    else:
        if model and not has_stored:
            notes.append(
                "no descriptor is stored for the query and no model is loaded to compute one: "
                "ranked by perceptual hashes (provide model weights for descriptor search)"
            )
        elif not model or catalog.embedding_stats(model)[0] == 0:
            notes.append("no CNN descriptors in this catalog: ranked by perceptual hashes")
        mode, model = "hashes", HASH_MODEL
    index = VectorIndex.open(catalog, model)
    if index is None or len(index) == 0:
        raise SearchError("the catalog holds no photos yet: run `photosim scan FOLDER` first")
    vector, query_tags = _query_vector(catalog, query, known_hash, model, embedder)
    if rerank != "none" and mode == "hashes":
        notes.append("re-ranking needs CNN descriptors: ranked by perceptual hashes only")
        rerank = "none"

    label_hash = IdHashes(catalog)  # the results' hashes only, read when needed
    hits: list[Hit] = []
    fetch = min(len(index), k + 1)
    if rerank == "diffusion":
        fetch = min(len(index), max(fetch, _rerank.DIFFUSION_TRUNCATE))
    projection = _learned.load(catalog, model) if mode == "descriptors" else None
    if projection is not None:
        report = projection.report
        notes.append(
            f"similarity learned from your {report.get('verdicts', 0)} verdicts "
            "(`photosim learn --reset` forgets it)"
        )
    ranking = _Ranking(catalog, index, model, vector, rerank, known_hash, projection, label_hash)
    while True:
        labels, sims = ranking.first(fetch)
        label_hash.fetch(labels.tolist())
        hits = []
        for label, sim in zip(labels.tolist(), sims.tolist()):
            if min_similarity is not None and sim < min_similarity:
                continue  # (a re-ranked list is not in cosine order)
            for photo in rank(catalog.photos_by_hash(label_hash[label])):
                if photo.path != query:
                    hits.append(Hit(photo, float(sim)))
        if len(hits) >= k or fetch >= len(index):
            break
        fetch = min(len(index), fetch * 2)
    if mode == "hashes":
        # Inner product of hash vectors is 1 - 2H/128 (float16-rounded): recover the integer
        # Hamming distance H and report 1 - H/128, in [0, 1].
        for hit in hits:
            distance = round((1.0 - hit.similarity) * HASH_BITS / 2.0)
            hit.similarity = 1.0 - distance / HASH_BITS
    return SearchResult(
        query, in_catalog, mode, None if mode == "hashes" else model, hits[:k], notes, rerank,
        query_tags,
    )


class _Ranking:
    """The first results of one query, re-ranked: ``first(n) -> (labels (n',), similarities
    (n',))`` in the final order, similarities to the original query (the learned ones when
    the library has a learned projection, else plain cosines)."""

    def __init__(
        self, catalog: Catalog, index: VectorIndex, model: str, vector: np.ndarray,
        rerank: str, own_hash: str | None, projection: _learned.Projection | None,
        label_hash: IdHashes,
    ) -> None:
        self.catalog, self.index, self.model, self.rerank = catalog, index, model, rerank
        self.query = np.asarray(vector, np.float32)
        self.own_label = catalog.embedding_id(model, own_hash) if own_hash is not None else None
        self.projection = projection
        self.codes = codes_for(catalog, model, projection) if projection is not None else None
        self.label_hash = label_hash
        self.expanded: np.ndarray | None = None

    def _knn(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        labels, sims = self.index.knn(vector[None, :], n, catalog=self.catalog)
        return labels[0], sims[0]

    def _scored(self, vector: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` results of ``vector``, by the learned similarity when there is a
        projection (it re-scores the first :data:`LEARNED_CANDIDATES` plain results)."""
        if self.projection is None or self.codes is None:
            return self._knn(vector, n)
        labels, raw = self._knn(vector, max(n, LEARNED_CANDIDATES))
        zero = np.zeros(self.projection.u.shape[1] * 2 + 1, np.float32)
        self.label_hash.fetch(labels.tolist())
        codes = np.stack([self.codes.get(self.label_hash.get(int(label), ""), zero)
                          for label in labels.tolist()]) if len(labels) else zero[None, :0]
        query = np.repeat(self.projection.codes(vector[None, :]), len(labels), axis=0)
        sims = self.projection.cosines(raw, query, codes) if len(labels) else raw
        order = np.argsort(-sims, kind="stable")[:n]
        return labels[order], sims[order]

    def first(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.rerank == "qe":
            if self.expanded is None:
                labels, sims = self._scored(self.query, _rerank.QE_N + 1)
                keep = labels != (self.own_label if self.own_label is not None else -1)
                vectors = self._vectors(labels[keep])
                self.expanded = _rerank.expand_query(self.query, vectors, sims[keep])
            labels, _ = self._scored(self.expanded, n)
            if self.projection is not None:
                projected = self.projection.apply(self._vectors(labels))
                return labels, projected @ self.projection.apply(self.query)
            return labels, self._vectors(labels) @ self.query
        labels, sims = self._scored(self.query, n)
        if self.rerank == "diffusion":
            diffusion = diffusion_for(self.catalog, self.model)
            if diffusion is not None:
                order = diffusion.order(labels, sims)
                labels, sims = labels[order], sims[order]
        return labels, sims

    def _vectors(self, labels: np.ndarray) -> np.ndarray:
        """``(n, D)`` float32 stored descriptors of these labels, in their order."""
        ids, _, vectors = self.catalog.embeddings(self.model, ids=labels.tolist())
        where = {int(i): row for row, i in enumerate(ids.tolist())}
        out = np.zeros((len(labels), self.query.shape[0]), np.float32)
        for slot, label in enumerate(labels.tolist()):
            if label in where:
                out[slot] = vectors[where[label]]
        return out
