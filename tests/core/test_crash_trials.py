"""A short run of the crash-trial harness (``tests/crash_trials.py``): real SIGKILLs of real
``photosim`` processes during a scan, inside a cleanup's moves, and during an undo."""

from __future__ import annotations

from pathlib import Path

import crash_trials
import pytest

pytestmark = pytest.mark.slow


def test_killed_scan_cleanup_and_undo_lose_nothing(tmp_path: Path) -> None:
    tallies = crash_trials.run_trials(trials=4, seed=7, work=tmp_path, originals=20)
    for kind, tally in tallies.items():
        assert tally.trials == 4, kind
        assert tally.failures == [], (kind, tally.failures)
    # The kills land where they should: the scan and the undo while running.
    assert tallies["scan"].hits.get("during the scan", 0) >= 1
    assert tallies["undo"].hits.get("during the undo", 0) >= 1
