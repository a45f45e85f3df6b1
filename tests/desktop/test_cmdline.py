"""The desktop app's command line: the --untrusted-args guard, paths, routing, no Qt for the CLI.

Decision (qutebrowser's rule, documented in photosim.desktop.cmdline): after --untrusted-args
at most ONE argument, and it must not start with '-'. A file named '-leading-dash.jpg' is
therefore refused when given bare, and accepted as './-leading-dash.jpg' or as an absolute path
(which is what file managers pass).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_photo

from photosim.desktop.cmdline import (
    FIND_SIMILAR,
    UNTRUSTED,
    ArgsError,
    GuiRequest,
    check_untrusted,
    parse_gui_args,
    wants_gui,
)

REPO = Path(__file__).resolve().parents[2]
COMMANDS = {"scan", "duplicates", "similar", "info", "integrate"}


@pytest.mark.parametrize("args", [
    [UNTRUSTED, "-x"],
    [UNTRUSTED, "--help"],
    [UNTRUSTED, "--version"],
    [FIND_SIMILAR, UNTRUSTED, "-leading-dash.jpg"],
    [UNTRUSTED, "a.jpg", "b.jpg"],
    [UNTRUSTED, "a.jpg", "--find-similar"],
    [FIND_SIMILAR, UNTRUSTED, "/a.jpg", "-x"],
])
def test_untrusted_guard_refuses_options_and_extra_arguments(args) -> None:
    with pytest.raises(ArgsError):
        check_untrusted(args)


def test_untrusted_guard_allows_one_path_or_none() -> None:
    check_untrusted([UNTRUSTED, "/home/me/-x.jpg"])
    check_untrusted([FIND_SIMILAR, UNTRUSTED, "./-leading-dash.jpg"])
    check_untrusted([UNTRUSTED])  # a launcher started from the menu: %f expands to nothing
    check_untrusted(["--anything", "a"])  # no guard, nothing to check here


def test_leading_dash_file_is_reachable_only_as_a_path(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "-leading-dash.jpg", 1)
    with pytest.raises(ArgsError, match="looks like an option"):
        parse_gui_args([FIND_SIMILAR, UNTRUSTED, "-leading-dash.jpg"], tmp_path)
    for arg in ("./-leading-dash.jpg", str(photo)):
        request = parse_gui_args([FIND_SIMILAR, UNTRUSTED, arg], tmp_path)
        assert request == GuiRequest((str(photo.resolve()),), find_similar=True)


def test_paths_resolve_against_the_given_cwd_and_file_uris(tmp_path: Path) -> None:
    (tmp_path / "sub dir").mkdir()
    photo = make_photo(tmp_path / "sub dir" / "a b.jpg", 1)
    assert parse_gui_args(["a b.jpg"], tmp_path / "sub dir").paths == (str(photo.resolve()),)
    uri = photo.resolve().as_uri()  # file:///...a%20b.jpg
    assert parse_gui_args([UNTRUSTED, uri], "/").paths == (str(photo.resolve()),)
    folder = parse_gui_args([str(tmp_path)], "/")
    assert folder == GuiRequest((str(tmp_path.resolve()),), find_similar=False)


@pytest.mark.parametrize("args, message", [
    ([FIND_SIMILAR], "needs an image"),
    (["--frobnicate"], "unknown option"),
    (["missing.jpg"], "no such file"),
    ([UNTRUSTED, "sftp://host/a.jpg"], "not a local file"),
    ([UNTRUSTED, "file://otherhost/a.jpg"], "not a local file"),
    ([FIND_SIMILAR, "."], "not a file"),
])
def test_invalid_requests_say_why(tmp_path: Path, args, message) -> None:
    with pytest.raises(ArgsError, match=message):
        parse_gui_args(args, tmp_path)


@pytest.mark.parametrize("args, gui", [
    ([], True),
    (["/photos/a.jpg"], True),
    (["a.jpg", "b.jpg"], True),
    ([FIND_SIMILAR, "a.jpg"], True),
    ([UNTRUSTED, "-x"], True),  # the guard refuses it; never the command line's
    (["scan", UNTRUSTED, "x"], True),
    (["--version"], False),
    (["-h"], False),
    (["scan", "~/Pictures"], False),
    (["integrate", "install"], False),
])
def test_routing(args, gui) -> None:
    assert wants_gui(args, COMMANDS) is gui


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def _qt_free(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys\n"
        f"sys.argv = {argv!r}\n"
        "import photosim.__main__ as m\n"
        "try:\n    m.main()\nexcept SystemExit as e:\n    rc = e.code\n"
        "heavy = sorted(x for x in ('PySide6', 'torch') if x in sys.modules)\n"
        "print('HEAVY', heavy, 'RC', rc, flush=True)\n"
    )
    return _run("-c", code, cwd=cwd)


def test_version_help_cli_and_refusals_never_import_qt(tmp_path: Path) -> None:
    cases = {
        ("photosim", "--version"): 0,
        ("photosim", "--help"): 0,
        ("photosim", "integrate", "status"): 0,
        ("photosim", "info", "--catalog", str(tmp_path / "c.db")): 0,
        ("photosim", UNTRUSTED, "-x"): 2,  # refused before Qt is imported
        ("photosim", FIND_SIMILAR): 2,
        ("photosim", "no-such-photo.jpg"): 2,
    }
    for argv, rc in cases.items():
        proc = _qt_free(list(argv), tmp_path)
        assert f"HEAVY [] RC {rc}" in proc.stdout, (argv, proc.stdout, proc.stderr)
    refused = _qt_free(["photosim", UNTRUSTED, "--help"], tmp_path)
    assert "looks like an option" in refused.stderr


def test_version_is_fast_and_printed() -> None:
    proc = _run("-m", "photosim", "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("photosim ")
