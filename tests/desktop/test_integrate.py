"""``photosim integrate install|remove`` on a private HOME: the files, their validity,
idempotence, and a removal that restores the previous state exactly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from desktop_helpers import snapshot

from photosim.desktop import entries, integrate

DESKTOP_VALIDATE = shutil.which("desktop-file-validate")
USER_ACTION = (
    "<action>\n\t<icon>utilities-terminal</icon>\n\t<name>Open Terminal Here</name>\n"
    "\t<unique-id>1700000000000000-1</unique-id>\n"
    "\t<command>exo-open --working-directory %f --launch TerminalEmulator</command>\n"
    "\t<description>Example for a custom action</description>\n\t<patterns>*</patterns>\n"
    "\t<startup-notify/>\n\t<directories/>\n</action>\n"
)
USER_UCA = f'<?xml version="1.0" encoding="UTF-8"?>\n<actions>\n{USER_ACTION}</actions>\n'
COMMAND = ["/opt/photo sim/bin/photosim"]


def _layout() -> integrate.Layout:
    return integrate.user_layout()


def _desktop_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.desktop"))


def test_install_creates_every_entry(desktop_env) -> None:
    layout = _layout()
    changes = integrate.install(layout, COMMAND)
    data = layout.data
    expected = {
        data / "applications" / "photosim.desktop": 0o644,
        data / "kio" / "servicemenus" / "photosim-find-similar.desktop": 0o755,
        data / "nemo" / "actions" / "photosim-find-similar.nemo_action": 0o644,
        data / "nautilus" / "scripts" / "Find similar photos": 0o755,
        data / "icons" / "hicolor" / "scalable" / "apps" / "photosim.svg": 0o644,
        **{data / "icons" / "hicolor" / f"{s}x{s}" / "apps" / "photosim.png": 0o644
           for s in entries.ICON_SIZES},
    }
    for path, mode in expected.items():
        assert path.is_file(), path
        assert path.stat().st_mode & 0o777 == mode, path
    created = {c.path for c in changes if c.action == "created"}
    assert set(expected) <= created
    uca = layout.config / "Thunar" / "uca.xml"
    assert entries.ACTION_ID in uca.read_text() and uca in created
    # "Open With" candidate only: no default application was set anywhere.
    assert not list(Path(os.environ["HOME"]).rglob("mimeapps.list"))
    if shutil.which("update-desktop-database"):
        cache = (data / "applications" / "mimeinfo.cache").read_text()
        assert "image/jpeg=photosim.desktop;" in cache


@pytest.mark.skipif(DESKTOP_VALIDATE is None,
                    reason="desktop-file-validate not installed (Debian: desktop-file-utils)")
def test_every_desktop_file_is_valid(desktop_env) -> None:
    integrate.install(_layout(), ["/opt/photo sim/bin/pho$to\"sim%"])
    files = _desktop_files(Path(os.environ["HOME"]))
    assert len(files) == 2
    for path in files:
        proc = subprocess.run([DESKTOP_VALIDATE, str(path)], capture_output=True, text=True)
        assert proc.returncode == 0 and not proc.stdout.strip(), (path, proc.stdout)


def test_exec_lines_use_the_guard_and_an_unquoted_field_code(desktop_env) -> None:
    layout = _layout()
    integrate.install(layout, COMMAND)
    for path in _desktop_files(layout.data):
        for line in path.read_text().splitlines():
            if line.startswith("Exec="):
                assert line.startswith('Exec="/opt/photo sim/bin/photosim" '), line
                assert line.endswith(" --untrusted-args %f"), line
    nemo = (layout.data / "nemo" / "actions" / integrate.NEMO_ACTION).read_text()
    assert "Exec='/opt/photo sim/bin/photosim' --find-similar --untrusted-args %F\n" in nemo
    uca = (layout.config / "Thunar" / "uca.xml").read_text()
    assert ("<command>'/opt/photo sim/bin/photosim' --find-similar --untrusted-args %f"
            "</command>") in uca


def test_install_twice_changes_nothing(desktop_env) -> None:
    home = Path(os.environ["HOME"])
    integrate.install(_layout(), COMMAND)
    first = snapshot(home)
    changes = integrate.install(_layout(), COMMAND)
    assert {c.action for c in changes} == {"unchanged"}
    assert snapshot(home) == first
    statuses = integrate.status(_layout(), COMMAND)
    assert {c.action for c in statuses} == {"installed"}


def _lived_in_home(desktop_env) -> None:
    """A HOME with another application, its MIME cache, and a Thunar action of the user's."""
    data = Path(os.environ["XDG_DATA_HOME"])
    apps = data / "applications"
    apps.mkdir(parents=True)
    (apps / "viewer.desktop").write_text(
        "[Desktop Entry]\nType=Application\nName=Viewer\nExec=viewer %f\n"
        "MimeType=image/jpeg;image/png;\n")
    if shutil.which("update-desktop-database"):
        subprocess.run(["update-desktop-database", "-q", str(apps)], check=True)
    (data / "icons" / "hicolor" / "48x48" / "apps").mkdir(parents=True)
    (data / "icons" / "hicolor" / "48x48" / "apps" / "viewer.png").write_bytes(b"png")
    uca = Path(os.environ["XDG_CONFIG_HOME"]) / "Thunar" / "uca.xml"
    uca.parent.mkdir(parents=True)
    uca.write_text(USER_UCA)


