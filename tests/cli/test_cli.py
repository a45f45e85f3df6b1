"""The command line, in process (``photosim.cli.main``) and as a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import BASE_MTIME_NS, byte_copy, set_mtime, write_photo_set

from photosim import __version__
from photosim.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from photosim.core.catalog import SCHEMA_VERSION, Catalog
from photosim.core.index.vectors import VectorIndex, pca_path, set_pca_dim
from photosim.embed import DEFAULT_MODEL

N_FILES = 8  # the photo set (7) + an exact copy of the different photo
N_CONTENTS = 6


@dataclass
class Scanned:
    folder: Path
    paths: dict[str, Path]
    catalog: Path
    scan_rc: int
    scan_out: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    """The photo set scanned hash-only through the CLI (stdout captured by hand: module scope)."""
    tmp = tmp_path_factory.mktemp("cli")
    paths = write_photo_set(tmp / "photos")
    paths["different copy"] = byte_copy(paths["different"], tmp / "photos" / "different copy.jpg")
    set_mtime(paths["different copy"], BASE_MTIME_NS + 60 * 10**9)
    catalog = tmp / "c.db"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(
            [
                "scan",
                str(tmp / "photos"),
                "--model",
                "none",
                "-q",
                "--workers",
                "1",
                "--catalog",
                str(catalog),
            ]
        )
    return Scanned(tmp / "photos", paths, catalog, rc, buf.getvalue())


def test_scan_prints_a_summary(scanned: Scanned) -> None:
    assert scanned.scan_rc == EXIT_OK
    first = scanned.scan_out.splitlines()[0]
    assert first.startswith("Scanned: 8 seen, 8 new, 0 changed, 0 unchanged, 0 removed, 0 errors")
    assert "no descriptors: hash-only scan requested (--model none)" in scanned.scan_out


def test_rescan_json(scanned: Scanned, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(
        capsys,
        "scan",
        str(scanned.folder),
        "--model",
        "none",
        "-q",
        "--json",
        "--catalog",
        str(scanned.catalog),
    )
    assert rc == EXIT_OK
    data = json.loads(out)
    assert (data["seen"], data["unchanged"], data["decoded"]) == (N_FILES, N_FILES, 0)
    assert data["model"] is None and data["catalog"] == str(scanned.catalog)


def test_duplicates_json(scanned: Scanned, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "duplicates", "--json", "--catalog", str(scanned.catalog))
    assert rc == EXIT_OK
    data = json.loads(out)
    assert data["schema"] == "photosim-duplicates/v1"
    assert data["tier"] == "near" and data["evidence"] == "hashes+keypoints" and data["model"] is None
    assert data["notes"] and data["thresholds"]["near_phash"] >= 0
    groups = data["groups"]
    assert len(groups) == 2
    by_keeper = {Path(g["members"][0]["path"]).name: g for g in groups}
    assert set(by_keeper) == {"original.jpg", "different.jpg"}
    for group in groups:
        members = group["members"]
        assert members[0]["keep"] is True and all(m["keep"] is False for m in members[1:])
        assert members[0]["match"] == "keeper"
        assert all(m["why"] for m in members)
        assert group["reclaimable_bytes"] == sum(m["size"] for m in members[1:])
        assert group["id"] >= 1
    names = {Path(m["path"]).name for m in by_keeper["original.jpg"]["members"]}
    assert {"copy.jpg", "resized.jpg", "reencoded.jpg", "rotated.jpg"} <= names
    assert "different.jpg" not in names
    assert [Path(m["path"]).name for m in by_keeper["different.jpg"]["members"]] == [
        "different.jpg",
        "different copy.jpg",
    ]


def test_duplicates_exact_text(scanned: Scanned, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "duplicates", "--tier", "exact", "--catalog", str(scanned.catalog))
    assert rc == EXIT_OK
    lines = out.splitlines()
    assert lines[0].startswith("2 exact duplicate groups, 2 photos to review")
    assert "(evidence: bytes)" in lines[0]
    keep = [line.split(None, 1)[1] for line in lines if line.strip().startswith("keep ")]
    assert sorted(Path(p).name for p in keep) == ["different.jpg", "original.jpg"]
    assert sum("identical bytes" in line for line in lines) == 2


def test_duplicates_similar_without_descriptors_fails_cleanly(
    scanned: Scanned, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(capsys, "duplicates", "--tier", "similar", "--catalog", str(scanned.catalog))
    assert rc == EXIT_ERROR and out == ""
    assert err.startswith("photosim: the similar tier needs CNN descriptors")


def test_similar_json_ranks_the_exact_copy_first(
    scanned: Scanned, capsys: pytest.CaptureFixture[str]
) -> None:
    query = scanned.paths["different"]
    rc, out, _ = run(
        capsys, "similar", str(query), "--json", "-k", "5", "--catalog", str(scanned.catalog)
    )
    assert rc == EXIT_OK
    data = json.loads(out)
    assert data["schema"] == "photosim-similar/v1" and data["mode"] == "hashes"
    assert data["in_catalog"] is True and data["query"] == str(query)
    results = data["results"]
    assert len(results) == 5 and [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    assert Path(results[0]["path"]).name == "different copy.jpg"
    assert results[0]["similarity"] == pytest.approx(1.0, abs=1e-3)
    assert str(query) not in [r["path"] for r in results]


def test_similar_text_and_unreadable_query(
    scanned: Scanned, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc, out, _ = run(
        capsys,
        "similar",
        str(scanned.paths["original"]),
        "-k",
        "3",
        "--catalog",
        str(scanned.catalog),
    )
    assert rc == EXIT_OK
    assert out.splitlines()[0].startswith(f"Photos similar to {scanned.paths['original']}")
    assert len([line for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]) == 3
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    rc, out, err = run(capsys, "similar", str(bad), "--catalog", str(scanned.catalog))
    assert rc == EXIT_ERROR and "cannot read the query image" in err


def test_info(scanned: Scanned, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "info", "--catalog", str(scanned.catalog))
    assert rc == EXIT_OK
    assert f"catalog:     {scanned.catalog} (schema {SCHEMA_VERSION})" in out
    assert f"folder:      {scanned.folder}" in out
    assert (
        f"photos:      {N_FILES} files, {N_FILES} readable, {N_CONTENTS} unique contents, 0 errors"
        in out
    )
    assert "model:       none yet" in out
    # The scan stored every content's neighbours: grouping has nothing to compute.
    assert f"index:       hash128: {N_CONTENTS} vectors, in sync, neighbours stored" in out


def test_info_json(scanned: Scanned, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "info", "--json", "--errors", "--catalog", str(scanned.catalog))
    assert rc == EXIT_OK
    data = json.loads(out)
    assert data["version"] == __version__ and data["catalog"] == str(scanned.catalog)
    assert data["schema"] == SCHEMA_VERSION
    assert (data["photos"], data["ok"], data["errors"], data["contents"]) == (
        N_FILES,
        N_FILES,
        0,
        N_CONTENTS,
    )
    assert data["folders"] == [{"path": str(scanned.folder), "protected": False}]
    assert data["model"] is None and data["descriptors"] == {}
    assert data["error_files"] == []
    assert data["indexes"]["hash128"]["vectors"] == N_CONTENTS


def test_catalog_from_environment(
    scanned: Scanned, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTOSIM_CATALOG", str(scanned.catalog))
    rc, out, _ = run(capsys, "info", "--json")
    assert rc == EXIT_OK and json.loads(out)["catalog"] == str(scanned.catalog)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"photosim {__version__}"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys)
    assert rc == EXIT_USAGE and "usage: photosim" in out


def test_scan_of_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(
        capsys,
        "scan",
        str(tmp_path / "nope"),
        "--model",
        "none",
        "-q",
        "--catalog",
        str(tmp_path / "c.db"),
    )
    assert rc == EXIT_USAGE and "not a folder" in err


def test_newer_catalog_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.db"
    assert run(capsys, "info", "--catalog", str(path))[0] == EXIT_OK
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", [str(SCHEMA_VERSION + 1)])
    conn.commit()
    conn.close()
    rc, out, err = run(capsys, "duplicates", "--catalog", str(path))
    assert rc == EXIT_ERROR and out == ""
    assert err.startswith("photosim: ") and "newer photosim" in err and len(err.splitlines()) == 1


# ----------------------------------------------------------------------------- subprocesses
def python(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_module_version_subprocess() -> None:
    proc = python("-m", "photosim", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"photosim {__version__}"


def test_cli_never_imports_torch_or_qt(tmp_path: Path) -> None:
    code = (
        "import sys, photosim.cli\n"
        f"rc = photosim.cli.main(['info', '--catalog', {str(tmp_path / 'c.db')!r}])\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'PySide6') if m in sys.modules)\n"
        "print('HEAVY', heavy, 'RC', rc)\n"
    )
    proc = python("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY [] RC 0" in proc.stdout


@pytest.mark.slow
def test_scan_without_weights_falls_back_to_hashes(tmp_path: Path) -> None:
    """A torchvision model whose weights are not cached, offline: hashes only, one line."""
    paths = write_photo_set(tmp_path / "photos")
    catalog = str(tmp_path / "c.db")
    env = {"PHOTOSIM_OFFLINE": "1", "TORCH_HOME": str(tmp_path / "torch")}
    proc = python(
        "-m",
        "photosim",
        "scan",
        str(tmp_path / "photos"),
        "-q",
        "--model",
        "efficientnet_b1",
        "--workers",
        "1",
        "--catalog",
        catalog,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stdout.splitlines() if "weights" in line]
    assert len(notes) == 1, proc.stdout
    assert notes[0].strip().startswith("no descriptors: efficientnet_b1 weights")
    assert "missing" in notes[0]
    assert proc.stdout.splitlines()[0].startswith("Scanned: 7 seen, 7 new")
    proc = python("-m", "photosim", "duplicates", "--json", "--catalog", catalog, env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["evidence"] == "hashes+keypoints" and len(data["groups"]) == 1
    names = {Path(m["path"]).name for m in data["groups"][0]["members"]}
    assert {"original.jpg", "copy.jpg", "resized.jpg"} <= names
    assert paths


def test_eval_on_dev(dev_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(
        capsys,
        "eval",
        str(dev_dir),
        "--truth",
        str(dev_dir / "groundtruth.json"),
        "--model",
        "none",
        "--json",
        "-q",
        "--catalog",
        str(tmp_path / "eval.db"),
    )
    assert rc == EXIT_OK
    report = json.loads(out)
    assert report["model"] is None and report["embed_note"]
    tiers = report["tiers"]
    assert tiers["exact"]["precision"] == 1.0 and tiers["exact"]["recall"] == 1.0
    assert tiers["near"]["evidence"] == "hashes+keypoints"
    assert 0.0 < tiers["near"]["precision"] <= 1.0 and 0.0 < tiers["near"]["recall"] <= 1.0
    assert "skipped" in tiers["similar"]
    assert report["near_recall_by_transform"]
    # "Find similar" by perceptual hashes: every shot of a similar group is a query.
    retrieval = report["retrieval"]
    truth = json.loads((dev_dir / "groundtruth.json").read_text())
    members = {n for g in truth["similar"] for n in g} - set(truth["unreadable"])
    assert retrieval["queries"] == len(members) and retrieval["mode"] == "hashes"
    assert 0.0 < retrieval["mAP"] < 1.0 and 0.0 < retrieval["recall_at_10"] <= 1.0
    print(
        f"\nCLI eval DEV near: precision {tiers['near']['precision']} recall {tiers['near']['recall']}"
    )


def test_cleanup_dry_run_confirmation_move_history_undo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_photo_set(tmp_path / "photos")
    before = {p: p.read_bytes() for p in paths.values()}
    cat = ["--catalog", str(tmp_path / "c.db")]
    assert run(capsys, "scan", str(tmp_path / "photos"), "--model", "none", "-q",
               "--workers", "1", *cat)[0] == EXIT_OK
    rc, out, _ = run(capsys, "cleanup", "--tier", "near", "--dry-run", *cat)
    assert rc == EXIT_OK and "would move" in out and str(paths["copy"]) in out
    assert all(p.exists() for p in paths.values())
    # No terminal to confirm on, no --yes: nothing moves.
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    rc, _, err = run(capsys, "cleanup", "--tier", "near", *cat)
    assert rc == EXIT_USAGE and "--yes" in err and all(p.exists() for p in paths.values())
    rc, out, _ = run(capsys, "cleanup", "--tier", "near", "--yes", *cat)
    assert rc == EXIT_OK and "Moved 5 photos" in out
    assert {n for n, p in paths.items() if p.exists()} == {"original", "different"}
    rc, out, _ = run(capsys, "history", "--json", *cat)
    history = json.loads(out)
    assert rc == EXIT_OK and history[0]["files"] == 5 and history[0]["status"] == "done"
    rc, out, _ = run(capsys, "undo", *cat)
    assert rc == EXIT_OK and "Restored 5 photos" in out
    assert {p: p.read_bytes() for p in paths.values()} == before
    assert run(capsys, "undo", *cat)[1].strip() == "Nothing to undo."


def test_scan_pca_option_stores_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cat = ["--catalog", str(tmp_path / "c.db")]
    rc, out, _ = run(capsys, "scan", str(empty), "--pca", "64", "-q", *cat)
    assert rc == EXIT_OK
    model = f"{DEFAULT_MODEL}-avg"
    assert f"index {model}: full dimension; PCA to 64-d starts at 1000 descriptors" in out
    with Catalog(tmp_path / "c.db") as catalog:
        assert catalog.get_meta(f"pca_dim:{model}") == "64"
    rc, out, _ = run(capsys, "scan", str(empty), "--pca", "0", "-q", *cat)
    assert rc == EXIT_OK and f"index {model}: full dimension (PCA off)" in out
    with Catalog(tmp_path / "c.db") as catalog:
        assert catalog.get_meta(f"pca_dim:{model}") == "0"
    rc, _, err = run(capsys, "scan", str(empty), "--model", "none", "--pca", "8", "-q", *cat)
    assert rc == EXIT_USAGE and "--pca" in err
    with pytest.raises(SystemExit) as exited:
        main(["scan", str(empty), "--pca", "-3", *cat])
    assert exited.value.code == EXIT_USAGE


def test_info_shows_the_pca_of_an_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors = np.random.default_rng(0).normal(size=(1000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with Catalog(tmp_path / "c.db") as catalog:
        with catalog.transaction():
            catalog.put_embeddings("m", [f"{i:032x}" for i in range(1000)], vectors)
        set_pca_dim(catalog, "m", 16)
        index = VectorIndex.open(catalog, "m")
        assert index is not None and index.pca is not None
        kept = index.pca.explained_variance
    cat = ["--catalog", str(tmp_path / "c.db")]
    rc, out, _ = run(capsys, "info", "--json", *cat)
    info = json.loads(out)["indexes"]["m"]
    assert rc == EXIT_OK and info["state"] == "in sync" and info["pca_setting"] == 16
    assert info["graph_rows"] == 0  # no scan ran: grouping would compute the neighbours
    assert info["pca"]["dim"] == 16 and info["pca"]["input_dim"] == 64
    assert info["pca"]["explained_variance"] == pytest.approx(kept, abs=1e-6)
    assert info["pca"]["file"] == str(pca_path(tmp_path / "c.db", "m"))
    rc, out, _ = run(capsys, "info", *cat)
    assert (
        f"index:       m: 1000 vectors, in sync, neighbours of 1000 to compute, PCA 64 -> "
        f"16-d ({100 * kept:.1f} % of the "
        "variance kept)" in out
    )
    pca_path(tmp_path / "c.db", "m").unlink()
    rc, out, _ = run(capsys, "info", *cat)
    assert "m: 1000 vectors, stale: its PCA file is gone (rebuilt on next use)" in out


def test_global_options_before_or_after_the_command(
    scanned: Scanned, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = str(scanned.catalog)
    after = run(capsys, "info", "--json", "--catalog", catalog)
    before = run(capsys, "--catalog", catalog, "--json", "info")
    mixed = run(capsys, "--catalog", catalog, "info", "--json")
    assert after[0] == before[0] == mixed[0] == EXIT_OK
    assert json.loads(after[1]) == json.loads(before[1]) == json.loads(mixed[1])
    assert json.loads(before[1])["catalog"] == catalog
    # Through the `photosim` entry point too (it routes between the app and the CLI).
    proc = python("-m", "photosim", "--catalog", catalog, "-q", "history", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_model_help_names_every_registered_backbone() -> None:
    """The help is written out (building the parser must not import numpy or torch): keep it
    equal to the registry."""
    import re

    from photosim.cli import _model_options
    from photosim.embed import available_models

    (action,) = [a for a in _model_options()._actions if "--model" in a.option_strings]
    named = re.search(r"backbone \(([^)]*)\)", " ".join(action.help.split())).group(1)
    assert [n.strip() for n in named.split(",")] == available_models()
    assert action.help.endswith(f"else {DEFAULT_MODEL}")


def test_cleanup_says_which_metadata_it_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyexiv2 = pytest.importorskip("pyexiv2", reason='needs pip install "photosim[metadata]"')
    paths = write_photo_set(tmp_path / "photos")
    image = pyexiv2.Image(str(paths["resized"]))
    image.modify_xmp({"Xmp.dc.subject": ["pier"]})
    image.close()
    cat = ["--catalog", str(tmp_path / "c.db")]
    assert run(capsys, "scan", str(tmp_path / "photos"), "--model", "none", "-q",
               "--workers", "1", *cat)[0] == EXIT_OK
    sidecar = f"{paths['original']}.xmp"
    rc, out, _ = run(capsys, "cleanup", "--tier", "near", "--dry-run", *cat)
    assert rc == EXIT_OK
    assert f"keeps metadata: 1 keyword (pier) from resized.jpg -> {sidecar}" in out
    assert not Path(sidecar).exists()
    rc, out, _ = run(capsys, "cleanup", "--tier", "near", "--yes", *cat)
    assert rc == EXIT_OK and f"metadata of the moved copies kept in {sidecar}" in out
    assert "pier" in Path(sidecar).read_text()
    assert run(capsys, "undo", *cat)[0] == EXIT_OK and not Path(sidecar).exists()
