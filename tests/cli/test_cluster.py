"""Distributed embedding on Ray (``photosim index``, ``photosim attach``) on a local Ray instance
of 2 CPUs with the default, packaged backbone: the shards hold a row for every file, the same
descriptors as a desktop scan, survive a worker that dies and a corrupted shard, resume after a
shard that failed for good, and attach into a catalog where duplicates and similar work.

The runs share one Ray instance and build on each other (a module fixture), to stay within
about a minute on 2 cores: each run starts workers that import torch and load the model.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import drain, make_photo, write_photo_set

from photosim.cli import main
from photosim.config import Settings
from photosim.core.catalog import Catalog
from photosim.library import ClusterError, ClusterOptions, Library, ShardsFailedError
from photosim.library.cluster import CRASH_ENV, index_shards, read_manifest

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.slow

MODEL_ID = "efficientnet_lite0-avg"
# float32 everywhere: "auto" first compares bfloat16 with float32 on probe images, seconds
# per worker start on a CPU with native bfloat16.
SETTINGS = Settings(precision="float32")
SHARD_SIZE = 4
BROKEN = "broken.jpg"


def run(gen: Any) -> Any:
    """Drive an index or attach generator; its return value."""
    return drain(gen)


def shard_rows(out: Path) -> dict[str, dict[str, Any]]:
    """Every row of every shard file of ``out``, by path."""
    rows: dict[str, dict[str, Any]] = {}
    for shard in sorted(out.glob("shard-*.parquet")):
        table = pq.read_table(shard).to_pylist()
        rows.update({row["path"]: row for row in table})
    return rows


def descriptor(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f2").astype(np.float32)


@pytest.fixture(scope="module")
def cluster() -> Any:
    """One local Ray instance of 2 CPUs for the module; yields its GCS address."""
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                       logging_level=logging.ERROR)
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """9 files: the photo set (an original, 5 copies of it, a different photo), a PNG in a
    subfolder, and a file that is not a readable image."""
    folder = tmp_path_factory.mktemp("cluster") / "photos"
    write_photo_set(folder)
    make_photo(folder / "sub" / "other.png", 5, fmt="PNG")
    (folder / BROKEN).write_bytes(b"\xff\xd8\xff\xe0" + b"not a jpeg " * 30)
    return folder


@pytest.fixture(scope="module")
def desktop(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same folder scanned by the desktop pipeline with the same backbone."""
    from photosim import embed
    from photosim.core.scan.pipeline import scan

    path = tmp_path_factory.mktemp("desktop") / "desktop.db"
    embedder = embed.load_embedder(embed.DEFAULT_MODEL, progress=False, precision="float32")
    with Catalog(path) as catalog:
        summary = drain(scan(catalog, [str(photos)], Settings(workers=1), embedder))
    assert summary.embedded == 7 and summary.errors == 1, summary
    return path


@pytest.fixture(scope="module")
def indexed(cluster: str, photos: Path, tmp_path_factory: pytest.TempPathFactory,
            ) -> dict[str, Any]:
    """Run A: shard 1's worker dies every time it starts it (retries=0): shard 1 fails for
    good, the others are kept. Then shard 0 is corrupted on disk. Run B (the rerun) embeds
    shards 0 and 1 again while its first worker to start a shard dies once."""
    out = tmp_path_factory.mktemp("shards") / "dir"
    settings = SETTINGS
    result: dict[str, Any] = {"out": out}
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv(CRASH_ENV, "shard:1")
        started = time.monotonic()
        with pytest.raises(ShardsFailedError) as failure:
            run(index_shards([photos], out, settings,
                             ClusterOptions(shard_size=SHARD_SIZE, retries=0)))
        result["a_seconds"] = time.monotonic() - started
        result["a_error"], result["a"] = str(failure.value), failure.value.summary
        result["a_manifest"] = read_manifest(out)
        result["a_files"] = sorted(p.name for p in out.iterdir())
        result["a_rows"] = shard_rows(out)
        shard0 = out / "shard-00000.parquet"
        shard0.write_bytes(shard0.read_bytes()[:-100] + b"\0" * 100)  # damaged on disk
        marker = out.parent / "die-once"
        marker.write_text("")
        mp.setenv(CRASH_ENV, f"once:{marker}")
        started = time.monotonic()
        result["b"] = run(index_shards([photos], out, settings, ClusterOptions(workers=1)))
        result["b_seconds"] = time.monotonic() - started
        result["marker_left"] = marker.exists()
    finally:
        mp.undo()
    return result