@pytest.mark.parametrize("lived_in", [False, True], ids=["empty-home", "lived-in-home"])
def test_remove_restores_the_previous_state(desktop_env, lived_in) -> None:
    home = Path(os.environ["HOME"])
    if lived_in:
        _lived_in_home(desktop_env)
    before = snapshot(home)
    integrate.install(_layout(), COMMAND)
    integrate.install(_layout(), COMMAND)
    assert snapshot(home) != before
    integrate.remove(_layout())
    assert snapshot(home) == before
    assert integrate.remove(_layout()) == []  # nothing left to remove


def test_thunar_default_actions_are_kept_and_the_copy_removed(desktop_env) -> None:
    """Without a uca.xml of the user's, Thunar shows the system one: the user's new file
    starts from it (its actions stay visible) and goes away again on remove."""
    system = Path(os.environ["XDG_CONFIG_DIRS"]) / "Thunar" / "uca.xml"
    system.parent.mkdir(parents=True)
    system.write_text(USER_UCA)
    layout = _layout()
    integrate.install(layout, COMMAND)
    text = layout.thunar.read_text()
    assert "Open Terminal Here" in text and entries.ACTION_ID in text
    integrate.remove(layout)
    assert not layout.thunar.exists()
    assert not layout.thunar.parent.exists()


def test_a_thunar_file_edited_since_is_kept(desktop_env) -> None:
    layout = _layout()
    integrate.install(layout, COMMAND)
    text = layout.thunar.read_text()
    layout.thunar.write_text(text.replace("</actions>", USER_ACTION + "</actions>"))
    integrate.remove(layout)
    left = layout.thunar.read_text()
    assert entries.ACTION_ID not in left and "Open Terminal Here" in left


def test_an_unreadable_thunar_file_is_left_alone(desktop_env) -> None:
    layout = _layout()
    layout.thunar.parent.mkdir(parents=True)
    layout.thunar.write_text("<actions><action>")
    changes = integrate.install(layout, COMMAND)
    [thunar] = [c for c in changes if c.label == "Thunar"]
    assert thunar.action == "skipped"
    assert layout.thunar.read_text() == "<actions><action>"
    integrate.remove(layout)
    assert layout.thunar.read_text() == "<actions><action>"


def test_remove_without_the_manifest_still_removes_the_files(desktop_env) -> None:
    layout = _layout()
    integrate.install(layout, COMMAND)
    layout.manifest.unlink()
    integrate.remove(layout)
    left = [p for p in Path(os.environ["HOME"]).rglob("*") if p.is_file()]
    assert not [p for p in left if "photosim" in p.name or p.name == "Find similar photos"]
    assert entries.ACTION_ID not in layout.thunar.read_text()


def test_a_script_of_the_same_name_is_not_photosims(desktop_env) -> None:
    layout = _layout()
    script = layout.data / "nautilus" / "scripts" / integrate.NAUTILUS_SCRIPT
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\necho mine\n")
    integrate.remove(layout)
    assert script.read_text() == "#!/bin/sh\necho mine\n"


def test_an_upgrade_removes_files_an_older_version_installed(desktop_env) -> None:
    layout = _layout()
    integrate.install(layout, COMMAND)
    old = layout.data / "kservices5" / "ServiceMenus" / "photosim-find-similar.desktop"
    old.parent.mkdir(parents=True)
    old.write_text("[Desktop Entry]\n")
    manifest = json.loads(layout.manifest.read_text())
    manifest["files"].append(str(old))
    layout.manifest.write_text(json.dumps(manifest))
    integrate.install(layout, COMMAND)
    assert not old.exists()


def test_system_install_under_a_prefix(tmp_path: Path, desktop_env) -> None:
    layout = integrate.system_layout(tmp_path / "usr-local")
    integrate.install(layout, COMMAND)
    share = tmp_path / "usr-local" / "share"
    assert (share / "applications" / "photosim.desktop").is_file()
    assert (share / "metainfo" / "photosim.metainfo.xml").is_file()
    assert (share / "kio" / "servicemenus" / "photosim-find-similar.desktop").is_file()
    assert not (share / "nautilus").exists()  # Nautilus scripts are per user only
    assert layout.thunar is None
    integrate.remove(layout)
    assert not (tmp_path / "usr-local").exists()


def test_macos_layout_writes_the_quick_action(tmp_path: Path) -> None:
    layout = integrate.user_layout({"HOME": str(tmp_path)}, platform="darwin")
    specs = integrate.plan(layout, COMMAND)
    folder = tmp_path / "Library" / "Services" / "Find similar photos.workflow" / "Contents"
    assert {s.path for s in specs} == {folder / "Info.plist", folder / "document.wflow"}
    assert b"/opt/photo sim/bin/photosim" in specs[1].content


def test_default_command_is_an_absolute_photosim() -> None:
    command = integrate.default_command()
    assert os.path.isabs(command[0])
    assert command == [os.path.join(os.path.dirname(sys.executable), "photosim")] or \
        command[1:] == ["-m", "photosim"] or os.path.basename(command[0]) == "photosim"


def test_cli_install_status_remove(desktop_env) -> None:
    home = Path(os.environ["HOME"])
    before = snapshot(home)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "photosim", "integrate", *args],
                              capture_output=True, text=True, timeout=120, env=desktop_env)

    proc = run("install")
    assert proc.returncode == 0, proc.stderr
    assert "Find similar photos" in proc.stdout and "photosim integrate remove" in proc.stdout
    status = json.loads(run("status", "--json").stdout)
    assert {s["action"] for s in status} == {"installed"}
    assert run("install", "-q").stdout.count("\n") == 1  # nothing changed: the summary only
    proc = run("remove")
    assert proc.returncode == 0 and "removed" in proc.stdout
    assert snapshot(home) == before
