"""The scan pipeline: walk, diff, hash, decode once, embed in batches, commit per batch.

``scan`` is a generator: it yields :class:`~photosim.core.types.Progress` and returns a
:class:`~photosim.core.types.ScanSummary` (``StopIteration.value``; :func:`run_scan` unwraps
it). The CLI drives it under a progress bar, the GUI from a worker thread, tests directly.

Stages and who runs them:

- walk + diff against the catalog on (path, size, mtime_ns): this thread; unchanged files
  are never opened;
- read + content hash of new/changed files: this thread; content already in the catalog
  reuses its metadata, thumbnail and descriptor without decoding;
- decode (hashes, thumbnail, model input): :class:`~photosim.core.scan.workers.DecodePool`
  processes, a bounded number of files ahead;
- inference: one background thread that owns the embedder, one batch at a time, overlapping
  with decoding (torch releases the GIL). An embedder with a classifier head
  (:class:`~photosim.core.types.TaggingEmbedder`) also gives each photo's top
  :data:`~photosim.core.tags.TAGS_PER_PHOTO` ImageNet classes from the same forward pass (the tags of
  :mod:`photosim.core.tags`). It first loads a lazy embedder (torch import,
  weights) while the decoders start; on a CPU its thread count follows the measured stage
  costs (:class:`_CoreSplit`) and decoders run at low priority;
- catalog writes: this thread, one transaction per batch (photo rows, thumbnails, hash
  vectors, descriptors), so a cancelled or killed scan keeps every finished batch and the next
  scan resumes from there;
- index stage: the hnswlib indexes are synced and each new vector's nearest neighbours are
  stored (:func:`photosim.core.index.graph.extend_graph`), so grouping only reads them.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any

import numpy as np

from photosim.config import Settings
from photosim.core.cancel import CancelToken
from photosim.core.catalog import STATUS_ERROR, STATUS_OK, Catalog
from photosim.core.index.graph import extend_graph
from photosim.core.index.vectors import HASH_MODEL, VectorIndex, hash_vectors
from photosim.core.scan.hashing import file_content_hash
from photosim.core.scan.walk import walk_folders
from photosim.core.scan.workers import TRANSIENT_REASONS, DecodePool, usable_cpus
from photosim.core.tags import TAGS_PER_PHOTO
from photosim.core.types import (
    DecodedImage,
    DecodeRequest,
    Embedder,
    Error,
    Progress,
    ScanStage,
    ScanSummary,
    TaggingEmbedder,
)

logger = logging.getLogger(__name__)

META_MODEL = "model"
PROGRESS_INTERVAL_S = 0.1
LOOKAHEAD_PER_WORKER = 4
BACKLOG_BATCHES = 8  # decoded images that may wait for inference, in batches
DECODE_NICENESS = 19  # decode workers next to CPU inference: see DecodePool(niceness=)
_METADATA = (
    "width", "height", "format", "taken_at", "camera", "phash", "dhash", "variants", "grey",
    "capture",
)


@dataclass(frozen=True)
class _Item:
    path: str
    root: str
    size: int
    mtime_ns: int
    kind: str  # "new", "changed" or "embed" (unchanged file missing a descriptor)


def _row(item: _Item, content_hash: str | None, meta: dict[str, Any] | None, error: str | None):
    row: dict[str, Any] = {
        "path": item.path,
        "folder": item.root,
        "size": item.size,
        "mtime_ns": item.mtime_ns,
        "content_hash": content_hash,
        "status": STATUS_OK if error is None else STATUS_ERROR,
        "error": error,
    }
    row.update(meta or dict.fromkeys(_METADATA))
    return row


def _image_meta(image: DecodedImage) -> dict[str, Any]:
    meta = {key: getattr(image, key) for key in _METADATA}
    meta["variants"] = np.array(image.variants, dtype=np.int64).tobytes() or None
    meta["grey"] = int(image.grey)
    return meta


def _read_error(exc: OSError) -> str:
    return f"cannot read file: {exc.strerror or exc}"


def run_scan(gen: Generator[Progress, None, ScanSummary]) -> ScanSummary:
    """Drive a scan generator to the end, discarding progress; return its summary."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def scan(
    catalog: Catalog,
    roots: Sequence[str],
    settings: Settings | None = None,
    embedder: Embedder | None = None,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, ScanSummary]:
    """Scan folders into the catalog.

    Args:
        catalog: Open catalog (used from this thread only).
        roots: Folders to scan; each is remembered in ``folders``.
        settings: Settings (defaults when None).
        embedder: Computes descriptors; None scans hash-only (degraded mode).
        cancel: Checked between batches; when set, finished batches are kept and the rest is
            left for the next scan.

    Yields:
        Progress about every 0.1 s and after each committed batch.

    Returns:
        The scan's counts.
    """
    settings = settings or Settings()
    cancel = cancel or CancelToken()
    started = time.monotonic()
    summary = ScanSummary()
    model_id = embedder.model_id if embedder is not None else None
    roots = [os.path.abspath(r) for r in roots]
    items, gone_paths = yield from _walk_and_diff(
        catalog, roots, settings, model_id, _tag_model(embedder), cancel, summary
    )
    # The embedder (a lazy one imports torch and reads the weights) loads on the inference
    # thread while the decoders start on the first files: see _process.
    if items and not summary.cancelled:
        yield from _process(catalog, items, settings, embedder, cancel, summary)
    # Vanished paths leave only now: a moved file's content was still known while processing,
    # so its metadata, thumbnail and descriptor were reused instead of recomputed.
    if gone_paths and not summary.cancelled:
        with catalog.transaction():
            summary.removed += catalog.delete_paths(sorted(gone_paths))
    # Also after a cancel: the batches that finished are searchable at once. A rescan that
    # changed nothing skips this: each batch committed its hash vectors with its photos, and
    # every reader of an index syncs it with the catalog when it opens it.
    if items or summary.removed or summary.cancelled:
        yield from _update_indexes(catalog, model_id, cancel, summary)
    summary.seconds = time.monotonic() - started
    yield Progress(ScanStage.DONE, summary.seen, summary.seen, "done", summary.errors)
    return summary


