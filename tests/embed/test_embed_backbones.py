"""Real torchvision backbones (random-init weights) through photosim.embed.load_embedder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.transforms import functional as TF

import photosim.embed as embed
from photosim.core.types import Embedder
from photosim.embed import backend
from photosim.embed.backend import native_bf16, probe_images
from photosim.embed.models import Trunk

pytestmark = pytest.mark.slow

ImagesFactory = Callable[[int, int], list[np.ndarray]]


def reference_descriptors(name: str, weights: Path, images: list[np.ndarray]) -> np.ndarray:
    """Plain torchvision (or timm) forward pass, feature map taken and average-pooled by hand."""
    spec = embed.MODELS[name]
    state = torch.load(weights, weights_only=True)
    if spec.trunk is Trunk.TIMM:
        import timm

        model = timm.create_model(spec.builder, pretrained=False)  # dynamic "SAME" padding
        state = backend.efficientnet_pytorch_to_timm(state, model)
    else:
        model = getattr(torchvision.models, spec.builder)()
    model.load_state_dict(state)
    model.eval()
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    x = TF.normalize(x, spec.mean, spec.std)
    with torch.no_grad():
        if spec.trunk is Trunk.TIMM:
            fmap = model.forward_features(x)
        elif name == "resnet50":
            x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
            fmap = model.layer4(model.layer3(model.layer2(model.layer1(x))))
        else:
            fmap = model.features(x)
        assert fmap.shape[1] == embed.MODELS[name].dim
        return F.normalize(fmap.mean(dim=(2, 3)), dim=1).numpy()


@pytest.mark.parametrize("name", embed.available_models())
def test_backbone(
    name: str, random_weights: Callable[[str], Path], make_images: ImagesFactory
) -> None:
    spec = embed.MODELS[name]
    embedder = embed.load_embedder(
        name, weights=random_weights(name), device="cpu", batch_size=2, precision="float32"
    )
    assert isinstance(embedder, Embedder)
    assert (embedder.model_id, embedder.dim, embedder.input_size, embedder.device) == (
        f"{name}-avg",
        spec.dim,
        spec.input_size,
        "cpu",
    )
    images = make_images(5, spec.input_size)

    out = embedder.embed(images)  # 3 batches: 2 + 2 + 1
    assert out.shape == (5, spec.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    # Distinct images, distinct descriptors.
    assert (np.abs(out[0] - out[1:]).max(axis=1) > 1e-3).all()

    np.testing.assert_array_equal(embedder.embed(images), out)
    one_by_one = np.concatenate([embedder.embed([image]) for image in images])
    np.testing.assert_allclose(one_by_one, out, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        reference_descriptors(name, random_weights(name), images), out, rtol=1e-4, atol=1e-4
    )
    assert embedder.embed([]).shape == (0, spec.dim)


def reference_probabilities(name: str, weights: Path, images: list[np.ndarray]) -> np.ndarray:
    """``(N, 1000)`` softmax of the plain model's own forward pass (its classifier head)."""
    spec = embed.MODELS[name]
    state = torch.load(weights, weights_only=True)
    if spec.trunk is Trunk.TIMM:
        import timm

        model = timm.create_model(spec.builder, pretrained=False)
        state = backend.efficientnet_pytorch_to_timm(state, model)
    else:
        model = getattr(torchvision.models, spec.builder)()
    model.load_state_dict(state)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return torch.softmax(model.eval()(TF.normalize(x, spec.mean, spec.std)), 1).numpy()


