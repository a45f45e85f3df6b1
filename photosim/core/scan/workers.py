"""Decode worker processes with per-file isolation.

Decoding untrusted files is the riskiest thing photosim does: a hostile file can crash a
native decoder, hang it, or ask for gigabytes. Each worker is a process that decodes one file at
a time; the parent watches every worker with a deadline, so a crash or a hang costs exactly
that file (recorded with a reason) and the worker is replaced. ``concurrent.futures`` cannot
do this: a dead worker breaks the whole ``ProcessPoolExecutor`` and a hung task cannot be
killed.

Workers use the ``spawn`` start method (never ``fork``: the parent may hold torch's threads and
CUDA state), ignore SIGINT (the parent decides how to stop), run single-threaded numeric
libraries, and cap their address space where the OS allows it.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Hashable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from photosim.core.types import DecodedImage, DecodeRequest

logger = logging.getLogger(__name__)

DECODE_TIMEOUT_S = 60.0
WORKER_MEMORY_BYTES = 4 * 1024**3
# Reasons that say more about the machine than the file (a crash, a hang, memory): rescans
# retry such files instead of trusting the recorded error.
TRANSIENT_REASONS = ("decoder crashed", "decoding took longer", "image needs more memory")
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cpus() -> int:
    """CPUs this process may run on (respects affinity masks, e.g. a container's CPU set)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class DecodeOutcome:
    """The result of one submitted file.

    Attributes:
        key: The caller's key given to :meth:`DecodePool.submit`.
        request: The request.
        image: The decoded image, or None on failure.
        error: The reason on failure, else None.
    """

    key: Hashable
    request: DecodeRequest
    image: DecodedImage | None
    error: str | None


def _worker_main(conn: Connection, memory_limit: int, niceness: int = 0) -> None:
    """Worker loop: receive a DecodeRequest, send back ``("ok", DecodedImage)`` or an error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness > 0 and hasattr(os, "nice"):
        try:
            os.nice(niceness)
        except OSError:  # not permitted: decode at normal priority
            pass
    for name in _THREAD_ENV:
        os.environ[name] = "1"
    if memory_limit:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ImportError, ValueError, OSError):  # not on Windows / not permitted
            pass
    from photosim.core.scan.imageio import DecodeError, decode_file

    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        started = time.process_time()
        try:
            reply: tuple[str, Any] = ("ok", decode_file(request))
        except DecodeError as exc:
            reply = ("error", str(exc))
        except MemoryError:
            reply = ("error", "image needs more memory than a decoder may use")
        except Exception as exc:  # a decoder bug must cost one file, not the scan
            reply = ("error", f"decoder failed: {type(exc).__name__}: {exc}")
        try:
            conn.send((*reply, time.process_time() - started))
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, ctx: Any, memory_limit: int, niceness: int = 0) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_worker_main,
            args=(child, memory_limit, niceness),
            name="photosim-decode",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.job: tuple[Hashable, DecodeRequest] | None = None
        self.started = 0.0

    def kill(self) -> None:
        try:
            self.conn.close()
        finally:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=5)


class DecodePool:
    """A fixed number of decode worker processes fed from a queue.

    Args:
        processes: Number of worker processes (>= 1).
        timeout: Seconds one file may take before its worker is killed and replaced.
        memory_limit: Address-space cap per worker in bytes (0 for none; POSIX only).
        niceness: Added to the workers' nice value (0: same priority as the caller; POSIX
            only). A scan that runs inference on the same CPU cores lowers its decoders'
            priority: torch's intra-op threads meet at a barrier after every layer, and a
            decoder holding one of their cores for a time slice stalls the whole team (we
            measured inference 2-4x slower next to decoders at equal priority). At lower
            priority decoders take the cycles inference leaves, so neither waits long.

    Use it as a context manager; :meth:`close` stops the workers.
    """

    def __init__(
        self,
        processes: int,
        timeout: float = DECODE_TIMEOUT_S,
        memory_limit: int = WORKER_MEMORY_BYTES,
        niceness: int = 0,
    ) -> None:
        self._ctx = mp.get_context("spawn")
        self._timeout = timeout
        self._memory_limit = memory_limit
        self._niceness = niceness
        self._workers = [
            _Worker(self._ctx, memory_limit, niceness) for _ in range(max(1, processes))
        ]
        self._queue: collections.deque[tuple[Hashable, DecodeRequest]] = collections.deque()
        # CPU-seconds the workers spent on the files they returned, and how many files: the
        # scan balances inference threads against decoding with them.
        self.cpu_seconds = 0.0
        self.completed = 0

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        """Number of worker processes."""
        return len(self._workers)

    @property
    def outstanding(self) -> int:
        """Files submitted and not yet returned by :meth:`poll`."""
        return len(self._queue) + sum(1 for w in self._workers if w.job is not None)

    def submit(self, key: Hashable, request: DecodeRequest) -> None:
        """Queue one file; its outcome comes back from :meth:`poll` with the same key."""
        self._queue.append((key, request))
        self._dispatch()

    def _dispatch(self) -> None:
        for index in range(len(self._workers)):
            # An idle worker may have died (killed from outside): replace it and resend, once.
            for _attempt in range(2):
                worker = self._workers[index]
                if not self._queue or worker.job is not None:
                    break
                job = self._queue.popleft()
                worker.job, worker.started = job, time.monotonic()
                try:
                    worker.conn.send(job[1])
                    break
                except (BrokenPipeError, OSError):
                    worker.job = None
                    self._queue.appendleft(job)
                    self._replace(worker)

    def set_niceness(self, niceness: int) -> None:
        """Lower the running workers' priority by ``niceness`` relative to this process (and
        start replacements that way). POSIX only; a no-op where not permitted."""
        self._niceness = niceness
        if not hasattr(os, "setpriority"):
            return
        target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + niceness)
        for worker in self._workers:
            try:
                os.setpriority(os.PRIO_PROCESS, worker.process.pid, target)
            except (OSError, TypeError):  # exited, or not permitted
                pass

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        index = self._workers.index(worker)
        self._workers[index] = _Worker(self._ctx, self._memory_limit, self._niceness)

    def poll(self, timeout: float = 0.1) -> list[DecodeOutcome]:
        """Return the outcomes ready within ``timeout`` seconds (possibly none).

        Returns at once when no file is being decoded: callers waiting for something else
        must block on that, not loop on this.

        A worker that crashed or passed the deadline yields an outcome with an error reason
        and is replaced by a fresh process.
        """
        busy = {w.conn: w for w in self._workers if w.job is not None}
        if not busy:
            return []
        now = time.monotonic()
        deadline = min(w.started for w in busy.values()) + self._timeout
        ready = wait(list(busy), timeout=max(0.0, min(timeout, deadline - now)))
        outcomes: list[DecodeOutcome] = []
        for conn in ready:
            worker = busy[conn]  # type: ignore[index]
            assert worker.job is not None
            key, request = worker.job
            try:
                status, payload, cpu_seconds = worker.conn.recv()
            except (EOFError, OSError):
                code = worker.process.exitcode
                worker.process.join(timeout=1)
                code = worker.process.exitcode if code is None else code
                outcomes.append(
                    DecodeOutcome(key, request, None, f"decoder crashed (exit code {code})")
                )
                worker.job = None
                self._replace(worker)
                continue
            worker.job = None
            self.cpu_seconds += cpu_seconds
            self.completed += 1
            if status == "ok":
                outcomes.append(DecodeOutcome(key, request, payload, None))
            else:
                outcomes.append(DecodeOutcome(key, request, None, payload))
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.job is not None and now - worker.started > self._timeout:
                key, request = worker.job
                logger.warning("decode of %s timed out; restarting its worker", request.path)
                outcomes.append(
                    DecodeOutcome(
                        key, request, None, f"decoding took longer than {self._timeout:g} s"
                    )
                )
                worker.job = None
                self._replace(worker)
        self._dispatch()
        return outcomes

    def cancel_pending(self) -> int:
        """Drop queued (not yet started) files. Returns how many were dropped."""
        dropped = len(self._queue)
        self._queue.clear()
        return dropped

    def close(self) -> None:
        """Stop every worker (busy ones are killed)."""
        self._queue.clear()
        for worker in self._workers:
            if worker.job is None:
                try:
                    worker.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        deadline = time.monotonic() + 2.0
        for worker in self._workers:
            if worker.job is None:
                worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            worker.kill()
        self._workers = []
