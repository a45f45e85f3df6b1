"""PyInstaller's entry script: the same routing as the ``photosim`` command.

The frozen executable is both the desktop app (no arguments, paths, ``--find-similar``,
``--untrusted-args``) and the command line (``photosim scan ...``); the decode worker
processes re-enter here (``multiprocessing.freeze_support`` in ``photosim.__main__``).
"""

from photosim.__main__ import main

if __name__ == "__main__":
    main()
