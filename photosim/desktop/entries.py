"""The text of every desktop-integration file, generated from one description.

Every "Find similar photos" entry runs the same command line, ``COMMAND --find-similar
--untrusted-args FILE``, where ``COMMAND`` is the installed ``photosim`` (an absolute path, so
the entry does not depend on the session's ``PATH``) and ``FILE`` is substituted by the file
manager; each file manager has its own quoting rules, applied here:

=================  ==========================================  ===============================
entry              file manager substitutes                    so ``COMMAND`` is quoted for
=================  ==========================================  ===============================
launcher .desktop  ``%f``: one path, one argv element          the Desktop Entry spec's Exec
Dolphin (KIO)      ``%f``: one path, one argv element          the Desktop Entry spec's Exec
Nemo action        ``%F``: the path with spaces and quotes     ``g_shell_parse_argv``
                   backslash-escaped (``EscapeSpaces=true``)
Thunar action      ``%f``: ``g_shell_quote(path)``             ``/bin/sh -c``
Nautilus script    the files are the script's arguments        ``/bin/sh`` ("$1" stays one word)
macOS Quick Action the files are the script's arguments        ``/bin/bash``
=================  ==========================================  ===============================

Nothing here touches the disk: :mod:`photosim.desktop.integrate` writes these files.
"""

from __future__ import annotations

import plistlib
import shlex
import uuid
from collections.abc import Sequence
from xml.sax.saxutils import escape

from photosim.desktop.cmdline import FIND_SIMILAR, UNTRUSTED

APP_ID = "photosim"
#: The launcher's file name (its desktop file ID); Qt's ``setDesktopFileName`` uses the same.
DESKTOP_FILE = f"{APP_ID}.desktop"
ACTION_NAME = "Find similar photos"
ACTION_ID = "photosim-find-similar"
SUMMARY = "Find duplicate and similar photos on your own disk"
ACTION_COMMENT = "Show the photos most similar to this one in photosim"
#: Marker in every generated script, so removal only deletes what photosim wrote.
MARKER = "Installed by `photosim integrate install`; `photosim integrate remove` deletes it."
#: The image types photosim reads (see photosim.core.scan.imageio), as shared-mime-info names.
MIME_TYPES = (
    "image/jpeg", "image/png", "image/gif", "image/bmp", "image/tiff", "image/webp",
    "image/heif", "image/avif", "image/x-portable-pixmap", "image/x-portable-graymap",
    "image/x-portable-bitmap", "image/x-portable-anymap",
)
#: hicolor PNG sizes (a scalable SVG is installed too).
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
#: Where the packaged macOS app is looked for by the Quick Action.
MACOS_APP_BUNDLES = ("/Applications/photosim.app", "$HOME/Applications/photosim.app")
MACOS_QUICK_ACTION = f"{ACTION_NAME}.workflow"


def find_similar_args(command: Sequence[str]) -> list[str]:
    """The trusted part of every "Find similar photos" command line (the file comes last)."""
    return [*command, FIND_SIMILAR, UNTRUSTED]


# ---------------------------------------------------------------------------- quoting
# Desktop Entry spec, "The Exec key": characters that force an argument into double quotes.
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")


def _exec_arg(arg: str) -> str:
    arg = arg.replace("%", "%%")  # a literal percent sign, never a field code
    if arg and not _EXEC_RESERVED.intersection(arg):
        return arg
    for char in ("\\", '"', "`", "$"):
        arg = arg.replace(char, "\\" + char)
    return f'"{arg}"'


def _string_value(text: str) -> str:
    """Escape a Desktop Entry value of type string (applied after the Exec quoting)."""
    return (text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
            .replace("\r", "\\r"))


def desktop_exec(args: Sequence[str], field_code: str = "%f") -> str:
    """An ``Exec=`` value: ``args`` quoted per the Desktop Entry spec, then the field code."""
    return _string_value(" ".join([*(_exec_arg(a) for a in args), field_code]))