# One backbone per way of cutting the head off (timm, ResNet, torchvision .features).
@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet50", "mobilenet_v3_large"])
def test_the_head_tags_from_the_same_forward_pass(
    name: str, random_weights: Callable[[str], Path], make_images: ImagesFactory
) -> None:
    """embed_and_tag: the descriptors of embed() and the top classes of the model's own
    classifier."""
    spec = embed.MODELS[name]
    embedder = embed.load_embedder(
        name, weights=random_weights(name), device="cpu", batch_size=2, precision="float32"
    )
    assert embedder.tag_model == name  # type: ignore[attr-defined]
    images = make_images(3, spec.input_size)
    vectors, labels, probs = embedder.embed_and_tag(images, 5)  # type: ignore[attr-defined]
    np.testing.assert_allclose(vectors, embedder.embed(images), rtol=1e-5, atol=1e-5)
    assert labels.shape == probs.shape == (3, 5) and probs.dtype == np.float32
    expected = reference_probabilities(name, random_weights(name), images)
    top = np.argsort(-expected, axis=1)[:, :5]
    np.testing.assert_array_equal(labels, top)
    np.testing.assert_allclose(probs, np.take_along_axis(expected, top, 1), rtol=1e-3, atol=1e-5)
    assert (np.diff(probs, axis=1) <= 0).all()
    with pytest.raises(ValueError):
        embedder.embed_and_tag(images, 0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("pooling", ["gem", "rmac"])
def test_other_poolings(
    pooling: str, random_weights: Callable[[str], Path], make_images: ImagesFactory
) -> None:
    name = "mobilenet_v3_large"
    embedder = embed.load_embedder(
        name, pooling=pooling, weights=random_weights(name), device="cpu"
    )
    assert embedder.model_id == f"{name}-{pooling}"
    out = embedder.embed(make_images(3, embedder.input_size))
    assert out.shape == (3, embedder.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_cached_official_weights_load_offline(
    random_weights: Callable[[str], Path], make_images: ImagesFactory
) -> None:
    """Weights already in the torch hub cache are used without any download."""
    name = "mobilenet_v3_large"
    cached = embed.weights_cache_path(name)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(random_weights(name).read_bytes())
    assert embed.weights_cached(name)
    images = make_images(2, embed.MODELS[name].input_size)
    from_cache = embed.load_embedder(name, device="cpu").embed(images)
    from_file = embed.load_embedder(name, weights=random_weights(name), device="cpu").embed(images)
    np.testing.assert_array_equal(from_cache, from_file)


def test_state_dict_with_wrong_shapes(
    random_weights: Callable[[str], Path], tmp_path: Path
) -> None:
    """A fine-tuned head (here 10 classes) is a different model: refused, not half-loaded."""
    state = torch.load(random_weights("mobilenet_v3_large"), weights_only=True)
    state["classifier.3.weight"] = torch.zeros(10, 1280)
    path = tmp_path / "ten_classes.pth"
    torch.save(state, path)
    with pytest.raises(embed.EmbedError, match="size mismatch for classifier.3.weight"):
        embed.load_embedder("mobilenet_v3_large", weights=path, device="cpu")


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bfloat16")
def test_bfloat16_descriptors_stay_close_to_float32(
    random_weights: Callable[[str], Path]
) -> None:
    name = "mobilenet_v3_large"
    weights = random_weights(name)
    images = probe_images(embed.MODELS[name].input_size, count=6, seed=3)
    fast = embed.load_embedder(name, weights=weights, device="cpu", precision="bfloat16")
    exact = embed.load_embedder(name, weights=weights, device="cpu", precision="float32")
    a, b = fast.embed(images), exact.embed(images)
    assert a.dtype == np.float32 and not np.array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.99
    # Pairwise similarities, what grouping thresholds compare, move by far less than the
    # gap between the tiers (cosine 0.92 near, 0.80 similar).
    assert np.abs(a @ a.T - b @ b.T).max() < 0.02


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bfloat16")
@pytest.mark.parametrize(("min_cosine", "chosen"), [(0.0, "bfloat16"), (1.01, "float32")])
def test_auto_precision_keeps_bfloat16_only_if_it_agrees_with_float32(
    random_weights: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    min_cosine: float,
    chosen: str,
) -> None:
    monkeypatch.setattr(backend, "BF16_MIN_COSINE", min_cosine)
    name = "mobilenet_v3_large"
    embedder = embed.load_embedder(name, weights=random_weights(name), device="cpu")
    assert embedder.precision == chosen  # type: ignore[attr-defined]


def test_auto_precision_is_float32_without_native_bfloat16(
    random_weights: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "native_bf16", lambda: False)
    name = "mobilenet_v3_large"
    embedder = embed.load_embedder(name, weights=random_weights(name), device="cpu")
    assert embedder.precision == "float32"  # type: ignore[attr-defined]


def test_thread_count_is_applied_on_the_calling_thread(
    random_weights: Callable[[str], Path], make_images: ImagesFactory
) -> None:
    import threading

    name = "mobilenet_v3_large"
    embedder = embed.load_embedder(name, weights=random_weights(name), device="cpu")
    images = make_images(2, embed.MODELS[name].input_size)
    before = torch.get_num_threads()
    seen: list[int] = []

    def run() -> None:
        embedder.threads = 1  # type: ignore[attr-defined]
        out = embedder.embed(images)
        assert out.shape == (2, embedder.dim)
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen == [1]
    assert torch.get_num_threads() == before  # the main thread's count is left alone
