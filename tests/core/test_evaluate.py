"""Scoring against ground truth: transform kinds, per-tier reports, ``photosim eval`` output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import make_photo_obj
from PIL import Image
from test_verify import COPIES, scene

from photosim.config import Settings
from photosim.core.catalog import Catalog
from photosim.core.dedup.grouping import Group, GroupingResult, Member
from photosim.core.evaluate import (
    KINDS,
    evaluate,
    load_truth,
    recall_by_kind,
    tier_report,
    transform_kind,
)
from photosim.core.scan.pipeline import run_scan, scan

# Every transform text of the DEV ground truth, and its kind.
DEV_TRANSFORMS = {
    '"copyright" text overlay': "overlay",
    "PNG with (opaque) alpha channel": "re-encode",
    "PNG, downscaled": "resize",
    "WebP re-encode": "re-encode",
    "brighter": "brightness",
    "brightness_contrast": "brightness",
    "byte-identical to forest-high.jpg": "exact",
    "byte-identical to imagehash_php forest-copyright.jpg (which is itself an overlay copy)":
        "exact",
    "combo": "crop",
    "crop": "crop",
    "darker": "brightness",
    "edited: logo pasted, re-cropped (ELA demo)": "edit",
    "exact copy (nested folder)": "exact",
    "exact_copy": "exact",
    "exif_orientation": "rotate",
    "grayscale PGM of the mandrill test image": "grey",
    "grayscale": "grey",
    "horizontal flip (mirror)": "flip",
    "horizontal flip (nested copy)": "flip",
    "hue shift": "brightness",
    "identical JPEG bytes, misleading .bmp extension": "exact",
    "jpeg": "re-encode",
    "low JPEG quality": "re-encode",
    "pixel-identical PGM of opencv box.png": "re-encode",
    "png": "re-encode",
    "resize (nested copy)": "resize",
    "resize": "resize",
    "rotate": "rotate",
    "rotation (nested copy)": "rotate",
    "rotation with black corners": "rotate",
    "salt-and-pepper noise": "edit",
    "same RGBA logo, transparent pixels white instead of black": "edit",
    "thumbnail": "resize",
    "webp": "re-encode",
}


@pytest.mark.parametrize(("transform", "kind"), list(DEV_TRANSFORMS.items()))
def test_transform_kinds(transform: str, kind: str) -> None:
    assert kind in KINDS
    assert transform_kind(transform) == kind


def test_transform_kind_of_originals_and_unknown_texts() -> None:
    assert transform_kind(None) is None and transform_kind("") is None
    assert transform_kind("posterised with a sepia lookup table") == "other"


def _truth(tmp_path: Path, images: dict[str, dict], **groups: list[list[str]]) -> Path:
    data = {"schema": "photosim-groundtruth/v1", "images": images, **groups}
    path = tmp_path / "groundtruth.json"
    path.write_text(json.dumps(data))
    return path


def test_recall_by_kind_counts_each_pair_once_per_kind(tmp_path: Path) -> None:
    images = {
        "a.jpg": {},
        "a_crop.jpg": {"transform": "crop"},
        "a_grey.jpg": {"transform": "grayscale"},
        "a_crop2.jpg": {"transform": "combo"},
    }
    truth = load_truth(_truth(tmp_path, images, near_duplicates=[list(images)]))
    found = {frozenset(("a.jpg", "a_crop.jpg")), frozenset(("a_crop.jpg", "a_grey.jpg"))}
    kinds = recall_by_kind(truth, found)
    assert list(kinds) == ["crop", "grey"]  # report order
    # crop pairs: a~crop, a~crop2, crop~grey, crop~crop2 (once), grey~crop2.
    assert kinds["crop"] == (2, 5)
    assert kinds["grey"] == (1, 3)


def _member(path: str, match: str) -> Member:
    return Member(make_photo_obj(path=path), match, "why")


def test_tier_report_names_hard_negatives_and_similar_shots(tmp_path: Path) -> None:
    images = {n: {} for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg")}
    images["b.jpg"] = {"transform": "crop"}
    truth = load_truth(_truth(
        tmp_path, images,
        near_duplicates=[["a.jpg", "b.jpg"]],
        similar=[["a.jpg", "c.jpg"]],
        hard_negatives=[["a.jpg", "d.jpg"]],
    ))
    root = tmp_path.resolve()
    groups = [
        Group(1, "near", [_member(str(root / "a.jpg"), "keeper"),
                          _member(str(root / "b.jpg"), "near"),
                          _member(str(root / "c.jpg"), "near")]),
        Group(2, "near", [_member(str(root / "d.jpg"), "keeper"),
                          _member(str(root / "e.jpg"), "near")]),
    ]
    result = GroupingResult(
        "near", groups, "hashes", None, [], comparisons=10, contents=5, local_features=True,
        candidates={"hashes": 3, "keypoints": 1}, verified=4, confirmed=1, rebutted=2,
        decoded=4, seconds={"decode": 0.04, "keypoints": 0.02, "verify": 0.08, "total": 0.2},
    )
    universe = set(images)
    r = tier_report(result, truth, root, universe, photos=5)
    assert r["true_positives"] == 1 and r["predicted_pairs"] == 4
    assert r["precision"] == 0.25 and r["recall"] == 1.0
    assert r["similar_hits"] == [("a.jpg", "c.jpg")]
    assert r["hard_negative_hits"] == []
    assert ("d.jpg", "e.jpg") in r["false_positives"]
    assert r["comparisons_per_photo"] == 2.0 and r["verified_per_photo"] == 0.8
    assert r["ms_per_photo"]["total"] == 40.0
    costs = r["keypoint_costs"]
    assert costs["candidate_time_ms_per_decoded_content"] == 15.0  # (40 + 20) / 4
    assert costs["scan_time_ms_per_photo"] == 5.0 and costs["verify_ms_per_pair"] == 20.0


@pytest.fixture(scope="module")
def truth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scene with a crop, a rotated and a grey copy; another shot; two other photos (one a
    hard negative of the scene); and the ground truth that says so."""
    folder = tmp_path_factory.mktemp("truth")
    original = scene(21)
    original.save(folder / "scene.jpg", quality=92)
    copies = {"crop.jpg": "crop 20 %", "turned.jpg": "rotate 20° black corners",
              "grey.jpg": "grey"}
    for name, kind in copies.items():
        COPIES[kind][0](original).save(folder / name, quality=88)
    scene(21, moved={11: (0.04, 0.0), 10: (0.0, 0.03)}).save(folder / "shot.jpg", quality=88)
    scene(22).save(folder / "other.jpg", quality=88)
    Image.fromarray((255 - np.asarray(scene(23))).astype(np.uint8)).save(
        folder / "hard.jpg", quality=88
    )
    transforms = {"crop.jpg": "crop", "turned.jpg": "rotation with black corners",
                  "grey.jpg": "grayscale"}
    images = {n: ({"transform": transforms[n]} if n in transforms else {})
              for n in ("scene.jpg", *copies, "shot.jpg", "other.jpg", "hard.jpg")}
    _truth(folder, images,
           near_duplicates=[["scene.jpg", *copies]],
           similar=[["scene.jpg", *copies, "shot.jpg"]],
           hard_negatives=[["scene.jpg", "hard.jpg"]],
           distractors=["other.jpg"])
    return folder