# ---------------------------------------------------------------------------- one shard
@pytest.mark.parametrize("overlap", [True, False])
def test_a_shard_decodes_each_content_once_and_keeps_the_file_order(
    photos: Path, overlap: bool
) -> None:
    """Without Ray: what a worker does with one shard (the numpy test embedder)."""
    from helpers import ColorGridEmbedder, CountingEmbedder

    from photosim.core.scan.workers import DecodePool
    from photosim.library.cluster import embed_shard

    files = sorted((str(p), str(photos), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in photos.rglob("*") if p.is_file())
    embedder = CountingEmbedder(ColorGridEmbedder())
    reports: list[tuple[int, int]] = []
    with DecodePool(1) as pool:
        rows = embed_shard(embedder, pool, files, 0, batch_size=3,
                           progress=lambda done, errors: reports.append((done, errors)),
                           overlap=overlap)
    assert [r["path"] for r in rows] == [f[0] for f in files]
    assert embedder.images == 7  # 8 readable files, one an exact copy
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["copy.jpg"]["descriptor"] == by_name["original.jpg"]["descriptor"]
    assert by_name[BROKEN]["status"] == "error" and by_name[BROKEN]["descriptor"] is None
    vector = descriptor(by_name["different.jpg"]["descriptor"])
    assert vector.shape == (48,) and abs(float(vector @ vector) - 1) < 1e-2
    assert reports[-1] == (9, 1) and all(a <= b for a, b in zip(reports, reports[1:]))


# ---------------------------------------------------------------------------- runs
def test_a_shard_that_fails_for_good_is_named_and_the_others_are_kept(
    indexed: dict[str, Any],
) -> None:
    a = indexed["a"]
    assert a.files == 9 and a.shards == 3
    assert [index for index, _ in a.failed] == [1]
    error = indexed["a_error"]
    assert error.startswith("1 of 3 shards failed for good: shard 1 (1 tries; last: its worker "
                            "died"), error
    assert error.endswith("the other shards are kept: run the same command again to resume")
    assert "\n" not in indexed["a_error"]
    assert a.shards_done == 2 and a.files_done == 5  # shards 0 (4 files) and 2 (1 file)
    manifest = indexed["a_manifest"]
    finished = [s["index"] for s in manifest["shards"] if s.get("sha256")]
    assert finished == [0, 2]
    assert "shard-00001.parquet" not in indexed["a_files"]


def test_a_rerun_embeds_only_the_failed_and_the_corrupt_shard_despite_a_dying_worker(
    indexed: dict[str, Any],
) -> None:
    b = indexed["b"]
    assert not b.failed and not b.cancelled
    assert b.shards_done == 2 and b.shards_skipped == 1  # shard 2 stood
    assert "shard 0 was corrupt (checksum mismatch): embedded again" in b.redone
    # The worker that died mid-shard was replaced by Ray and its shard tried again.
    assert not indexed["marker_left"]
    assert len(b.notes) == 1 and b.notes[0].startswith("shard 0 was tried again: its worker died")
    manifest = read_manifest(indexed["out"])
    assert all(s.get("sha256") for s in manifest["shards"])
    assert sum(s["rows"] for s in manifest["shards"]) == 9


def test_every_file_has_a_row_and_the_unreadable_one_says_why(
    indexed: dict[str, Any], photos: Path
) -> None:
    rows = shard_rows(indexed["out"])
    files = sorted(str(p) for p in photos.rglob("*") if p.is_file())
    assert sorted(rows) == files
    broken = rows[str(photos / BROKEN)]
    assert broken["status"] == "error" and broken["error"] and broken["descriptor"] is None
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert len(ok) == 8
    assert all(len(r["descriptor"]) == 2 * 1280 and r["thumbnail"][:2] == b"\xff\xd8" for r in ok)
    assert all(len(r["tag_labels"]) == 5 for r in ok)
    schema = pq.read_schema(indexed["out"] / "shard-00000.parquet")
    assert schema.metadata[b"photosim.model_id"].decode() == MODEL_ID


def test_descriptors_and_hashes_equal_a_desktop_scan(
    indexed: dict[str, Any], desktop: Path
) -> None:
    rows = shard_rows(indexed["out"])
    with Catalog(desktop) as catalog:
        photos = {p.path: p for p in catalog.photos(status=None)}
        assert sorted(photos) == sorted(rows)
        cosines = []
        for path, row in rows.items():
            photo = photos[path]
            assert (row["status"], row["content_hash"]) == (photo.status, photo.content_hash)
            if row["status"] != "ok":
                continue
            assert (row["phash"], row["dhash"], row["width"], row["height"]) == (
                photo.phash, photo.dhash, photo.width, photo.height)
            assert row["variants"] == photo.variants and row["grey"] == photo.grey
            reference = catalog.embedding(photo.content_hash, MODEL_ID)
            cosines.append(float(descriptor(row["descriptor"]) @ reference))
    assert len(cosines) == 8 and min(cosines) >= 0.999, cosines


def test_a_rerun_with_nothing_to_do_needs_no_cluster(
    indexed: dict[str, Any], photos: Path
) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in indexed["out"].glob("shard-*")}
    started = time.monotonic()
    # Nothing to embed: the (unreachable) address is never even tried.
    summary = run(index_shards([photos], indexed["out"], SETTINGS,
                               ClusterOptions(address="127.0.0.1:9")))
    assert time.monotonic() - started < 5
    assert summary.shards_done == 0 and summary.shards_skipped == 3 and not summary.redone
    assert {p.name: p.stat().st_mtime_ns for p in indexed["out"].glob("shard-*")} == before


