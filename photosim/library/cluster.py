"""Distributed embedding on Ray: archives too big for one desktop, in resumable shards.

Three steps, each restartable:

1. **Plan** (on the machine that runs ``photosim index``, the *driver*): walk the folders
   with the scan's own walker and exclusions, sort the paths, cut them into shards of N files
   (default :data:`DEFAULT_SHARD_SIZE`). The file list goes to ``DIR/plan.parquet`` and the
   shard list to ``DIR/manifest.json`` (schema :data:`SCHEMA`). The plan is fixed once
   written: a rerun resumes the same job instead of walking again (photos added later are
   picked up by a desktop scan after :func:`attach_shards`, or by a new ``--out`` folder). A
   folder planned for another model or other folders is refused once it holds a finished
   shard (before that it is planned again).
2. **Run**: connect to a Ray cluster (or start a local instance) and start a pool of
   workers, one Ray actor each, that load the embedder **once** (on a GPU when they were given
   one) and keep a :class:`~photosim.core.scan.workers.DecodePool` of decode processes. Per
   shard a worker hashes and decodes every file with the desktop scan's code
   (:func:`~photosim.core.scan.hashing.file_content_hash`,
   :func:`~photosim.core.scan.imageio.decode_file` in the same isolated worker processes, so
   a hostile file costs that file, not the shard), embeds in batches and writes the shard as
   Parquet, atomically (``shard-00012.parquet.tmp``, fsync, rename). On a CPU a worker decodes
   a batch, then embeds it, in turn, so that it uses the CPUs Ray reserved for it; next to a
   GPU decoding runs ahead while the GPU works. Only the driver writes the manifest: each
   finished shard's row count and the SHA-256 of its file. A rerun checks those checksums
   and embeds again what is missing, corrupt or not in the manifest. A worker that dies is
   restarted by Ray (``max_restarts``) and its shard handed out again by the driver, up to
   ``retries`` more tries; a shard that still fails ends the run with
   :class:`ShardsFailedError` naming it, the other shards kept for the rerun.
3. **Attach** (:func:`attach_shards`, ``photosim attach DIR``): import the shards into a
   desktop catalog, one transaction per shard, then store the vector indexes' neighbours
   like a scan does; ``photosim duplicates`` and ``similar`` then work as after a scan.

Assumptions: ``DIR`` is on a filesystem that every worker node mounts at the same path, and
so are the photos (the shards record the paths the workers read); every node runs the same
photosim version (checked) with the model's weights installed.

Shard columns (one row per planned file, in plan order; nothing is silently left out: an
unreadable file is a row with ``status = "error"`` and the reason in ``error``):

=============== ======================= ===================================================
column          Arrow type              meaning
=============== ======================= ===================================================
path            string                  absolute path (UTF-8; see ``path_bytes``)
path_bytes      binary, nullable        the raw name when it is not valid UTF-8, else null
folder          string                  the planned root folder the file was found under
size            int64                   bytes, from the walk's ``stat``
mtime_ns        int64                   modification time, ns since the epoch
content_hash    string, nullable        xxh3-128 hex of the bytes
width, height   int32, nullable         pixels after EXIF orientation
format          string, nullable        Pillow format name from the content
taken_at        string, nullable        EXIF date taken, ISO-8601
camera          string, nullable        EXIF make and model
phash, dhash    int64, nullable         64-bit perceptual hashes as signed int64
variants        binary, nullable        pHash, dHash of the 7 other orientations (14 int64)
grey            bool, nullable          the picture carries no colour
capture         string, nullable        the camera's record of the exposure
status, error   string, string          ``"ok"`` or ``"error"``, and the reason
descriptor      fixed_size_binary(2*D)  L2-normalised descriptor as float16 little-endian,
                                        exactly the catalog's blob; null on error rows
thumbnail       binary, nullable        JPEG, longest side ``thumb_size`` (null with
                                        ``--no-thumbnails``: the app then shows placeholders)
tag_labels      list<int16>, nullable   the top ImageNet classes of the model's head
tag_probs       list<float32>, nullable their probabilities
=============== ======================= ===================================================

Each shard file's Parquet key-value metadata holds ``photosim.model_id``,
``photosim.tag_model``, ``photosim.device`` and ``photosim.precision``.

``ray`` and ``pyarrow`` (the ``cluster`` extra) are imported inside the functions that need
them: importing this module costs nothing, and :func:`attach_shards` needs no Ray.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import socket
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photosim import __version__
from photosim.config import Settings
from photosim.core.cancel import CancelToken
from photosim.core.catalog import STATUS_ERROR, STATUS_OK, Catalog
from photosim.core.index.vectors import HASH_MODEL, hash_vectors
from photosim.core.scan.hashing import file_content_hash
from photosim.core.scan.pipeline import (
    DECODE_NICENESS,
    LOOKAHEAD_PER_WORKER,
    META_MODEL,
    _image_meta,
    _Item,
    _row,
    _update_indexes,
)
from photosim.core.scan.walk import walk_folders
from photosim.core.tags import TAGS_PER_PHOTO
from photosim.core.types import (
    DecodedImage,
    DecodeRequest,
    Embedder,
    Error,
    Progress,
    ScanStage,
    ScanSummary,
)

if TYPE_CHECKING:
    from photosim.core.scan.workers import DecodePool

__all__ = [
    "CRASH_ENV",
    "DEFAULT_SHARD_SIZE",
    "SCHEMA",
    "AttachSummary",
    "ClusterError",
    "ClusterOptions",
    "IndexSummary",
    "ShardWorker",
    "ShardsFailedError",
    "attach_shards",
    "embed_shard",
    "index_shards",
    "read_manifest",
    "shard_table",
]

logger = logging.getLogger(__name__)

SCHEMA = "photosim-shards/v1"
MANIFEST_NAME = "manifest.json"
PLAN_NAME = "plan.parquet"
LOCK_NAME = ".index.lock"  # held by the run writing into the shard folder
DEFAULT_SHARD_SIZE = 512
DEFAULT_RETRIES = 3
CONNECT_PROBE_S = 5.0  # a TCP probe of the head's port before Ray's own (slow, noisy) connect
STARTUP_TIMEOUT_S = 600.0  # workers that load no model in this long are given up
PROGRESS_INTERVAL_S = 0.25
CHECKSUM_THREADS = 8
META_ATTACHED = "shards_attached:"  # catalog meta key prefix: + manifest id + ":" + shard index
# Fault injection for the tests: "once:MARKER" makes the first worker that finds the file
# MARKER delete it and exit mid-shard (a dying worker); "shard:N" makes every worker exit when
# it starts shard N (a shard that fails for good).
CRASH_ENV = "PHOTOSIM_CLUSTER_CRASH"
_SHARD_FILE = "shard-{:05d}.parquet"


class ClusterError(Error):
    """The distributed index cannot run or attach; ``str()`` is one line saying what to do."""


# ---------------------------------------------------------------------------- types
@dataclass(frozen=True)
class ClusterOptions:
    """How ``photosim index`` uses a Ray cluster.

    Attributes:
        address: A running cluster's address (``HEAD:6379``, ``ray://HEAD:10001`` or
            ``auto``); None starts a local Ray instance on this machine (or uses the Ray
            connection this process already has).
        num_cpus: CPUs of the local instance (None: all); only without ``address``.
        workers: Ray actors to start (None: as many as the cluster's CPUs, or GPUs, allow).
        cpus_per_worker: CPUs each worker reserves: its decode processes and, on a CPU, its
            torch threads (None: 1 on CPU-only clusters, else the cluster's CPUs per GPU, at
            most 8).
        gpus_per_worker: GPUs each worker reserves (None: 1 when the cluster has GPUs, else 0).
        shard_size: Files per shard (None: the plan's, else :data:`DEFAULT_SHARD_SIZE`).
        retries: Restarts of a dying worker and tries of a failing shard before the shard
            fails for good (Ray's ``max_restarts`` and ``max_task_retries``).
        thumbnails: Keep each photo's JPEG thumbnail in the shards (about 10-20 KB a photo).
        verbose: Show the workers' logs.
    """

    address: str | None = None
    num_cpus: int | None = None
    workers: int | None = None
    cpus_per_worker: int | None = None
    gpus_per_worker: float | None = None
    shard_size: int | None = None
    retries: int = DEFAULT_RETRIES
    thumbnails: bool = True
    verbose: bool = False


@dataclass
class IndexSummary:
    """What one ``photosim index`` run did.

    Attributes:
        out_dir: The shard folder.
        model_id: Descriptor model of the shards.
        address: The cluster connected to, or ``"local"``.
        workers: Ray workers used.
        devices: Where the workers ran inference (e.g. ``["cpu"]``, ``["cuda:0"]``).
        files: Files in the plan.
        shards: Shards in the plan.
        shards_done: Shards embedded by this run.
        shards_skipped: Shards found finished and intact (not embedded again).
        files_done: Files embedded by this run.
        errors: Files recorded with an error, in the shards this run wrote.
        redone: One line per shard embedded again because its file was corrupt, missing or
            not in the manifest.
        failed: ``(shard, reason)`` of shards that failed for good (a rerun retries them).
        notes: Other remarks (folders that could not be listed, workers that never started).
        seconds: Wall-clock time of the whole run.
        embed_seconds: From the first shard handed to a worker to the last one finished.
        cancelled: Stopped early on request; a rerun resumes.
    """

    out_dir: str
    model_id: str
    address: str = "local"
    workers: int = 0
    devices: list[str] = field(default_factory=list)
    files: int = 0
    shards: int = 0
    shards_done: int = 0
    shards_skipped: int = 0
    files_done: int = 0
    errors: int = 0
    redone: list[str] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    cancelled: bool = False

    @property
    def images_per_second(self) -> float:
        """Files embedded per second of :attr:`embed_seconds` (0 when none)."""
        return self.files_done / self.embed_seconds if self.embed_seconds > 0 else 0.0


@dataclass
class AttachSummary:
    """What :func:`attach_shards` imported.

    Attributes:
        out_dir: The shard folder.
        model_id: Descriptor model of the shards.
        shards: Shards in the manifest.
        attached: Shards imported by this call.
        already: Shards this catalog had imported before (skipped).
        unfinished: Shards with no finished file yet (``photosim index`` again finishes them).
        corrupt: Shards whose file does not match the manifest's checksum (not imported).
        photos: Photo rows written (errors included).
        errors: Rows of unreadable files.
        descriptors: Descriptors written (one per content).
        seconds: Wall-clock time.
    """

    out_dir: str
    model_id: str
    shards: int = 0
    attached: int = 0
    already: int = 0
    unfinished: list[int] = field(default_factory=list)
    corrupt: list[int] = field(default_factory=list)
    photos: int = 0
    errors: int = 0
    descriptors: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------- manifest
def _manifest_path(out_dir: Path) -> Path:
    return out_dir / MANIFEST_NAME


def _shard_path(out_dir: Path, index: int) -> Path:
    return out_dir / _SHARD_FILE.format(index)


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a shard folder, or None when it has none.

    Returns:
        The parsed ``manifest.json`` (keys: ``schema``, ``id``, ``model``, ``pooling``,
        ``model_id``, ``input_size``, ``dim``, ``thumb_size``, ``folders``, ``exclude``,
        ``shard_size``, ``files``, ``plan``, ``shards``; each shard ``index``, ``file``,
        ``files`` and, once finished, ``rows``, ``errors``, ``bytes``, ``sha256``).

    Raises:
        ClusterError: The file exists but is not a photosim shard manifest.
    """
    path = _manifest_path(Path(out_dir))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ClusterError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        manifest = json.loads(text)
    except ValueError:
        raise ClusterError(
            f"{path} is not valid JSON: move it away or choose another --out"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise ClusterError(
            f"{path} is not a photosim shard manifest ({SCHEMA}): choose another --out"
        )
    return manifest


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, whole:
    ``path.tmp``, fsync, rename, fsync of the folder."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every OS or filesystem syncs a directory
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _save_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    _write_atomic(_manifest_path(out_dir), json.dumps(manifest, indent=1).encode("utf-8"))


def _sha256_file(path: Path) -> str | None:
    """SHA-256 hex of a file, None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _model_spec(settings: Settings) -> tuple[str, int, int]:
    """``(model_id, input_size, dim)`` of the settings' backbone, without loading it.

    Raises:
        ClusterError: ``--model none`` or an unknown model.
    """
    from photosim import embed  # the registry only: no torch

    if settings.model == "none":
        raise ClusterError("photosim index computes descriptors: choose a model, not 'none'")
    spec = embed.MODELS.get(settings.model)
    if spec is None:
        raise ClusterError(
            f"unknown model {settings.model!r}; choose one of {', '.join(embed.MODELS)}"
        )
    return f"{settings.model}-{settings.pooling}", spec.input_size, spec.dim


def _incompatible(
    manifest: dict[str, Any], out_dir: Path, folders: list[str], settings: Settings,
    options: ClusterOptions,
) -> str | None:
    """Why a shard folder was made for another job (another model, other folders, other
    exclusions, another shard size, another thumbnail setting), or None when it was not."""
    model_id, _, _ = _model_spec(settings)
    planned = manifest.get("folders", [])
    where = f"{out_dir} holds shards of {manifest.get('model_id')} over {', '.join(planned)}"
    if manifest.get("model_id") != model_id:
        return (f"{where}, not of {model_id}: choose another --out (or --model "
                f"{manifest.get('model')} --pooling {manifest.get('pooling')})")
    if sorted(planned) != sorted(folders):
        return f"{where}, not over {', '.join(folders)}: choose another --out"
    excluded = manifest.get("exclude", [])
    if sorted(excluded) != sorted(settings.exclude):
        return (f"{where} with other --exclude patterns ({', '.join(excluded) or 'none'}): "
                "choose another --out")
    if options.shard_size is not None and options.shard_size != manifest.get("shard_size"):
        return (f"{where} in shards of {manifest.get('shard_size')} files, not "
                f"{options.shard_size}: leave out --shard-size or choose another --out")
    thumb = settings.thumb_size if options.thumbnails else 0
    if manifest.get("thumb_size") != thumb:
        if manifest.get("thumb_size"):
            fix = "with thumbnails: leave out --no-thumbnails"
        else:
            fix = "without thumbnails: add --no-thumbnails"
        return f"{where} {fix}, or choose another --out"
    return None


# ---------------------------------------------------------------------------- plan
def _pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``.

    Raises:
        ClusterError: The ``cluster`` extra is not installed.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ClusterError(
            "shards need pyarrow: pip install 'photosim[cluster]' (ray and pyarrow)"
        ) from None
    return pa, pq


def _plan(
    out_dir: Path, folders: list[str], settings: Settings, options: ClusterOptions,
    cancel: CancelToken, notes: list[str],
) -> Generator[Progress, None, dict[str, Any] | None]:
    """Walk, sort, cut into shards; write ``plan.parquet`` and the manifest.

    Returns:
        The new manifest, or None when cancelled during the walk.
    """
    pa, pq = _pyarrow()
    model_id, input_size, dim = _model_spec(settings)
    files: dict[str, tuple[str, int, int]] = {}  # path -> (root, size, mtime_ns)
    walk_errors: list[tuple[str, str]] = []
    next_report = 0
    for root in folders:
        for batch in walk_folders(root, settings.exclude, errors=walk_errors):
            for path, size, mtime_ns in batch:
                files.setdefault(path, (root, size, mtime_ns))  # nested roots: the first
            if len(files) >= next_report:
                next_report = len(files) + 1000
                yield Progress(ScanStage.WALKING, len(files), 0, root)
            if cancel.cancelled():
                return None
    for path, reason in walk_errors:
        logger.warning("%s: %s", path, reason)
        notes.append(f"{path}: {reason}")
    paths = sorted(files)
    size = options.shard_size or DEFAULT_SHARD_SIZE
    shards = [
        {"index": i, "file": _SHARD_FILE.format(i), "files": len(paths[start : start + size])}
        for i, start in enumerate(range(0, len(paths), size))
    ]
    text, raw = zip(*(_text_path(p) for p in paths)) if paths else ((), ())
    table = pa.table({
        "shard": pa.array([i // size for i in range(len(paths))], pa.int32()),
        "path": pa.array(text, pa.string()),
        "path_bytes": pa.array(raw, pa.binary()),
        "folder": pa.array([files[p][0] for p in paths], pa.string()),
        "size": pa.array([files[p][1] for p in paths], pa.int64()),
        "mtime_ns": pa.array([files[p][2] for p in paths], pa.int64()),
    })
    sink = pa.BufferOutputStream()
    # One row group per shard: the driver reads a shard's files when it hands the shard out,
    # never the whole list (tens of millions of paths would not fit the driver's memory).
    pq.write_table(table, sink, compression="zstd", row_group_size=size)
    data = sink.getvalue().to_pybytes()
    _write_atomic(out_dir / PLAN_NAME, data)
    manifest = {
        "schema": SCHEMA,
        "id": uuid.uuid4().hex,
        "photosim": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "model": settings.model,
        "pooling": settings.pooling,
        "model_id": model_id,
        "input_size": input_size,
        "dim": dim,
        "descriptor": f"float16 little-endian, fixed_size_binary({2 * dim})",
        "thumb_size": settings.thumb_size if options.thumbnails else 0,
        "folders": folders,
        "exclude": list(settings.exclude),
        "shard_size": size,
        "files": len(paths),
        "plan": {"file": PLAN_NAME, "sha256": hashlib.sha256(data).hexdigest()},
        "shards": shards,
    }
    _save_manifest(out_dir, manifest)
    return manifest


def _text_path(path: str) -> tuple[str, bytes | None]:
    """``(UTF-8 text, None)`` of a path, or ``(escaped text, raw bytes)`` for a name that is
    not valid UTF-8 (a surrogate-escaped ``str`` from the OS)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(path)
        return raw.decode("utf-8", "backslashreplace"), raw
    return path, None


class _Plan:
    """The planned files of each shard, read from ``plan.parquet`` one shard at a time.

    Args:
        out_dir: The shard folder.
        manifest: Its manifest.

    Raises:
        ClusterError: ``plan.parquet`` is missing or does not match the manifest's checksum.
    """

    def __init__(self, out_dir: Path, manifest: dict[str, Any]) -> None:
        _, pq = _pyarrow()
        path = out_dir / manifest["plan"]["file"]
        actual = _sha256_file(path)
        if actual is None:
            raise ClusterError(f"cannot read the plan {path}: choose another --out to plan again")
        if actual != manifest["plan"]["sha256"]:
            raise ClusterError(f"the plan {path} is corrupt (checksum mismatch): choose another "
                               "--out to plan again")
        self._file = pq.ParquetFile(path)
        self._shards = len(manifest["shards"])
        self._table = None
        if self._file.metadata.num_row_groups != self._shards:  # written otherwise: read it all
            self._table = self._file.read()

    def files(self, index: int) -> list[tuple[str, str, int, int]]:
        """``(path, folder, size bytes, mtime_ns)`` of the files of shard ``index``, in order."""
        if self._table is None:
            columns = self._file.read_row_group(index).to_pydict()
        else:
            import pyarrow.compute as pc

            columns = self._table.filter(pc.equal(self._table["shard"], index)).to_pydict()
        return [
            (os.fsdecode(raw) if raw is not None else text, folder, size, mtime_ns)
            for text, raw, folder, size, mtime_ns in zip(
                columns["path"], columns["path_bytes"], columns["folder"], columns["size"],
                columns["mtime_ns"],
            )
        ]


def _check_shards(
    out_dir: Path, manifest: dict[str, Any], summary: IndexSummary
) -> Generator[Progress, None, list[int]]:
    """Which shards to embed: those not finished, and finished ones whose file is gone,
    corrupt (checksum mismatch) or without a manifest entry. Notes each redone shard in
    ``summary.redone`` and forgets its manifest entry.

    Returns:
        Shard indexes to embed, in order.
    """
    shards = manifest["shards"]
    yield Progress(ScanStage.WALKING, 0, 0, f"checking {len(shards)} shards")
    with ThreadPoolExecutor(CHECKSUM_THREADS, thread_name_prefix="photosim-shard-sha") as pool:
        sums = list(pool.map(
            lambda s: _sha256_file(_shard_path(out_dir, s["index"])), shards
        ))
    todo: list[int] = []
    for shard, actual in zip(shards, sums):
        index = shard["index"]
        expected = shard.get("sha256")
        if expected is not None and actual == expected:
            summary.shards_skipped += 1
            continue
        if expected is not None:
            why = "missing" if actual is None else "corrupt (checksum mismatch)"
            summary.redone.append(f"shard {index} was {why}: embedded again")
        elif actual is not None:
            summary.redone.append(
                f"shard {index} had no manifest entry (an interrupted run): embedded again"
            )
        for key in ("rows", "errors", "bytes", "sha256", "device"):
            shard.pop(key, None)
        todo.append(index)
    return todo


# ---------------------------------------------------------------------------- one shard
def embed_shard(
    embedder: Embedder,
    pool: DecodePool,
    files: Sequence[tuple[str, str, int, int]],
    thumb_size: int,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    overlap: bool = True,
) -> list[dict[str, Any]]:
    """Hash, decode and embed one shard's files with the desktop scan's code.

    Each file's content hash is read first (:func:`file_content_hash`); a content met earlier
    in the shard reuses that decode and descriptor (a copy costs a read, not a decode).
    Decoding (:func:`~photosim.core.scan.imageio.decode_file`) runs in ``pool``'s worker
    processes: with ``overlap``, a few files ahead while the embedder works on the previous
    batch (inference on a GPU); without, a batch is decoded, then embedded, in turn (CPU
    inference: the worker then uses the CPUs Ray reserved for it, not twice as many).

    Args:
        embedder: An :class:`~photosim.core.types.Embedder`, used from this thread only; one
            with a classifier head (``tag_model``) also gives the top
            :data:`~photosim.core.tags.TAGS_PER_PHOTO` ImageNet classes.
        pool: A :class:`~photosim.core.scan.workers.DecodePool` (its own processes: a decoder
            that crashes or hangs costs that file, recorded with the reason).
        files: ``(path, folder, size bytes, mtime_ns)`` of each file, in shard order.
        thumb_size: Longest side of the JPEG thumbnails in pixels (0: none).
        batch_size: Images per inference batch (>= 1).
        progress: Called as ``progress(files_done, errors)`` as files finish, or None.
        overlap: Decode the next files while a batch is being embedded.

    Returns:
        One dict per file, in order: the scan's photo columns (see
        :func:`photosim.core.scan.pipeline._row`) plus ``descriptor`` (``2 * D`` bytes of
        float16, None on error rows), ``thumbnail`` (JPEG bytes or None), ``tag_labels`` and
        ``tag_probs`` (lists or None).

    Raises:
        photosim.core.types.Error: The embedder failed (the driver retries the shard).
    """
    tag_model = getattr(embedder, "tag_model", "") or ""
    batch_size = max(1, batch_size)
    content_of: list[str | None] = [None] * len(files)  # None: the file could not be read
    read_errors: dict[int, str] = {}
    members: dict[str, list[int]] = {}  # content hash -> its files, the decoded one first
    failed: dict[str, str] = {}  # content hash -> why its decode failed
    decoded: dict[str, _Decoded] = {}
    to_embed: list[str] = []
    queue = deque(range(len(files)))
    done = errors = 0

    def resolved(content_hash: str) -> bool:
        entry = decoded.get(content_hash)
        return content_hash in failed or (entry is not None and entry.descriptor is not None)

    lookahead = max(1, pool.size * LOOKAHEAD_PER_WORKER)
    while queue or pool.outstanding or to_embed:
        while (
            queue
            and pool.outstanding < lookahead
            and (overlap or len(to_embed) + pool.outstanding < batch_size)
        ):
            i = queue.popleft()
            path = files[i][0]
            try:
                content_hash, _ = file_content_hash(path)
            except OSError as exc:
                read_errors[i] = f"cannot read file: {exc.strerror or exc}"
                done, errors = done + 1, errors + 1
                continue
            content_of[i] = content_hash
            if content_hash in members:  # a copy of content met earlier in this shard
                members[content_hash].append(i)
                if resolved(content_hash):
                    done += 1
                    errors += content_hash in failed
                continue
            members[content_hash] = [i]
            pool.submit(content_hash, DecodeRequest(path, embedder.input_size, thumb_size))
        for outcome in pool.poll(timeout=0.01 if to_embed else 0.2):
            key = str(outcome.key)
            if outcome.image is None:
                failed[key] = outcome.error or "unknown error"
                done += len(members[key])
                errors += len(members[key])
            else:
                decoded[key] = _Decoded(outcome.image)
                to_embed.append(key)
        finished = not queue and pool.outstanding == 0
        if (
            to_embed
            and (len(to_embed) >= batch_size or finished)
            and (overlap or pool.outstanding == 0)
        ):
            batch, to_embed = to_embed[:batch_size], to_embed[batch_size:]
            _embed_batch(embedder, tag_model, [decoded[h] for h in batch])
            done += sum(len(members[h]) for h in batch)
        if progress is not None:
            progress(done, errors)

    rows: list[dict[str, Any]] = []
    metas: dict[str, dict[str, Any]] = {}
    nothing = dict.fromkeys(("descriptor", "thumbnail", "tag_labels", "tag_probs"))
    for i, (path, folder, size, mtime_ns) in enumerate(files):
        item = _Item(path, folder, size, mtime_ns, "new")
        known = content_of[i]
        if known is None:
            rows.append({**_row(item, None, None, read_errors[i]), **nothing})
            continue
        content_hash = known
        if content_hash in failed:
            rows.append({**_row(item, content_hash, None, failed[content_hash]), **nothing})
            continue
        entry = decoded[content_hash]
        if content_hash not in metas:
            metas[content_hash] = _image_meta(entry.image)
        row = _row(item, entry.image.content_hash, metas[content_hash], None)
        row["descriptor"] = entry.descriptor
        row["thumbnail"] = entry.image.thumbnail or None
        row["tag_labels"], row["tag_probs"] = entry.labels, entry.probabilities
        rows.append(row)
    return rows


@dataclass
class _Decoded:
    """One content decoded in a shard, and what inference gave it."""

    image: DecodedImage
    descriptor: bytes | None = None  # float16 little-endian
    labels: list[int] | None = None
    probabilities: list[float] | None = None


def _embed_batch(embedder: Embedder, tag_model: str, entries: list[_Decoded]) -> None:
    """Descriptors (and tags) of a batch, stored on the entries; frees their model inputs."""
    inputs = [entry.image.model_input for entry in entries]
    if tag_model:
        vectors, labels, probs = embedder.embed_and_tag(  # type: ignore[attr-defined]
            inputs, TAGS_PER_PHOTO
        )
    else:
        vectors, labels, probs = embedder.embed(inputs), None, None  # type: ignore[arg-type]
    blobs = np.ascontiguousarray(vectors, dtype="<f2")
    for j, entry in enumerate(entries):
        entry.descriptor = blobs[j].tobytes()
        entry.image.model_input = None  # 150 KB each: not kept past its batch
        if labels is not None and probs is not None:
            entry.labels = [int(x) for x in labels[j]]
            entry.probabilities = [float(x) for x in probs[j]]


def _safe_text(value: str | None) -> str | None:
    """A string that Parquet can store (valid UTF-8): surrogate escapes made visible."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def shard_table(rows: Sequence[dict[str, Any]], dim: int, metadata: dict[str, str]) -> Any:
    """The Arrow table of one shard (columns in the module docstring).

    Args:
        rows: :func:`embed_shard`'s rows.
        dim: Descriptor dimension D (the ``descriptor`` column holds ``2 * D`` bytes).
        metadata: Key-value metadata of the file (``photosim.model_id``, ...).

    Returns:
        A ``pyarrow.Table``.
    """
    pa, _ = _pyarrow()
    paths = [_text_path(r["path"]) for r in rows]

    def col(name: str) -> list[Any]:
        return [r.get(name) for r in rows]

    def text(name: str) -> list[str | None]:
        return [_safe_text(r.get(name)) for r in rows]

    columns = {
        "path": pa.array([p[0] for p in paths], pa.string()),
        "path_bytes": pa.array([p[1] for p in paths], pa.binary()),
        "folder": pa.array(text("folder"), pa.string()),
        "size": pa.array(col("size"), pa.int64()),
        "mtime_ns": pa.array(col("mtime_ns"), pa.int64()),
        "content_hash": pa.array(col("content_hash"), pa.string()),
        "width": pa.array(col("width"), pa.int32()),
        "height": pa.array(col("height"), pa.int32()),
        "format": pa.array(text("format"), pa.string()),
        "taken_at": pa.array(text("taken_at"), pa.string()),
        "camera": pa.array(text("camera"), pa.string()),
        "phash": pa.array(col("phash"), pa.int64()),
        "dhash": pa.array(col("dhash"), pa.int64()),
        "variants": pa.array(col("variants"), pa.binary()),
        "grey": pa.array([None if g is None else bool(g) for g in col("grey")], pa.bool_()),
        "capture": pa.array(text("capture"), pa.string()),
        "status": pa.array(col("status"), pa.string()),
        "error": pa.array(text("error"), pa.string()),
        "descriptor": pa.array(col("descriptor"), pa.binary(2 * dim)),
        "thumbnail": pa.array(col("thumbnail"), pa.binary()),
        "tag_labels": pa.array(col("tag_labels"), pa.list_(pa.int16())),
        "tag_probs": pa.array(col("tag_probs"), pa.list_(pa.float32())),
    }
    table = pa.table(columns)
    return table.replace_schema_metadata({**metadata, "photosim.schema": SCHEMA})


def _parquet_bytes(table: Any) -> bytes:
    pa, pq = _pyarrow()
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def _maybe_crash(spec: str, index: int) -> None:
    """Fault injection of the tests (:data:`CRASH_ENV`): end this process abruptly, as a
    worker killed by the OS or a node lost would."""
    kind, _, arg = spec.partition(":")
    if kind == "once":
        try:
            os.remove(arg)
        except FileNotFoundError:
            return
        os._exit(3)
    if kind == "shard" and arg.strip() == str(index):
        os._exit(3)


class ShardWorker:
    """The body of one Ray actor: an embedder loaded once and its decode processes.

    Plain Python (wrapped with ``ray.remote`` by the driver), so that it can be tested and
    pickled by reference. Ray runs it with ``max_concurrency=2``: :meth:`progress` answers
    while :meth:`run` works (the driver never gives one worker two shards at once).

    Args:
        model: Registry name of the backbone.
        pooling: Pooling name.
        device: Inference device (None: CUDA if Ray gave this worker a GPU, else CPU...).
        weights: Optional state_dict file (it must exist on every node).
        precision: CPU inference precision.
        cpus: CPUs reserved for this worker: decode processes, and torch threads on a CPU.
        batch_size: Images per inference batch.
        crash: Fault injection spec (:data:`CRASH_ENV`), "" for none.

    Raises:
        photosim.embed.EmbedError: The model cannot be loaded on this node.
    """

    def __init__(
        self, model: str, pooling: str, device: str | None, weights: str | None,
        precision: str, cpus: int, batch_size: int, crash: str = "",
    ) -> None:
        from photosim import embed
        from photosim.core.scan.workers import DecodePool

        self.embedder = embed.load_embedder(
            model, pooling=pooling, device=device, weights=weights, precision=precision,
            progress=False,
        )
        if getattr(self.embedder, "threads", None) is not None:
            self.embedder.threads = max(1, cpus)  # type: ignore[attr-defined]
        # On a CPU, decoding and inference take turns, each on the worker's CPUs, so that a
        # worker uses what Ray reserved for it (overlapping them, as the desktop scan does,
        # made each worker use twice its share: 2 workers on 2 cores ran no faster than 1).
        # Next to a GPU, the decoders work while the GPU embeds the previous batch.
        self.overlap = str(self.embedder.device) != "cpu"
        self.pool = DecodePool(max(1, cpus), niceness=0 if self.overlap else DECODE_NICENESS)
        self.batch_size = batch_size
        self.crash = crash
        self.state = (-1, 0, 0)  # (shard, files done, errors)

    def info(self) -> dict[str, Any]:
        """What the driver checks: photosim version, model, device, host."""
        return {
            "version": __version__,
            "model_id": self.embedder.model_id,
            "tag_model": getattr(self.embedder, "tag_model", "") or "",
            "device": str(self.embedder.device),
            "precision": getattr(self.embedder, "precision", ""),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def progress(self) -> tuple[int, int, int]:
        """``(shard, files done, errors)`` of the shard in hand (shard -1 before the first)."""
        return self.state

    def run(
        self, index: int, files: list[tuple[str, str, int, int]], out_dir: str, thumb_size: int
    ) -> dict[str, Any]:
        """Embed one shard and write ``out_dir/shard-NNNNN.parquet`` atomically.

        Returns:
            ``index``, ``rows``, ``errors``, ``bytes``, ``sha256`` (of the file written),
            ``device``, ``seconds``.
        """
        started = time.monotonic()
        self.state = (index, 0, 0)
        if self.crash:
            _maybe_crash(self.crash, index)

        def report(done: int, errors: int) -> None:
            self.state = (index, done, errors)

        rows = embed_shard(self.embedder, self.pool, files, thumb_size, self.batch_size, report,
                           overlap=self.overlap)
        info = self.info()
        table = shard_table(rows, self.embedder.dim, {
            "photosim.model_id": info["model_id"], "photosim.tag_model": info["tag_model"],
            "photosim.device": info["device"], "photosim.precision": str(info["precision"]),
            "photosim.shard": str(index), "photosim.version": __version__,
        })
        data = _parquet_bytes(table)
        _write_atomic(_shard_path(Path(out_dir), index), data)
        return {
            "index": index,
            "rows": len(rows),
            "errors": sum(1 for r in rows if r["status"] != STATUS_OK),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "device": info["device"],
            "seconds": round(time.monotonic() - started, 3),
        }

    def close(self) -> None:
        """Stop the decode processes."""
        self.pool.close()


# ---------------------------------------------------------------------------- the driver
class ShardsFailedError(ClusterError):
    """Some shards failed for good; the others are finished and a rerun resumes.

    Attributes:
        summary: The run's :class:`IndexSummary` (``failed`` names the shards).
    """

    def __init__(self, summary: IndexSummary) -> None:
        shards = ", ".join(f"shard {i} ({why})" for i, why in summary.failed[:3])
        more = f" and {len(summary.failed) - 3} more" if len(summary.failed) > 3 else ""
        super().__init__(
            f"{len(summary.failed)} of {summary.shards} shards failed for good: {shards}{more}; "
            f"the other shards are kept: run the same command again to resume"
        )
        self.summary = summary


def _ray() -> Any:
    """The ``ray`` module.

    Raises:
        ClusterError: The ``cluster`` extra is not installed.
    """
    try:
        import ray
    except ImportError:
        raise ClusterError(
            "photosim index needs Ray: pip install 'photosim[cluster]' (ray and pyarrow)"
        ) from None
    return ray


def _reason(exc: BaseException) -> str:
    """One line out of a Ray exception: the worker's own error where there is one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and not isinstance(cause, type(exc)):
        return _reason(cause)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # Ray's messages carry tracebacks: the last line names the error itself.
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~", "Traceback")):
            # photosim's own errors say what to do: without their class's dotted name.
            line = re.sub(r"^photosim\.[\w.]+: ", "", line)
            return line[:600]
    return type(exc).__name__


def _death(exc: BaseException) -> str:
    """One line for a worker that died in the middle of a shard (Ray's own message is a
    paragraph; the worker's log on its node has the details)."""
    text = str(exc)
    if "unavailable" in text.lower():
        return "its worker died or became unreachable"
    kind = re.search(r"Worker exit type: (\w+)", text)
    return f"its worker died ({kind.group(1) if kind else type(exc).__name__})"


def _probe(address: str) -> None:
    """A TCP connection to the head's port, with a short timeout: an address where nothing
    listens fails in seconds, with the OS's reason, before Ray's own connection (which waits
    longer and writes its retries to stderr).

    Raises:
        ClusterError: Not ``HOST:PORT``, or nothing accepts connections there.
    """
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"{address!r} is not a Ray address: give HOST:PORT, e.g. 10.0.0.9:6379")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_PROBE_S).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
        raise ClusterError(
            f"cannot reach the Ray cluster at {address}: {why}; start one with "
            "`ray start --head` on the head machine (or use --engine local)"
        ) from None


@contextlib.contextmanager
def _stderr_to_log() -> Iterator[list[str]]:
    """Send what native code writes to stderr (Ray's C++ core logs each connection retry
    there) to the log file instead, for the duration of the block.

    Yields:
        A list that holds the captured text once the block has ended.
    """
    captured: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        yield captured
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace").strip()
            if text:
                logger.info("Ray said while connecting:\n%s", text[-4000:])
                captured.append(text)


@contextlib.contextmanager
def _connected(ray: Any, options: ClusterOptions) -> Iterator[str]:
    """Connect to the cluster (or start a local instance) for the block; disconnect after.

    A process already connected (``ray.is_initialized()``) keeps its connection: used as is
    when no address is given, and never shut down here.

    Yields:
        The address connected to, or ``"local"``.

    Raises:
        ClusterError: Unreachable cluster, or another connection already open.
    """
    level = logging.INFO if options.verbose else logging.ERROR
    if ray.is_initialized():
        if options.address is not None:
            raise ClusterError("this process is already connected to a Ray cluster")
        yield "local (this process's Ray)"
        return
    if options.address is not None:
        _probe(options.address)
        said: list[str] = []
        try:
            with _stderr_to_log() as said:
                ray.init(address=options.address, logging_level=level,
                         log_to_driver=options.verbose)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError...: one line
            raise ClusterError(_connect_error(options.address, exc, "".join(said))) from None
        where = options.address
    else:
        try:
            # address="local": a new instance even where `ray start` left one running.
            ray.init(address="local", num_cpus=options.num_cpus, include_dashboard=False,
                     logging_level=level, log_to_driver=options.verbose)
        except Exception as exc:
            raise ClusterError(f"cannot start a local Ray instance: {_reason(exc)}") from None
        where = "local"
    try:
        yield where
    finally:
        ray.shutdown()


def _connect_error(address: str, exc: BaseException, said: str) -> str:
    """One line for a failed ``ray.init(address=...)``: what went wrong and what to do."""
    if "InvalidAuthToken" in said or "Unauthenticated" in said:
        return (
            f"the Ray cluster at {address} refused this machine: it needs the cluster's auth "
            "token (set RAY_AUTH_MODE=token, with the head's ~/.ray/auth_token copied here or "
            "in $RAY_AUTH_TOKEN)"
        )
    reason = _reason(exc)
    if reason.startswith("Failed to connect to Ray cluster"):
        reason = "no Ray head answered there (another service on that port, or a firewall?)"
    return (
        f"cannot reach the Ray cluster at {address}: {reason}; start one with "
        "`ray start --head` on the head machine (or use --engine local)"
    )


@contextlib.contextmanager
def _writing_into(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock file for the block: one ``photosim index`` writes into a shard
    folder at a time (filelock's OS lock, released when the process dies).

    Raises:
        ClusterError: Another run holds it, or the lock file cannot be created.
    """
    import filelock

    lock = filelock.FileLock(str(out / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise ClusterError(f"another photosim index is writing into {out}: wait for it to "
                           "finish (or stop it), or choose another --out") from None
    except OSError as exc:
        raise ClusterError(f"cannot lock {out}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


def index_shards(
    folders: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    settings: Settings | None = None,
    options: ClusterOptions | None = None,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, IndexSummary]:
    """Embed folders on a Ray cluster into Parquet shards under ``out_dir`` (resumable).

    A first run plans (walk, sort, cut) and writes the manifest; a rerun checks the finished
    shards' checksums, embeds only what is missing, corrupt or unfinished, and connects to
    no cluster when nothing is left to do.

    Args:
        folders: Folders to index (their files must be readable by every worker at the same
            paths).
        out_dir: Shard folder, on a filesystem every worker mounts at the same path; created
            if missing.
        settings: Model, pooling, device, weights, precision, exclude patterns, thumbnail
            size and inference batch size (defaults when None).
        options: Cluster address, workers, shard size, retries (defaults: a local Ray).
        cancel: Checked between progress reports; a cancelled run kills its workers and
            keeps the finished shards.

    Yields:
        :class:`Progress`: ``WALKING`` while planning and checking shards, ``PROCESSING``
        with files done of the plan's total (finished shards count as done), then ``DONE``.

    Returns:
        The run's :class:`IndexSummary`.

    Raises:
        ClusterError: Ray or pyarrow missing, a folder that is not one, a shard folder made
            for another model or other folders, an unreachable cluster, workers that cannot
            load the model or run another photosim version.
        ShardsFailedError: Shards that failed for good (the rest is kept).
    """
    started = time.monotonic()
    settings = settings or Settings()
    options = options or ClusterOptions()
    cancel = cancel or CancelToken()
    roots = [os.path.abspath(os.fspath(f)) for f in folders]
    for root in roots:
        if not os.path.isdir(root):
            raise ClusterError(f"not a folder: {root}")
        if _text_path(root)[1] is not None:
            raise ClusterError(f"the folder name {root!r} is not valid UTF-8: index a parent "
                               "folder or rename it")
    if not roots:
        raise ClusterError("give at least one folder to index")
    if options.shard_size is not None and options.shard_size < 1:
        raise ClusterError("--shard-size must be at least 1")
    model_id, _, _ = _model_spec(settings)
    _pyarrow()
    out = Path(os.path.abspath(os.fspath(out_dir)))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ClusterError(f"cannot create {out}: {exc.strerror or exc}") from None
    with _writing_into(out):
        summary = IndexSummary(out_dir=str(out), model_id=model_id)
        manifest = read_manifest(out)
        todo: list[int] = []
        if manifest is not None:
            refusal = _incompatible(manifest, out, roots, settings, options)
            if refusal is not None and any(s.get("sha256") for s in manifest["shards"]):
                raise ClusterError(refusal)
            if refusal is not None:  # planned, but nothing embedded yet: plan again
                summary.notes.append("planned again: no shard was finished for the old plan")
                manifest = None
        if manifest is not None:
            todo = yield from _check_shards(out, manifest, summary)
            summary.files, summary.shards = manifest["files"], len(manifest["shards"])
            if not todo:
                summary.seconds = time.monotonic() - started
                yield Progress(ScanStage.DONE, summary.files, summary.files, "nothing to do")
                return summary
        ray = _ray()
        with _connected(ray, options) as where:
            summary.address = where
            if manifest is not None:
                _save_manifest(out, manifest)  # the entries of the shards to redo are forgotten
            else:
                manifest = yield from _plan(out, roots, settings, options, cancel, summary.notes)
                if manifest is None:
                    summary.cancelled = True
                    summary.seconds = time.monotonic() - started
                    return summary
                todo = [shard["index"] for shard in manifest["shards"]]
                summary.files, summary.shards = manifest["files"], len(manifest["shards"])
            if todo:
                run = _Run(ray, out, manifest, todo, settings, options, cancel, summary)
                yield from run.run()
        summary.seconds = time.monotonic() - started
        yield Progress(ScanStage.DONE, summary.files, summary.files, "done", summary.errors)
        if summary.failed:
            raise ShardsFailedError(summary)
        return summary


@dataclass
class _Slot:
    """One worker place of the pool: its actor and what it is doing."""

    actor: Any
    state: str = "starting"  # starting, idle, busy, checking, dead
    shard: int = -1
    progress_ref: Any = None
    done: int = 0  # files of the shard in hand, from the last progress report
    errors: int = 0


class _Run:
    """The driver's loop: start workers, hand each one shard at a time, record what comes
    back, retry what failed, report progress. Runs on the caller's thread."""

    def __init__(
        self, ray: Any, out: Path, manifest: dict[str, Any], todo: list[int],
        settings: Settings, options: ClusterOptions, cancel: CancelToken, summary: IndexSummary,
    ) -> None:
        self.ray, self.out, self.manifest = ray, out, manifest
        self.settings, self.options, self.cancel, self.summary = settings, options, cancel, summary
        self.todo = deque(todo)
        self.plan = _Plan(out, manifest)
        self.by_index = {shard["index"]: shard for shard in manifest["shards"]}
        self.attempts: dict[int, int] = {}
        self.slots: list[_Slot] = []
        self.refs: dict[Any, tuple[str, _Slot]] = {}  # object ref -> (what, slot)
        pending = set(todo)
        self.done_files = sum(
            shard["files"] for shard in manifest["shards"] if shard["index"] not in pending
        )
        self.replacements = 0
        self.first_submit: float | None = None
        self.last_finish = 0.0
        self.started = time.monotonic()
        self.ever_ready = False
        self.start_failures: list[str] = []

    # ------------------------------------------------------------------ workers
    def _sizes(self) -> tuple[int, int, float]:
        """``(workers, cpus per worker, gpus per worker)`` that the cluster can hold.

        Raises:
            ClusterError: No node can hold one worker.
        """
        resources = self.ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        gpw = self.options.gpus_per_worker
        if gpw is None:
            gpw = 1.0 if gpus >= 1 else 0.0
        cpw = self.options.cpus_per_worker
        if cpw is None:
            cpw = 1 if gpw == 0 else max(1, min(8, int(cpus // max(gpus, 1))))
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        if not any(n.get("CPU", 0) >= cpw and n.get("GPU", 0) >= gpw for n in nodes):
            need = f"{cpw} CPUs" + (f" and {gpw:g} GPUs" if gpw else "")
            raise ClusterError(
                f"no node of the cluster has {need} for one worker (the cluster has {cpus:g} "
                f"CPUs and {gpus:g} GPUs): lower --cpus-per-worker"
            )
        capacity = int(gpus // gpw) if gpw else int(cpus // cpw)
        workers = self.options.workers or capacity
        if workers > capacity:
            self.summary.notes.append(
                f"the cluster has room for {capacity} workers of {cpw} CPUs, not {workers}"
            )
            workers = capacity
        return max(1, min(workers, len(self.todo))), cpw, gpw

    def _start(self) -> None:
        count, cpw, gpw = self._sizes()
        device = self.settings.device or (None if gpw else "cpu")
        self._actor_class = self.ray.remote(ShardWorker).options(
            num_cpus=cpw, num_gpus=gpw, max_restarts=max(0, self.options.retries),
            max_task_retries=0,  # the driver resubmits, counting each shard's tries itself
            max_concurrency=2,
        )
        self._actor_args = (
            self.settings.model, self.settings.pooling, device, self.settings.weights,
            self.settings.precision, cpw, max(1, self.settings.batch_size),
            os.environ.get(CRASH_ENV, ""),
        )
        for _ in range(count):
            self._new_slot()
        self.summary.workers = count

    def _new_slot(self, slot: _Slot | None = None) -> None:
        actor = self._actor_class.remote(*self._actor_args)
        if slot is None:
            slot = _Slot(actor)
            self.slots.append(slot)
        else:
            slot.actor, slot.state, slot.shard, slot.progress_ref = actor, "starting", -1, None
        self.refs[actor.info.remote()] = ("info", slot)

    def _on_info(self, slot: _Slot, ref: Any) -> None:
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            if slot.state == "starting":
                # A worker that cannot load the model (weights missing on its node, no such
                # device...) would fail again: not replaced.
                self.start_failures.append(_reason(exc))
                with contextlib.suppress(Exception):
                    self.ray.kill(slot.actor, no_restart=True)
                slot.state = "dead"
                if self.ever_ready:
                    self.summary.notes.append(f"a worker could not start: {_reason(exc)}")
            else:
                self._lost(slot)
            return
        if info["version"] != __version__:
            raise ClusterError(
                f"the worker on {info['host']} runs photosim {info['version']}, this machine "
                f"{__version__}: install the same version on every node"
            )
        if info["model_id"] != self.summary.model_id:
            raise ClusterError(f"the worker on {info['host']} loaded {info['model_id']}, not "
                               f"{self.summary.model_id}")
        if info["device"] not in self.summary.devices:
            self.summary.devices.append(info["device"])
        self.ever_ready = True
        slot.state = "idle"

    def _lost(self, slot: _Slot) -> None:
        """A worker that is dead for good: replaced while the budget allows."""
        with contextlib.suppress(Exception):
            self.ray.kill(slot.actor, no_restart=True)
        budget = len(self.slots) * (self.options.retries + 1)
        if self.replacements < budget and (self.todo or self._busy()):
            self.replacements += 1
            self._new_slot(slot)
        else:
            slot.state = "dead"

    def _busy(self) -> bool:
        return any(s.state == "busy" for s in self.slots)

    # ------------------------------------------------------------------ shards
    def _submit(self, slot: _Slot, index: int) -> None:
        files = self.plan.files(index)
        ref = slot.actor.run.remote(index, files, str(self.out), self.manifest["thumb_size"])
        self.refs[ref] = ("shard", slot)
        slot.state, slot.shard, slot.done, slot.errors = "busy", index, 0, 0
        self.attempts[index] = self.attempts.get(index, 0) + 1
        if self.first_submit is None:
            self.first_submit = time.monotonic()

    def _on_shard(self, slot: _Slot, ref: Any) -> None:
        index = slot.shard
        slot.state, slot.shard, slot.done, slot.errors = "idle", -1, 0, 0
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            self._retry(index, _death(exc))
            # Ray restarts the actor (max_restarts); ask it whether it is back.
            slot.state = "checking"
            self.refs[slot.actor.info.remote()] = ("info", slot)
            return
        except self.ray.exceptions.RayError as exc:
            self._retry(index, _reason(exc))
            return
        shard = self.by_index[index]
        if result["rows"] != shard["files"]:  # never expected: a bug, said loudly
            self._retry(index, f"{result['rows']} rows written for {shard['files']} files")
            return
        shard.update({k: result[k] for k in ("rows", "errors", "bytes", "sha256", "device")})
        _save_manifest(self.out, self.manifest)
        self.summary.shards_done += 1
        self.summary.files_done += result["rows"]
        self.summary.errors += result["errors"]
        self.done_files += result["rows"]
        self.last_finish = time.monotonic()

    def _retry(self, index: int, reason: str) -> None:
        tries = self.attempts.get(index, 0)
        if tries <= self.options.retries:
            logger.warning("shard %d failed (%s): trying again", index, reason)
            self.summary.notes.append(f"shard {index} was tried again: {reason}")
            self.todo.appendleft(index)
        else:
            logger.error("shard %d failed for good after %d tries: %s", index, tries, reason)
            self.summary.failed.append((index, f"{tries} tries; last: {reason}"))

    # ------------------------------------------------------------------ loop
    def _poll_progress(self) -> None:
        pending = [s.progress_ref for s in self.slots if s.progress_ref is not None]
        if pending:
            ready, _ = self.ray.wait(pending, num_returns=len(pending), timeout=0)
            for slot in self.slots:
                if slot.progress_ref is not None and slot.progress_ref in ready:
                    with contextlib.suppress(self.ray.exceptions.RayError):
                        shard, done, errors = self.ray.get(slot.progress_ref)
                        if shard == slot.shard:
                            slot.done, slot.errors = done, errors
                    slot.progress_ref = None
        for slot in self.slots:
            if slot.state == "busy" and slot.progress_ref is None:
                slot.progress_ref = slot.actor.progress.remote()

    def _report(self) -> Progress:
        running = sum(s.done for s in self.slots if s.state == "busy")
        errors = self.summary.errors + sum(s.errors for s in self.slots if s.state == "busy")
        starting = sum(1 for s in self.slots if s.state == "starting")
        message = f"starting {starting} workers" if starting and not self.ever_ready else ""
        return Progress(ScanStage.PROCESSING, self.done_files + running, self.summary.files,
                        message, errors)

    def run(self) -> Generator[Progress, None, None]:
        """Start the workers and process every shard to do; progress every
        :data:`PROGRESS_INTERVAL_S`."""
        self._start()
        yield self._report()
        try:
            while self.todo or self._busy():
                if self.cancel.cancelled():
                    self.summary.cancelled = True
                    break
                for slot in self.slots:
                    if slot.state == "idle" and self.todo:
                        self._submit(slot, self.todo.popleft())
                if self.refs:
                    ready, _ = self.ray.wait(list(self.refs), num_returns=1,
                                             timeout=PROGRESS_INTERVAL_S)
                    for ref in ready:
                        what, slot = self.refs.pop(ref)
                        if what == "info":
                            self._on_info(slot, ref)
                        else:
                            self._on_shard(slot, ref)
                self._poll_progress()
                if all(s.state == "dead" for s in self.slots):
                    reason = "; ".join(dict.fromkeys(self.start_failures)) or "they died"
                    if not self.ever_ready:
                        raise ClusterError(f"no worker could start: {reason}")
                    for index in self.todo:
                        self.summary.failed.append((index, f"no worker left ({reason})"))
                    self.todo.clear()
                    break
                if not self.ever_ready and time.monotonic() - self.started > STARTUP_TIMEOUT_S:
                    raise ClusterError(
                        f"no worker started within {STARTUP_TIMEOUT_S:g} s: is the cluster "
                        "busy with other jobs?"
                    )
                yield self._report()
        finally:
            self._stop()
        if self.first_submit is not None and self.last_finish:
            self.summary.embed_seconds = self.last_finish - self.first_submit
        if self.summary.failed:
            self.summary.failed.sort()
        yield self._report()

    def _stop(self) -> None:
        """Close the decode processes of the live workers, then end the actors."""
        live = [s for s in self.slots if s.state in ("idle", "busy")]
        if not self.summary.cancelled and live:
            closing = [s.actor.close.remote() for s in live if s.state == "idle"]
            with contextlib.suppress(Exception):
                self.ray.wait(closing, num_returns=len(closing), timeout=10)
        for slot in self.slots:
            with contextlib.suppress(Exception):
                self.ray.kill(slot.actor, no_restart=True)


# ---------------------------------------------------------------------------- attach
def attach_shards(
    catalog: Catalog, out_dir: str | os.PathLike[str], cancel: CancelToken | None = None
) -> Generator[Progress, None, AttachSummary]:
    """Import the finished shards of ``out_dir`` into a catalog, one transaction per shard.

    Per shard: the photo rows (errors included), thumbnails, descriptors under the shards'
    model id (the library's model from now on), hash vectors and tags, as a scan's batch
    commits them; the shard is remembered (by its checksum) so that attaching again skips it.
    Then, like the end of a scan, the vector indexes are synced and every new vector's
    nearest neighbours stored, so ``duplicates`` and ``similar`` work at once. Shards not
    finished yet, or whose file does not match the manifest's checksum, are left out and
    listed in the summary.

    Args:
        catalog: Open catalog (used from this thread only).
        out_dir: A folder written by :func:`index_shards`.
        cancel: Checked between shards; attached shards stay, a later call adds the rest.

    Yields:
        :class:`Progress`: ``PROCESSING`` with files attached of the manifest's total, then
        ``INDEXING`` and ``DONE``.

    Returns:
        The :class:`AttachSummary`.

    Raises:
        ClusterError: pyarrow missing, no manifest, or a shard of another model.
    """
    _, pq = _pyarrow()
    started = time.monotonic()
    cancel = cancel or CancelToken()
    out = Path(os.path.abspath(os.fspath(out_dir)))
    manifest = read_manifest(out)
    if manifest is None:
        raise ClusterError(f"{out} has no {MANIFEST_NAME}: not a folder written by "
                           "`photosim index`")
    model_id, dim = manifest["model_id"], int(manifest["dim"])
    summary = AttachSummary(out_dir=str(out), model_id=model_id, shards=len(manifest["shards"]))
    total = int(manifest["files"])
    prefix = f"{META_ATTACHED}{manifest['id']}:"
    with catalog.transaction():
        for root in manifest["folders"]:
            catalog.add_folder(root)
    done = 0
    yield Progress(ScanStage.PROCESSING, 0, total, "attaching")
    for shard in manifest["shards"]:
        if cancel.cancelled():
            break
        index, expected = shard["index"], shard.get("sha256")
        if expected is None:
            summary.unfinished.append(index)
            continue
        if catalog.get_meta(f"{prefix}{index}") == expected:
            summary.already += 1
            done += shard["files"]
            continue
        try:
            data = _shard_path(out, index).read_bytes()
        except OSError:
            data = b""
        if hashlib.sha256(data).hexdigest() != expected:
            summary.corrupt.append(index)
            continue
        table = pq.read_table(io.BytesIO(data))
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        if meta.get("photosim.model_id") != model_id:
            raise ClusterError(f"shard {index} holds {meta.get('photosim.model_id')} "
                               f"descriptors, the manifest says {model_id}")
        with catalog.transaction():
            photos, errors, descriptors = _attach_table(
                catalog, table.to_pydict(), model_id, meta.get("photosim.tag_model", ""), dim
            )
            if descriptors:
                catalog.set_meta(META_MODEL, model_id)
            catalog.set_meta(f"{prefix}{index}", expected)
        summary.attached += 1
        summary.photos += photos
        summary.errors += errors
        summary.descriptors += descriptors
        done += shard["files"]
        yield Progress(ScanStage.PROCESSING, done, total, "attaching", summary.errors)
    if summary.attached:
        scan_summary = ScanSummary(embedded=summary.descriptors)
        yield from _update_indexes(catalog, model_id, cancel, scan_summary)
    summary.seconds = time.monotonic() - started
    yield Progress(ScanStage.DONE, done, total, "done", summary.errors)
    return summary


def _attach_table(
    catalog: Catalog, columns: dict[str, list[Any]], model_id: str, tag_model: str, dim: int
) -> tuple[int, int, int]:
    """Write one shard's columns into the catalog (inside the caller's transaction).

    Returns:
        ``(photo rows, error rows, descriptors)`` written.
    """
    keys = ("folder", "size", "mtime_ns", "content_hash", "status", "error", "width", "height",
            "format", "taken_at", "camera", "phash", "dhash", "variants", "capture")
    rows: list[dict[str, Any]] = []
    firsts: dict[str, int] = {}  # readable content -> its first row
    for i, text in enumerate(columns["path"]):
        raw = columns["path_bytes"][i]
        row = {"path": os.fsdecode(raw) if raw is not None else text}
        row.update({key: columns[key][i] for key in keys})
        grey = columns["grey"][i]
        row["grey"] = None if grey is None else int(grey)
        rows.append(row)
        if row["status"] == STATUS_OK and row["content_hash"] not in firsts:
            firsts[row["content_hash"]] = i
    catalog.upsert_photos(rows)
    hashes, first = list(firsts), list(firsts.values())
    for content_hash, i in firsts.items():
        if columns["thumbnail"][i]:
            catalog.put_thumbnail(content_hash, columns["thumbnail"][i])
    with_vectors = [(h, i) for h, i in zip(hashes, first) if columns["descriptor"][i] is not None]
    if with_vectors:
        vectors = np.frombuffer(
            b"".join(columns["descriptor"][i] for _, i in with_vectors), dtype="<f2"
        ).reshape(len(with_vectors), dim)
        catalog.put_embeddings(model_id, [h for h, _ in with_vectors], vectors)
    if hashes:  # hash vectors commit with their photos, as in a scan
        catalog.put_embeddings(HASH_MODEL, hashes, hash_vectors(
            np.array([columns["phash"][i] for i in first], np.int64),
            np.array([columns["dhash"][i] for i in first], np.int64),
        ))
    tagged = [(h, i) for h, i in zip(hashes, first) if columns["tag_labels"][i]]
    if tag_model and tagged:
        catalog.put_tags(
            tag_model, [h for h, _ in tagged],
            np.array([columns["tag_labels"][i] for _, i in tagged], np.int64),
            np.array([columns["tag_probs"][i] for _, i in tagged], np.float32),
        )
    errors = sum(1 for row in rows if row["status"] == STATUS_ERROR)
    return len(rows), errors, len(with_vectors)
