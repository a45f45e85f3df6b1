"""Crash trials: SIGKILL ``photosim scan``, ``cleanup`` and ``undo`` at random moments.

Not a test by itself (``tests/core/test_crash_trials.py`` runs a short form of it); run it by
hand for the full figures::

    python tests/crash_trials.py [--trials 50] [--seed 1] [--work DIR]

Each trial starts from the same generated library (photos and exact copies in nested folders),
runs one command as its own process group and kills the group (the decode workers too) with
SIGKILL after a random delay, then checks what a user would:

- scan: the catalog passes ``PRAGMA integrity_check``; a second scan completes and reaches the
  counts of an uninterrupted scan.
- cleanup (killed inside its move phase: the delay is drawn over the moves, measured from the
  first journal entry): ``photosim undo`` then puts every photo back at its path byte for byte,
  the quarantine holds nothing, the catalog lists every photo again and passes its integrity
  check.
- undo (killed while it moves files back): a second ``photosim undo`` finishes the job, with the
  same checks.

Prints one line per kind (trials, failures, what the kills hit) and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

QUARANTINE = ".photosim-quarantine"


@dataclass
class Tally:
    """Outcome of the trials of one kind."""

    trials: int = 0
    failures: list[str] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)

    def hit(self, what: str) -> None:
        self.hits[what] = self.hits.get(what, 0) + 1


def make_library(folder: Path, originals: int = 30, copies: int = 3, seed: int = 0) -> None:
    """``originals`` small JPEG photos, each with ``copies`` byte copies in other folders."""
    rng = np.random.default_rng(seed)
    for i in range(originals):
        pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize((320, 240), Image.Resampling.BICUBIC)
        path = folder / f"album{i % 3}" / f"photo{i:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, quality=85)
        for c in range(copies):
            copy = folder / f"backup{c}" / f"album{i % 3}" / f"photo{i:03d}.jpg"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)


def fingerprint(folder: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file outside the quarantine."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != QUARANTINE]
        for name in files:
            path = Path(root) / name
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def quarantined(folder: Path) -> list[str]:
    """Files left anywhere in the quarantine."""
    base = folder / QUARANTINE
    return [str(Path(r) / f) for r, _, files in os.walk(base) for f in files]


class Runner:
    """Runs photosim commands on one work folder (library + catalog at fixed paths)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.library = work / "library"
        self.catalog = work / "catalog.db"
        self.env = {**os.environ, "PHOTOSIM_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "photosim", *args, "-q", "--catalog", str(self.catalog)]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, env=self.env, timeout=300
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=self.env, start_new_session=True,
        )

    def kill(self, proc: subprocess.Popen[bytes]) -> bool:
        """SIGKILL the command and its workers; True if it was still running."""
        running = proc.poll() is None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return running

    def reset(self, template: Path, with_catalog: bool) -> None:
        """The library (and its catalog) as in ``template``, at this runner's paths."""
        for path in (self.library, *self.catalog.parent.glob(self.catalog.name + "*")):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        shutil.copytree(template / "library", self.library)
        if with_catalog:
            shutil.copyfile(template / "catalog.db", self.catalog)

    def sql(self, query: str) -> list[tuple]:
        """Read the catalog from another connection (WAL: never blocks the writer)."""
        if not self.catalog.exists():
            return []
        conn = sqlite3.connect(f"file:{self.catalog}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(query).fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()

    def integrity(self) -> str:
        conn = sqlite3.connect(str(self.catalog))
        try:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            conn.close()

    def counts(self) -> tuple[int, int, int] | str:
        """``(photos, readable, contents)`` from ``photosim info``, or what went wrong."""
        proc = self.run("info", "--json")
        try:
            info = json.loads(proc.stdout)
            return info["photos"], info["ok"], info["contents"]
        except (ValueError, KeyError):
            return f"info failed ({proc.returncode}): {proc.stderr.strip()[-300:]}"


def _check(ok: bool, what: str, failures: list[str]) -> None:
    if not ok:
        failures.append(what)


def trial_scan(r: Runner, templates: Path, reference: dict, rng: random.Random, t: Tally) -> None:
    r.reset(templates / "fresh", with_catalog=False)
    proc = r.start("scan", str(r.library), "--model", "none", "--workers", "2")
    time.sleep(rng.uniform(0.0, reference["scan_s"]))
    t.hit("during the scan" if r.kill(proc) else "after the scan ended")
    problems: list[str] = []
    if r.catalog.exists():
        _check(r.integrity() == "ok", "catalog integrity after the kill", problems)
    done = r.run("scan", str(r.library), "--model", "none", "--workers", "2")
    _check(done.returncode == 0, f"resumed scan exit {done.returncode}: {done.stderr[-300:]}",
           problems)
    _check(r.counts() == reference["counts"], f"counts {r.counts()} != {reference['counts']}",
           problems)
    _check(r.integrity() == "ok", "catalog integrity after the resumed scan", problems)
    t.failures += [f"scan trial {t.trials}: {p}" for p in problems]


def _restored(r: Runner, reference: dict, problems: list[str]) -> None:
    _check(fingerprint(r.library) == reference["files"], "photos differ from before", problems)
    left = quarantined(r.library)
    _check(not left, f"{len(left)} files left in quarantine, e.g. {left[:1]}", problems)
    _check(r.integrity() == "ok", "catalog integrity", problems)
    _check(r.counts() == reference["counts"], f"counts {r.counts()} != {reference['counts']}",
           problems)


def trial_cleanup(
    r: Runner, templates: Path, reference: dict, rng: random.Random, t: Tally
) -> None:
    r.reset(templates / "scanned", with_catalog=True)
    proc = r.start("cleanup", "--tier", "exact", "--yes")
    # Wait for the move phase (the first journal entry), then kill inside it.
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if r.sql("SELECT 1 FROM journal LIMIT 1"):
            break
        time.sleep(0.002)
    time.sleep(rng.uniform(0.0, reference["moves_s"]))
    moved = len(r.sql("SELECT 1 FROM journal WHERE state='done'"))
    t.hit("inside the moves" if r.kill(proc) and moved < reference["moves"] else
          "after the moves")
    problems: list[str] = []
    _check(r.integrity() == "ok", "catalog integrity after the kill", problems)
    undo = r.run("undo")
    nothing = "Nothing to undo" in undo.stdout + undo.stderr
    _check(undo.returncode == 0 or nothing, f"undo exit {undo.returncode}: {undo.stderr[-300:]}",
           problems)
    _restored(r, reference, problems)
    t.failures += [f"cleanup trial {t.trials}: {p}" for p in problems]


def trial_undo(r: Runner, templates: Path, reference: dict, rng: random.Random, t: Tally) -> None:
    r.reset(templates / "cleaned", with_catalog=True)
    proc = r.start("undo")
    time.sleep(rng.uniform(0.0, reference["undo_s"]))
    t.hit("during the undo" if r.kill(proc) else "after the undo ended")
    problems: list[str] = []
    _check(r.integrity() == "ok", "catalog integrity after the kill", problems)
    again = r.run("undo")
    nothing = "Nothing to undo" in again.stdout + again.stderr
    _check(again.returncode == 0 or nothing,
           f"second undo exit {again.returncode}: {again.stderr[-300:]}", problems)
    _restored(r, reference, problems)
    t.failures += [f"undo trial {t.trials}: {p}" for p in problems]


def prepare(r: Runner, templates: Path, originals: int) -> dict:
    """Templates (fresh, scanned, cleaned) and the uninterrupted reference figures.

    Made at the runner's own paths, which the trials reuse: the catalog stores absolute paths.
    """
    make_library(r.library, originals)
    reference: dict = {"files": fingerprint(r.library)}
    (templates / "fresh").mkdir(parents=True)
    shutil.copytree(r.library, templates / "fresh" / "library")

    started = time.monotonic()
    assert r.run("scan", str(r.library), "--model", "none", "--workers", "2").returncode == 0
    reference["scan_s"] = time.monotonic() - started
    reference["counts"] = r.counts()
    conn = sqlite3.connect(str(r.catalog))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    (templates / "scanned").mkdir()
    shutil.copytree(r.library, templates / "scanned" / "library")
    shutil.copyfile(r.catalog, templates / "scanned" / "catalog.db")

    proc = r.start("cleanup", "--tier", "exact", "--yes")
    first = None
    while proc.poll() is None:
        if first is None and r.sql("SELECT 1 FROM journal LIMIT 1"):
            first = time.monotonic()
        time.sleep(0.002)
    ended = time.monotonic()
    reference["moves"] = len(r.sql("SELECT 1 FROM journal WHERE state='done'"))
    reference["moves_s"] = max(0.05, ended - (first or ended))
    assert reference["moves"] > 0, "the reference cleanup moved nothing"
    conn = sqlite3.connect(str(r.catalog))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    (templates / "cleaned").mkdir()
    shutil.copytree(r.library, templates / "cleaned" / "library")
    shutil.copyfile(r.catalog, templates / "cleaned" / "catalog.db")

    started = time.monotonic()
    assert r.run("undo").returncode == 0
    reference["undo_s"] = time.monotonic() - started
    assert fingerprint(r.library) == reference["files"]
    return reference


TRIALS: dict[str, Callable[..., None]] = {
    "scan": trial_scan, "cleanup": trial_cleanup, "undo": trial_undo,
}


def run_trials(trials: int, seed: int, work: Path, originals: int = 30) -> dict[str, Tally]:
    """Run ``trials`` trials of each kind in ``work``; returns the tallies."""
    runner = Runner(work / "trial")
    templates = work / "templates"
    reference = prepare(runner, templates, originals)
    rng = random.Random(seed)
    tallies = {kind: Tally() for kind in TRIALS}
    for kind, trial in TRIALS.items():
        for _ in range(trials):
            tallies[kind].trials += 1
            trial(runner, templates, reference, rng, tallies[kind])
    return tallies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50, help="trials of each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--originals", type=int, default=30,
                        help="photos in the library (each with 3 exact copies)")
    parser.add_argument("--work", help="work folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="photosim-crash-") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        tallies = run_trials(args.trials, args.seed, work, args.originals)
    failed = 0
    for kind, tally in tallies.items():
        hits = ", ".join(f"{n} {what}" for what, n in sorted(tally.hits.items()))
        print(f"{kind:8} {tally.trials} trials, {len(tally.failures)} failures (killed: {hits})")
        for failure in tally.failures:
            print(f"  {failure}")
        failed += len(tally.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
