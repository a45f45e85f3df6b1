"""Desktop integration, Qt-free: the app's command line, launcher and file-manager entries.

- :mod:`photosim.desktop.cmdline`: the desktop app's command line (``photosim PATH``,
  ``--find-similar``, the ``--untrusted-args`` guard for paths that file managers pass), shared
  by the routing in ``photosim/__main__.py``, the app and the single-instance server.
- :mod:`photosim.desktop.entries`: the text of every integration file (freedesktop.org
  ``.desktop`` launcher, AppStream metainfo, Dolphin service menu, Nemo action, Thunar custom
  action, Nautilus script, macOS Quick Action), generated from one description so an installed
  wheel carries them and every entry runs the same command.
- :mod:`photosim.desktop.integrate`: ``photosim integrate install|remove|status``.

Nothing here imports Qt or torch (import-linter checks it), so ``photosim integrate`` runs on a
machine without a display.
"""

from __future__ import annotations
