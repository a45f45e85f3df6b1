"""``photosim integrate install|remove|status``: desktop integration with a symmetric removal.

Linux (freedesktop.org), per user (``$XDG_DATA_HOME``, default ``~/.local/share``, and
``$XDG_CONFIG_HOME``, default ``~/.config``) or with ``--system`` under ``PREFIX/share``:

=============================================  =============================================
file                                           what it gives
=============================================  =============================================
applications/photosim.desktop                  the launcher, and "Open With photosim" for images
icons/hicolor/NxN/apps/photosim.png, scalable  the icon (PNG sizes rendered from one SVG)
kio/servicemenus/photosim-find-similar.desktop Dolphin: right-click > Find similar photos
nemo/actions/photosim-find-similar.nemo_action Nemo: right-click > Find similar photos
nautilus/scripts/Find similar photos           Nautilus: right-click > Scripts > ... (user only)
Thunar/uca.xml (one <action> added)            Thunar: right-click > Find similar photos (user)
metainfo/photosim.metainfo.xml                 software centres (--system only)
=============================================  =============================================

photosim is added to the "Open With" candidates of its image types (the launcher's
``MimeType``, indexed by ``update-desktop-database``); it never becomes anybody's default
application: ``mimeapps.list`` is not touched.

macOS (per user): the Finder Quick Action ``~/Library/Services/Find similar photos.workflow``.
Windows: the installer (``installer/windows/photosim.iss``) registers the Explorer verb.

Install is idempotent. A manifest (``photosim/desktop-integration.json`` in the data folder)
records what the first install created (folders, Thunar's ``uca.xml``, the ``mimeinfo.cache``),
so ``remove`` restores the previous state: it deletes every file it installed, takes photosim's
action out of ``uca.xml`` (deleting the file if photosim created it and nobody changed it since),
regenerates or deletes the ``mimeinfo.cache``, and removes the folders it created once empty.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from xml.etree import ElementTree

from photosim.core.types import Error
from photosim.desktop import entries

logger = logging.getLogger(__name__)

MANIFEST_VERSION = 1
MANIFEST_NAME = "desktop-integration.json"
DEFAULT_PREFIX = "/usr/local"
TOOL_TIMEOUT_S = 60
NAUTILUS_SCRIPT = entries.ACTION_NAME
SERVICE_MENU = f"{entries.ACTION_ID}.desktop"
NEMO_ACTION = f"{entries.ACTION_ID}.nemo_action"
METAINFO = f"{entries.APP_ID}.metainfo.xml"
#: photosim's <action> in Thunar's uca.xml, however Thunar has re-formatted the file.
_THUNAR_ACTION = re.compile(
    r"[ \t]*<action>(?:(?!</action>).)*?<unique-id>\s*" + re.escape(entries.ACTION_ID)
    + r"\s*</unique-id>.*?</action>[ \t]*\n?", re.S)


class IntegrationError(Error):
    """The integration cannot be installed or removed here (permissions, platform)."""


@dataclass(frozen=True)
class Layout:
    """Where the integration goes.

    Attributes:
        data: The data folder (``~/.local/share``, ``PREFIX/share``; ``~/Library`` on macOS).
        config: The config folder for Thunar's ``uca.xml`` (per-user Linux installs only).
        config_dirs: The system config folders (``$XDG_CONFIG_DIRS``): Thunar's default
            ``uca.xml`` is copied from there when the user has none.
        manifest: The manifest file.
        system: A system-wide install.
        platform: ``"linux"`` (any freedesktop.org desktop) or ``"darwin"``.
    """

    data: Path
    config: Path | None
    config_dirs: tuple[Path, ...]
    manifest: Path
    system: bool = False
    platform: str = "linux"

    @property
    def applications(self) -> Path:
        return self.data / "applications"

    @property
    def hicolor(self) -> Path:
        return self.data / "icons" / "hicolor"

    @property
    def thunar(self) -> Path | None:
        return self.config / "Thunar" / "uca.xml" if self.config is not None else None


@dataclass(frozen=True)
class FileSpec:
    """One file to install: ``path``, its bytes, its mode, and what it is for (``label``)."""

    path: Path
    content: bytes
    mode: int
    label: str


@dataclass(frozen=True)
class Change:
    """What install/remove did to one path: ``action`` is created, updated, unchanged,
    removed, absent or skipped (``note`` says why)."""

    path: Path
    action: str
    label: str = ""
    note: str = ""


@dataclass
class _Manifest:
    created_dirs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    thunar_created: bool = False
    thunar_seed_sha256: str | None = None
    mimeinfo_cache_existed: bool | None = None
    command: list[str] = field(default_factory=list)


def _xdg_dir(env: Mapping[str, str], key: str, fallback: Path) -> Path:
    value = env.get(key, "")
    return Path(value) if os.path.isabs(value) else fallback  # relative values are invalid


def user_layout(env: Mapping[str, str] | None = None, platform: str | None = None) -> Layout:
    """The per-user layout, from ``HOME`` and the XDG variables of ``env`` (default: ours)."""
    env = os.environ if env is None else env
    platform = platform or ("darwin" if sys.platform == "darwin" else "linux")
    home = Path(env.get("HOME") or Path.home())
    if platform == "darwin":
        return Layout(home / "Library", None, (), home / "Library" / "Application Support"
                      / "photosim" / MANIFEST_NAME, platform="darwin")
    data = _xdg_dir(env, "XDG_DATA_HOME", home / ".local" / "share")
    config = _xdg_dir(env, "XDG_CONFIG_HOME", home / ".config")
    dirs = tuple(Path(d) for d in (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)
                 if os.path.isabs(d))
    return Layout(data, config, dirs, data / "photosim" / MANIFEST_NAME)


def system_layout(prefix: str | os.PathLike[str] = DEFAULT_PREFIX) -> Layout:
    """The system-wide layout under ``prefix`` (``/usr/local``: ``/usr`` is the distro's)."""
    data = Path(prefix) / "share"
    return Layout(data, None, (), data / "photosim" / MANIFEST_NAME, system=True)


def default_command() -> list[str]:
    """The command that starts this photosim, as absolute as can be found.

    The frozen app itself; else the ``photosim`` script being run, the one beside this Python
    (a virtual environment, pipx), the one on ``PATH``; else ``python -m photosim``.
    """
    if getattr(sys, "frozen", False):
        return [os.path.abspath(sys.executable)]
    name = "photosim.exe" if os.name == "nt" else "photosim"
    candidates = []
    if sys.argv and os.path.basename(sys.argv[0]) in (name, "photosim"):
        candidates.append(sys.argv[0])
    candidates.append(os.path.join(os.path.dirname(sys.executable), name))
    found = shutil.which("photosim")
    if found:
        candidates.append(found)
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return [os.path.abspath(candidate)]
    return [os.path.abspath(sys.executable), "-m", "photosim"]


def _icon(name: str) -> bytes:
    return (resources.files("photosim.desktop") / "icons" / name).read_bytes()


def plan(layout: Layout, command: Sequence[str]) -> list[FileSpec]:
    """Every file of the integration, with its content, for ``layout``."""
    command = list(command)
    if layout.platform == "darwin":
        contents = layout.data / "Services" / entries.MACOS_QUICK_ACTION / "Contents"
        return [
            FileSpec(contents / "Info.plist", entries.quick_action_info_plist(), 0o644,
                     "Finder Quick Action"),
            FileSpec(contents / "document.wflow", entries.quick_action_document(command), 0o644,
                     "Finder Quick Action"),
        ]
    specs = [FileSpec(layout.applications / entries.DESKTOP_FILE,
                      entries.launcher_desktop(command).encode(), 0o644, "launcher, Open With")]
    for size in entries.ICON_SIZES:
        specs.append(FileSpec(layout.hicolor / f"{size}x{size}" / "apps" / "photosim.png",
                              _icon(f"photosim-{size}.png"), 0o644, "icon"))
    specs.append(FileSpec(layout.hicolor / "scalable" / "apps" / "photosim.svg",
                          _icon("photosim.svg"), 0o644, "icon"))
    # KIO only runs service menus from user folders if they are executable.
    specs.append(FileSpec(layout.data / "kio" / "servicemenus" / SERVICE_MENU,
                          entries.servicemenu_desktop(command).encode(), 0o755, "Dolphin"))
    specs.append(FileSpec(layout.data / "nemo" / "actions" / NEMO_ACTION,
                          entries.nemo_action(command).encode(), 0o644, "Nemo"))
    if layout.system:
        specs.append(FileSpec(layout.data / "metainfo" / METAINFO,
                              entries.metainfo().encode(), 0o644, "AppStream metainfo"))
    else:  # Nautilus reads scripts from the user's folder only
        specs.append(FileSpec(layout.data / "nautilus" / "scripts" / NAUTILUS_SCRIPT,
                              entries.nautilus_script(command).encode(), 0o755, "Nautilus"))
    return specs


# ---------------------------------------------------------------------------- helpers
def _load_manifest(path: Path) -> _Manifest | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        return None
    known = set(_Manifest.__dataclass_fields__)
    return _Manifest(**{k: v for k, v in data.items() if k in known})


def _save_manifest(path: Path, manifest: _Manifest) -> None:
    data = {"version": MANIFEST_VERSION, **manifest.__dict__}
    _write(path, (json.dumps(data, indent=2) + "\n").encode(), 0o644)


def _make_dirs(folder: Path, created: list[str]) -> None:
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    created.extend(str(p) for p in reversed(missing) if str(p) not in created)


def _write(path: Path, content: bytes, mode: int) -> None:
    """Atomically replace ``path`` (a reader never sees half a file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _same(path: Path, content: bytes, mode: int) -> bool:
    try:
        return path.read_bytes() == content and (path.stat().st_mode & 0o777) == mode
    except OSError:
        return False


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _run_tool(args: Sequence[str]) -> bool:
    """Run a desktop tool if it is installed; False if it is not (or failed)."""
    if shutil.which(args[0]) is None:
        logger.info("%s not found: skipped", args[0])
        return False
    try:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("%s failed: %s", args[0], exc)
        return False
    if proc.returncode != 0:
        logger.warning("%s failed: %s", args[0], proc.stderr.strip())
        return False
    return True


def _refresh_caches(layout: Layout) -> None:
    """Index the launcher's MIME types (Open With) and, system-wide, the icon theme cache."""
    if layout.applications.is_dir():
        _run_tool(["update-desktop-database", "-q", str(layout.applications)])
    if (layout.hicolor / "index.theme").exists():
        _run_tool(["gtk-update-icon-cache", "-q", "-t", "-f", str(layout.hicolor)])


def _cache_entries(cache: Path) -> list[str]:
    try:
        lines = cache.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if ln.strip() and not ln.startswith("[")]