def _tag_model(embedder: Embedder | None) -> str:
    """The name ``embedder``'s tags are stored under; "" when it gives none."""
    if isinstance(embedder, TaggingEmbedder):
        return embedder.tag_model or ""
    return ""


def _walk_and_diff(
    catalog: Catalog,
    roots: list[str],
    settings: Settings,
    model_id: str | None,
    tag_model: str,
    cancel: CancelToken,
    summary: ScanSummary,
) -> Generator[Progress, None, tuple[list[_Item], set[str]]]:
    """Walk the roots and diff against the catalog: what to read, and the paths now gone.

    In bulk: the walk returns ``(path, size, mtime_ns)`` tuples and the diff is set arithmetic
    against the catalog's tuples, so a rescan costs little more than the ``stat()`` calls.
    Unchanged files whose content lacks a descriptor of ``model_id`` are queued too (one file
    per content), and so are those lacking tags of ``tag_model`` (a library scanned before
    tags existed gets them at its next scan). Counts go into ``summary``.

    Returns:
        ``(items sorted by path, vanished paths)``.
    """
    items: list[_Item] = []
    gone_paths: set[str] = set()
    walk_errors: list[tuple[str, str]] = []
    queued_contents: set[str] = set()  # contents queued for a missing descriptor
    for root in roots:
        catalog.add_folder(root)
        known_rows = catalog.stat_rows(root)
        known_paths = {row[0] for row in known_rows}
        found: list[tuple[str, int, int]] = []
        next_report = 1000
        for folder_files in walk_folders(root, settings.exclude, known_paths, walk_errors):
            found += folder_files
            if len(found) >= next_report:
                next_report = len(found) + 1000
                yield Progress(ScanStage.WALKING, summary.seen + len(found), 0, root)
            if cancel.cancelled():
                break
        summary.seen += len(found)
        if cancel.cancelled():
            summary.cancelled = True
            break
        unchanged_rows = set(known_rows)
        stale = [row for row in found if row not in unchanged_rows]
        stale_paths = {row[0] for row in stale}
        # Files whose recorded error says more about the machine than the file: retry.
        retry = catalog.error_paths_under(root, TRANSIENT_REASONS) - stale_paths
        if retry:
            stale += [row for row in found if row[0] in retry]
            stale_paths |= retry
        for path, size, mtime_ns in stale:
            kind = "changed" if path in known_paths else "new"
            items.append(_Item(path, root, size, mtime_ns, kind))
        summary.changed += len(stale_paths & known_paths)
        summary.new += len(stale_paths) - len(stale_paths & known_paths)
        summary.unchanged += len(found) - len(stale_paths)
        gone_paths |= known_paths - {row[0] for row in found}
        if model_id is not None:
            lacking = dict(catalog.missing_descriptor_under(root, model_id, tag_model))
            for path, size, mtime_ns in found if lacking else ():
                content_hash = lacking.get(path)
                if (
                    content_hash is not None
                    and path not in stale_paths
                    and content_hash not in queued_contents
                ):
                    queued_contents.add(content_hash)
                    items.append(_Item(path, root, size, mtime_ns, "embed"))
    items.sort(key=lambda item: item.path)
    for path, reason in walk_errors:
        logger.warning("%s: %s", path, reason)
    summary.error_samples.extend(walk_errors[:20])
    return items, gone_paths