def shell_command(args: Sequence[str], percent: bool = False) -> str:
    """``args`` as one POSIX shell (and ``g_shell_parse_argv``) command line.

    Args:
        args: The arguments.
        percent: Double every ``%`` (Nemo and Thunar read ``%x`` as their field codes).
    """
    line = " ".join(shlex.quote(a) for a in args)
    return line.replace("%", "%%") if percent else line


# ---------------------------------------------------------------------------- freedesktop
def _try_exec(command: Sequence[str]) -> str:
    # TryExec hides an entry whose program is gone (photosim uninstalled without `remove`).
    return f"TryExec={_string_value(command[0])}\n" if command[0].startswith("/") else ""


def launcher_desktop(command: Sequence[str]) -> str:
    """The application launcher; its MimeType makes photosim an "Open With" candidate.

    It does not make photosim the default application of any type (that is mimeapps.list,
    which photosim never edits). ``%f``: a start per file, each forwarded to the running app.
    """
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.4\n"
        "Name=photosim\n"
        "GenericName=Duplicate Photo Finder\n"
        f"Comment={SUMMARY}\n"
        f"Icon={APP_ID}\n"
        f"{_try_exec(command)}"
        f"Exec={desktop_exec([*command, UNTRUSTED])}\n"
        "Terminal=false\n"
        "StartupNotify=true\n"
        f"StartupWMClass={APP_ID}\n"
        "Categories=Graphics;Photography;\n"
        "Keywords=duplicate;similar;photo;picture;image;dedupe;cleanup;\n"
        f"MimeType={';'.join(MIME_TYPES)};\n"
    )


def servicemenu_desktop(command: Sequence[str]) -> str:
    """Dolphin's right-click entry: a KIO service menu (KDE Frameworks >= 5.85, Plasma 6).

    KDE's examples say ``Type=Service``, which desktop-file-validate rejects; KIO reads the
    ``Actions``, ``MimeType`` and ``X-KDE-*`` keys whatever the type, and KService accepts
    ``Application``, so the file is a valid Desktop Entry that KIO uses as a service menu.
    """
    exec_line = desktop_exec(find_similar_args(command))
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={ACTION_NAME}\n"
        f"Comment={ACTION_COMMENT}\n"
        f"Icon={APP_ID}\n"
        f"{_try_exec(command)}"
        f"Exec={exec_line}\n"
        f"MimeType={';'.join(MIME_TYPES)};\n"
        "Actions=findSimilar;\n"
        "X-KDE-Priority=TopLevel\n"
        "X-KDE-Protocols=file\n"
        "\n"
        "[Desktop Action findSimilar]\n"
        f"Name={ACTION_NAME}\n"
        f"Icon={APP_ID}\n"
        f"Exec={exec_line}\n"
    )


def nemo_action(command: Sequence[str]) -> str:
    """Nemo's right-click entry (``~/.local/share/nemo/actions/*.nemo_action``)."""
    # Dependencies hides the entry when photosim is gone (a ';' would split the list).
    dependency = (f"Dependencies={command[0]};\n"
                  if command[0].startswith("/") and ";" not in command[0] else "")
    return (
        "[Nemo Action]\n"
        f"Name={ACTION_NAME}\n"
        f"Comment={ACTION_COMMENT}\n"
        f"Icon-Name={APP_ID}\n"
        f"Exec={_string_value(shell_command(find_similar_args(command), percent=True))} %F\n"
        "Selection=s\n"
        f"Mimetypes={';'.join(MIME_TYPES)};\n"
        "EscapeSpaces=true\n"
        f"{dependency}"
    )