def _drop_from_cache(cache: Path) -> None:
    """Take photosim out of a mimeinfo.cache by hand (update-desktop-database is missing)."""
    try:
        text = cache.read_text(encoding="utf-8")
    except OSError:
        return
    out = []
    for line in text.splitlines(keepends=True):
        if "=" in line and not line.startswith("["):
            key, _, value = line.rstrip("\n").partition("=")
            ids = [i for i in value.split(";") if i and i != entries.DESKTOP_FILE]
            if not ids:
                continue
            line = f"{key}={';'.join(ids)};\n"
        out.append(line)
    new = "".join(out)
    if new != text:
        _write(cache, new.encode(), 0o644)


# ---------------------------------------------------------------------------- Thunar
def _thunar_seed(layout: Layout) -> str:
    """What Thunar shows when the user has no uca.xml: the system one (else none)."""
    for folder in layout.config_dirs:
        candidate = folder / "Thunar" / "uca.xml"
        try:
            text = candidate.read_text(encoding="utf-8")
            ElementTree.fromstring(text.encode())
        except (OSError, ElementTree.ParseError, ValueError):
            continue
        return text
    return entries.THUNAR_EMPTY


def _insert_action(text: str, block: str) -> str | None:
    end = text.rfind("</actions>")
    if end < 0:
        return None
    line_start = text.rfind("\n", 0, end) + 1
    if not text[line_start:end].strip():
        return text[:line_start] + block + text[line_start:]
    return text[:end] + "\n" + block + text[end:]


