"""Every file-manager entry passes the selected photo as exactly one argument, after
``--find-similar --untrusted-args``, however odd the photo's name and photosim's own path.

Each entry is run the way its file manager runs it (Desktop Entry Exec rules; Nemo's escaping
and g_shell_parse_argv; Thunar's g_shell_quote and /bin/sh -c; Nautilus' script arguments;
the macOS Quick Action's bash script), with a stand-in for photosim that records its argv.
The Windows verb and the committed macOS Quick Action are checked by parsing them.
"""

from __future__ import annotations

import json
import plistlib
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from desktop_helpers import (
    desktop_exec_argv,
    nemo_command_line,
    read_keyfile,
    thunar_command_line,
)

from photosim.desktop import entries, integrate

REPO = Path(__file__).resolve().parents[2]
FLAGS = ["--find-similar", "--untrusted-args"]
# Names a user may well have; the last ones are hostile.
NAMES = [
    "plain.jpg",
    "with space.jpg",
    "Mum's \"best\" photo.jpg",
    "-leading-dash.jpg",
    "100% $HOME `id` ; rm -rf ~ &.jpg",
    "back\\slash.jpg",
]


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "Pictures 2024"
    folder.mkdir()
    out = []
    for name in NAMES:
        (folder / name).write_bytes(b"\xff\xd8\xff not really a jpeg")
        out.append(folder / name)
    return out


