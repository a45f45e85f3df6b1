"""Helpers of the desktop-integration tests (a module of its own: conftest is not importable
by name when several test folders have one)."""

from __future__ import annotations

import configparser
import os
import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def snapshot(root: Path) -> dict[str, object]:
    """Every folder and file under ``root``: relative path -> (mode, bytes) or "dir"."""
    out: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(folder, name), root)] = "dir"
        for name in files:
            path = Path(folder, name)
            out[os.path.relpath(path, root)] = (path.stat().st_mode & 0o777, path.read_bytes())
    return out


def app_env(env: dict) -> dict:
    """A subprocess environment whose photosim app reads the hash-only settings."""
    out = dict(env)
    out["XDG_CONFIG_HOME"] = env["PHOTOSIM_TEST_CONFIG"]
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return out


# ---------------------------------------------------------------------------- how file managers run entries
def read_keyfile(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser


def unescape_string(value: str) -> str:
    """Desktop Entry / GKeyFile string escapes: \\s \\n \\t \\r \\\\."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def desktop_exec_argv(exec_value: str, file: str) -> list[str]:
    """The argv a Desktop Entry Exec value runs for one file (``%f``), per the spec."""
    text = unescape_string(exec_value)
    tokens: list[tuple[str, bool]] = []  # (token, was quoted)
    i, current, quoted, in_word = 0, [], False, False
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"`$\\':
                    i += 1
                current.append(text[i])
                i += 1
            quoted = in_word = True
        elif c in " \t":
            if in_word:
                tokens.append(("".join(current), quoted))
            current, quoted, in_word = [], False, False
        else:
            current.append(c)
            in_word = True
        i += 1
    if in_word:
        tokens.append(("".join(current), quoted))
    argv = []
    for token, was_quoted in tokens:
        if token == "%f" and not was_quoted:
            argv.append(file)
        else:
            assert not re.search(r"%[^%]", token.replace("%%", "")), token
            argv.append(token.replace("%%", "%"))
    return argv


def nemo_command_line(exec_value: str, path: str) -> list[str]:
    """Nemo with EscapeSpaces=true: quotes and spaces backslash-escaped, %F replaced, then
    g_shell_parse_argv (shlex in POSIX mode splits the same way for these characters)."""
    escaped = path.replace("'", "\\'").replace('"', '\\"').replace(" ", "\\ ")
    line = unescape_string(exec_value)
    line = re.sub(r"%(.)", lambda m: escaped if m.group(1) == "F" else
                  "%" if m.group(1) == "%" else m.group(0), line)
    return shlex.split(line)


def thunar_command_line(command: str, path: str) -> str:
    """Thunar: %f -> g_shell_quote(path), %% -> %; run with /bin/sh -c."""
    return re.sub(r"%(.)", lambda m: shlex.quote(path) if m.group(1) == "f" else
                  "%" if m.group(1) == "%" else "", command)
