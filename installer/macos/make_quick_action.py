"""Write the Finder Quick Action for the packaged app (run from the repository root):

    python installer/macos/make_quick_action.py

It writes ``installer/macos/Find similar photos.workflow`` from :mod:`photosim.desktop.entries`
(a test checks the committed copy is current). Install it by double-clicking it in Finder
(macOS offers to install it into ~/Library/Services), or copy it there. It looks for
photosim.app in /Applications and ~/Applications; a pip/pipx install uses
``photosim integrate install`` instead, which writes the same Quick Action for that photosim.
"""

from __future__ import annotations

from pathlib import Path

from photosim.desktop import entries

if __name__ == "__main__":
    contents = Path(__file__).resolve().parent / entries.MACOS_QUICK_ACTION / "Contents"
    contents.mkdir(parents=True, exist_ok=True)
    (contents / "Info.plist").write_bytes(entries.quick_action_info_plist())
    (contents / "document.wflow").write_bytes(entries.quick_action_document(None))
    print(contents.parent)
