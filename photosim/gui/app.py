"""The application: QApplication set-up, logging, excepthook, single instance, the main window.

``main()`` is the ``photosim-gui`` entry point and what ``photosim`` runs for the desktop app
(no arguments, paths, ``--find-similar``, ``--untrusted-args``: see
:mod:`photosim.desktop.cmdline`). A start first offers its request to a running instance of the
same catalog (:mod:`photosim.gui.ipc`) and exits if one took it; otherwise it becomes the
running instance. Start-up imports Qt and the Qt-free core only; torch is imported by the first
scan or query that needs a model, in a worker thread.

``PHOTOSIM_EXIT_AFTER_SHOW=1`` (start-up measurement, smoke tests, the desktop-integration test):
print the time to the first window, wait for the similar searches the command line asked for,
print one line per search (``similar view: PATH: N results (mode)``), then quit.
``PHOTOSIM_REPORT_SEARCHES=1``: print that line for every search, also for requests forwarded by
later starts (how a test or a demo sees that a file manager's entry reached the running app).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback

from PySide6.QtCore import Qt, QThread, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from photosim import __version__
from photosim.config import default_catalog_path, log_dir
from photosim.desktop import qtlibs
from photosim.desktop.cmdline import ArgsError, GuiRequest, parse_gui_args
from photosim.gui import ipc
from photosim.log import setup_logging

logger = logging.getLogger(__name__)

EXIT_AFTER_SHOW_ENV = "PHOTOSIM_EXIT_AFTER_SHOW"
REPORT_SEARCHES_ENV = "PHOTOSIM_REPORT_SEARCHES"
#: PHOTOSIM_EXIT_AFTER_SHOW quits after this long even if a search never ends.
EXIT_TIMEOUT_MS = 120_000


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


def _is_image(path: str) -> bool:
    from photosim.library import SNIFF_BYTES, sniff

    try:
        with open(path, "rb") as fh:
            return sniff(fh.read(SNIFF_BYTES)) is not None
    except OSError:
        return False


def raise_window(window, activation_token: str | None = None) -> None:
    """Bring the window to the front (un-minimise, raise, ask for the focus).

    Args:
        window: The main window.
        activation_token: The ``XDG_ACTIVATION_TOKEN`` of the start that asked; Qt's Wayland
            plugin reads it from the environment on the next activation (compositors refuse
            focus requests without one).
    """
    if activation_token:
        os.environ["XDG_ACTIVATION_TOKEN"] = activation_token
    if window.isMinimized():
        window.setWindowState(window.windowState() & ~Qt.WindowState.WindowMinimized)
    window.show()
    window.raise_()
    window.activateWindow()


def open_request(window, request: GuiRequest) -> list[str]:
    """Act on a start's request: images open the similar view, folders are added and scanned.

    Args:
        window: The main window.
        request: From the command line or a second start.

    Returns:
        The images whose similar search was started, in order.
    """
    queries = []
    for path in request.paths:
        if os.path.isfile(path) and _is_image(path):
            window.find_similar(path)
            queries.append(path)
        elif os.path.isdir(path) and not request.find_similar:
            window.folders.add_folder(path)
        else:
            window.statusBar().showMessage(f"Not an image: {path}" if request.find_similar
                                           else f"Not a folder or an image: {path}", 15000)
    return queries


def attach_server(server: ipc.IPCServer, window) -> None:
    """Serve later starts: each valid request raises the window and is acted on."""

    def on_received(request: ipc.Request) -> None:
        raise_window(window, request.activation_token)
        open_request(window, request.request)

    server.received.connect(on_received)


def _report_search(result) -> None:
    top = ", ".join(f"{os.path.basename(h.photo.path)} {h.similarity:.2f}" for h in result.hits[:3])
    print(f"similar view: {result.query}: {len(result.hits)} results ({result.mode})"
          f"{'; top: ' + top if top else ''}", flush=True)


def _report_searches(window) -> None:
    """Print one line per finished similar search (tests, smoke tests, demos)."""
    window.search_finished.connect(_report_search)
    window.task_failed.connect(lambda m: print(f"task failed: {m}", flush=True))


def _exit_after_searches(window, queries: list[str]) -> None:
    """PHOTOSIM_EXIT_AFTER_SHOW: close the window once the requested searches have ended.

    The start-up rescan is cancelled and the window closes only when no task is left, so no
    result arrives at a closed window.
    """
    window.quiet_errors = True  # no modal dialog may block the exit
    pending = [len(queries)]

    def close_when_idle() -> None:
        window.scanner.cancel()
        if window.busy():
            QTimer.singleShot(50, close_when_idle)
        else:
            window.close()

    def done(*_args) -> None:
        pending[0] -= 1
        if pending[0] == 0:
            QTimer.singleShot(0, close_when_idle)

    window.search_finished.connect(done)
    window.task_failed.connect(done)
    if not queries:
        QTimer.singleShot(0, close_when_idle)
    QTimer.singleShot(EXIT_TIMEOUT_MS, window.close)


def main(argv: list[str] | None = None) -> int:
    """Start the app, or hand the request to the running one. Returns the exit status."""
    started = time.perf_counter()
    multiprocessing.freeze_support()  # decode workers are spawned; frozen builds need this
    argv = list(sys.argv if argv is None else argv)
    args = argv[1:]
    try:
        request = parse_gui_args(args, os.getcwd())
    except ArgsError as exc:
        print(f"photosim: {exc}", file=sys.stderr)
        return 2
    setup_logging()
    missing = qtlibs.missing_libraries()
    if missing:  # Qt would abort with a core dump: say which packages to install instead
        logger.error("missing system libraries for Qt: %s", [lib.soname for lib in missing])
        print(qtlibs.message(missing), file=sys.stderr)
        return 1
    sys.excepthook = excepthook
    threading.excepthook = _thread_excepthook
    catalog_path = default_catalog_path()
    name = ipc.server_name(catalog_path)
    token = os.environ.get("XDG_ACTIVATION_TOKEN")
    try:
        if ipc.send_to_running_instance(args, name, activation_token=token):
            logger.info("handed %s to the running photosim", args or "a start")
            return 0
    except ipc.IPCError as exc:
        print(f"photosim: {exc}", file=sys.stderr)
        return 1
    app = create_app(argv[:1])
    server: ipc.IPCServer | None = ipc.IPCServer(name)
    try:
        server.listen()
    except ipc.AlreadyRunningError:  # another start won the race: hand over to it
        try:
            if ipc.send_to_running_instance(args, name, activation_token=token):
                return 0
        except ipc.IPCError as exc:
            print(f"photosim: {exc}", file=sys.stderr)
            return 1
        server = None
    except ipc.IPCError as exc:
        logger.warning("single instance disabled: %s", exc)
        server = None
    from photosim.gui.settings import AppSettings
    from photosim.gui.windows.main_window import MainWindow
    from photosim.library import CatalogError

    try:
        window = MainWindow(catalog_path, AppSettings())
    except CatalogError as exc:
        if server is not None:
            server.close()
        QMessageBox.critical(None, "photosim", str(exc))
        return 1
    window.show()
    shown = time.perf_counter() - started
    logger.info("window shown %.3f s after start", shown)
    if server is not None:
        attach_server(server, window)
    if EXIT_AFTER_SHOW_ENV in os.environ or REPORT_SEARCHES_ENV in os.environ:
        _report_searches(window)
    queries = open_request(window, request)
    if EXIT_AFTER_SHOW_ENV in os.environ:
        print(f"first window shown after {shown:.3f} s; torch imported: "
              f"{'torch' in sys.modules}", flush=True)
        _exit_after_searches(window, queries)
    try:
        return app.exec()
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    sys.exit(main())
