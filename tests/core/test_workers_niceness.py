"""Decode workers can run at a lower CPU priority than the scan that feeds them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import make_photo

from photosim.core.scan.workers import DecodePool
from photosim.core.types import DecodeRequest


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities only")
def test_workers_get_the_requested_niceness_and_keep_it_when_replaced(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    make_photo(path, seed=1)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with DecodePool(1, niceness=5) as pool:
        pool.submit("a", DecodeRequest(str(path), 0, 64))
        outcomes = []
        while not outcomes:
            outcomes = pool.poll(timeout=10)
        assert outcomes[0].image is not None  # niceness changes nothing else
        worker = pool._workers[0]
        assert os.getpriority(os.PRIO_PROCESS, worker.process.pid) == min(19, base + 5)
        pool._replace(worker)
        replaced = pool._workers[0].process.pid
        pool.submit("a", DecodeRequest(str(path), 0, 64))
        while not pool.poll(timeout=10):
            pass
        assert os.getpriority(os.PRIO_PROCESS, replaced) == min(19, base + 5)