def _install_thunar(layout: Layout, command: Sequence[str], manifest: _Manifest) -> Change:
    path = layout.thunar
    assert path is not None
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
            root = ElementTree.fromstring(text.encode())
        except (OSError, ElementTree.ParseError, ValueError) as exc:
            return Change(path, "skipped", "Thunar", f"cannot read uca.xml ({exc}); not changed")
        if root.tag != "actions":
            return Change(path, "skipped", "Thunar", "uca.xml has no <actions>; not changed")
        created = False
    else:
        text = _thunar_seed(layout)
        manifest.thunar_created = True
        manifest.thunar_seed_sha256 = _sha(text)
        created = True
    new = _insert_action(_THUNAR_ACTION.sub("", text), entries.thunar_action(command))
    if new is None:
        return Change(path, "skipped", "Thunar", "uca.xml has no </actions>; not changed")
    if not created and new == text:
        return Change(path, "unchanged", "Thunar")
    _make_dirs(path.parent, manifest.created_dirs)
    _write(path, new.encode(), 0o644)
    return Change(path, "created" if created else "updated", "Thunar", "custom action")


def _remove_thunar(layout: Layout, manifest: _Manifest | None) -> Change | None:
    path = layout.thunar
    if path is None or not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return Change(path, "skipped", "Thunar", str(exc))
    new = _THUNAR_ACTION.sub("", text)
    if new == text:
        return None
    if manifest and manifest.thunar_created and _sha(new) == manifest.thunar_seed_sha256:
        path.unlink()  # photosim made it and nobody changed it since: back to no file
        return Change(path, "removed", "Thunar")
    _write(path, new.encode(), 0o644)
    return Change(path, "updated", "Thunar", "photosim's action taken out")


