"""Text search with CLIP (optional): image embeddings of the library, ranked by a text's.

CLIP (Radford et al., Learning Transferable Visual Models From Natural Language Supervision,
ICML 2021) embeds images and texts in one space, so "a dog on a beach" ranks photos by the
cosine similarity of their image embedding to the text's, for any words, beyond the 1,000
ImageNet classes of the tags (:mod:`photosim.core.tags`).

The library's CLIP embeddings are computed from the stored thumbnails (longest side 256 px,
more than CLIP's 224 px input), so adding CLIP to a library decodes no photo again; they are
stored like descriptors (``embeddings``, keyed by content and the CLIP model id) and searched
through the same vector index. The catalog's ``meta`` remembers the CLIP model
(:data:`CLIP_META`), and later scans embed the new photos too.

Core never loads CLIP: the caller injects a :class:`~photosim.core.types.TextImageEmbedder`
(:func:`photosim.embed.clip.load_clip`).
"""

from __future__ import annotations

import io
from collections.abc import Generator

import numpy as np
from PIL import Image

from photosim.core.cancel import CancelToken
from photosim.core.catalog import Catalog, IdHashes
from photosim.core.dedup.keeper import rank
from photosim.core.index.vectors import VectorIndex
from photosim.core.tags import (
    TagHit,
    TagQuery,
    TagSearchError,
    TagSearchResult,
    check_words,
    photo_tags,
    search_tags,
)
from photosim.core.types import Progress, ScanStage, TextImageEmbedder

CLIP_META = "clip"
PROMPT = "a photo of {}."  # the CLIP paper's prompt for photos (its section 3.1.4)
BATCH = 64
MODES = ("auto", "tags", "clip")


def clip_model(catalog: Catalog) -> str | None:
    """The CLIP model id the library keeps embeddings of, or None."""
    return catalog.get_meta(CLIP_META) or None


def missing_clip(catalog: Catalog, model: str) -> int:
    """Contents with a thumbnail and no CLIP embedding of ``model``."""
    row = catalog.db.execute(
        "SELECT count(*) FROM thumbnails WHERE content_hash IN "
        "(SELECT content_hash FROM photos WHERE status='ok') AND content_hash NOT IN "
        "(SELECT content_hash FROM embeddings WHERE model=?)",
        [model],
    ).fetchone()
    return int(row[0])


def clip_index(
    catalog: Catalog, embedder: TextImageEmbedder, cancel: CancelToken | None = None
) -> Generator[Progress, None, int]:
    """Embed every content of the library that lacks a CLIP embedding, from its thumbnail.

    One transaction per batch of :data:`BATCH`: a cancelled run keeps what it finished.
    Remembers ``embedder.model_id`` as the library's CLIP model.

    Yields:
        :class:`Progress` (stage ``INDEXING``) after each batch.

    Returns:
        The number of contents embedded.

    Raises:
        photosim.core.types.Error: From the embedder.
    """
    cancel = cancel or CancelToken()
    model = embedder.model_id
    catalog.set_meta(CLIP_META, model)
    total = missing_clip(catalog, model)
    done = 0
    yield Progress(ScanStage.INDEXING, 0, total, "CLIP embeddings")
    while done < total and not cancel.cancelled():
        rows = catalog.db.execute(
            "SELECT content_hash, jpeg FROM thumbnails WHERE content_hash IN "
            "(SELECT content_hash FROM photos WHERE status='ok') AND content_hash NOT IN "
            "(SELECT content_hash FROM embeddings WHERE model=?) ORDER BY content_hash LIMIT ?",
            [model, BATCH],
        ).fetchall()
        if not rows:
            break
        hashes, images = [], []
        for content_hash, jpeg in rows:
            with Image.open(io.BytesIO(jpeg)) as thumb:
                images.append(np.asarray(thumb.convert("RGB")))
            hashes.append(content_hash)
        vectors = embedder.embed(images)
        with catalog.transaction():
            catalog.put_embeddings(model, hashes, vectors)
        done += len(rows)
        yield Progress(ScanStage.INDEXING, done, total, "CLIP embeddings")
    return done


