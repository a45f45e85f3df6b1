"""photosim.embed public API: registry, errors, weights files and cache, devices (no real forward)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import photosim.embed as embed
from photosim.core.types import Error
from photosim.embed.models import WeightsSource


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, photosim.embed as e; e.available_models(); e.weights_cached('resnet50'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert result.stdout.strip() == "[]"


def test_registry_matches_torchvision_and_timm() -> None:
    import torchvision

    assert embed.DEFAULT_MODEL in embed.MODELS
    assert embed.available_models() == [
        "efficientnet_lite0", "efficientnet_lite2", "resnet50", "efficientnet_b1",
        "mobilenet_v3_large",
    ]
    assert embed.available_poolings() == ["avg", "gem", "rmac"]
    for name, spec in embed.MODELS.items():
        if spec.source is WeightsSource.PACKAGE:
            import timm

            # The resolution the TF originals were trained and evaluated at.
            assert timm.create_model(spec.builder, pretrained=False).pretrained_cfg[
                "input_size"
            ] == (3, spec.input_size, spec.input_size), name
            continue
        weights = getattr(torchvision.models, spec.weights_enum)[spec.weights_member]
        # weights_cached() relies on the hardcoded file name being torchvision's cache name.
        assert os.path.basename(weights.url) == spec.weights_file, name
        assert weights.transforms().crop_size == [spec.input_size], name
        assert callable(getattr(torchvision.models, spec.builder)), name


def test_errors_derive_from_photosim_error() -> None:
    assert issubclass(embed.WeightsUnavailableError, embed.EmbedError)
    assert issubclass(embed.EmbedError, Error)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "vgg16"}, "unknown model 'vgg16'"),
        ({"pooling": "max"}, "unknown pooling 'max'"),
        ({"device": "tpu"}, "device 'tpu'"),
        ({"device": "cuda:7"}, "not available"),
    ],
)
def test_bad_arguments(kwargs: dict[str, str], message: str, tmp_path: Path) -> None:
    import torch

    if kwargs.get("device") == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(embed.EmbedError, match=message):
        embed.load_embedder(**kwargs, weights=tmp_path / "unused.pth")  # type: ignore[arg-type]


def test_unavailable_mps() -> None:
    import torch

    from photosim.embed.backend import resolve_device

    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(embed.EmbedError, match="'mps' is not available"):
        resolve_device("mps")


def test_resolve_device() -> None:
    import torch

    from photosim.embed.backend import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available() and not torch.backends.mps.is_available():
        assert resolve_device(None) == torch.device("cpu")


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        embed.load_embedder(batch_size=0)


def test_weights_cache_path_follows_torch_home(_no_downloads: Path) -> None:
    path = embed.weights_cache_path("resnet50")
    assert path == _no_downloads / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    assert not embed.weights_cached("resnet50")
    path.parent.mkdir(parents=True)
    path.touch()
    assert embed.weights_cached("resnet50")


def test_offline_without_cached_weights(_no_downloads: Path) -> None:
    with pytest.raises(embed.WeightsUnavailableError) as info:
        embed.load_embedder("mobilenet_v3_large", device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert "mobilenet_v3_large weights (MobileNet_V3_Large_Weights.IMAGENET1K_V2)" in message
    expected = _no_downloads / "hub" / "checkpoints" / "mobilenet_v3_large-5c1a4163.pth"
    assert str(expected) in message
    assert "PHOTOSIM_OFFLINE=1" in message
    assert "--weights FILE" in message
    assert info.value.model == "mobilenet_v3_large"
    assert info.value.path == expected


def test_failed_download(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def no_network(url: str, dst: str, hash_prefix: str | None, progress: bool) -> None:
        assert socket.getdefaulttimeout() is not None, "a dead network must not hang"
        assert hash_prefix == "5c1a4163"
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.delenv("PHOTOSIM_OFFLINE")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    timeout = socket.getdefaulttimeout()
    with pytest.raises(embed.WeightsUnavailableError, match="name resolution") as info:
        embed.load_embedder("mobilenet_v3_large", device="cpu", progress=False)
    assert "download from https://download.pytorch.org/models/" in str(info.value)
    assert "\n" not in str(info.value)
    assert socket.getdefaulttimeout() == timeout


def test_weights_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "nope.pth"
    with pytest.raises(embed.EmbedError, match=f"{path} does not exist"):
        embed.load_embedder("resnet50", weights=path, device="cpu")


def test_weights_file_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"\x80\x02not a checkpoint at all")
    with pytest.raises(embed.EmbedError, match="cannot read weights file") as info:
        embed.load_embedder("resnet50", weights=path, device="cpu")
    assert str(path) in str(info.value)
    assert "torchvision.models.resnet50()" in str(info.value)


def test_weights_file_not_a_state_dict(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(embed.EmbedError, match="holds a list"):
        embed.load_embedder("resnet50", weights=path, device="cpu")


def test_weights_file_of_another_model(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(embed.EmbedError, match="is not a state_dict of") as info:
        embed.load_embedder("efficientnet_b1", weights=path, device="cpu")
    message = str(info.value)
    assert str(path) in message
    assert "torchvision.models.efficientnet_b1() (model efficientnet_b1)" in message
    assert "\n" not in message


def test_bad_image_is_rejected() -> None:
    import torch

    from photosim.embed.preprocess import to_batch

    good = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=r"image 1: expected a \(8, 8, 3\) uint8"):
        to_batch([good, good[:4]], 8, torch.device("cpu"), torch.float32, torch.channels_last)
    with pytest.raises(ValueError, match="float32"):
        to_batch(
            [good.astype(np.float32)], 8, torch.device("cpu"), torch.float32, torch.channels_last
        )


@pytest.mark.parametrize("layout", ["channels_last", "contiguous_format"])
def test_preprocess_normalises_like_torchvision(layout: str) -> None:
    import torch
    from torchvision.transforms import functional as TF

    from photosim.embed.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_batch

    images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    memory_format = getattr(torch, layout)
    x = to_batch(list(images), 16, torch.device("cpu"), torch.float32, memory_format)
    assert x.shape == (2, 3, 16, 16)
    assert x.dtype == torch.float32
    assert x.is_contiguous(memory_format=memory_format)
    expected = TF.normalize(
        torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, IMAGENET_MEAN, IMAGENET_STD
    )
    torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-5)


def test_lazy_embedder_knows_its_shape_without_torch_and_remembers_failures() -> None:
    code = (
        "import sys, os\n"
        "os.environ['PHOTOSIM_OFFLINE'] = '1'\n"
        "from photosim.embed import LazyEmbedder, WeightsUnavailableError\n"
        "e = LazyEmbedder('efficientnet_b1', pooling='gem')\n"
        "assert (e.model_id, e.dim, e.input_size, e.device) == "
        "('efficientnet_b1-gem', 1280, 240, 'not loaded'), (e.model_id, e.dim)\n"
        "assert 'torch' not in sys.modules\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        e.embed([])\n"
        "    except WeightsUnavailableError as exc:\n"
        "        assert 'efficientnet_b1' in str(exc)\n"
        "    else:\n"
        "        raise AssertionError('no error')\n"
        "assert not e.loaded and 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TORCH_HOME": os.environ.get("TORCH_HOME", "/nonexistent")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_native_bf16_reads_cpu_flags() -> None:
    from photosim.embed.backend import native_bf16

    x86 = "processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
    emulated = "flags\t\t: fpu sse2 avx512f avx512bw avx512vl\n"
    arm = "Features\t: fp asimd bf16 i8mm\n"
    assert native_bf16(x86, "Linux") and native_bf16(arm, "Linux")
    assert not native_bf16(emulated, "Linux") and not native_bf16("", "Linux")


def test_unknown_precision_is_refused_before_torch_loads() -> None:
    with pytest.raises(embed.EmbedError, match="unknown precision 'half'"):
        embed.load_embedder("efficientnet_b1", precision="half")
