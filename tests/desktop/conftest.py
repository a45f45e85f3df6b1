"""Desktop-integration fixtures: a private HOME with XDG folders, a short runtime folder for
the single-instance socket, an "argv printer" that stands in for photosim, and (for the Qt
tests) a hash-only main window with the same leak checks as tests/gui.

Qt tests fail on Qt warnings except the offscreen plugin's chatter. Nothing here loads torch.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import main_windows

# Harmless platform chatter of the offscreen plugin (it cannot raise or resize windows).
QT_LOG_IGNORE = [
    "This plugin does not support propagateSizeHints()",
    "This plugin does not support raise()",
]
QT_MODULES = ("test_ipc.py", "test_end_to_end.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in QT_MODULES and "tests/desktop" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*QT_LOG_IGNORE))


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A private, short ``XDG_RUNTIME_DIR`` (socket paths are limited to ~100 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="ps-run-"))
    folder.chmod(0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def desktop_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime_dir: Path) -> dict:
    """A private HOME with XDG folders, set in this process's environment too.

    Returns the environment for subprocesses (hash-only settings, offscreen Qt, the temporary
    catalog of the autouse fixture).
    """
    home = tmp_path / "home"
    paths = {
        "HOME": home,
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_STATE_HOME": tmp_path / "state",  # the log lives here, outside the compared HOME
        "XDG_CACHE_HOME": tmp_path / "cache",
        "XDG_CONFIG_DIRS": tmp_path / "etc-xdg",
        "XDG_DATA_DIRS": tmp_path / "usr-share",
        "XDG_RUNTIME_DIR": runtime_dir,
    }
    home.mkdir()
    for key, value in paths.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    env = dict(os.environ)
    # The app's QSettings (per-user INI in XDG_CONFIG_HOME): hash-only, one decode process.
    settings = tmp_path / "app-config" / "photosim" / "photosim.conf"
    settings.parent.mkdir(parents=True)
    settings.write_text("[settings]\nmodel=none\nworkers=1\n")
    env["PHOTOSIM_TEST_CONFIG"] = str(settings.parent.parent)
    return env


@pytest.fixture
def argv_printer(tmp_path: Path) -> Callable[[], tuple[list[str], Path]]:
    """``make()`` -> (command, log): a stand-in for photosim that appends its argv to log
    (one JSON list per run), so a test sees exactly what a file manager's entry passes."""

    def make() -> tuple[list[str], Path]:
        folder = tmp_path / "printer dir 'q' $x"  # the program's own path needs quoting
        folder.mkdir(exist_ok=True)
        log = tmp_path / "argv.jsonl"
        script = folder / "fake photosim"
        script.write_text(textwrap.dedent(f"""\
            #!{sys.executable}
            import json, sys
            with open({str(log)!r}, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(sys.argv[1:]) + "\\n")
            """))
        script.chmod(0o755)
        return [str(script)], log

    return make


# ---------------------------------------------------------------------------- Qt
@pytest.fixture
def app_settings(tmp_path: Path):
    """Settings in a private INI file: hash-only, one decode process."""
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings

    from photosim.gui.settings import AppSettings

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings = AppSettings(store)
    settings.set("model", "none")
    settings.set("workers", 1)
    return settings


@pytest.fixture
def no_leaks(qapp) -> Iterator[None]:
    """Fail a test that leaves a Python thread or a pool task running."""
    from photosim.gui import tasks

    before = set(threading.enumerate())
    yield
    assert tasks.wait_all(30_000), "a background task is still running"
    for pool in tasks._pools.values():
        assert pool.activeThreadCount() == 0
    left = [t for t in threading.enumerate()
            if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)]
    for t in left:
        t.join(5)
    assert not [t for t in left if t.is_alive()], f"threads left running: {left}"


@pytest.fixture
def make_window(qtbot, tmp_path: Path, app_settings, no_leaks) -> Iterator[Callable]:
    """``make(catalog)``: a shown main window (hash-only); closed and joined after the test."""
    with main_windows(qtbot, tmp_path / "catalog.db", app_settings) as make:
        yield make
