"""End to end: after ``photosim integrate install``, the exact command line each file manager's
entry holds, run on a real photo, opens photosim's similar view for that photo — in the running
instance (a window and server in this test process) or, with none running, in a new one.

The commands run the installed ``photosim`` in subprocesses, like a file manager would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from desktop_helpers import (  # noqa: E402
    app_env,
    desktop_exec_argv,
    nemo_command_line,
    read_keyfile,
    thunar_command_line,
)
from helpers import make_photo  # noqa: E402

from photosim.config import default_catalog_path  # noqa: E402
from photosim.desktop import entries, integrate  # noqa: E402
from photosim.gui import ipc  # noqa: E402
from photosim.gui.app import attach_server  # noqa: E402

WAIT_MS = 60_000
PHOTO_NAME = "Mum's \"best\" photo 100%.jpg"


@pytest.fixture
def installed(desktop_env) -> tuple[integrate.Layout, list[str]]:
    layout = integrate.user_layout()
    command = integrate.default_command()
    integrate.install(layout, command)
    return layout, command


@pytest.fixture
def library(desktop_env, tmp_path: Path) -> Path:
    """A scanned folder (hash-only, by the CLI) with a photo, its copy, and another photo;
    returns the photo, whose name needs quoting everywhere."""
    folder = tmp_path / "My Pictures"
    photo = make_photo(folder / PHOTO_NAME, 11)
    (folder / "copy of it.jpg").write_bytes(photo.read_bytes())
    make_photo(folder / "another.jpg", 12)
    proc = subprocess.run([sys.executable, "-m", "photosim", "scan", str(folder), "--model",
                           "none", "--workers", "1", "-q"], env=app_env(desktop_env),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return photo


def file_manager_commands(layout: integrate.Layout, photo: Path) -> dict[str, dict]:
    """name -> {"argv", "cwd"}: what each file manager runs for a right-click on ``photo``."""
    data = layout.data
    menu = read_keyfile(data / "kio" / "servicemenus" / integrate.SERVICE_MENU)
    nemo = read_keyfile(data / "nemo" / "actions" / integrate.NEMO_ACTION)["Nemo Action"]
    launcher = read_keyfile(data / "applications" / entries.DESKTOP_FILE)["Desktop Entry"]
    from xml.etree import ElementTree

    uca = ElementTree.parse(layout.thunar).getroot()
    [thunar] = [a.findtext("command") for a in uca.iter("action")
                if a.findtext("unique-id") == entries.ACTION_ID]
    return {
        "Dolphin": {"argv": desktop_exec_argv(menu["Desktop Action findSimilar"]["Exec"],
                                              str(photo))},
        "Nemo": {"argv": nemo_command_line(nemo["Exec"], str(photo))},
        "Thunar": {"argv": ["/bin/sh", "-c", thunar_command_line(thunar, str(photo))]},
        # Nautilus runs the script in the folder shown, with the selected name as argument.
        "Nautilus": {"argv": [str(data / "nautilus" / "scripts" / integrate.NAUTILUS_SCRIPT),
                              photo.name], "cwd": str(photo.parent)},
        "Open With": {"argv": desktop_exec_argv(launcher["Exec"], str(photo))},
    }


@contextmanager
def running_instance(make_window) -> Iterator[object]:
    """A main window on the default catalog that listens for other starts, as `photosim` runs."""
    window = make_window(default_catalog_path())
    server = ipc.IPCServer(ipc.server_name(default_catalog_path()))
    server.listen()
    attach_server(server, window)
    try:
        yield window
    finally:
        server.close()


def test_every_entry_opens_the_similar_view_in_the_running_instance(
        qtbot, installed, library, make_window, desktop_env) -> None:
    layout, _command = installed
    photo = library
    env = app_env(desktop_env)
    with running_instance(make_window) as window:
        for manager, run in file_manager_commands(layout, photo).items():
            window.tabs.setCurrentIndex(0)
            with qtbot.waitSignal(window.search_finished, timeout=WAIT_MS) as searched:
                proc = subprocess.Popen(run["argv"], cwd=run.get("cwd"), env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                qtbot.waitUntil(lambda p=proc: p.poll() is not None, timeout=WAIT_MS)
            out, err = proc.communicate()
            assert proc.returncode == 0, (manager, err)
            result = searched.args[0]
            assert result.query == str(photo), manager
            assert window.tabs.currentIndex() == 2, manager  # the similar view
            names = [Path(h.photo.path).name for h in result.hits]
            assert names[0] == "copy of it.jpg", (manager, names)


def test_the_entry_starts_photosim_when_none_is_running(installed, library, desktop_env):
    layout, _command = installed
    photo = library
    run = file_manager_commands(layout, photo)["Dolphin"]
    env = {**app_env(desktop_env), "PHOTOSIM_EXIT_AFTER_SHOW": "1"}
    proc = subprocess.run(run["argv"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"similar view: {photo}: 2 results (hashes)" in proc.stdout, proc.stdout
    assert not os.path.exists(ipc.server_name(default_catalog_path()))  # socket cleaned up


@pytest.mark.skipif(shutil.which("gio") is None, reason="gio (GLib's launcher) not installed")
def test_open_with_through_glib(qtbot, installed, library, make_window, desktop_env) -> None:
    """GLib itself launches the installed launcher, as GNOME's "Open With" does."""
    layout, _command = installed
    photo = library
    launcher = layout.applications / entries.DESKTOP_FILE
    with running_instance(make_window) as window:
        with qtbot.waitSignal(window.search_finished, timeout=WAIT_MS) as searched:
            proc = subprocess.Popen(["gio", "launch", str(launcher), str(photo)],
                                    env=app_env(desktop_env))
            qtbot.waitUntil(lambda: proc.poll() is not None, timeout=WAIT_MS)
        assert proc.returncode == 0
        assert searched.args[0].query == str(photo)
