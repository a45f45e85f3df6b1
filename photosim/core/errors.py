"""One-line explanations of what the disk, SQLite or the system refused, and what to do.

The command line and the app show these instead of a traceback when a scan, cleanup or any
other job meets a full disk, a read-only or locked catalog, a corrupt catalog or a permission
problem. Nothing here changes any file: by the time such an error reaches the user, SQLite has
rolled back the transaction in flight, so the catalog still holds everything committed before.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

#: Seconds a command waits for a catalog another process holds locked (``$PHOTOSIM_LOCK_TIMEOUT``).
LOCK_TIMEOUT_ENV = "PHOTOSIM_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT_S = 30.0


def lock_timeout() -> float:
    """Seconds to wait for a locked catalog: ``$PHOTOSIM_LOCK_TIMEOUT``, else 30."""
    try:
        return max(0.0, float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT_S)))
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT_S


def explain(exc: BaseException, catalog: str | os.PathLike[str] | None = None) -> str | None:
    """What went wrong, in one line with what to do; None for an error this does not know.

    Args:
        exc: A :class:`sqlite3.Error` or :class:`OSError` that reached the top of a command.
        catalog: The catalog in use, named in the SQLite messages.

    Returns:
        One line (no trailing full stop), or None.
    """
    where = f"the catalog {Path(catalog)}" if catalog is not None else "the catalog"
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        if "disk is full" in text or getattr(exc, "sqlite_errorcode", None) == 13:
            return (
                f"the disk holding {where} is full: free some space (or choose another "
                f"catalog with --catalog) and run the command again; everything saved before "
                f"is intact and a scan resumes where it stopped"
            )
        if "readonly" in text or "read-only" in text:
            return (
                f"{where} is read-only: make the file and its folder writable, or choose "
                f"another catalog with --catalog"
            )
        if "locked" in text or "busy" in text:
            return (
                f"{where} is in use by another photosim (or another program) and stayed "
                f"locked for {lock_timeout():.0f} s: close the other one and try again "
                f"(${LOCK_TIMEOUT_ENV} sets the wait in seconds)"
            )
        if "unable to open" in text:
            return (
                f"cannot open {where}: check that its folder exists and is writable, or choose "
                f"another catalog with --catalog"
            )
        if "malformed" in text or "not a database" in text or "corrupt" in text:
            return (
                f"{where} is damaged ({exc}): it was left as it is; `photosim scan --rebuild "
                f"FOLDER...` moves it aside and builds a new catalog from your photos"
            )
        return None
    if isinstance(exc, OSError):
        name = exc.filename if exc.filename is not None else "a file"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return (
                f"no space left on the disk while writing {name}: free some space and run the "
                f"command again; what was saved before is intact"
            )
        if exc.errno == errno.EROFS:
            return f"{name} is on a read-only disk: photosim cannot write there"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return (
                f"permission denied: {name}: give your user access to it (or leave it out "
                f"with --exclude)"
            )
        return None
    return None
