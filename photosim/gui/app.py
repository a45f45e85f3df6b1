"""The application: QApplication set-up, logging, excepthook, the main window.

``main()`` is the ``photosim-gui`` entry point and what ``photosim`` runs with no arguments.
Start-up imports Qt and the Qt-free core only; torch is imported by the first scan or query
that needs a model, in a worker thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QThread, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from photosim import __version__
from photosim.config import default_catalog_path, log_dir
from photosim.log import setup_logging

logger = logging.getLogger(__name__)


def excepthook(exc_type, exc, tb) -> None:
    """Log an uncaught exception and, on the GUI thread, show it in a dialog."""
    logger.critical("uncaught exception", exc_info=(exc_type, exc, tb))
    app = QApplication.instance()
    if app is None or QThread.currentThread() is not app.thread():
        return
    box = QMessageBox(QMessageBox.Icon.Critical, "photosim: unexpected error",
                      f"{exc_type.__name__}: {exc}\n\nThe details are in the log file in "
                      f"{log_dir()}. photosim keeps running; please report this.")
    box.setDetailedText("".join(traceback.format_exception(exc_type, exc, tb)))
    box.exec()


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    logger.critical("uncaught exception in thread %s", args.thread,
                    exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication with names, icon and the system palette (light or dark)."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("photosim")
    app.setOrganizationName("photosim")
    app.setApplicationDisplayName("photosim")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("photosim")
    from photosim.gui.icon import app_icon

    app.setWindowIcon(app_icon())
    return app


def main(argv: list[str] | None = None) -> int:
    """Open the main window and run the event loop. Returns the exit status."""
    started = time.perf_counter()
    multiprocessing.freeze_support()  # decode workers are spawned; frozen builds need this
    argv = list(sys.argv if argv is None else argv)
    setup_logging()
    sys.excepthook = excepthook
    threading.excepthook = _thread_excepthook
    app = create_app(argv[:1])
    from photosim.core.catalog import CatalogError
    from photosim.gui.settings import AppSettings
    from photosim.gui.windows.main_window import MainWindow

    try:
        window = MainWindow(default_catalog_path(), AppSettings())
    except CatalogError as exc:
        QMessageBox.critical(None, "photosim", str(exc))
        return 1
    window.show()
    shown = time.perf_counter() - started
    logger.info("window shown %.3f s after start", shown)
    for arg in argv[1:]:  # paths passed by a file manager: folders to add, images to query
        if Path(arg).exists():
            window.handle_dropped_path(str(Path(arg).resolve()))
    if "PHOTOSIM_EXIT_AFTER_SHOW" in os.environ:  # start-up time measurement
        print(f"first window shown after {shown:.3f} s; torch imported: "
              f"{'torch' in sys.modules}", flush=True)
        QTimer.singleShot(0, window.close)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
