"""GUI test fixtures: an isolated settings store, a hash-only main window, leak checks.

Every GUI test fails on a Qt warning (``qt_log_level_fail``), and on a thread left running.
Scans use hash-only mode (model "none": no torch) and one decode process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import main_windows

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402

from photosim.gui import tasks  # noqa: E402
from photosim.gui.settings import AppSettings  # noqa: E402

# Harmless platform chatter of the offscreen plugin.
QT_LOG_IGNORE = ["This plugin does not support propagateSizeHints()"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/gui" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*QT_LOG_IGNORE))


@pytest.fixture
def app_settings(tmp_path: Path) -> AppSettings:
    """Settings in a private INI file: hash-only, one decode process."""
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings = AppSettings(store)
    settings.set("model", "none")
    settings.set("workers", 1)
    return settings


@pytest.fixture(autouse=True)
def _no_leaked_threads(qapp) -> Iterator[None]:
    """Fail a test that leaves a Python thread or a pool task running."""
    before = set(threading.enumerate())
    yield
    assert tasks.wait_all(30_000), "a background task is still running"
    for p in tasks._pools.values():
        assert p.activeThreadCount() == 0
    # Qt pool threads that ran Python code show up as dummy threads: the pool check covers them.
    left = [
        t for t in threading.enumerate()
        if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
    ]
    for t in left:  # executor threads of the core may need a moment to exit
        t.join(5)
    left = [t for t in left if t.is_alive()]
    assert not left, f"threads left running: {left}"


@pytest.fixture
def make_window(qtbot, tmp_path: Path, app_settings: AppSettings) -> Iterator[Callable]:
    """``make_window()``: a shown main window on a fresh catalog; closed (and joined) after."""
    with main_windows(qtbot, tmp_path / "catalog.db", app_settings) as make:
        yield make
