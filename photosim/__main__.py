"""Entry point: ``python -m photosim`` and the ``photosim`` script.

Importing this module is cheap (no Qt, no torch), so ``--version`` and ``--help`` are instant.
With no arguments the desktop app starts; anything else (an option or a subcommand) goes to the
command line, which never imports Qt. ``photosim-gui [PATH...]`` opens the app on paths.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the desktop app (no arguments) or the command line, and exit with its status."""
    if len(sys.argv) == 1:
        from photosim.gui.app import main as gui_main

        sys.exit(gui_main())
    from photosim.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
