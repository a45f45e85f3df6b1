"""Logging set-up: messages to stderr and a rotating file in the user log folder."""

from __future__ import annotations

import logging
import logging.handlers

from photosim.config import log_dir

LOG_FILENAME = "photosim.log"
LOG_BYTES = 2 * 1024 * 1024
LOG_BACKUPS = 3


def setup_logging(verbose: bool = False, to_file: bool = True) -> None:
    """Configure the root logger once.

    Args:
        verbose: INFO on stderr instead of WARNING.
        to_file: Also keep a rotating log (2 MB x 3) in :func:`photosim.config.log_dir`;
            silently skipped when that folder cannot be written.
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    if to_file:
        try:
            folder = log_dir()
            folder.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                folder / LOG_FILENAME, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS,
                encoding="utf-8",
            )
        except OSError:
            return
        handler.setLevel(logging.INFO)
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        root.addHandler(handler)