def test_a_folder_of_another_model_or_other_folders_is_refused(
    indexed: dict[str, Any], photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(indexed["out"])
    assert main(["index", "-q", "--out", out, "--model", "efficientnet_lite2", str(photos)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"photosim: {out} holds shards of {MODEL_ID}") and "\n" not in err
    assert main(["index", "-q", "--out", out, str(photos / "sub")]) == 1
    assert "not over" in capsys.readouterr().err
    with pytest.raises(ClusterError, match="shards of 4 files, not 8"):
        run(index_shards([photos], out, SETTINGS, ClusterOptions(shard_size=8)))


# ---------------------------------------------------------------------------- attach
def test_attach_gives_the_desktop_scans_duplicates_and_similar(
    indexed: dict[str, Any], desktop: Path, photos: Path, tmp_path: Path
) -> None:
    with Library(tmp_path / "attached.db") as library:
        summary = run(library.attach_shards(indexed["out"]))
        # The exact copy and its original are in different shards: each shard writes one.
        assert (summary.attached, summary.photos, summary.errors, summary.descriptors) == (
            3, 9, 1, 8)
        assert library.model() == MODEL_ID
        assert library.info(Settings())["descriptors"] == {MODEL_ID: 7}  # one per content
        assert library.errors()[0][0] == str(photos / BROKEN)
        ours = library.duplicates("near")
        hits = library.similar(photos / "original.jpg", k=5)
        assert library.thumbnail(hits.hits[0].photo.content_hash)[:2] == b"\xff\xd8"
        assert len(library.content_tags(hits.hits[0].photo.content_hash, floor=0.0)) == 5
        again = run(library.attach_shards(indexed["out"]))
        assert (again.attached, again.already) == (0, 3)
    with Library(desktop) as reference:
        theirs = reference.duplicates("near")
        expected = reference.similar(photos / "original.jpg", k=5)

    def groups(result: Any) -> list[list[str]]:
        return sorted(sorted(m.photo.path for m in g.members) for g in result.groups)

    assert groups(ours) == groups(theirs) and len(groups(ours)) == 1
    assert len(groups(ours)[0]) == 6  # the original and its 5 copies
    assert [h.photo.path for h in hits.hits] == [h.photo.path for h in expected.hits]
    assert hits.mode == "descriptors"


def test_attach_leaves_out_corrupt_shards_and_says_so(
    indexed: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(indexed["out"], out)
    shard = out / "shard-00002.parquet"
    shard.write_bytes(b"x" + shard.read_bytes()[1:])
    code = main(["attach", "-q", "--catalog", str(tmp_path / "c.db"), str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Attached 2 of 3 shards" in captured.out
    assert "1 shards do not match their checksum (2)" in captured.err


# ---------------------------------------------------------------------------- command line
def photosim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "photosim", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_an_unreachable_cluster_is_one_clear_line_within_seconds(tmp_path: Path,
                                                                   photos: Path) -> None:
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    proc = photosim("index", "--engine", "ray", "--address", f"127.0.0.1:{port}",
                    "--out", str(tmp_path / "out"), "-q", str(photos), timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"photosim: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection "
                     "refused; start one with `ray start --head` on the head machine (or use "
                     "--engine local)"], proc.stderr
    usage = photosim("index", "--engine", "ray", "--out", str(tmp_path / "out"), str(photos))
    assert usage.returncode == 2 and "--engine ray needs --address" in usage.stderr


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_holds_it(
    tmp_path: Path, photos: Path
) -> None:
    """Two runs writing shards into one folder would overwrite each other's files: the second
    is refused in one line (before it connects to any cluster) and writes nothing."""
    from photosim.library.cluster import LOCK_NAME

    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(  # another process holds the folder's lock, like a running index
        [sys.executable, "-c", "import filelock, sys, time; "
         f"lock = filelock.FileLock({str(out / LOCK_NAME)!r}); lock.acquire(); "
         "print('held', flush=True); "
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = photosim("index", "--engine", "ray", "--address", "127.0.0.1:1", "--out",
                        str(out), "-q", str(photos), timeout=60)
    finally:
        holder.kill()
        holder.communicate()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"photosim: another photosim index is writing into {out}: wait for it to finish (or "
        "stop it), or choose another --out"], proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # no manifest, no shard


def test_cli_index_on_a_running_cluster_then_attach(
    cluster: str, photos: Path, tmp_path: Path
) -> None:
    """``photosim index --engine ray --address`` joins the module's Ray instance like a
    cluster started with ``ray start --head``; ``photosim attach`` imports the result."""
    out = tmp_path / "shards"
    proc = photosim("index", "--engine", "ray", "--address", cluster, "--out", str(out),
                    "--shard-size", "5", "--precision", "float32", "--json", "-q", str(photos))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema"] == "photosim-index/v1"
    assert (report["files"], report["shards"], report["shards_done"], report["errors"]) == (
        9, 2, 2, 1)
    assert report["address"] == cluster and report["devices"] == ["cpu"]
    catalog = str(tmp_path / "c.db")
    proc = photosim("attach", "--catalog", catalog, "--json", "-q", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["photos"] == 9
    with Library(catalog) as library:
        groups = library.duplicates("exact").groups
    assert [sorted(Path(m.photo.path).name for m in g.members) for g in groups] == [
        ["copy.jpg", "original.jpg"]]
