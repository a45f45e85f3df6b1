"""Smoke test of ``python -m benchmarks --quick``: every benchmark runs and reports its keys.

No timing assertions: speed goals are checked by running the full suite by hand (see
benchmarks/RESULTS.md), never by timed tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.suite import BENCHMARKS, REPORT_KEYS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_bench_reports_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PHOTOSIM_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "-q", "--out", str(out),
         "--work", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )
    report = json.loads((out / "bench.json").read_text())
    assert proc.returncode == 0, proc.stderr[-2000:] + json.dumps(report["benchmarks"])[:2000]
    assert report["quick"] is True
    assert report["machine"]["cores"] >= 1
    assert set(report["benchmarks"]) == set(BENCHMARKS)
    for name in BENCHMARKS:
        section = report["benchmarks"][name]
        assert "error" not in section, (name, section["error"])
        missing = [key for key in REPORT_KEYS[name] if key not in section]
        assert not missing, (name, missing)
    markdown = (out / "RESULTS.md").read_text()
    assert "| benchmark | figure | goal | met? |" in markdown
    for name in BENCHMARKS:
        assert f"| {name} " in markdown
    # The temporary data sets are removed.
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_unknown_benchmark_is_a_usage_error(tmp_path: Path) -> None:
    from benchmarks.__main__ import main

    assert main(["--quick", "--only", "B99", "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_partial_run_keeps_the_other_results(tmp_path: Path) -> None:
    from benchmarks import suite as bench

    out = tmp_path / "out"
    out.mkdir()
    earlier = {"quick": True, "date": "2026-01-01 00:00 UTC",
               "benchmarks": {"B3": {"rescan_s": 99.0},
                              "B7": {"python_s": 0.01, "version_s": 0.2, "import_cli_s": 0.1,
                                     "gui_window_s": None, "note": "no display"}}}
    (out / "bench.json").write_text(json.dumps(earlier))
    report = bench.run(out, quick=True, only=("B3",), work=tmp_path)
    b = report["benchmarks"]
    assert list(b) == ["B3", "B7"]  # in benchmark order
    assert b["B7"] == {"run_at": "2026-01-01 00:00 UTC", **earlier["benchmarks"]["B7"]}
    assert b["B3"]["rescan_s"] != 99.0 and b["B3"]["run_at"] != "2026-01-01 00:00 UTC"
    assert json.loads((out / "bench.json").read_text())["benchmarks"]["B7"]["version_s"] == 0.2
    markdown = (out / "RESULTS.md").read_text()
    assert "| B7 launch to first window | window: n/a (no display)" in markdown
    assert "; B7 2026-01-01 00:00 UTC." in markdown
    # A full-mode report is never mixed into a quick one.
    earlier["quick"] = False
    (out / "bench.json").write_text(json.dumps(earlier))
    assert list(bench.run(out, quick=True, only=("B3",), work=tmp_path)["benchmarks"]) == ["B3"]