def _update_indexes(
    catalog: Catalog, model_id: str | None, cancel: CancelToken, summary: ScanSummary
) -> Generator[Progress, None, None]:
    """Prune orphans, add missing hash vectors, sync the indexes and store the neighbours of
    the new vectors (what grouping reads, see :mod:`photosim.core.index.graph`). Stops between
    chunks on cancel; grouping or the next scan adds what is missing."""
    yield Progress(ScanStage.INDEXING, 0, 1, "updating the index")
    with catalog.transaction():
        catalog.prune_orphans()
        _add_missing_hash_vectors(catalog)
        if model_id is not None and summary.embedded:
            catalog.set_meta(META_MODEL, model_id)
    for model in (HASH_MODEL, model_id):
        if model is None:
            continue
        index = VectorIndex.open(catalog, model)
        if index is None or summary.cancelled:
            continue
        for done, total in extend_graph(catalog, model, index):
            yield Progress(ScanStage.INDEXING, done, total, "finding neighbours")
            if cancel.cancelled():
                summary.cancelled = True
                break


def _process(
    catalog: Catalog,
    items: list[_Item],
    settings: Settings,
    embedder: Embedder | None,
    cancel: CancelToken,
    summary: ScanSummary,
) -> Generator[Progress, None, None]:
    """Hash, decode, embed and commit ``items``; updates ``summary`` in place."""
    yield from _ScanRun(catalog, items, settings, embedder, cancel, summary).run()