def search_clip(
    catalog: Catalog, text: str, embedder: TextImageEmbedder, k: int = 20
) -> TagSearchResult:
    """Photos ranked by the cosine similarity of their CLIP embedding to ``text``'s.

    The text is put in the prompt :data:`PROMPT` ("a photo of a dog on a beach.").

    Args:
        catalog: Open catalog with CLIP embeddings of ``embedder.model_id``.
        text: Any words (not only names of tags).
        embedder: The CLIP model the library's embeddings were made with.
        k: Photos to return (copies count separately), >= 1.

    Returns:
        Hits (``score``: cosine similarity in [-1, 1]) with their stored tags.

    Raises:
        TagQueryError: Empty query, or only common words.
        TagSearchError: The library has no CLIP embeddings of this model.
        ValueError: ``k`` < 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    words, ignored = check_words(text)
    model = embedder.model_id
    index = VectorIndex.open(catalog, model)
    if index is None or len(index) == 0:
        raise TagSearchError(
            f"the library has no CLIP embeddings of {model}: run photosim scan --clip FOLDER"
        )
    vector = embedder.embed_text([PROMPT.format(text.strip())])[0]
    label_hash = IdHashes(catalog)  # the results' hashes only, read when needed
    notes = []
    missing = missing_clip(catalog, model)
    if missing:
        notes.append(f"{missing} photos have no CLIP embedding yet (photosim scan --clip)")
    hits: list[TagHit] = []
    fetch = min(len(index), k)
    while True:
        labels, sims = index.knn(vector[None, :].astype(np.float32), fetch, catalog=catalog)
        label_hash.fetch(labels[0].tolist())
        hits = []
        for label, sim in zip(labels[0].tolist(), sims[0].tolist()):
            content_hash = label_hash[label]
            tags = photo_tags(catalog, content_hash)
            hits += [TagHit(photo, float(sim), tags)
                     for photo in rank(catalog.photos_by_hash(content_hash))]
        if len(hits) >= k or fetch >= len(index):
            break
        fetch = min(len(index), fetch * 2)
    query = TagQuery(text, (), (), tuple(ignored))
    return TagSearchResult(query, "clip", model, hits[:k], notes)


def search_text(
    catalog: Catalog,
    text: str,
    k: int = 20,
    mode: str = "auto",
    clip: TextImageEmbedder | None = None,
    clip_note: str | None = None,
) -> TagSearchResult:
    """A text search: with CLIP when the library has CLIP embeddings and ``clip`` is their
    model (``mode`` ``"auto"`` or ``"clip"``), else through the tags.

    Args:
        catalog: Open catalog.
        text: The query.
        k: Photos to return, >= 1.
        mode: ``"auto"``, ``"tags"`` or ``"clip"``.
        clip: The library's CLIP model, loaded by the caller; None when it could not be.
        clip_note: Why ``clip`` is None (shown as a note when ``"auto"`` falls back to tags).

    Raises:
        TagQueryError: Nothing searchable in ``text``.
        TagSearchError: ``"clip"`` without CLIP embeddings or model; no tags for ``"tags"``.
        ValueError: Unknown ``mode``, or ``k`` < 1.
    """
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}: one of {', '.join(MODES)}")
    check_words(text)
    stored = clip_model(catalog)
    if mode == "clip" and stored is None:
        raise TagSearchError("the library has no CLIP embeddings: run photosim scan --clip FOLDER")
    if mode != "tags" and stored is not None:
        if clip is not None and clip.model_id == stored:
            return search_clip(catalog, text, clip, k)
        why = clip_note or (
            f"the library's CLIP model {stored} is not loaded"
            if clip is None else f"{clip.model_id} is not the library's CLIP model {stored}"
        )
        if mode == "clip":
            raise TagSearchError(f"cannot search with CLIP: {why}")
        result = search_tags(catalog, text, k)
        result.notes.insert(0, f"searched the tags: {why}")
        return result
    return search_tags(catalog, text, k)