def thunar_action(command: Sequence[str]) -> str:
    """Thunar's custom action: one ``<action>`` element of ``~/.config/Thunar/uca.xml``.

    Thunar replaces ``%f`` with the shell-quoted path and runs the line with ``/bin/sh -c``.
    """
    line = escape(f"{shell_command(find_similar_args(command), percent=True)} %f")
    return (
        "<action>\n"
        f"\t<icon>{APP_ID}</icon>\n"
        f"\t<name>{ACTION_NAME}</name>\n"
        f"\t<unique-id>{ACTION_ID}</unique-id>\n"
        f"\t<command>{line}</command>\n"
        f"\t<description>{ACTION_COMMENT}</description>\n"
        "\t<patterns>*</patterns>\n"
        "\t<startup-notify/>\n"
        "\t<image-files/>\n"
        "</action>\n"
    )


THUNAR_EMPTY = '<?xml version="1.0" encoding="UTF-8"?>\n<actions>\n</actions>\n'


def nautilus_script(command: Sequence[str]) -> str:
    """Nautilus' entry: an executable in ``~/.local/share/nautilus/scripts`` (menu "Scripts").

    Nautilus runs it in the folder shown, with the selected files as arguments (names relative
    to that folder, which may start with ``-``, or URIs); the first one is made absolute.
    """
    return (
        "#!/bin/sh\n"
        f"# photosim: \"{ACTION_NAME}\" for Nautilus (right-click > Scripts).\n"
        f"# {MARKER}\n"
        '[ "$#" -ge 1 ] || exit 0\n'
        'case $1 in\n'
        '    /* | file:*) target=$1 ;;\n'
        '    *) target=$PWD/$1 ;;\n'
        'esac\n'
        f'exec {shell_command(find_similar_args(command))} "$target"\n'
    )


def metainfo() -> str:
    """AppStream metainfo (software centres), for system-wide installs and packagers."""
    mediatypes = "".join(f"    <mediatype>{m}</mediatype>\n" for m in MIME_TYPES)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<component type="desktop-application">\n'
        f"  <id>{APP_ID}</id>\n"
        "  <metadata_license>CC0-1.0</metadata_license>\n"
        "  <project_license>MIT</project_license>\n"
        "  <name>photosim</name>\n"
        f"  <summary>{SUMMARY}</summary>\n"
        "  <description>\n"
        "    <p>photosim scans your photo folders into a local catalog and finds exact copies,"
        " re-encoded, resized, rotated or lightly cropped near-duplicates, and photos of the"
        " same scene. Everything runs on your computer.</p>\n"
        "    <ul>\n"
        "      <li>Review duplicate groups with the copy to keep already chosen</li>\n"
        "      <li>Move duplicates to a quarantine folder and undo a whole cleanup</li>\n"
        "      <li>Right-click any photo in your file manager: Find similar photos</li>\n"
        "    </ul>\n"
        "  </description>\n"
        f'  <launchable type="desktop-id">{DESKTOP_FILE}</launchable>\n'
        "  <provides>\n"
        "    <binary>photosim</binary>\n"
        f"{mediatypes}"
        "  </provides>\n"
        '  <content_rating type="oars-1.1"/>\n'
        "</component>\n"
    )


# ---------------------------------------------------------------------------- macOS
def quick_action_script(command: Sequence[str] | None = None) -> str:
    """The Quick Action's shell script (bash; the selected files are its arguments).

    Args:
        command: The photosim to run (a pip/pipx install); None for the packaged app, which
            is looked for in :data:`MACOS_APP_BUNDLES` and started with ``open -n`` (the new
            instance forwards to a running one and exits).
    """
    head = "# photosim: \"Find similar photos\" Quick Action. Each selected image is handed to\n" \
           "# photosim, which forwards it to the running app if there is one.\n"
    if command is None:
        candidates = " ".join(f'"{b}"' for b in MACOS_APP_BUNDLES)
        return (
            head
            + "app=\n"
            + f"for bundle in {candidates}; do\n"
            + '    if [ -d "$bundle" ]; then app=$bundle; break; fi\n'
            + "done\n"
            + 'if [ -z "$app" ]; then\n'
            + "    osascript -e 'display alert \"photosim is not installed in Applications\"'\n"
            + "    exit 1\n"
            + "fi\n"
            + 'for f in "$@"; do\n'
            + f'    open -n -a "$app" --args {FIND_SIMILAR} {UNTRUSTED} "$f"\n'
            + "done\n"
        )
    return (
        head
        + 'for f in "$@"; do\n'
        + f'    {shell_command(find_similar_args(command))} "$f" >/dev/null 2>&1 &\n'
        + "done\n"
    )