# ---------------------------------------------------------------------------- API
def _check_platform(layout: Layout) -> None:
    if sys.platform == "win32" and layout.platform == "linux":
        raise IntegrationError(
            "on Windows the installer adds the Start-menu entry and the Explorer verb "
            "(installer/windows/photosim.iss); `photosim integrate` is for Linux and macOS")


def install(layout: Layout | None = None, command: Sequence[str] | None = None,
            refresh: bool = True) -> list[Change]:
    """Install (or update) the integration; running it again changes nothing.

    Args:
        layout: Where (default: this user's folders).
        command: The photosim to run (default: :func:`default_command`).
        refresh: Run ``update-desktop-database`` / ``gtk-update-icon-cache`` if installed.

    Returns:
        One :class:`Change` per file.

    Raises:
        IntegrationError: No permission (``--system`` needs root), or Windows.
    """
    layout = layout or user_layout()
    _check_platform(layout)
    command = list(command or default_command())
    previous = _load_manifest(layout.manifest)
    manifest = previous or _Manifest()
    manifest.command = command
    cache = layout.applications / "mimeinfo.cache"
    if previous is None and layout.platform == "linux":
        manifest.mimeinfo_cache_existed = cache.exists()
    changes = []
    specs = plan(layout, command)
    try:
        for spec in specs:
            if _same(spec.path, spec.content, spec.mode):
                changes.append(Change(spec.path, "unchanged", spec.label))
                continue
            existed = spec.path.exists()
            _make_dirs(spec.path.parent, manifest.created_dirs)
            _write(spec.path, spec.content, spec.mode)
            changes.append(Change(spec.path, "updated" if existed else "created", spec.label))
        wanted = {str(s.path) for s in specs}
        for old in manifest.files:  # an earlier version installed it; this one does not
            if old not in wanted and os.path.isfile(old):
                os.unlink(old)
                changes.append(Change(Path(old), "removed", "no longer used"))
        manifest.files = sorted(wanted)
        if layout.thunar is not None:
            changes.append(_install_thunar(layout, command, manifest))
        _make_dirs(layout.manifest.parent, manifest.created_dirs)
        _save_manifest(layout.manifest, manifest)
    except PermissionError as exc:
        raise IntegrationError(f"no permission to write {exc.filename}"
                               + (" (--system needs root: sudo)" if layout.system else "")) from exc
    if refresh and layout.platform == "linux":
        _refresh_caches(layout)
    return changes