class _ScanRun:
    """The processing stage of one scan: a loop that feeds the decode processes, collects
    what they decoded, runs inference one batch at a time on a background thread, and commits
    a batch per transaction. All of it runs on the caller's thread except the decoders and the
    inference (see :meth:`run`)."""

    def __init__(
        self,
        catalog: Catalog,
        items: list[_Item],
        settings: Settings,
        embedder: Embedder | None,
        cancel: CancelToken,
        summary: ScanSummary,
    ) -> None:
        self.catalog, self.settings, self.cancel, self.summary = catalog, settings, cancel, summary
        self.embedder = embedder
        self.model_id = embedder.model_id if embedder is not None else None
        self.model_size = embedder.input_size if embedder is not None else 0
        self.tag_model = _tag_model(embedder)
        self.batch_size = max(1, settings.batch_size)
        self.queue = deque(items)
        self.total = len(items)
        self.waiting: dict[str, list[_Item]] = {}  # content hash being decoded -> its files
        self.decoded: list[tuple[DecodedImage, list[_Item]]] = []
        self.plain_rows: list[dict[str, Any]] = []  # errors and reused content, to commit
        self.inference: Future[_Inference] | None = None
        self.in_flight: list[tuple[DecodedImage, list[_Item]]] = []
        self.loading: Future[Any] | None = None
        self.split: _CoreSplit | None = None
        self.done = 0
        self.last_yield = 0.0

    def commit(
        self, batch: list[tuple[DecodedImage, list[_Item]]], inference: _Inference | None
    ) -> int:
        """One transaction: the pending plain rows, the batch's photos, thumbnails, hash
        vectors, descriptors and tags. Returns the rows written."""
        catalog = self.catalog
        with catalog.transaction():
            rows = self.plain_rows[:]
            self.plain_rows.clear()
            for image, its in batch:
                meta = _image_meta(image)
                rows += [_row(it, image.content_hash, meta, None) for it in its]
                catalog.put_thumbnail(image.content_hash, image.thumbnail)
                if image.sketch:
                    catalog.put_sketch(image.content_hash, image.sketch)
            catalog.upsert_photos(rows)
            if batch:  # hash vectors commit with their photos: the hash index is never behind
                catalog.put_embeddings(
                    HASH_MODEL,
                    [image.content_hash for image, _ in batch],
                    hash_vectors(
                        np.array([image.phash for image, _ in batch], np.int64),
                        np.array([image.dhash for image, _ in batch], np.int64),
                    ),
                )
            if inference is not None and self.model_id is not None:
                hashes = [im.content_hash for im, _ in batch]
                catalog.put_embeddings(self.model_id, hashes, inference.vectors)
                if inference.labels is not None and self.tag_model:
                    catalog.put_tags(
                        self.tag_model, hashes, inference.labels, inference.probabilities
                    )
        return len(rows)

    def run(self) -> Generator[Progress, None, None]:
        """The loop; progress about every :data:`PROGRESS_INTERVAL_S`."""
        # With a model, decoders run at low priority from the start: while the model loads
        # (the torch import is on the critical path) and next to CPU inference (see
        # DecodePool's niceness). Next to a GPU they hardly compete with anything of ours.
        pool = DecodePool(
            self.settings.worker_count(), niceness=DECODE_NICENESS if self.embedder else 0
        )
        # Decoded images waiting for inference are capped (each holds a model input and a
        # thumbnail, about 0.2 MB): enough to keep the decoders busy while the model loads and
        # through slow batches, not a whole library in memory.
        backlog_cap = max(BACKLOG_BATCHES * self.batch_size, pool.size * LOOKAHEAD_PER_WORKER)
        executor = ThreadPoolExecutor(1, thread_name_prefix="photosim-inference")
        try:
            if self.embedder is not None:
                # An empty batch loads a lazy embedder (torch, weights) on the inference
                # thread, now that there is work, while the decoders start on the first
                # files; a failure (e.g. no weights) turns the rest of the scan hash-only.
                self.loading = executor.submit(self.embedder.embed, [])
                yield Progress(ScanStage.PROCESSING, 0, self.total, "loading the model")
            while True:
                if self.loading is not None and self.loading.done():
                    self._model_loaded()
                if self.cancel.cancelled():
                    self.summary.cancelled = True
                    pool.cancel_pending()
                    break
                self._feed(pool, backlog_cap)
                self._collect(pool)
                finished = not self.queue and pool.outstanding == 0
                self._infer_and_commit(pool, executor, finished)
                now = time.monotonic()
                if now - self.last_yield >= PROGRESS_INTERVAL_S:
                    self.last_yield = now
                    yield Progress(
                        ScanStage.PROCESSING, self.done, self.total, "", self.summary.errors
                    )
                if finished and not self.decoded and self.inference is None and not self.plain_rows:
                    break  # (a load still running is waited for by the executor's shutdown)
            self._commit_the_rest()
            yield Progress(ScanStage.PROCESSING, self.done, self.total, "", self.summary.errors)
        finally:
            pool.close()
            executor.shutdown(wait=True)

    def _model_loaded(self) -> None:
        """The background load ended: go on with descriptors, or hash-only with a note."""
        assert self.loading is not None
        try:
            self.loading.result()
        except Exception as exc:  # Error: expected (e.g. no weights); else a bug
            if isinstance(exc, Error):
                logger.info("no descriptors: %s", exc)
            else:
                logger.exception("the embedder failed to start")
            self.summary.embed_note = str(exc)
            self.embedder, self.model_id, self.tag_model = None, None, ""
            # Unchanged files were only queued to get descriptors: leave them alone.
            self.queue = deque(item for item in self.queue if item.kind != "embed")
        else:
            # Which weights made these descriptors, for `photosim info`.
            weights_file = getattr(self.embedder, "weights_file", None)
            if weights_file and self.model_id is not None:
                self.catalog.set_meta(f"weights:{self.model_id}", str(weights_file))
            if (
                getattr(self.embedder, "device", None) == "cpu"
                and getattr(self.embedder, "threads", None) is not None
            ):
                # The inference thread count follows the measured stage costs.
                self.split = _CoreSplit(usable_cpus())
        self.loading = None

    def _feed(self, pool: DecodePool, backlog_cap: int) -> None:
        """Hash files and hand the decoders a bounded number ahead; reuse known contents."""
        summary, catalog = self.summary, self.catalog
        while (
            self.queue
            and pool.outstanding < pool.size * LOOKAHEAD_PER_WORKER
            and (self.embedder is None or len(self.decoded) + pool.outstanding < backlog_cap)
        ):
            item = self.queue.popleft()
            try:
                content_hash, _ = file_content_hash(item.path)
            except OSError as exc:
                self.plain_rows.append(_row(item, None, None, _read_error(exc)))
                summary.errors += 1
                summary.error_samples.append((item.path, _read_error(exc)))
                continue
            if content_hash in self.waiting:  # a copy of content being decoded right now
                self.waiting[content_hash].append(item)
                continue
            if item.kind != "embed":
                meta = catalog.known_content(content_hash)
                if (
                    meta is not None
                    and catalog.has_thumbnail(content_hash)
                    and (
                        self.model_id is None
                        or catalog.has_embedding(content_hash, self.model_id)
                    )
                    and (not self.tag_model or catalog.has_tags(content_hash, self.tag_model))
                ):
                    self.plain_rows.append(_row(item, content_hash, meta, None))
                    summary.reused += 1
                    continue
            self.waiting[content_hash] = [item]
            pool.submit(
                content_hash, DecodeRequest(item.path, self.model_size, self.settings.thumb_size,
                                            sketch=True)
            )

    def _collect(self, pool: DecodePool) -> None:
        """Take what the decoders finished. Never spin: with no decode in flight, block on
        the inference batch instead (a busy loop here holds the GIL that torch's Python-level
        layers need, which made inference ~6x slower)."""
        summary = self.summary
        pending = [f for f in (self.inference, self.loading) if f is not None]
        if pool.outstanding == 0 and pending:
            wait_futures(pending, timeout=PROGRESS_INTERVAL_S, return_when=FIRST_COMPLETED)
        busy = bool(self.queue or self.decoded or pending)
        for outcome in pool.poll(timeout=0.01 if busy else 0.2):
            its = self.waiting.pop(outcome.key)  # type: ignore[arg-type]
            if outcome.image is None:
                reason = outcome.error or "unknown error"
                self.plain_rows += [_row(it, str(outcome.key), None, reason) for it in its]
                summary.errors += len(its)
                summary.error_samples += [(it.path, reason) for it in its]
            else:
                summary.decoded += 1
                summary.reused += len(its) - 1  # identical files share this one decode
                self.decoded.append((outcome.image, its))

    def _infer_and_commit(
        self, pool: DecodePool, executor: ThreadPoolExecutor, finished: bool
    ) -> None:
        """Commit a finished inference batch; start the next one (one batch in the background
        thread while decoding goes on); commit hash-only batches and plain rows."""
        if self.inference is not None and self.inference.done():
            result = _inference_or_none(self.inference, self.summary)
            if self.split is not None and result is not None:
                self.split.update(len(self.in_flight), result.seconds, pool)
            self.summary.embedded += 0 if result is None else len(self.in_flight)
            self.done += self.commit(self.in_flight, result)
            self.inference, self.in_flight = None, []
            self.last_yield = 0.0
        if self.decoded and (len(self.decoded) >= self.batch_size or finished):
            if self.embedder is None:
                batch = self.decoded[: self.batch_size]
                self.decoded = self.decoded[self.batch_size :]
                self.done += self.commit(batch, None)
                self.last_yield = 0.0
            elif self.inference is None and self.loading is None:
                self.in_flight = self.decoded[: self.batch_size]
                self.decoded = self.decoded[self.batch_size :]
                inputs = [image.model_input for image, _ in self.in_flight]
                threads = None
                if self.split is not None:
                    # Once decoding is over, the last batches get every core.
                    decoding = bool(self.queue) or pool.outstanding > 0
                    threads = self.split.threads if decoding else self.split.cores
                self.inference = executor.submit(
                    _timed_embed, self.embedder, inputs, threads, self.tag_model
                )
        if self.plain_rows and (len(self.plain_rows) >= self.batch_size or finished):
            self.done += self.commit([], None)
            self.last_yield = 0.0

    def _commit_the_rest(self) -> None:
        """Cancelled (or done): keep what is finished, leave the rest for the next scan."""
        if self.inference is not None:
            result = _inference_or_none(self.inference, self.summary)
            self.summary.embedded += 0 if result is None else len(self.in_flight)
            self.done += self.commit(self.in_flight, result)
        if self.plain_rows or (self.decoded and self.embedder is None):
            self.done += self.commit(self.decoded if self.embedder is None else [], None)


