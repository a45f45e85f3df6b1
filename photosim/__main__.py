"""Entry point: ``python -m photosim`` and the ``photosim`` script.

Importing this module is cheap (no Qt, no torch), so ``--version`` and ``--help`` are instant.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line and exit with its status."""
    from photosim.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
