"""The start-up check for the system libraries of Qt's X11 platform plugin."""

from __future__ import annotations

import pytest

from photosim.desktop import qtlibs


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({"DISPLAY": ":0"}, "linux", True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({"DISPLAY": ":0"}, "darwin", False),
        ({}, "win32", False),
    ],
)
def test_uses_xcb(environ: dict[str, str], platform: str, expected: bool) -> None:
    assert qtlibs.uses_xcb(environ, platform) is expected


def test_missing_libraries_name_the_packages() -> None:
    absent = {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-randr.so.0", "libxcb-shape.so.0"}
    missing = qtlibs.missing_libraries({"DISPLAY": ":0"}, "linux", lambda so: so not in absent)
    assert {lib.soname for lib in missing} == absent
    text = qtlibs.message(missing)
    assert "Debian/Ubuntu: sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-randr0 " \
           "libxcb-shape0\n" in text
    # Fedora ships randr and shape in one package: named once.
    assert "Fedora:        sudo dnf install xcb-util-cursor xcb-util-wm libxcb\n" in text
    assert "The command line (photosim scan" in text


def test_nothing_is_checked_off_x11() -> None:
    def never(_: str) -> bool:
        raise AssertionError("no library is looked up when Qt will not use xcb")

    assert qtlibs.missing_libraries({"QT_QPA_PLATFORM": "offscreen"}, "linux", never) == []


def test_the_real_loader_finds_the_c_library() -> None:
    assert qtlibs._loads("libc.so.6") and not qtlibs._loads("libno-such-library.so.7")