def _uuid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"photosim:{name}")).upper()


def quick_action_info_plist() -> bytes:
    """``Contents/Info.plist`` of the Quick Action: a Finder service for image files."""
    return plistlib.dumps({
        "NSServices": [{
            "NSMenuItem": {"default": ACTION_NAME},
            "NSMessage": "runWorkflowAsService",
            "NSRequiredContext": {"NSApplicationIdentifier": "com.apple.finder"},
            "NSSendFileTypes": ["public.image"],
        }],
    })


def quick_action_document(command: Sequence[str] | None = None) -> bytes:
    """``Contents/document.wflow``: an Automator workflow of one "Run Shell Script" action
    that receives image files in Finder, passed to the script as arguments."""
    parameters = {
        "COMMAND_STRING": quick_action_script(command),
        "CheckedForUserDefaultShell": True,
        "inputMethod": 1,  # pass input: as arguments
        "shell": "/bin/bash",
        "source": "",
    }
    action = {
        "AMAccepts": {"Container": "List", "Optional": True, "Types": ["com.apple.cocoa.path"]},
        "AMActionVersion": "2.0.3",
        "AMApplication": ["Automator"],
        "AMParameterProperties": {
            "COMMAND_STRING": {}, "CheckedForUserDefaultShell": {}, "inputMethod": {},
            "shell": {}, "source": {},
        },
        "AMProvides": {"Container": "List", "Types": ["com.apple.cocoa.path"]},
        "ActionBundlePath": "/System/Library/Automator/Run Shell Script.action",
        "ActionName": "Run Shell Script",
        "ActionParameters": parameters,
        "BundleIdentifier": "com.apple.RunShellScript",
        "CFBundleVersion": "2.0.3",
        "CanShowSelectedItemsWhenRun": False,
        "CanShowWhenRun": True,
        "Category": ["AMCategoryUtilities"],
        "Class Name": "RunShellScriptAction",
        "InputUUID": _uuid("input"),
        "Keywords": ["Shell", "Script", "Command", "Run", "Unix"],
        "OutputUUID": _uuid("output"),
        "UUID": _uuid("action"),
        "UnlocalizedApplications": ["Automator"],
        "arguments": {},
        "isViewVisible": 1,
        "location": "309.000000:253.000000",
        "nibPath": "/System/Library/Automator/Run Shell Script.action/Contents/Resources/"
                   "Base.lproj/main.nib",
    }
    return plistlib.dumps({
        "AMApplicationBuild": "523",
        "AMApplicationVersion": "2.10",
        "AMDocumentVersion": "2",
        "actions": [{"action": action, "isViewVisible": 1}],
        "connectors": {},
        "workflowMetaData": {
            "applicationBundleIDsByPath": {},
            "applicationPaths": [],
            "inputTypeIdentifier": "com.apple.Automator.fileSystemObject.image",
            "outputTypeIdentifier": "com.apple.Automator.nothing",
            "presentationMode": 15,
            "processesInput": 0,
            "serviceApplicationBundleID": "com.apple.finder",
            "serviceApplicationPath": "/System/Library/CoreServices/Finder.app",
            "serviceInputTypeIdentifier": "com.apple.Automator.fileSystemObject.image",
            "serviceOutputTypeIdentifier": "com.apple.Automator.nothing",
            "serviceProcessesInput": 0,
            "systemImageName": "NSActionTemplate",
            "useAutomaticInputType": 0,
            "workflowTypeIdentifier": "com.apple.Automator.servicesMenu",
        },
    })
