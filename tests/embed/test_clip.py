"""photosim.embed.clip: loading, image and text embeddings, errors (random weights, offline)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("open_clip", reason="CLIP is the optional extra photosim[clip]")

from photosim.embed import EmbedError  # noqa: E402
from photosim.embed.clip import DEFAULT_CLIP, ClipEmbedder, ClipError, load_clip, prompt  # noqa: E402

pytestmark = pytest.mark.slow  # builds a real ViT-B-32 (random weights)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state_dict of open_clip ViT-B-32 at random init (seeded), written once.

    Deleted after the module: at 605 MB it should not linger in pytest's kept temp folders.
    """
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    path = tmp_path_factory.mktemp("clip") / "random-vit-b-32.pt"
    torch.save(model.state_dict(), path)
    del model
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def clip(weights_file: Path) -> ClipEmbedder:
    return load_clip(weights=weights_file, device="cpu")


def _picture(size: tuple[int, int], colour: str, shape: str) -> np.ndarray:
    """A ``(H, W, 3)`` uint8 RGB drawing: a shape of one colour on a grey ground."""
    image = Image.new("RGB", size, "lightgrey")
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w // 5, h // 5, w * 4 // 5, h * 4 // 5)
    if shape == "ellipse":
        draw.ellipse(box, fill=colour)
    else:
        draw.rectangle(box, fill=colour)
    return np.asarray(image)


def test_errors_are_embed_errors() -> None:
    assert issubclass(ClipError, EmbedError)
    assert DEFAULT_CLIP == "ViT-B-32/laion2b_s34b_b79k"


def test_default_tag_exists() -> None:
    import open_clip

    assert tuple(DEFAULT_CLIP.split("/")) in open_clip.list_pretrained()


def test_prompt() -> None:
    assert prompt("a dog on a beach") == "a photo of a dog on a beach."
    assert prompt("  sunset ") == "a photo of sunset."


def test_load_from_file(clip: ClipEmbedder, weights_file: Path) -> None:
    assert clip.model_id == "clip:ViT-B-32/file:random-vit-b-32.pt"
    assert clip.dim == 512
    assert clip.input_size == 224
    assert clip.device == "cpu"
    assert clip.weights_file == str(weights_file)


def test_embed_images_of_any_size(clip: ClipEmbedder) -> None:
    red = _picture((256, 171), "red", "ellipse")  # a portrait thumbnail
    blue = _picture((256, 192), "blue", "rectangle")  # a landscape thumbnail
    small = _picture((40, 90), "green", "ellipse")
    out = clip.embed([red, blue, small, red])
    assert out.shape == (4, 512)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out[0], out[3])  # same image, same vector
    assert not np.allclose(out[0], out[1], atol=1e-4)
    assert not np.allclose(out[0], out[2], atol=1e-4)


def test_embed_nothing(clip: ClipEmbedder) -> None:
    out = clip.embed([])
    assert out.shape == (0, 512)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((64, 64, 3), np.float32), "dtype float32"),
        (np.zeros((64, 64), np.uint8), r"shape \(64, 64\)"),
        (np.zeros((64, 64, 4), np.uint8), r"shape \(64, 64, 4\)"),
        (np.zeros((0, 64, 3), np.uint8), r"shape \(0, 64, 3\)"),
    ],
)
def test_embed_rejects_bad_images(clip: ClipEmbedder, image: np.ndarray, match: str) -> None:
    good = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=f"image 1 .*{match}"):
        clip.embed([good, image])


def test_embed_text(clip: ClipEmbedder) -> None:
    out = clip.embed_text(["a dog", "a beach"])
    assert out.shape == (2, 512)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(out[0], out[1], atol=1e-4)
    # Alone or in a batch: the same vector, up to float rounding (BLAS blocks by batch size).
    np.testing.assert_allclose(clip.embed_text(["a dog"])[0], out[0], atol=1e-5)
    assert clip.embed_text([]).shape == (0, 512)


def test_embed_text_rejects_a_bare_string(clip: ClipEmbedder) -> None:
    with pytest.raises(ValueError, match="not one string"):
        clip.embed_text("a dog")


def test_corrupt_weights_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ClipError, match="corrupt") as info:
        load_clip(weights=path, device="cpu")
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_weights_of_another_model(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ClipError, match="not a state_dict of open_clip ViT-B-32") as info:
        load_clip(weights=path, device="cpu")
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(ClipError, match="does not exist"):
        load_clip(weights=tmp_path / "nope.pt")


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("ViT-Nope-1/openai", "unknown CLIP architecture 'ViT-Nope-1'"),
        ("ViT-B-32/nope", "unknown pretrained tag 'nope' for CLIP ViT-B-32; its tags: openai"),
        ("ViT-B-32", "expected ARCH/TAG"),
        ("ViT-B-32/openai/x", "expected ARCH/TAG"),
    ],
)
def test_unknown_spec(spec: str, match: str) -> None:
    with pytest.raises(ClipError, match=match):
        load_clip(spec)


