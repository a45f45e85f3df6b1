""":class:`Library`: one catalog and the product's use cases on it (see :mod:`photosim.library`)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any

from photosim.config import Settings, Thresholds, default_catalog_path
from photosim.core import cleanup as _cleanup
from photosim.core.cancel import CancelToken
from photosim.core.catalog import STATUS_OK, Catalog, Photo
from photosim.core.dedup.grouping import Group, GroupingResult, GroupingSession, find_duplicates
from photosim.core.evaluate import Truth
from photosim.core.index import learned as _learned
from photosim.core.index.binary import binary_paths
from photosim.core.index.compressed import compressed_paths, index_kind, set_index_kind
from photosim.core.index.learned import LearnError, Projection
from photosim.core.index.vectors import (
    HASH_MODEL,
    VectorIndex,
    index_paths,
    pca_dim,
    pca_path,
    set_pca_dim,
)
from photosim.core.index.vectors import pca_min_descriptors as _pca_min_descriptors
from photosim.core.scan.hashing import file_content_hash
from photosim.core.search import SearchResult, find_similar
from photosim.core.tags import (
    TAG_FLOOR,
    ImageTags,
    Tag,
    TagSearchResult,
    check_words,
    image_tags,
    photo_tags,
    tag_model,
)
from photosim.core.textsearch import clip_index, clip_model, missing_clip, search_text
from photosim.core.types import Embedder, Progress, ScanSummary, TextImageEmbedder
from photosim.library.cluster import AttachSummary

__all__ = ["Library", "load_embedder", "pca_min_descriptors"]


def pca_min_descriptors(dim: int) -> int:
    """Descriptors a model needs before its index is reduced to ``dim`` dimensions by PCA."""
    return _pca_min_descriptors(dim)


def load_embedder(
    settings: Settings, quiet: bool = False, lazy: bool = False
) -> tuple[Embedder | None, str | None]:
    """The backbone of ``settings``; ``(None, reason)`` when it cannot run here.

    Args:
        settings: Model, pooling, device, weights file and precision.
        quiet: No download progress bar.
        lazy: Load the backbone (and torch) only when the first image needs a descriptor, so
            a rescan with nothing new stays instant; a load failure then becomes the scan
            summary's ``embed_note``.

    Returns:
        ``(embedder, None)``, or ``(None, reason)`` for model ``"none"`` or weights that are
        not on this machine.

    Raises:
        photosim.embed.EmbedError: Unknown model, unusable device, or (not lazy) a weights
            file that cannot be loaded.
    """
    if settings.model == "none":
        return None, "hash-only scan requested (--model none)"
    from photosim import embed  # torch stays unimported until a backbone is built

    options: dict[str, Any] = {
        "pooling": settings.pooling,
        "device": settings.device,
        "weights": settings.weights,
        "precision": settings.precision,
        "progress": not quiet,
    }
    try:
        if lazy:
            return embed.LazyEmbedder(settings.model, **options), None
        return embed.load_embedder(settings.model, **options), None
    except embed.WeightsUnavailableError as exc:
        return None, str(exc)


# CLIP models loaded in this process, by (spec, weights file, device).
_CLIPS: dict[tuple[str, str | None, str | None], tuple[TextImageEmbedder, None]] = {}


class Library:
    """One photo library: its catalog and what a person does with it.

    Not thread-safe (one SQLite connection): a worker thread opens its own ``Library`` on the
    same path. The app's GUI thread keeps one for quick reads and the user's small decisions
    (folders, protection, "not duplicates").

    Args:
        path: Catalog file; None for the default (``$PHOTOSIM_CATALOG`` or the user data
            folder). Created with its folders if missing.

    Raises:
        CatalogVersionError: The file was written by a newer photosim.
        CatalogError: The file is not a usable catalog, or is locked, read-only or on a full
            disk (the message says what to do).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_catalog_path()
        self.catalog = Catalog(self.path)

    def close(self) -> None:
        """Close the catalog connection."""
        self.catalog.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ folders and photos
    def folders(self) -> list[tuple[str, bool]]:
        """``(path, protected)`` of every folder of the library."""
        return self.catalog.folders()

    def add_folder(self, path: str, protected: bool = False) -> None:
        """Add a folder (scanned by the next :meth:`scan` of it)."""
        self.catalog.add_folder(path, protected)

    def remove_folder(self, path: str) -> int:
        """Forget a folder and its photos (the files are untouched); returns photos forgotten."""
        return self.catalog.remove_folder(path)

    def set_protected(self, path: str, protected: bool) -> None:
        """Protect a folder: cleanups never move a file out of it."""
        self.catalog.set_protected(path, protected)

    def photos(self, status: str | None = STATUS_OK) -> list[Photo]:
        """Photos in catalog order; readable ones by default, all with ``status=None``."""
        return self.catalog.photos(status)

    def photos_after(self, last_id: int, limit: int = 20000) -> list[Photo]:
        """Readable photos with ``id > last_id`` (what a running scan has committed since)."""
        return self.catalog.photos_after(last_id, limit)

    def photo(self, path: str) -> Photo | None:
        """The photo at ``path``, or None."""
        return self.catalog.photo_by_path(path)

    def copies(self, content_hash: str) -> list[Photo]:
        """Every file with this content."""
        return self.catalog.photos_by_hash(content_hash)

    def errors(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of the files that could not be read."""
        return self.catalog.errors()

    def counts(self) -> dict[str, int]:
        """``photos``, ``ok``, ``contents``, ``errors``."""
        return self.catalog.counts()

    def thumbnail(self, content_hash: str) -> bytes | None:
        """The stored JPEG thumbnail of a content, or None."""
        return self.catalog.thumbnail(content_hash)

    def model(self) -> str | None:
        """Model id of the library's descriptors (the last scan's), or None."""
        return self.catalog.get_meta("model")

    def not_duplicates(self, hash_a: str, hash_b: str) -> None:
        """Remember that two contents are not duplicates (survives rescans)."""
        self.catalog.add_verdict(hash_a, hash_b)

    def similarity_verdict(
        self, query: str | os.PathLike[str], photo: str | os.PathLike[str], similar: bool
    ) -> None:
        """Remember that ``photo`` is (or is not) similar to ``query``: training data of
        :meth:`learn`. Both files are identified by their content, so copies share it.

        Raises:
            LearnError: A file is not in the library, or both are the same content.
        """
        hashes = []
        for path in (query, photo):
            found = self.catalog.photo_by_path(os.path.abspath(os.fspath(path)))
            if found is None or not found.content_hash:
                raise LearnError(f"{path} is not a readable photo of this library")
            hashes.append(found.content_hash)
        if hashes[0] == hashes[1]:
            raise LearnError(f"{photo} is a copy of {query}: a verdict needs two photos")
        self.catalog.add_similarity_verdict(hashes[0], hashes[1], similar)

    def similarity_verdicts(self) -> tuple[int, int]:
        """``(similar, not similar)`` verdicts stored."""
        verdicts = self.catalog.similarity_verdicts()
        similar = sum(1 for *_, s in verdicts if s)
        return similar, len(verdicts) - similar

    def learn(self) -> Projection:
        """Learn the library's similarity from the stored verdicts (see
        :func:`photosim.core.index.learned.learn`): stored only if it separates held-back
        verdicts at least as well as the plain descriptors (``report["kept"]``).

        Raises:
            LearnError: No descriptors, or too few verdicts.
        """
        model = self.model()
        if not model or not self.catalog.embedding_stats(model)[0]:
            raise LearnError("learning needs CNN descriptors: scan with a model first")
        return _learned.learn(self.catalog, model)

    def learned(self) -> Projection | None:
        """The stored learned projection of the library's model, if any."""
        return _learned.load(self.catalog, self.model())

    def reset_learning(self, verdicts: bool = False) -> tuple[bool, int]:
        """Forget the learned similarity (and with ``verdicts`` the verdicts too).

        Returns:
            ``(a projection was stored, verdicts forgotten)``.
        """
        model = self.model()
        if not model:
            return False, self.catalog.clear_similarity_verdicts() if verdicts else 0
        return _learned.reset(self.catalog, model, verdicts)

    # ------------------------------------------------------------------ scan
    def scan_settings(self, settings: Settings, model_given: bool) -> Settings:
        """``settings`` with the library's own model unless the caller chose one.

        A library keeps the model it was built with; choosing another re-embeds only what is
        missing.
        """
        model_id = self.model()
        if model_given or not model_id:
            return settings
        name, _, pooling = model_id.rpartition("-")
        return dataclasses.replace(settings, model=name, pooling=pooling)

    def scan(
        self,
        folders: Sequence[str],
        settings: Settings,
        embedder: Embedder | None = None,
        cancel: CancelToken | None = None,
    ) -> Generator[Progress, None, ScanSummary]:
        """Scan folders into the library (see :func:`photosim.core.scan.pipeline.scan`)."""
        from photosim.core.scan.pipeline import scan

        return scan(self.catalog, list(folders), settings, embedder, cancel)

    def attach_shards(
        self, directory: str | os.PathLike[str], cancel: CancelToken | None = None
    ) -> Generator[Progress, None, AttachSummary]:
        """Import the shards that ``photosim index`` wrote into ``directory`` (see
        :func:`photosim.library.cluster.attach_shards`).

        Raises:
            ClusterError: pyarrow missing, not a shard folder, or a shard of another model.
        """
        from photosim.library.cluster import attach_shards

        return attach_shards(self.catalog, directory, cancel)

    def set_pca(self, model_id: str, dim: int) -> bool:
        """Keep ``model_id``'s vector index in ``dim`` dimensions (0: full); True if changed."""
        return set_pca_dim(self.catalog, model_id, dim)

    def apply_index_settings(self, model_id: str) -> None:
        """Bring ``model_id``'s vector index in line with its settings now (learn the PCA,
        rebuild), rather than at the next search."""
        VectorIndex.open(self.catalog, model_id)

    # ------------------------------------------------------------------ duplicates
    def duplicates(
        self,
        tier: str = "near",
        thresholds: Thresholds | None = None,
        k: int = 16,
        model: str | None = None,
    ) -> GroupingResult:
        """Duplicate groups of one tier (see :func:`photosim.core.dedup.grouping.find_duplicates`).

        Raises:
            DuplicatesError: Unknown tier, or the similar tier without descriptors.
        """
        return find_duplicates(self.catalog, tier, thresholds, k=k, model=model)

    def grouping(self, tier: str = "near", k: int = 16, model: str | None = None
                 ) -> GroupingSession:
        """A grouping kept in memory: ``session.group(thresholds)`` re-groups at another
        threshold without reading the catalog again (a slider that follows the mouse).

        Without verification a session's groups build their members when first read: call
        ``result.built()`` in the worker before the GUI thread reads every member.

        Raises:
            DuplicatesError: Unknown tier.
        """
        return GroupingSession(self.catalog, tier, model, k)

    # ------------------------------------------------------------------ find similar
    def needs_query_embedder(self, images: Iterable[str]) -> bool:
        """True when some query image has no stored descriptor of the library's model."""
        model = self.model()
        if not model:
            return False
        for image in images:
            try:
                if not self.catalog.has_embedding(file_content_hash(image)[0], model):
                    return True
            except OSError:
                continue  # find_similar reports the unreadable query
        return False

    def query_embedder(
        self, images: Sequence[str], settings: Settings, quiet: bool = True
    ) -> tuple[Embedder | None, str | None]:
        """The library's model, loaded only if some query needs describing.

        Returns:
            ``(embedder or None, reason it is missing or None)``.
        """
        model = self.model()
        if not model or not self.needs_query_embedder(images):
            return None, None
        name, _, pooling = model.rpartition("-")
        embedder, reason = load_embedder(
            dataclasses.replace(settings, model=name, pooling=pooling), quiet=quiet
        )
        return embedder, (f"cannot describe the queries with {model}: {reason}" if reason else None)

    def similar(
        self,
        image: str | os.PathLike[str],
        k: int = 20,
        embedder: Embedder | None = None,
        min_similarity: float | None = None,
        rerank: str = "none",
    ) -> SearchResult:
        """Photos most similar to ``image`` (see :func:`photosim.core.search.find_similar`;
        ``rerank``: ``"none"``, ``"qe"`` or ``"diffusion"``).

        Raises:
            SearchError: Unreadable query or empty library.
            ValueError: Unknown ``rerank``.
        """
        return find_similar(
            self.catalog, image, k=k, embedder=embedder, min_similarity=min_similarity,
            rerank=rerank,
        )

    # ------------------------------------------------------------------ tags and text search
    def needs_tagger(self, images: Iterable[str]) -> bool:
        """True when some image has no stored tags (so a backbone must compute them)."""
        model = tag_model(self.catalog)
        for image in images:
            try:
                content_hash = file_content_hash(image)[0]
            except OSError:
                continue  # image_tags reports the unreadable file
            if model is None or not self.catalog.has_tags(content_hash, model):
                return True
        return False

    def tagger(
        self, images: Sequence[str], settings: Settings, quiet: bool = True
    ) -> tuple[Embedder | None, str | None]:
        """The backbone that tags ``images``, loaded only if one lacks stored tags: the
        library's model, else ``settings.model``.

        Returns:
            ``(embedder or None, reason it is missing or None)``.
        """
        if not self.needs_tagger(images):
            return None, None
        model = self.model()
        if model:
            name, _, pooling = model.rpartition("-")
            settings = dataclasses.replace(settings, model=name, pooling=pooling)
        if settings.model == "none":
            settings = dataclasses.replace(settings, model=Settings().model)
        embedder, reason = load_embedder(settings, quiet=quiet)
        return embedder, (f"cannot compute tags: {reason}" if reason else None)

    def tags(
        self, image: str | os.PathLike[str], embedder: Embedder | None = None,
        floor: float = TAG_FLOOR,
    ) -> ImageTags:
        """The ImageNet tags of an image file (see :func:`photosim.core.tags.image_tags`).

        Raises:
            TagSearchError: The file cannot be read or decoded.
        """
        return image_tags(self.catalog, os.fspath(image), embedder, floor)

    def content_tags(self, content_hash: str, floor: float = TAG_FLOOR) -> list[Tag]:
        """The stored tags of one content at or above ``floor``, most probable first (empty
        when it has none): one indexed read, cheap enough for a tooltip."""
        return photo_tags(self.catalog, content_hash, floor=floor)

    def search(
        self, text: str, k: int = 20, mode: str = "auto", settings: Settings | None = None
    ) -> TagSearchResult:
        """Photos whose content matches words: by CLIP when the library has CLIP embeddings
        (its CLIP model is loaded here, once per process), else by the tags (see
        :func:`photosim.core.textsearch.search_text` and :func:`photosim.core.tags.search_tags`).

        Args:
            text: The query.
            k: Photos to return, >= 1.
            mode: ``"auto"``, ``"tags"`` or ``"clip"``.
            settings: Device and ``clip_weights`` for loading CLIP (defaults when None).

        Raises:
            TagQueryError: Nothing searchable in ``text``.
            TagSearchError: The library has no tags yet (or, for ``"clip"``, no CLIP).
            ValueError: Unknown ``mode``; ``k`` < 1.
        """
        clip, note = None, None
        if mode != "tags" and clip_model(self.catalog) is not None:
            check_words(text)  # a bad query says so before CLIP loads
            clip, note = self.clip_embedder(settings or Settings())
        return search_text(self.catalog, text, k, mode, clip, note)

    def clip_embedder(
        self, settings: Settings, quiet: bool = True
    ) -> tuple[TextImageEmbedder | None, str | None]:
        """The CLIP model of the library (else ``settings.clip``), loaded once per process (the
        app opens a ``Library`` per search; the model, hundreds of MB, stays).

        Returns:
            ``(embedder, None)``, or ``(None, reason)`` when it cannot be loaded here (open_clip
            not installed, weights not downloadable, ...).
        """
        stored = clip_model(self.catalog)
        spec = stored.removeprefix("clip:") if stored else settings.clip
        if not spec:
            return None, "no CLIP model chosen"
        if spec == "default":
            from photosim.embed.clip import DEFAULT_CLIP

            spec = DEFAULT_CLIP
        if "/file:" in spec:
            if not settings.clip_weights:
                return None, f"CLIP weights {spec.partition('/file:')[2]} are needed (--clip-weights)"
            spec = spec.partition("/file:")[0]
        key = (spec, settings.clip_weights, settings.device)
        if key not in _CLIPS:
            from photosim import embed
            from photosim.embed import clip as _clip

            try:
                _CLIPS[key] = (_clip.load_clip(spec, weights=settings.clip_weights,
                                               device=settings.device, progress=not quiet), None)
            except embed.EmbedError as exc:
                return None, str(exc)  # not kept: the next search tries again
        return _CLIPS[key]

    def clip_scan(
        self, embedder: TextImageEmbedder, cancel: CancelToken | None = None
    ) -> Generator[Progress, None, int]:
        """Give every photo a CLIP embedding, from its stored thumbnail (see
        :func:`photosim.core.textsearch.clip_index`); the library keeps this CLIP model."""
        return clip_index(self.catalog, embedder, cancel)

    def clip_missing(self) -> int:
        """Photos (contents) without an embedding of the library's CLIP model (0 without one)."""
        model = clip_model(self.catalog)
        return missing_clip(self.catalog, model) if model else 0

    # ------------------------------------------------------------------ cleanup
    @staticmethod
    def auto_mark(groups: Iterable[Group], rule: str = "keeper", folder: str | None = None
                  ) -> set[str]:
        """Paths an auto-mark rule moves out (see :func:`photosim.core.cleanup.auto_mark`)."""
        return _cleanup.auto_mark(groups, rule, folder)

    def plan_cleanup(
        self,
        groups: Iterable[Group],
        marked: Iterable[str],
        allow_similar: bool = False,
        merge_metadata: bool = True,
    ) -> _cleanup.CleanupPlan:
        """Check marked files against the safety rules and plan keeping the metadata only
        the moving copies carry (see :func:`photosim.core.cleanup.plan_cleanup`; reading
        metadata takes a few milliseconds per file: call it off the GUI thread)."""
        return _cleanup.plan_cleanup(self.catalog, groups, marked, allow_similar, merge_metadata)

    @staticmethod
    def plan_merges(plan: _cleanup.CleanupPlan) -> _cleanup.CleanupPlan:
        """Add the metadata merges to a plan made with ``merge_metadata=False`` (reads files
        only, no catalog: run it in a worker; see :func:`photosim.core.cleanup.plan_merges`).
        Returns the same plan."""
        _cleanup.plan_merges(plan)
        return plan

    def cleanup(
        self,
        plan: _cleanup.CleanupPlan,
        destination: str = "quarantine",
        cancel: CancelToken | None = None,
    ) -> Generator[Progress, None, _cleanup.CleanupResult]:
        """Move the planned files out, journaled and undoable (see
        :func:`photosim.core.cleanup.execute_cleanup`)."""
        return _cleanup.execute_cleanup(self.catalog, plan, destination, cancel)

    def last_undoable_session(self) -> str | None:
        """The newest cleanup session with files to put back, or None."""
        return _cleanup.last_undoable_session(self.catalog)

    def undo(self, session: str | None = None) -> _cleanup.UndoResult | None:
        """Put back every file of ``session`` (default: the last undoable one); None if there
        is nothing to undo.

        Raises:
            CleanupError: Unknown session.
        """
        session = session or self.last_undoable_session()
        if session is None:
            return None
        return _cleanup.undo_session(self.catalog, session)

    def history(self) -> list[_cleanup.SessionInfo]:
        """Cleanup sessions, newest first."""
        return _cleanup.sessions(self.catalog)

    # ------------------------------------------------------------------ info
    def info(self, settings: Settings) -> dict[str, Any]:
        """What ``photosim info`` shows: the catalog, counts, model, weights and indexes.

        Returns:
            A JSON-ready dict (keys as in ``photosim info --json``).
        """
        from photosim import __version__, embed

        counts = self.counts()
        model = self.model()
        backbone = (model or "").rpartition("-")[0] or settings.model
        if backbone not in embed.MODELS:  # a catalog made with a model this version lacks
            backbone = settings.model
        models = dict(self.catalog.models())
        weights = {"model": backbone, **embed.weights_origin(backbone)}
        weights["used"] = self.catalog.get_meta(f"weights:{model}") if model else None
        return {
            "version": __version__,
            "catalog": str(self.path),
            "schema": self.catalog.schema_version(),
            "folders": [{"path": p, "protected": v} for p, v in self.folders()],
            **counts,
            "model": model,
            "default_model": embed.DEFAULT_MODEL,
            "descriptors": {k: v for k, v in models.items() if k != HASH_MODEL},
            "device": settings.device or "auto (CUDA, then MPS, then CPU)",
            "weights_cached": embed.weights_cached(backbone),
            "weights": weights,
            "indexes": {name: self.index_state(name, count) for name, count in models.items()},
            "tags": dict(self.catalog.tag_models()),
            "clip": clip_model(self.catalog),
        }

    def index_state(self, model: str, vectors: int) -> dict[str, Any]:
        """One model's index, from its sidecar (the index is not loaded).

        Returns:
            ``file``, ``vectors``, ``state``, ``dim`` (of the saved index, None when missing),
            ``pca`` (``{dim, input_dim, explained_variance, file}`` when the saved index lives
            in a PCA space, else None), ``pca_setting`` (the dimension asked, 0 for none) and
            ``graph_rows`` (vectors whose nearest neighbours are stored), ``kind`` (``"hnsw"``
            or ``"ivfpq"``) and ``compressed`` (the IVF-PQ layout, its RAM in bytes and the
            float16 store's file, when compressed and built).
        """
        from photosim.core.index.graph import stored_rows

        hnsw, meta, _ = index_paths(self.path, model)
        state, dim, pca = "missing (rebuilt on next use)", None, None
        if hnsw.exists() and meta.exists():
            try:
                info = json.loads(meta.read_text())
            except (OSError, ValueError):
                info = {}
            dim = info.get("dim")
            state = "in sync" if info.get("count") == vectors else "stale (rebuilt on next use)"
            if info.get("pca"):
                pca = {
                    "dim": dim,
                    "input_dim": info.get("input_dim"),
                    "explained_variance": info.get("explained_variance"),
                    "file": str(pca_path(self.path, model)),
                }
                if not pca_path(self.path, model).exists():
                    state = "stale: its PCA file is gone (rebuilt on next use)"
        setting = 0 if model == HASH_MODEL else pca_dim(self.catalog, model)
        rows, _ = stored_rows(self.catalog, model)
        kind = index_kind(self.catalog, model, vectors)
        compressed = None
        if kind == "ivfpq":
            if model == HASH_MODEL:
                faiss_file, sidecar, store = binary_paths(self.path, model)
            else:
                faiss_file, sidecar, store = compressed_paths(self.path, model)
            hnsw, state, dim = faiss_file, "missing (built on next use)", None
            try:
                info = json.loads(sidecar.read_text())
                dim = info.get("dim")
                state = ("in sync" if info.get("count") == vectors
                         else "stale (brought in line on next use)")
                compressed = {**info.get("shape", {}), "memory_bytes": info.get("memory_bytes"),
                              "store": str(store), "kind": info.get("kind")}
                if model == HASH_MODEL:
                    compressed.update(nlist=info.get("nlist"), code_bytes=info.get("code_bytes"))
            except (OSError, ValueError):
                pass
        return {
            "file": str(hnsw), "vectors": vectors, "state": state, "dim": dim, "pca": pca,
            "pca_setting": setting, "graph_rows": rows, "kind": kind, "compressed": compressed,
        }

    def set_index_kind(self, model_id: str | None, kind: str) -> bool:
        """Choose ``model_id``'s index: ``"auto"`` (compressed above
        :data:`~photosim.core.index.compressed.COMPRESS_ABOVE` descriptors), ``"hnsw"`` or
        ``"ivfpq"``; True when the setting changed (applied on next use). The perceptual-hash
        index follows the same setting (``"ivfpq"``: its binary inverted file); with
        ``model_id`` None only the hash index is set.

        Raises:
            CompressedIndexError: Unknown kind.
        """
        hashes = set_index_kind(self.catalog, HASH_MODEL, kind)
        return (model_id is not None and set_index_kind(self.catalog, model_id, kind)) or hashes

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self,
        folder: str | os.PathLike[str],
        truth: Truth,
        thresholds: Thresholds | None = None,
        k: int = 16,
        rerank: str = "none",
    ) -> dict[str, Any]:
        """Score the scanned ``folder`` against its ground truth (:func:`load_truth`).

        Returns:
            :func:`photosim.core.evaluate.evaluate`'s report plus ``"retrieval"``
            (:func:`photosim.core.evaluate.retrieval_report` with ``rerank``) and
            ``"retrieval_by_rerank"`` (the same for every re-ranking).
        """
        from photosim.core.evaluate import evaluate, retrieval_report
        from photosim.core.index.rerank import RERANKS

        report = evaluate(self.catalog, folder, truth, thresholds, k=k)
        by_rerank = {r: retrieval_report(self.catalog, folder, truth, rerank=r) for r in RERANKS}
        report["retrieval"] = by_rerank[rerank]
        report["retrieval_by_rerank"] = by_rerank
        return report
