"""Decode worker processes: results, crashes and hangs cost one file, never the pool.

A hang is made deterministic by stopping the worker (SIGSTOP) before it receives its job: the
job waits in the pipe and the worker cannot answer until the pool's deadline kills it. A crash
mid-job is a SIGKILL while the job is assigned.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from helpers import make_photo

from photosim.core.scan.workers import DecodeOutcome, DecodePool
from photosim.core.types import DecodeRequest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="POSIX signals")


def collect(pool: DecodePool, n: int, timeout: float = 60.0) -> list[DecodeOutcome]:
    """Poll until ``n`` outcomes arrived (fails after ``timeout`` seconds)."""
    outcomes: list[DecodeOutcome] = []
    deadline = time.monotonic() + timeout
    while len(outcomes) < n:
        assert time.monotonic() < deadline, f"only {len(outcomes)} of {n} outcomes arrived"
        outcomes += pool.poll(0.1)
    assert pool.poll(0.0) == []
    return outcomes


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    return make_photo(tmp_path / "a.jpg", 3, size=(320, 240))


def test_decodes_files_and_reports_errors(tmp_path: Path, jpeg: Path) -> None:
    png = make_photo(tmp_path / "b.png", 4, size=(200, 300), fmt="PNG")
    text = tmp_path / "text.jpg"
    text.write_text("hello, I am not a JPEG\n")
    requests = {
        "jpeg": DecodeRequest(str(jpeg), model_size=32, thumb_size=64),
        "png": DecodeRequest(str(png), model_size=0, thumb_size=64),
        "text": DecodeRequest(str(text)),
        "missing": DecodeRequest(str(tmp_path / "missing.jpg")),
    }
    with DecodePool(2) as pool:
        assert pool.size == 2
        for key, request in requests.items():
            pool.submit(key, request)
        assert pool.outstanding == 4
        outcomes = {o.key: o for o in collect(pool, 4)}
        assert pool.outstanding == 0
    assert set(outcomes) == set(requests)
    for key, outcome in outcomes.items():
        assert outcome.request == requests[key]
    ok = outcomes["jpeg"]
    assert ok.error is None and ok.image is not None
    assert (ok.image.width, ok.image.height, ok.image.format) == (320, 240, "JPEG")
    assert ok.image.model_input is not None and ok.image.model_input.shape == (32, 32, 3)
    assert ok.image.thumbnail.startswith(b"\xff\xd8")
    png_image = outcomes["png"].image
    assert png_image is not None and (png_image.width, png_image.height) == (200, 300)
    assert png_image.format == "PNG" and png_image.model_input is None
    assert outcomes["text"].image is None
    assert outcomes["text"].error == "not an image: unrecognised content"
    assert outcomes["missing"].image is None and "not found" in (outcomes["missing"].error or "")


def test_worker_killed_mid_job_costs_one_file(jpeg: Path) -> None:
    with DecodePool(1) as pool:
        pool.submit("warm-up", DecodeRequest(str(jpeg)))
        assert collect(pool, 1)[0].error is None
        worker = pool._workers[0]
        pid = worker.process.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the job below stays unanswered in the pipe...
        pool.submit("victim", DecodeRequest(str(jpeg)))
        pool.submit("next", DecodeRequest(str(jpeg)))
        assert pool.outstanding == 2
        os.kill(pid, signal.SIGKILL)  # ...until the worker dies with it
        outcomes = {o.key: o for o in collect(pool, 2)}
        assert outcomes["victim"].image is None
        assert outcomes["victim"].error == "decoder crashed (exit code -9)"
        # The queued file went to a fresh worker.
        assert outcomes["next"].error is None and outcomes["next"].image is not None
        assert pool.size == 1 and pool._workers[0].process.pid != pid
        assert not worker.process.is_alive()


def test_hung_worker_times_out_and_is_replaced(jpeg: Path) -> None:
    # 3 s: the deadline starts at dispatch, so it also covers a fresh worker's start-up.
    with DecodePool(1, timeout=3.0) as pool:
        worker = pool._workers[0]
        pid = worker.process.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        pool.submit("hung", DecodeRequest(str(jpeg)))
        (outcome,) = collect(pool, 1)
        assert time.monotonic() - started >= 3.0
        assert outcome.key == "hung" and outcome.image is None
        assert outcome.error == "decoding took longer than 3 s"
        assert not worker.process.is_alive()  # a stopped process is still killable
        assert pool._workers[0].process.pid != pid
        pool.submit("after", DecodeRequest(str(jpeg)))
        (after,) = collect(pool, 1)
        assert after.key == "after" and after.error is None


def test_idle_worker_killed_from_outside_is_replaced_on_submit(jpeg: Path) -> None:
    with DecodePool(1) as pool:
        pool.submit("warm-up", DecodeRequest(str(jpeg)))
        collect(pool, 1)
        worker = pool._workers[0]
        assert worker.process.pid is not None
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.join(timeout=10)
        assert not worker.process.is_alive()
        pool.submit("retry", DecodeRequest(str(jpeg)))
        (outcome,) = collect(pool, 1, timeout=3.0)
        assert outcome.key == "retry" and outcome.error is None


def test_cancel_pending_and_close(jpeg: Path) -> None:
    pool = DecodePool(1)
    worker = pool._workers[0]
    assert worker.process.pid is not None
    os.kill(worker.process.pid, signal.SIGSTOP)
    for i in range(3):
        pool.submit(i, DecodeRequest(str(jpeg)))
    assert pool.outstanding == 3
    assert pool.cancel_pending() == 2  # one is with the (stopped) worker
    assert pool.outstanding == 1
    pool.close()  # kills the busy worker instead of waiting for it
    assert not worker.process.is_alive()
    assert pool.size == 0
