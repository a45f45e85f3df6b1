"""Background tasks: run core functions and generators on named thread pools.

A :class:`Task` wraps a callable ``fn(control) -> value | generator``. When the callable returns a
generator, the task drives it: each yielded value becomes a (throttled) ``progress`` signal and
the generator's return value becomes ``finished``. Any exception is logged and emitted as
``failed`` — a background failure never vanishes.

Pools (each with a name, a size and a reason; :func:`wait_all` waits for them at quit):

- ``scan`` (1 thread): scans write the catalog; one writer at a time, and the decode work
  already fans out to processes inside the core pipeline.
- ``work`` (1 thread): grouping, search, cleanup, undo, library loads. Serial so an
  interactive request never competes with another for the 1-2 cores a laptop spares.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from photosim.library import CancelToken, explain

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1


@dataclass(frozen=True)
class PoolSpec:
    """A named thread pool: ``name``, ``size`` (max threads) and ``reason`` it exists."""

    name: str
    size: int
    reason: str


POOLS: dict[str, PoolSpec] = {
    "scan": PoolSpec("scan", 1, "one catalog writer; decoding fans out to processes in core"),
    "work": PoolSpec("work", 1, "grouping, search, cleanup and loads, one at a time"),
}
_pools: dict[str, QThreadPool] = {}


def pool(name: str) -> QThreadPool:
    """The thread pool called ``name`` (see :data:`POOLS`), created on first use."""
    if name not in _pools:
        spec = POOLS[name]
        p = QThreadPool()
        p.setObjectName(f"photosim-{spec.name}")
        p.setMaxThreadCount(spec.size)
        _pools[name] = p
    return _pools[name]


def wait_all(timeout_ms: int = 30_000) -> bool:
    """Wait for every pool to finish its tasks. Returns True when all are idle."""
    ok = True
    for p in _pools.values():
        ok = p.waitForDone(timeout_ms) and ok
    return ok


class TaskControl:
    """Cancel and pause flags shared between the GUI thread and one task (thread-safe)."""

    def __init__(self) -> None:
        self.cancel_token = CancelToken()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        """Ask the task to stop at its next batch boundary (also resumes a paused task)."""
        self.cancel_token.cancel()
        self._running.set()

    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.cancel_token.cancelled()

    def pause(self) -> None:
        """Hold the task at its next yield."""
        self._running.clear()

    def resume(self) -> None:
        """Let a paused task go on."""
        self._running.set()

    @property
    def paused(self) -> bool:
        """True while paused."""
        return not self._running.is_set()

    def wait_if_paused(self) -> None:
        """Block (in the worker thread) while paused."""
        self._running.wait()


class TaskSignals(QObject):
    """Signals of one task; lives on the GUI thread, emitted from the worker (queued).

    Signals:
        progress(object): A yielded value (e.g. :class:`~photosim.core.types.Progress`),
            at most about ten a second, plus always the last one.
        finished(object): The return value.
        failed(str): A one-line reason; the traceback is in the log.
        notice(str): A non-blocking remark from inside the task (e.g. hash-only mode).
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    notice = Signal(str)


class Task(QRunnable):
    """Run ``fn(control)`` on a pool thread; drive it if it returns a generator.

    Args:
        name: For logs and error messages ("scan", "find similar"...).
        fn: Called in the worker thread with the :class:`TaskControl`. It must open its own
            catalog connection (SQLite connections belong to one thread).
        throttle: Emit at most one progress per ``PROGRESS_INTERVAL_S``.
    """

    def __init__(
        self, name: str, fn: Callable[[TaskControl], Any], throttle: bool = True
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the Python object owns it; Qt must not delete it under us
        self.name = name
        self.fn = fn
        self.throttle = throttle
        self.control = TaskControl()
        self.signals = TaskSignals()
        self.done = False

    def run(self) -> None:  # noqa: D401 - Qt override
        try:
            result = self.fn(self.control)
            if inspect.isgenerator(result):
                result = self._drive(result)
        except Exception as exc:  # every failure is reported, never lost
            logger.exception("background task %r failed", self.name)
            self.done = True
            # A full disk, a locked or read-only catalog...: say what to do, not a raw error.
            self.signals.failed.emit(f"{self.name} failed: {explain(exc) or exc}")
            return
        self.done = True
        self.signals.finished.emit(result)

    def _drive(self, gen: Any) -> Any:
        last = 0.0
        pending = None
        while True:
            self.control.wait_if_paused()
            try:
                value = next(gen)
            except StopIteration as stop:
                if pending is not None:
                    self.signals.progress.emit(pending)
                return stop.value
            now = time.monotonic()
            if not self.throttle or now - last >= PROGRESS_INTERVAL_S:
                last, pending = now, None
                self.signals.progress.emit(value)
            else:
                pending = value


_live: set[Task] = set()


def start(task: Task, pool_name: str = "work") -> Task:
    """Queue ``task`` on the named pool; keep it alive until it has reported."""
    _live.add(task)
    task.signals.finished.connect(lambda _r: _live.discard(task))
    task.signals.failed.connect(lambda _m: _live.discard(task))
    pool(pool_name).start(task)
    return task


def while_open(method: Callable[..., Any]) -> Callable[..., Any]:
    """Skip a result slot when its queued signal arrives after the window shut down.

    Workers finish on pool threads and their signals are queued; one can be delivered after
    the window closed its library, and must then do nothing (not raise, not show a dialog).
    The slot's object is the main window itself or holds it as ``frame``; either way the
    window's ``closed`` says whether it shut down.

    Args:
        method: The slot, ``method(self, *args)``.

    Returns:
        The guarded slot (``None`` once the window is closed).
    """

    @functools.wraps(method)
    def slot(self: Any, *args: Any) -> Any:
        if getattr(self, "frame", self).closed:
            return None
        return method(self, *args)

    return slot