def test_evaluate_scores_every_tier(truth_folder: Path, tmp_path: Path) -> None:
    truth = load_truth(truth_folder / "groundtruth.json")
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(truth_folder)], Settings(workers=1), None))
        report = evaluate(catalog, truth_folder, truth)
    assert report["photos"] == 7
    assert report["tiers"]["exact"]["recall"] == 1.0  # no exact pairs: nothing to find
    assert "skipped" in report["tiers"]["similar"]  # no descriptors
    near = report["tiers"]["near"]
    assert near["precision"] == 1.0 and near["recall"] == 1.0, near
    assert near["similar_hits"] == [] and near["hard_negative_hits"] == []
    assert near["local_features"] and near["verified_per_photo"] > 0
    assert report["near_recall_by_kind"] == {
        "crop": {"found": 3, "total": 3, "recall": 1.0},
        "rotate": {"found": 3, "total": 3, "recall": 1.0},
        "grey": {"found": 3, "total": 3, "recall": 1.0},
    }
    assert report["near_recall_by_transform"]["grayscale"] == {"found": 3, "total": 3}


def test_photosim_eval_prints_every_table(
    truth_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from photosim.cli import main
    from photosim.core.dedup.grouping import forget_verdicts

    forget_verdicts()  # the previous test verified these pairs: measure the real cost again
    args = ["eval", str(truth_folder), "--truth", str(truth_folder / "groundtruth.json"),
            "--model", "none", "-q", "--catalog", str(tmp_path / "eval.db")]
    assert main(args) == 0
    out = capsys.readouterr().out
    for text in ("precision", "near-duplicate recall by transform kind", "crop", "rotate",
                 "hard negatives 0, similar shots 0", "comparisons per photo",
                 "ms per photo", "keypoints for candidates only"):
        assert text in out, text
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tiers"]["near"]["f1"] == 1.0 and report["scan_ms_per_photo"] > 0
    assert main([*args, "--json", "--no-verify"]) == 0
    plain = json.loads(capsys.readouterr().out)["tiers"]["near"]
    assert not plain["local_features"] and plain["verified_per_photo"] == 0


def test_average_precision_by_hand() -> None:
    from photosim.core.evaluate import average_precision

    assert average_precision(np.array([True, False, True])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([False, True])) == pytest.approx(0.5)
    assert average_precision(np.array([True, True, False])) == 1.0
    assert average_precision(np.array([False, False])) == 0.0


def test_mean_average_precision_by_hand() -> None:
    from photosim.core.evaluate import mean_average_precision

    names = ["a", "b", "c", "d"]
    matrix = np.array([[1, 0], [0.9, 0.436], [0.6, 0.8], [0, 1]], np.float32)
    relevant = {frozenset(("a", "c"))}
    # a ranks b, c, d: c is second (AP 0.5); c ranks b, d, a: a is third (AP 1/3);
    # b and d have nothing relevant and are skipped.
    assert mean_average_precision(names, matrix, [0, 2, 1, 3], relevant) == pytest.approx(
        (0.5 + 1 / 3) / 2)
    assert mean_average_precision(names, matrix, [1, 3], relevant) is None


def test_retrieval_report_ranks_by_stored_vectors(truth_folder: Path, tmp_path: Path) -> None:
    """Every member of the similar group is a query; mAP and recall@10 from the real ranking."""
    from helpers import ColorGridEmbedder

    from photosim.core.evaluate import retrieval_report

    truth = load_truth(truth_folder / "groundtruth.json")
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(truth_folder)], Settings(workers=1), ColorGridEmbedder()))
        by_descriptors = retrieval_report(catalog, truth_folder, truth)
        by_hashes = retrieval_report(catalog, truth_folder, truth, model="hash128")
    assert by_descriptors["mode"] == "descriptors" and by_hashes["mode"] == "hashes"
    assert by_descriptors["model"] == "test-colorgrid"
    for report in (by_descriptors, by_hashes):
        # scene, its 3 copies and the other shot; the gallery is the 6 other photos.
        assert report["queries"] == 5 and report["gallery"] == 6
        # 4 relevant photos in a gallery of 6: recall@10 is trivially 1, AP is at least 4/6.
        assert report["recall_at_10"] == 1.0 and report["relevant_in_top_10"] == 1.0
        assert 4 / 6 <= report["mAP"] <= 1.0
    # The colour-grid embedder cannot see through a grey copy or a 20° rotation.
    assert by_descriptors["mAP"] < 1.0


def test_retrieval_report_ranks_transformed_vectors(truth_folder: Path, tmp_path: Path) -> None:
    """A transform (e.g. a whitening) is applied before ranking and its rows re-normalised:
    a rotation and a scaling change nothing, a projection that drops information does."""
    from helpers import ColorGridEmbedder

    from photosim.core.evaluate import retrieval_report

    truth = load_truth(truth_folder / "groundtruth.json")
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(truth_folder)], Settings(workers=1), ColorGridEmbedder()))
        plain = retrieval_report(catalog, truth_folder, truth)
        dim = catalog.embeddings("test-colorgrid")[2][0].shape[0]
        rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((dim, dim)))
        rotated = retrieval_report(catalog, truth_folder, truth,
                                   transform=lambda m: 7.0 * m @ rotation.astype(np.float32))
        squashed = retrieval_report(catalog, truth_folder, truth,
                                    transform=lambda m: np.abs(m[:, :1]) + 1.0)
    assert rotated["mAP"] == pytest.approx(plain["mAP"], abs=1e-4)
    assert rotated["recall_at_10"] == plain["recall_at_10"]
    # One constant-sign coordinate: every photo is equally similar, the order is the catalog's.
    assert squashed["mAP"] != plain["mAP"]
