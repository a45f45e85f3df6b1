"""Cooperative cancellation for long-running generators."""

from __future__ import annotations

import threading


class CancelToken:
    """A thread-safe flag that long work checks between batches.

    The GUI sets it from the GUI thread, the CLI from its SIGINT handler; core generators call
    :meth:`cancelled` between batches and stop cleanly (committing what is done) when it is set.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop at the next batch boundary."""
        self._event.set()

    def cancelled(self) -> bool:
        """Return True once :meth:`cancel` has been called."""
        return self._event.is_set()