@dataclass(frozen=True)
class _Inference:
    """What one inference batch produced: ``(N, D)`` descriptors, ``(N, k)`` class labels and
    probabilities (None without a classifier head), and its wall time in seconds."""

    vectors: np.ndarray
    labels: np.ndarray | None
    probabilities: np.ndarray | None
    seconds: float


def _timed_embed(
    embedder: Embedder, images: list[np.ndarray], threads: int | None, tag_model: str
) -> _Inference:
    """Run on the inference thread: set its thread count, embed (and tag, when the embedder
    has a classifier head), and time it."""
    if threads is not None:
        embedder.threads = threads  # type: ignore[attr-defined]
    started = time.perf_counter()
    if tag_model:
        vectors, labels, probabilities = embedder.embed_and_tag(  # type: ignore[attr-defined]
            images, TAGS_PER_PHOTO
        )
        return _Inference(vectors, labels, probabilities, time.perf_counter() - started)
    vectors = embedder.embed(images)
    return _Inference(vectors, None, None, time.perf_counter() - started)


class _CoreSplit:
    """How many intra-op threads CPU inference gets next to the decode processes.

    Torch's intra-op threads meet at a barrier after every layer, so a team as wide as the
    machine stalls whenever a (lower-priority) decoder holds one of its cores, while a narrow
    team leaves cores idle once decoding has run ahead. The split that keeps every core
    busy gives inference the share of cores its CPU cost takes of the total:
    ``threads = round(cores * inference / (inference + decode))`` CPU-seconds per image, with
    decode costs reported by the workers and the inference cost estimated as wall time x
    threads. The estimate is refreshed after every batch (the first, which pays the one-off
    oneDNN set-up, is skipped), so it follows the model, the precision and the photos.

    Args:
        cores: CPUs this process may use.
    """

    def __init__(self, cores: int) -> None:
        self.cores = max(1, cores)
        self.threads = max(1, self.cores // 2)
        self._batches = 0
        self._inference_cpu: float | None = None  # CPU-seconds per image, smoothed

    def update(self, images: int, wall_seconds: float, pool: DecodePool) -> None:
        """Account one finished inference batch of ``images`` that took ``wall_seconds``."""
        self._batches += 1
        if self._batches == 1 or images == 0 or pool.completed == 0:
            return
        cost = wall_seconds / images * self.threads
        self._inference_cpu = (
            cost if self._inference_cpu is None else 0.5 * (self._inference_cpu + cost)
        )
        decode = pool.cpu_seconds / pool.completed
        share = self._inference_cpu / (self._inference_cpu + decode)
        threads = min(self.cores, max(1, round(self.cores * share)))
        if threads != self.threads:
            logger.debug(
                "inference threads %d -> %d (inference %.1f, decode %.1f CPU-ms per image)",
                self.threads, threads, self._inference_cpu * 1e3, decode * 1e3,
            )
            self.threads = threads


def _inference_or_none(inference: Future[_Inference], summary: ScanSummary) -> _Inference | None:
    try:
        return inference.result()
    except Error as exc:  # expected, e.g. weights unavailable: one line, scan goes on
        logger.info("no descriptors: %s", exc)
        summary.embed_note = str(exc)
        return None
    except Exception as exc:  # keep scanning hash-only rather than lose the batch
        logger.exception("inference failed")
        summary.embed_note = f"descriptors could not be computed: {exc}"
        return None


def _add_missing_hash_vectors(catalog: Catalog) -> None:
    """Store the 128-bit hash vector (see :func:`hash_vectors`) of every content lacking one."""
    rows = catalog.db.execute(
        "SELECT content_hash, phash, dhash FROM photos WHERE status='ok' AND content_hash "
        "NOT IN (SELECT content_hash FROM embeddings WHERE model=?) GROUP BY content_hash",
        [HASH_MODEL],
    ).fetchall()
    if rows:
        vectors = hash_vectors(
            np.array([r[1] for r in rows], np.int64), np.array([r[2] for r in rows], np.int64)
        )
        catalog.put_embeddings(HASH_MODEL, [r[0] for r in rows], vectors)
