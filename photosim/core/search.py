"""Find similar: rank the library against a query image.

The query is a path. If the catalog knows its content (same content hash, wherever the file
lives) its stored descriptor is used; otherwise the file is decoded and embedded on the fly, so
any image works, in the library or not. Ranking is by cosine similarity of CNN descriptors
through the vector index. Without descriptors, photos are ranked by perceptual-hash similarity
(``1 - hamming / 128`` over pHash and dHash), and the result says so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from photosim.core.catalog import Catalog, Photo
from photosim.core.dedup.keeper import rank
from photosim.core.index.vectors import HASH_BITS, HASH_MODEL, VectorIndex, hash_vector
from photosim.core.scan.hashing import file_content_hash
from photosim.core.scan.imageio import DecodeError, decode_file
from photosim.core.types import DecodeRequest, Embedder, Error

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
        hits: Results, most similar first.
        notes: Plain-language remarks.
    """

    query: str
    in_catalog: bool
    mode: str
    model: str | None
    hits: list[Hit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _query_vector(
    catalog: Catalog,
    path: str,
    content_hash: str | None,
    model: str,
    embedder: Embedder | None,
) -> np.ndarray:
    """The query's vector for ``model``: stored if known, else computed from the file."""
    if content_hash is not None:
        stored = catalog.embedding(content_hash, model)
        if stored is not None:
            return stored
    try:
        size = embedder.input_size if (embedder is not None and model != HASH_MODEL) else 0
        image = decode_file(DecodeRequest(path, model_size=size, thumb_size=64))
    except DecodeError as exc:
        raise SearchError(f"cannot read the query image {path}: {exc}") from exc
    if model == HASH_MODEL:
        return hash_vector(image.phash, image.dhash)
    if embedder is None or embedder.model_id != model:
        raise SearchError(
            f"no {model} descriptor is stored for {path} and no such model is loaded"
        )
    assert image.model_input is not None
    return embedder.embed([image.model_input])[0]


def find_similar(
    catalog: Catalog,
    path: str | os.PathLike[str],
    k: int = 20,
    embedder: Embedder | None = None,
    model: str | None = None,
    min_similarity: float | None = None,
) -> SearchResult:
    """Rank the catalog's photos by similarity to an image file.

    Args:
        catalog: Open catalog.
        path: Query image; in the catalog or anywhere else.
        k: Number of photos to return (copies of one content count separately).
        embedder: Describes a query whose content is not in the catalog; may be None when the
            query is known or in hash mode.
        model: Descriptor model id; None uses the model of the last scan.
        min_similarity: Drop hits below this similarity.

    Returns:
        Ranked hits. The query file itself is never among them; its copies are.

    Raises:
        SearchError: The query cannot be read, or the library is empty.
    """
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
    vector = _query_vector(catalog, query, known_hash, model, embedder)

    label_hash = {label: h for h, label in catalog.embedding_ids_by_hash(model).items()}
    hits: list[Hit] = []
    fetch = min(len(index), k + 1)
    while True:
        labels, sims = index.knn(vector[None, :].astype(np.float32), fetch, catalog=catalog)
        hits = []
        for label, sim in zip(labels[0].tolist(), sims[0].tolist()):
            if min_similarity is not None and sim < min_similarity:
                break
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
        query, in_catalog, mode, None if mode == "hashes" else model, hits[:k], notes
    )
