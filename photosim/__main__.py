"""Entry point: ``python -m photosim`` and the ``photosim`` script.

Importing this module is cheap (no Qt, no torch, no numpy), so ``--version`` and ``--help`` are
instant. Routing (see :func:`photosim.desktop.cmdline.wants_gui`):

- the desktop app: no arguments, ``photosim PATH...`` (folders to add, images to query),
  ``photosim --find-similar IMAGE``, and anything carrying ``--untrusted-args`` (what a file
  manager runs); the app first hands the request to a running instance, if there is one;
- the command line (never imports Qt): options such as ``--version``/``--help`` and every
  subcommand; a subcommand name wins over a file of the same name.

``photosim-gui [PATH...]`` always starts the app.
"""

from __future__ import annotations

import sys


def _cli_commands() -> set[str]:
    """The CLI's subcommand names (from its parser, so new subcommands route themselves)."""
    import argparse

    from photosim.cli import build_parser

    for action in build_parser()._actions:  # argparse keeps subparsers in this private list
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def main() -> None:
    """Run the desktop app or the command line, and exit with its status."""
    if getattr(sys, "frozen", False):  # PyInstaller: decode workers re-enter here
        import multiprocessing

        multiprocessing.freeze_support()
    from photosim.desktop.cmdline import ArgsError, parse_gui_args, wants_gui

    args = sys.argv[1:]
    gui = not args or wants_gui(args, None if args[0].startswith("-") else _cli_commands())
    if gui:
        import os

        try:  # usage errors are reported before Qt is imported (and without a display)
            parse_gui_args(args, os.getcwd())
        except ArgsError as exc:
            print(f"photosim: {exc}", file=sys.stderr)
            sys.exit(2)
        from photosim.gui.app import main as gui_main

        sys.exit(gui_main())
    from photosim.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
