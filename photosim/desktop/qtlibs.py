"""Before the window opens on Linux: are the system libraries of Qt's X11 platform plugin here?

Qt 6's ``xcb`` plugin needs a handful of X11 libraries that minimal and server installs of Linux
lack (``libxcb-cursor0`` most often, since Qt 6.5). Without them Qt prints a generic "could not
load the Qt platform plugin" and aborts with a core dump. :func:`missing_libraries` asks the
dynamic loader for each one (``dlopen``, as Qt will, a few milliseconds in all), and
:func:`message` names the packages to install on Debian/Ubuntu and Fedora. Plain Python: no Qt.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SystemLibrary:
    """One shared library of the xcb platform plugin and the packages that provide it."""

    soname: str
    debian: str
    fedora: str


#: What Qt 6's xcb platform plugin loads (Qt's "X11 requirements" page), with the packages.
XCB_LIBRARIES = (
    SystemLibrary("libxcb-cursor.so.0", "libxcb-cursor0", "xcb-util-cursor"),
    SystemLibrary("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "libxkbcommon-x11"),
    SystemLibrary("libxkbcommon.so.0", "libxkbcommon0", "libxkbcommon"),
    SystemLibrary("libxcb-icccm.so.4", "libxcb-icccm4", "xcb-util-wm"),
    SystemLibrary("libxcb-image.so.0", "libxcb-image0", "xcb-util-image"),
    SystemLibrary("libxcb-keysyms.so.1", "libxcb-keysyms1", "xcb-util-keysyms"),
    SystemLibrary("libxcb-render-util.so.0", "libxcb-render-util0", "xcb-util-renderutil"),
    SystemLibrary("libxcb-randr.so.0", "libxcb-randr0", "libxcb"),
    SystemLibrary("libxcb-shape.so.0", "libxcb-shape0", "libxcb"),
    SystemLibrary("libxcb-xkb.so.1", "libxcb-xkb1", "libxcb"),
    SystemLibrary("libxcb.so.1", "libxcb1", "libxcb"),
    SystemLibrary("libX11-xcb.so.1", "libx11-xcb1", "libX11-xcb"),
    SystemLibrary("libfontconfig.so.1", "libfontconfig1", "fontconfig"),
    SystemLibrary("libEGL.so.1", "libegl1", "libglvnd-egl"),
)


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def uses_xcb(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will pick its X11 (xcb) platform plugin here.

    True on Linux unless ``QT_QPA_PLATFORM`` names another plugin (``offscreen``, ``wayland``…)
    or, with it unset, the session is Wayland (Qt 6 then prefers its wayland plugin).
    """
    environ = os.environ if environ is None else environ
    if (platform or sys.platform) != "linux":
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    wayland = environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland"
    return not wayland


def missing_libraries(
    environ: Mapping[str, str] | None = None,
    platform: str | None = None,
    loads: Callable[[str], bool] = _loads,
) -> list[SystemLibrary]:
    """The xcb plugin's libraries the dynamic loader cannot find ([] when Qt will not use xcb).

    Args:
        environ: Environment to judge (default ``os.environ``).
        platform: ``sys.platform`` (for tests).
        loads: ``soname -> bool``, whether the library loads (default: ``dlopen`` it).
    """
    if not uses_xcb(environ, platform):
        return []
    return [lib for lib in XCB_LIBRARIES if not loads(lib.soname)]


def message(missing: list[SystemLibrary]) -> str:
    """What to tell the user: the missing libraries and the commands that install them."""
    debian = " ".join(dict.fromkeys(lib.debian for lib in missing))
    fedora = " ".join(dict.fromkeys(lib.fedora for lib in missing))
    names = ", ".join(lib.soname for lib in missing)
    return (
        f"photosim cannot open its window: Qt's X11 platform plugin needs system libraries "
        f"that are missing ({names}). Install them, then start photosim again:\n"
        f"  Debian/Ubuntu: sudo apt install {debian}\n"
        f"  Fedora:        sudo dnf install {fedora}\n"
        f"The command line (photosim scan, duplicates, similar...) works without them."
    )