def _empty_hf_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PHOTOSIM_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "hf" / "hub"


def test_offline_without_cached_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = _empty_hf_cache(monkeypatch, tmp_path)
    with pytest.raises(ClipError) as info:
        load_clip()
    message = str(info.value)
    assert "\n" not in message
    assert "ViT-B-32/laion2b_s34b_b79k" in message
    assert "about 605 MB" in message
    assert str(cache) in message
    assert "PHOTOSIM_OFFLINE=1" in message
    assert "connect to the internet once" in message
    assert "pass a weights file" in message
    assert not cache.exists() or not any(cache.iterdir())  # nothing was fetched


def test_offline_with_cached_weights(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, weights_file: Path
) -> None:
    """A tag whose weights are in the Hugging Face cache loads with downloads off."""
    cache = _empty_hf_cache(monkeypatch, tmp_path)
    repo = cache / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    try:
        os.symlink(weights_file, snapshot / "open_clip_pytorch_model.bin")
    except OSError:  # no symlinks (Windows without developer mode)
        shutil.copy(weights_file, snapshot / "open_clip_pytorch_model.bin")
    clip = load_clip(DEFAULT_CLIP, device="cpu")
    assert clip.model_id == "clip:ViT-B-32/laion2b_s34b_b79k"
    assert clip.weights_file == str(snapshot / "open_clip_pytorch_model.bin")
    assert clip.embed([_picture((64, 48), "red", "ellipse")]).shape == (1, 512)


def test_open_clip_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip -> ImportError
    with pytest.raises(ClipError, match=r"pip install 'photosim\[clip\]'"):
        load_clip()


def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Downloads allowed but no network: a clear error at once, not the Hub client's retries."""
    import huggingface_hub

    import photosim.embed.clip as clip_module

    _empty_hf_cache(monkeypatch, tmp_path)
    monkeypatch.setenv("PHOTOSIM_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(
        clip_module, "_unreachable", lambda endpoint: "huggingface.co is unreachable (test)"
    )
    with pytest.raises(ClipError, match="huggingface.co is unreachable.*connect to the internet"):
        load_clip()


def test_failed_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    import photosim.embed.clip as clip_module

    _empty_hf_cache(monkeypatch, tmp_path)
    monkeypatch.setenv("PHOTOSIM_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(clip_module, "_unreachable", lambda endpoint: None)
    calls: list[tuple[str, str, bool]] = []

    def fake_download(repo: str, filename: str, **options: object) -> str:
        local = bool(options.get("local_files_only"))
        calls.append((repo, filename, local))
        if local:
            raise LocalEntryNotFoundError("not cached")
        assert options["tqdm_class"] is not None  # progress=False: a silent bar
        raise OSError("connection reset (test)")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with pytest.raises(ClipError, match=r"download .* failed \(connection reset \(test\)\)"):
        load_clip(progress=False)
    repo = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    assert calls == [
        (repo, "open_clip_model.safetensors", True),  # the cache first, safetensors preferred
        (repo, "open_clip_pytorch_model.bin", True),
        (repo, "open_clip_model.safetensors", False),
    ]


def test_a_library_searched_with_clip(clip: ClipEmbedder, tmp_path: Path) -> None:
    """The real model (random weights) through the library: embeddings from the stored
    thumbnails, stored under its model id, and a text query ranking every photo."""
    from helpers import ColourTagger, coloured_photo

    from photosim.config import Settings
    from photosim.core.catalog import Catalog
    from photosim.core.scan.pipeline import run_scan, scan
    from photosim.core.textsearch import clip_index, search_clip

    for channel in range(3):
        coloured_photo(tmp_path / "photos" / f"{channel}.jpg", channel, channel)
    with Catalog(tmp_path / "c.db") as catalog:
        run_scan(scan(catalog, [str(tmp_path / "photos")], Settings(workers=1), ColourTagger()))
        gen = clip_index(catalog, clip)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                assert stop.value == 3
                break
        assert catalog.embedding_dim(clip.model_id) == clip.dim
        result = search_clip(catalog, "a red square", clip, k=5)
    assert len(result.hits) == 3 and result.mode == "clip"
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)