def remove(layout: Layout | None = None, refresh: bool = True) -> list[Change]:
    """Remove everything :func:`install` added and restore what it changed.

    Works without a manifest too (then folders are left in place); running it again changes
    nothing.

    Raises:
        IntegrationError: No permission, or Windows.
    """
    layout = layout or user_layout()
    _check_platform(layout)
    manifest = _load_manifest(layout.manifest)
    changes = []
    paths = {s.path for s in plan(layout, ["photosim"])}
    if manifest:
        paths.update(Path(p) for p in manifest.files)
    try:
        for path in sorted(paths):
            if not path.is_file():
                continue
            if path.name == NAUTILUS_SCRIPT and entries.MARKER not in path.read_text(
                    encoding="utf-8", errors="replace"):
                changes.append(Change(path, "skipped", "Nautilus", "not written by photosim"))
                continue
            path.unlink()
            changes.append(Change(path, "removed"))
        thunar = _remove_thunar(layout, manifest)
        if thunar is not None:
            changes.append(thunar)
        cache = layout.applications / "mimeinfo.cache"
        if layout.platform == "linux" and cache.exists():
            if not (refresh and _run_tool(["update-desktop-database", "-q",
                                           str(layout.applications)])):
                _drop_from_cache(cache)
            if manifest and manifest.mimeinfo_cache_existed is False \
                    and not _cache_entries(cache):
                cache.unlink()
                changes.append(Change(cache, "removed", "MIME cache"))
        if refresh and (layout.hicolor / "index.theme").exists():
            _run_tool(["gtk-update-icon-cache", "-q", "-t", "-f", str(layout.hicolor)])
        if layout.manifest.exists():
            layout.manifest.unlink()
        if manifest:
            for folder in sorted(manifest.created_dirs, key=len, reverse=True):
                try:
                    os.rmdir(folder)  # only if empty: something else may live there now
                except OSError:
                    pass
    except PermissionError as exc:
        raise IntegrationError(f"no permission to remove {exc.filename}"
                               + (" (--system needs root: sudo)" if layout.system else "")) from exc
    return changes


def status(layout: Layout | None = None, command: Sequence[str] | None = None) -> list[Change]:
    """What is installed: per file ``installed`` (up to date), ``outdated`` (install would
    update it) or ``absent``."""
    layout = layout or user_layout()
    command = list(command or default_command())
    out = []
    for spec in plan(layout, command):
        if _same(spec.path, spec.content, spec.mode):
            out.append(Change(spec.path, "installed", spec.label))
        elif spec.path.exists():
            out.append(Change(spec.path, "outdated", spec.label))
        else:
            out.append(Change(spec.path, "absent", spec.label))
    if layout.thunar is not None:
        try:
            present = bool(_THUNAR_ACTION.search(layout.thunar.read_text(encoding="utf-8")))
        except OSError:
            present = False
        out.append(Change(layout.thunar, "installed" if present else "absent", "Thunar"))
    return out


def export(folder: str | os.PathLike[str], command: Sequence[str] = ("photosim",)) -> list[Path]:
    """Write the Linux entries for packagers (``resources/linux``), running ``command``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        entries.DESKTOP_FILE: entries.launcher_desktop(command),
        METAINFO: entries.metainfo(),
        SERVICE_MENU: entries.servicemenu_desktop(command),
        NEMO_ACTION: entries.nemo_action(command),
        "thunar-uca-action.xml": entries.thunar_action(command),
        "nautilus-script.sh": entries.nautilus_script(command),
    }
    out = []
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
        out.append(folder / name)
    return out