def _logged(log: Path, count: int, timeout: float = 20.0) -> list[list[str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists():
            lines = log.read_text(encoding="utf-8").splitlines()
            if len(lines) >= count:
                return [json.loads(ln) for ln in lines]
        time.sleep(0.05)
    raise AssertionError(f"the stand-in for photosim ran fewer than {count} times")


# ---------------------------------------------------------------------------- tests
def test_launcher_and_service_menu_exec_lines(tmp_path: Path, argv_printer, photos) -> None:
    command, _log = argv_printer()
    for text, key_groups in (
        (entries.launcher_desktop(command), [("Desktop Entry", [])]),
        (entries.servicemenu_desktop(command),
         [("Desktop Entry", FLAGS), ("Desktop Action findSimilar", FLAGS)]),
    ):
        path = tmp_path / "entry.desktop"
        path.write_text(text, encoding="utf-8")
        keyfile = read_keyfile(path)
        for group, flags in key_groups:
            exec_value = keyfile[group]["Exec"]
            assert exec_value.endswith(" %f"), "the field code is last and unquoted"
            for photo in photos:
                expected = [*command, *(flags or ["--untrusted-args"]), str(photo)]
                assert desktop_exec_argv(exec_value, str(photo)) == expected


@pytest.mark.skipif(shutil.which("gio") is None, reason="gio (GLib's launcher) not installed")
def test_glib_launches_the_entries_with_one_argument(tmp_path: Path, argv_printer, photos):
    """GLib's own Desktop Entry implementation (what GNOME, Nemo and Thunar's Open With use)."""
    command, log = argv_printer()
    launcher = tmp_path / "photosim.desktop"
    launcher.write_text(entries.launcher_desktop(command), encoding="utf-8")
    menu = tmp_path / "photosim-find-similar.desktop"
    menu.write_text(entries.servicemenu_desktop(command), encoding="utf-8")
    runs = 0
    for desktop, flags in ((launcher, ["--untrusted-args"]), (menu, FLAGS)):
        for photo in photos:
            subprocess.run(["gio", "launch", str(desktop), str(photo)], check=True, timeout=30)
            runs += 1
            assert _logged(log, runs)[-1] == [*flags, str(photo)]


def test_nemo_action_passes_one_argument(tmp_path: Path, argv_printer, photos) -> None:
    command, _log = argv_printer()
    path = tmp_path / "a.nemo_action"
    path.write_text(entries.nemo_action(command), encoding="utf-8")
    action = read_keyfile(path)["Nemo Action"]
    assert action["Selection"] == "s" and action["EscapeSpaces"] == "true"
    assert set(action["Mimetypes"].rstrip(";").split(";")) == set(entries.MIME_TYPES)
    for photo in photos:
        if "\\" in photo.name:
            continue  # Nemo does not escape backslashes in names (a Nemo limitation)
        assert nemo_command_line(action["Exec"], str(photo)) == [*command, *FLAGS, str(photo)]


def test_thunar_action_runs_through_sh(tmp_path: Path, argv_printer, photos) -> None:
    command, log = argv_printer()
    from xml.etree import ElementTree

    root = ElementTree.fromstring(f"<actions>{entries.thunar_action(command)}</actions>")
    action = root.find("action")
    assert action.findtext("unique-id") == entries.ACTION_ID
    assert action.find("image-files") is not None
    line = action.findtext("command")
    for n, photo in enumerate(photos, 1):
        subprocess.run(["/bin/sh", "-c", thunar_command_line(line, str(photo))], check=True,
                       timeout=30, cwd=tmp_path)
        assert _logged(log, n)[-1] == [*FLAGS, str(photo)]


def test_nautilus_script_makes_relative_names_absolute(tmp_path: Path, argv_printer, photos):
    command, log = argv_printer()
    script = tmp_path / "Find similar photos"
    script.write_text(entries.nautilus_script(command), encoding="utf-8")
    script.chmod(0o755)
    runs = 0
    for photo in photos:
        # Nautilus: cwd is the folder shown, arguments are the selected names (or full paths).
        for arg in (photo.name, str(photo), photo.as_uri()):
            subprocess.run([str(script), arg, "ignored second selection"], check=True,
                           cwd=photo.parent, timeout=30)
            runs += 1
            expected = arg if arg.startswith("file:") else str(photo)
            assert _logged(log, runs)[-1] == [*FLAGS, expected]
    subprocess.run([str(script)], check=True, timeout=30)  # no selection: nothing to do
    assert len(_logged(log, runs)) == runs


def test_macos_quick_action_script_quotes_the_file(tmp_path: Path, argv_printer, photos):
    command, log = argv_printer()
    script = entries.quick_action_script(command)
    for n, photo in enumerate(photos, 1):
        subprocess.run(["/bin/bash", "-c", script, "bash", str(photo)], check=True, timeout=30)
        assert _logged(log, n)[-1] == [*FLAGS, str(photo)]


def test_committed_macos_quick_action_is_the_generated_one() -> None:
    contents = REPO / "installer" / "macos" / entries.MACOS_QUICK_ACTION / "Contents"
    info = plistlib.loads((contents / "Info.plist").read_bytes())
    service = info["NSServices"][0]
    assert service["NSMenuItem"]["default"] == "Find similar photos"
    assert service["NSMessage"] == "runWorkflowAsService"
    assert service["NSSendFileTypes"] == ["public.image"]
    assert service["NSRequiredContext"]["NSApplicationIdentifier"] == "com.apple.finder"
    document = plistlib.loads((contents / "document.wflow").read_bytes())
    meta = document["workflowMetaData"]
    assert meta["workflowTypeIdentifier"] == "com.apple.Automator.servicesMenu"
    assert meta["serviceInputTypeIdentifier"] == "com.apple.Automator.fileSystemObject.image"
    [step] = document["actions"]
    params = step["action"]["ActionParameters"]
    assert step["action"]["BundleIdentifier"] == "com.apple.RunShellScript"
    assert params["inputMethod"] == 1, "the selected files arrive as the script's arguments"
    assert params["shell"] == "/bin/bash"
    script = params["COMMAND_STRING"]
    assert 'for f in "$@"; do' in script
    assert 'open -n -a "$app" --args --find-similar --untrusted-args "$f"' in script
    assert "/Applications/photosim.app" in script
    assert (contents / "Info.plist").read_bytes() == entries.quick_action_info_plist()
    assert (contents / "document.wflow").read_bytes() == entries.quick_action_document(None)


def _inno_params(line: str) -> dict[str, str]:
    """Parameters of an Inno Setup entry line: ``Name: "value"; Name: value; ...``."""
    out, i = {}, 0
    while i < len(line):
        m = re.compile(r"\s*(\w+):\s*").match(line, i)
        if not m:
            break
        i = m.end()
        if line[i] == '"':
            j, value = i + 1, []
            while True:
                if line[j] == '"' and line[j + 1:j + 2] == '"':
                    value.append('"')
                    j += 2
                elif line[j] == '"':
                    break
                else:
                    value.append(line[j])
                    j += 1
            out[m.group(1)] = "".join(value)
            i = j + 1
        else:
            j = line.find(";", i)
            j = len(line) if j < 0 else j
            out[m.group(1)] = line[i:j].strip()
            i = j
        i = line.find(";", i) + 1 if ";" in line[i:] else len(line)
    return out


def windows_argv(command_line: str) -> list[str]:
    """CommandLineToArgvW's rules, enough for quoted arguments without backslash runs."""
    return [a.replace('""', '"') for a in re.findall(r'"([^"]*)"|(\S+)', command_line)
            for a in [a[0] or a[1]]]


def test_inno_setup_verb_runs_the_installed_exe_with_the_file_quoted() -> None:
    text = (REPO / "installer" / "windows" / "photosim.iss").read_text(encoding="utf-8")
    defines = dict(re.findall(r'#define (\w+) "([^"]*)"', text))
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(";") or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        sections.setdefault(current, []).append(
            re.sub(r"\{#(\w+)\}", lambda m: defines[m.group(1)], line))
    setup = dict(line.split("=", 1) for line in sections["Setup"])
    assert setup["PrivilegesRequired"] == "lowest"  # per user: HKCU matches the install
    entries_ = [_inno_params(line) for line in sections["Registry"]]
    verb = r"Software\Classes\SystemFileAssociations\image\shell\photosim.findsimilar"
    assert all(e["Root"] == "HKCU" and e["Subkey"].startswith(verb) for e in entries_)
    top = [e for e in entries_ if e["Subkey"] == verb]
    assert any("uninsdeletekey" in e.get("Flags", "") for e in top), "removed on uninstall"
    assert {e["ValueName"]: e["ValueData"] for e in top}["MUIVerb"] == "Find similar photos"
    [command] = [e for e in entries_ if e["Subkey"] == verb + r"\command"]
    assert command["ValueName"] == ""
    app = r"C:\Users\Jane Doe\AppData\Local\Programs\photosim"
    line = command["ValueData"].replace("{app}", app)
    photo = r"C:\Users\Jane Doe\Pictures\-x & y (1).jpg"
    argv = windows_argv(line.replace("%1", photo))
    assert argv == [app + r"\photosim.exe", *FLAGS, photo]
    icons = sections["Icons"]
    assert any("{autoprograms}" in line and "photosim.exe" in line for line in icons)
    files = [_inno_params(line) for line in sections["Files"]]
    assert files[0]["Source"] == r"..\..\dist\photosim\*"


def test_committed_linux_resources_are_the_generated_ones(tmp_path: Path) -> None:
    """resources/linux (for packagers) is what `integrate.export` writes; regenerate with
    ``python -c "from photosim.desktop.integrate import export; export('resources/linux')"``."""
    for path in integrate.export(tmp_path):
        committed = REPO / "resources" / "linux" / path.name
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), path


def test_packaged_icons_are_the_resources_icons() -> None:
    """The wheel's icons (photosim/desktop/icons) are the ones rendered into resources/icons by
    ``python -m photosim.gui.icon``."""
    packaged = REPO / "photosim" / "desktop" / "icons"
    names = sorted(p.name for p in packaged.iterdir())
    assert names == sorted(["photosim.svg", *(f"photosim-{s}.png" for s in entries.ICON_SIZES)])
    for name in names:
        assert (packaged / name).read_bytes() == (REPO / "resources" / "icons" / name).read_bytes()


def test_metainfo_is_valid_appstream(tmp_path: Path) -> None:
    from xml.etree import ElementTree

    root = ElementTree.fromstring(entries.metainfo())
    assert root.get("type") == "desktop-application"
    assert root.findtext("launchable") == entries.DESKTOP_FILE
    if shutil.which("appstreamcli") is None:
        pytest.skip("appstreamcli not installed: the XML structure was checked only")
    path = tmp_path / "photosim.metainfo.xml"
    path.write_text(entries.metainfo(), encoding="utf-8")
    proc = subprocess.run(["appstreamcli", "validate", "--no-net", "--no-color", str(path)],
                          capture_output=True, text=True, timeout=60)
    issues = [ln for ln in proc.stdout.splitlines() if re.match(r"^[EW]: ", ln)]
    # The one warning: the ID is not reverse-DNS (photosim has no domain of its own yet).
    assert all("cid-desktopapp-is-not-rdns" in ln for ln in issues), proc.stdout
