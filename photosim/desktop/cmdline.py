"""The desktop app's command line, Qt-free: what ``photosim [--find-similar] [PATH...]`` means.

Grammar (anything else is the command line's, see :mod:`photosim.cli`)::

    photosim                                   the app
    photosim PATH...                           folders are added and scanned, images are queries
    photosim --find-similar IMAGE...           the similar view for each image
    photosim [--find-similar] --untrusted-args ARG

``--untrusted-args`` guards what a file manager substitutes into a launcher's command line
(``%f``): everything before it was written by us and is trusted; after it comes at most ONE
argument, and it must not look like an option (not start with ``-``), so a file named
``--help`` or ``-x.jpg`` can never be read as an option. This is qutebrowser's rule. File
managers pass absolute paths (``/home/me/-x.jpg``), which never start with ``-``; by hand, name
such a file ``./-x.jpg``. One argument is enough: a launcher with ``%f`` is started once per
selected file, and every start after the first is forwarded to the running app.

Relative paths are resolved against the caller's working directory (sent along by a second
instance, see :mod:`photosim.gui.ipc`); ``file://`` URIs of local files are accepted too.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import urllib.request
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

FIND_SIMILAR = "--find-similar"
UNTRUSTED = "--untrusted-args"
GUI_OPTIONS = (FIND_SIMILAR, UNTRUSTED)
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class ArgsError(ValueError):
    """The app's command line is invalid (a usage error: exit status 2).

    A ValueError rather than :class:`photosim.core.types.Error`: this module is imported by
    ``photosim --version``, which must not pay for importing the core (numpy).
    """


@dataclass(frozen=True)
class GuiRequest:
    """What a start of the app (or a forwarded second start) asks for.

    Attributes:
        paths: Absolute, resolved paths that exist (when checked): folders to add, images to
            query.
        find_similar: Every path is a similar-search query (``--find-similar``).
    """

    paths: tuple[str, ...] = ()
    find_similar: bool = False


def check_untrusted(args: Sequence[str]) -> None:
    """Apply the ``--untrusted-args`` guard (see the module docstring).

    Args:
        args: The arguments after the program name.

    Raises:
        ArgsError: More than one argument follows the guard, or it looks like an option.
    """
    if UNTRUSTED not in args:
        return
    rest = list(args[list(args).index(UNTRUSTED) + 1:])
    if len(rest) > 1:
        raise ArgsError(
            f"{len(rest)} arguments after {UNTRUSTED}, at most one is allowed; refusing to start")
    for arg in rest:
        if arg.startswith("-"):
            raise ArgsError(f"refusing {arg!r} after {UNTRUSTED}: it looks like an option")


def to_local_path(arg: str, cwd: str | os.PathLike[str]) -> str:
    """An argument as an absolute, resolved local path (no existence check).

    Args:
        arg: A path (relative to ``cwd`` or absolute) or a ``file://`` URI of a local file.
        cwd: The caller's working directory (absolute).

    Raises:
        ArgsError: A URI of another scheme or host, or an empty argument.
    """
    if not arg or "\0" in arg:
        raise ArgsError("empty path")
    path = arg
    if arg.startswith("file:"):
        parts = urllib.parse.urlsplit(arg)
        if parts.netloc not in ("", "localhost"):
            raise ArgsError(f"not a local file: {arg}")
        path = urllib.request.url2pathname(parts.path)
    elif _URI.match(arg) and not os.path.exists(os.path.join(cwd, arg)):
        raise ArgsError(f"not a local file: {arg}")  # sftp://, smb://: the file manager's own
    return str(Path(cwd, path).resolve())


def parse_gui_args(
    args: Sequence[str], cwd: str | os.PathLike[str], check_exists: bool = True
) -> GuiRequest:
    """Parse the app's arguments (after the program name).

    Args:
        args: E.g. ``["--find-similar", "--untrusted-args", "/home/me/a.jpg"]``.
        cwd: The working directory that relative paths are relative to.
        check_exists: Refuse paths that do not exist (``--find-similar``: that are not files).

    Returns:
        The request, with absolute resolved paths.

    Raises:
        ArgsError: The guard refused, an unknown option, ``--find-similar`` without an image, a
            missing path.
    """
    check_untrusted(args)
    find_similar = False
    raw: list[str] = []
    untrusted = False
    for arg in args:
        if untrusted:
            raw.append(arg)  # the guard allowed at most one, not option-like
        elif arg == UNTRUSTED:
            untrusted = True
        elif arg == FIND_SIMILAR:
            find_similar = True
        elif arg.startswith("-"):
            raise ArgsError(f"unknown option {arg!r} (photosim --help lists the commands)")
        else:
            raw.append(arg)
    if find_similar and not raw:
        raise ArgsError(f"{FIND_SIMILAR} needs an image file")
    paths = []
    for arg in raw:
        path = to_local_path(arg, cwd)
        if check_exists:
            if not os.path.exists(path):
                hint = "" if (os.sep in arg or "." in arg) else \
                    " (nor a command: photosim --help lists them)"
                raise ArgsError(f"no such file or folder: {arg}{hint}")
            if find_similar and not os.path.isfile(path):
                raise ArgsError(f"{FIND_SIMILAR}: not a file: {arg}")
        paths.append(path)
    return GuiRequest(tuple(paths), find_similar)


def wants_gui(args: Sequence[str], commands: Collection[str] | None = None) -> bool:
    """Whether a ``photosim`` command line is for the desktop app rather than the CLI.

    The app: no arguments, ``--find-similar``, anything with ``--untrusted-args`` (so a file
    manager's argument can never reach the command line), or a first argument that is neither an
    option nor a command name (a path). The CLI: options such as ``--version``/``--help`` and
    subcommands — a command name wins over a file of the same name.

    Args:
        args: The arguments after the program name.
        commands: The CLI's subcommand names; only consulted when the first argument is a word.
    """
    if not args or UNTRUSTED in args:
        return True
    first = args[0]
    if first == FIND_SIMILAR:
        return True
    if first.startswith("-"):
        return False
    return commands is None or first not in commands
