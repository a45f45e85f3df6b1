"""CLIP image and text embeddings in one space, for text→image search (optional).

CLIP (Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021) trains an image encoder and a text encoder so that a photo and a
caption of it get nearby unit vectors: the cosine between :meth:`ClipEmbedder.embed_text` of a
query and :meth:`ClipEmbedder.embed` of the catalog's thumbnails ranks photos by how well the
words describe them. The models and weights come from open_clip (Ilharco et al., OpenCLIP,
https://github.com/mlfoundations/open_clip), an optional extra: ``pip install
'photosim[clip]'``. Importing this module costs nothing; :func:`load_clip` imports torch and
open_clip.

A model is named by a spec ``"ARCH/TAG"``: an open_clip architecture
(``open_clip.list_models()``) and one of its pretrained tags (``open_clip.list_pretrained()``),
e.g. :data:`DEFAULT_CLIP`. The weights of a tag are downloaded on first use from the Hugging
Face Hub, with its progress bar, into its cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``~/.cache/huggingface/hub``) and read from there afterwards without going online. With
``PHOTOSIM_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) nothing is downloaded: weights that are not
cached fail with a one-line :class:`ClipError` saying how to get them. A local weights file can
be passed instead.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import urllib.parse
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from photosim.embed import OFFLINE_ENV, EmbedError, _offline

__all__ = ["DEFAULT_CLIP", "ClipEmbedder", "ClipError", "load_clip", "prompt"]

logger = logging.getLogger(__name__)

DEFAULT_CLIP = "ViT-B-32/laion2b_s34b_b79k"
# Images (or texts) per forward pass.
BATCH_SIZE = 32
# The CLIP paper's default prompt (section 3.1.4): "a photo of a {label}." helps zero-shot
# accuracy by 1.3 % on ImageNet over the bare label.
PROMPT_TEMPLATE = "a photo of {}."
# Seconds to wait for a TCP connection to the Hub before saying it is unreachable.
HUB_PROBE_TIMEOUT_S = 5.0
INSTALL_HINT = "CLIP search needs the optional extra: pip install 'photosim[clip]'"
# open_clip's names of a full CLIP checkpoint on the Hub (open_clip.constants).
_HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
_HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"


class ClipError(EmbedError):
    """CLIP cannot be used: open_clip is missing, the spec is unknown, the weights are not
    here and cannot be downloaded, or a weights file is unreadable or of another model.

    ``str()`` is one line saying what is wrong and what to do, fit to show as is.
    """


def prompt(text: str) -> str:
    """Wrap a search phrase in the CLIP paper's prompt: ``"a photo of {text}."``.

    CLIP was trained on captions, whole sentences about a picture; Radford et al. (2021,
    section 3.1.4) found that embedding a label in the template "a photo of a {label}." beats
    the bare label. :meth:`ClipEmbedder.embed_text` leaves its texts as given: the caller
    decides whether to prompt.

    Args:
        text: A search phrase, e.g. ``"a dog on a beach"``; surrounding blanks are dropped.

    Returns:
        ``"a photo of a dog on a beach."``.
    """
    return PROMPT_TEMPLATE.format(text.strip())


class ClipEmbedder:
    """A CLIP model: unit vectors for images and for texts, comparable by dot product.

    Built by :func:`load_clip`. Not thread-safe: one thread owns it. ``embed`` also fits
    :class:`photosim.core.types.Embedder`, and accepts images of any size.

    Attributes:
        model_id: ``"clip:ARCH/TAG"`` (e.g. ``"clip:ViT-B-32/laion2b_s34b_b79k"``), or
            ``"clip:ARCH/file:NAME"`` for weights from a local file named NAME.
        dim: Width D of the joint embedding (512 for ViT-B-32).
        input_size: Side S in pixels of the square the image encoder sees (224 for ViT-B-32).
        device: Where inference runs, e.g. ``"cpu"``, ``"cuda:0"``, ``"mps"``.
        weights_file: The weights file that was loaded (str path).
        batch_size: Images or texts per forward pass.
    """

    def __init__(
        self,
        model: Any,
        preprocess: Any,
        tokenizer: Any,
        *,
        model_id: str,
        dim: int,
        input_size: int,
        device: Any,
        dtype: Any,
        weights_file: str,
    ) -> None:
        self.model_id = model_id
        self.dim = dim
        self.input_size = input_size
        self.device = str(device)
        self.weights_file = weights_file
        self.batch_size = BATCH_SIZE
        self._model = model.eval()
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self._device = device
        self._dtype = dtype

    def __repr__(self) -> str:
        return f"<ClipEmbedder {self.model_id} on {self.device}, {str(self._dtype)[6:]}>"

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed images with CLIP's own preprocessing, in batches of ``batch_size``.

        Each image is resized (bicubic) so that its shorter side is ``input_size``, centre
        cropped to a square and normalised with CLIP's mean and std (open_clip's
        ``preprocess`` for the model's tag): a wide photo loses its left and right edges.

        Args:
            images: N >= 0 arrays ``(H, W, 3)``, uint8, RGB, of any size, e.g. the catalog's
                thumbnails (longest side 256 px).

        Returns:
            ``(N, dim)`` float32 array on the CPU, each row L2-normalised.

        Raises:
            ValueError: An image is not a uint8 ``(H, W, 3)`` array with H, W >= 1 (checked
                for all images before any work).
        """
        for i, image in enumerate(images):
            if not isinstance(image, np.ndarray):
                raise ValueError(f"image {i} is a {type(image).__name__}, expected a numpy array")
            if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
                raise ValueError(f"image {i} has shape {image.shape}, expected (H, W, 3) RGB")
            if image.dtype != np.uint8:
                raise ValueError(f"image {i} has dtype {image.dtype}, expected uint8")
        import torch
        from PIL import Image

        out = np.empty((len(images), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                x = torch.stack(
                    [self._preprocess(Image.fromarray(image, "RGB")) for image in chunk]
                )
                x = x.to(device=self._device, dtype=self._dtype)
                out[start : start + len(chunk)] = self._normalised(self._model.encode_image(x))
        return out

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts with the model's tokenizer, in batches of ``batch_size``.

        Texts are used as given (see :func:`prompt`); the tokenizer lower-cases them, and cuts
        them after the context length (77 tokens, about 50 English words, for CLIP models).

        Args:
            texts: N >= 0 strings.

        Returns:
            ``(N, dim)`` float32 array on the CPU, each row L2-normalised.

        Raises:
            ValueError: ``texts`` is a single string, or holds something other than strings.
        """
        if isinstance(texts, str):
            raise ValueError("embed_text takes a sequence of strings, not one string")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"text {i} is a {type(text).__name__}, expected a str")
        import torch

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = list(texts[start : start + self.batch_size])
                tokens = self._tokenizer(chunk).to(self._device)
                out[start : start + len(chunk)] = self._normalised(self._model.encode_text(tokens))
        return out

    @staticmethod
    def _normalised(features: Any) -> np.ndarray:
        """``(N, D)`` features of any dtype and device -> unit rows, float32, numpy."""
        from photosim.embed.backend import _l2_normalise

        return _l2_normalise(features.float()).cpu().numpy()  # type: ignore[no-any-return]


def load_clip(
    spec: str = DEFAULT_CLIP,
    *,
    weights: str | os.PathLike[str] | None = None,
    device: str | None = None,
    progress: bool = True,
) -> ClipEmbedder:
    """Build a CLIP model with its weights, ready to embed images and texts.

    Imports torch and open_clip (a few seconds on first call); loading ViT-B-32 from a cached
    file takes another few seconds on a CPU. Runs in float16 on CUDA, float32 elsewhere.

    Args:
        spec: ``"ARCH/TAG"``, an open_clip architecture and one of its pretrained tags (see
            ``open_clip.list_pretrained()``), e.g. :data:`DEFAULT_CLIP`. With ``weights``, the
            tag may be left out (``"ARCH"``); if given, it still sets the preprocessing (mean,
            std, interpolation) and the activation (QuickGELU or not) the weights expect.
        weights: A local state_dict file of the whole open_clip model ``ARCH``: open_clip's
            own ``open_clip_model.safetensors`` or ``open_clip_pytorch_model.bin``, or
            ``torch.save(model.state_dict(), path)``. None uses the weights of ``TAG``,
            downloaded once into the Hugging Face cache.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``; None picks CUDA, then Apple
            MPS, then CPU.
        progress: Show a progress bar on stderr while downloading.

    Returns:
        The :class:`ClipEmbedder`.

    Raises:
        ClipError: open_clip is not installed; unknown architecture or tag; the weights of the
            tag are neither cached nor downloadable (offline, ``PHOTOSIM_OFFLINE=1``, or the
            download failed); the weights file is missing, unreadable or not of ``ARCH``.
        EmbedError: The device is not available here.
    """
    arch_name, tag_name = _split_spec(spec, weights is not None)
    if weights is not None and not Path(weights).is_file():
        problem = "is not a file" if Path(weights).exists() else "does not exist"
        raise ClipError(
            f"CLIP weights file {weights} {problem}; pass a state_dict of open_clip {arch_name}"
        )
    open_clip = _import_open_clip()
    arch, tag, tag_cfg = _resolve_spec(open_clip, spec, arch_name, tag_name)
    if weights is not None:
        checkpoint = Path(weights)
        _check_readable(checkpoint, arch)
        model_id = f"clip:{arch}/file:{checkpoint.name}"
        remedy = f"pass the weights of open_clip {arch}, e.g. its open_clip_model.safetensors"
    else:
        assert tag is not None  # _split_spec requires a tag when there is no weights file
        checkpoint = _cached_or_download(open_clip, arch, tag, tag_cfg, progress)
        model_id = f"clip:{arch}/{tag}"
        remedy = "remove it from the Hugging Face cache and run again to download it again"

    import torch

    from photosim.embed.backend import _one_line, resolve_device

    started = time.perf_counter()
    target = resolve_device(device)
    on_cuda = target.type == "cuda"
    try:
        model, preprocess = open_clip.create_model_from_pretrained(
            arch,
            pretrained=str(checkpoint),
            precision="fp16" if on_cuda else "fp32",
            device=target,
            force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
            image_mean=tag_cfg.get("mean"),
            image_std=tag_cfg.get("std"),
            image_interpolation=tag_cfg.get("interpolation"),
            image_resize_mode=tag_cfg.get("resize_mode"),
            weights_only=True,  # never run code pickled in a weights file
        )
    except torch.cuda.OutOfMemoryError as exc:
        raise ClipError(f"not enough memory on {target} for CLIP {arch}: {_one_line(exc)}") from exc
    # torch.load, safetensors and load_state_dict raise many types depending on the damage.
    except Exception as exc:
        raise ClipError(
            f"cannot load CLIP weights {checkpoint}: unreadable, or not a state_dict of "
            f"open_clip {arch} ({_load_failure(exc)}); {remedy}"
        ) from exc
    try:
        tokenizer = open_clip.get_tokenizer(arch)
    except Exception as exc:  # tokenizers of HF text towers need transformers and the Hub
        raise ClipError(f"cannot load the tokenizer of CLIP {arch}: {_one_line(exc)}") from exc
    size = model.visual.preprocess_cfg["size"]
    embedder = ClipEmbedder(
        model,
        preprocess,
        tokenizer,
        model_id=model_id,
        dim=int(open_clip.get_model_config(arch)["embed_dim"]),
        input_size=int(size if isinstance(size, int) else size[0]),
        device=target,
        dtype=torch.float16 if on_cuda else torch.float32,
        weights_file=str(checkpoint),
    )
    logger.info(
        "loaded %r from %s in %.1f s", embedder, checkpoint, time.perf_counter() - started
    )
    return embedder


def _split_spec(spec: str, has_weights: bool) -> tuple[str, str | None]:
    """``"ARCH/TAG"`` -> ``(ARCH, TAG)``; ``"ARCH"`` -> ``(ARCH, None)``, only with a file.

    Raises:
        ClipError: Not of that form.
    """
    parts = spec.strip().split("/")
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    if len(parts) == 1 and parts[0] and has_weights:
        return parts[0], None
    raise ClipError(
        f"bad CLIP model {spec!r}: expected ARCH/TAG, e.g. {DEFAULT_CLIP} "
        f"(open_clip.list_pretrained() lists them)"
    )


def _import_open_clip() -> ModuleType:
    """Import open_clip.

    Raises:
        ClipError: It (or one of its dependencies) is not installed.
    """
    try:
        import open_clip
    except ImportError as exc:
        if exc.name == "open_clip":
            raise ClipError(INSTALL_HINT) from None
        raise ClipError(f"open_clip cannot be imported ({exc}); {INSTALL_HINT}") from exc
    return open_clip


def _resolve_spec(
    open_clip: ModuleType, spec: str, arch: str, tag: str | None
) -> tuple[str, str | None, dict[str, Any]]:
    """The architecture, the canonical tag and the tag's pretrained config.

    Returns:
        ``(arch, tag, cfg)``: ``tag`` as open_clip spells it (lower case, ``_`` for ``-``) or
        None; ``cfg`` holds ``hf_hub`` or ``url``, and ``mean``, ``std``, ``interpolation``,
        ``resize_mode``, ``quick_gelu`` where the tag sets them ({} without a tag).

    Raises:
        ClipError: Unknown architecture, or a tag it has no weights for.
    """
    if arch not in open_clip.list_models():
        raise ClipError(
            f"unknown CLIP architecture {arch!r} in {spec!r}; e.g. {DEFAULT_CLIP} "
            f"(open_clip.list_pretrained() lists architectures and tags)"
        )
    if tag is None:
        return arch, None, {}
    tags = open_clip.list_pretrained_tags_by_model(arch)
    canonical = tag.lower().replace("-", "_")
    if canonical not in tags:
        known = ", ".join(tags) if tags else "none: pass a weights file"
        raise ClipError(f"unknown pretrained tag {tag!r} for CLIP {arch}; its tags: {known}")
    return arch, canonical, dict(open_clip.get_pretrained_cfg(arch, canonical))


def _check_readable(path: Path, arch: str) -> None:
    """Reject a weights file that is plainly not one, before the cost of building the model.

    Reads a few bytes: a safetensors header, or the signature of a ``torch.save`` file (a zip
    archive, whose directory is at the end, so a truncated copy fails too, or a legacy
    pickle). NumPy ``.npz``/``.npy`` (big_vision SigLIP weights) pass unchecked.

    Raises:
        ClipError: Unreadable, truncated, or neither format; the message names the file.
    """
    expected = f"expected a state_dict of open_clip {arch} (torch.save or .safetensors)"
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt"):
                return
        if suffix in (".npz", ".npy") or zipfile.is_zipfile(path):
            return
        with path.open("rb") as file:
            if file.read(1) == b"\x80":  # pickle protocol 2+: torch.save before torch 1.6
                return
    except Exception as exc:  # OSError, safetensors' SafetensorError
        from photosim.embed.backend import _one_line

        raise ClipError(
            f"cannot read CLIP weights file {path}: {_one_line(exc)}; {expected}"
        ) from exc
    raise ClipError(
        f"cannot read CLIP weights file {path}: not a torch.save file (corrupt or truncated?); "
        f"{expected}"
    )


def _load_failure(exc: BaseException) -> str:
    """The gist of why open_clip could not load a checkpoint, as one short line.

    torch's weights-only unpickler wraps the cause in a paragraph of advice about
    ``weights_only=False``, which photosim never does (it would run code from the file).
    """
    from photosim.embed.backend import _one_line

    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\.?\s*Please use|\n\n|$)", str(exc), re.S)
    if found:
        return _one_line(RuntimeError(f"not a plain state_dict: {found.group(1)}"))
    return _one_line(exc)


def _cached_or_download(
    open_clip: ModuleType, arch: str, tag: str, cfg: dict[str, Any], progress: bool
) -> Path:
    """The weights file of ``arch``/``tag``: from the Hugging Face cache, else downloaded.

    Like open_clip, a ``.safetensors`` alternative is preferred to a pickled ``.bin``. The
    cache is looked at first without any network access, so a cached model loads offline and
    without a round trip to the Hub.

    Raises:
        ClipError: Not cached and downloads are off, the Hub is unreachable, or the download
            failed.
    """
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    from photosim.embed.backend import _one_line

    def missing(reason: str) -> ClipError:
        return ClipError(_missing(open_clip, f"{arch}/{tag}", arch, reason))

    hub = cfg.get("hf_hub", "")
    if not hub:  # no such tag in open_clip 3.3; older releases had plain URLs
        if _offline():
            raise missing(f"downloads are off ({OFFLINE_ENV}=1)")
        try:
            return Path(open_clip.download_pretrained(cfg))
        except Exception as exc:
            raise missing(f"the download failed ({_one_line(exc)})") from exc
    # "org/repo/file", or "org/repo/" for open_clip's default file name.
    repo, filename = os.path.split(hub)
    filename = filename or _HF_WEIGHTS_NAME
    candidates = [*_safetensors_alternatives(filename), filename]
    cache = _hf_cache_dir()
    options: dict[str, Any] = {
        "cache_dir": str(cache),
        "library_name": "open_clip",
        "library_version": getattr(open_clip, "__version__", None),
    }
    for candidate in candidates:
        try:
            path = huggingface_hub.hf_hub_download(
                repo, candidate, local_files_only=True, **options
            )
        except EntryNotFoundError:  # LocalEntryNotFoundError: not cached
            continue
        return Path(path)
    where = f"not in the Hugging Face cache {cache}"
    for variable, off in ((OFFLINE_ENV, _offline()),
                          ("HF_HUB_OFFLINE", huggingface_hub.constants.HF_HUB_OFFLINE)):
        if off:
            raise missing(f"{where} and downloads are off ({variable}=1)")
    endpoint = huggingface_hub.constants.ENDPOINT
    unreachable = _unreachable(endpoint)
    if unreachable:
        # Fail now: without a network hf_hub_download retries for ~25 s per file name.
        raise missing(f"{where} and {unreachable}")
    logger.info("downloading CLIP %s/%s weights from %s/%s to %s", arch, tag, endpoint, repo,
                cache)
    tqdm_class = None if progress else _silent_tqdm()
    for candidate in candidates:
        try:
            path = huggingface_hub.hf_hub_download(
                repo, candidate, tqdm_class=tqdm_class, **options
            )
        except EntryNotFoundError as exc:
            if isinstance(exc, LocalEntryNotFoundError):  # the Hub was not reached
                raise missing(
                    f"the download from {endpoint}/{repo} failed ({_one_line(exc)})"
                ) from exc
            continue  # the repo has no file of that name (HTTP 404): try the next name
        except Exception as exc:  # network, disk, gated or deleted repo
            raise missing(
                f"the download from {endpoint}/{repo} failed ({_one_line(exc)})"
            ) from exc
        return Path(path)
    raise missing(f"{endpoint}/{repo} has none of {', '.join(candidates)}")


def _missing(open_clip: ModuleType, name: str, arch: str, reason: str) -> str:
    """The one-line message for weights that are not here: what, why, what to do."""
    size = _download_size(open_clip, arch)
    return (
        f"CLIP weights {name}{f' ({size})' if size else ''} are missing: {reason}; connect to "
        f"the internet once to download them, or pass a weights file (a state_dict of open_clip "
        f"{arch})"
    )


def _download_size(open_clip: ModuleType, arch: str) -> str:
    """``"about 605 MB"`` for ViT-B-32: its float32 parameters, counted on the meta device.

    Building on the meta device allocates nothing and takes ~0.05 s. Returns "" if the model
    cannot be built that way.
    """
    import torch

    # open_clip says "No pretrained weights loaded" on the root logger: true, and beside the
    # point here.
    def _quiet(record: logging.LogRecord) -> bool:
        return "open_clip" not in record.pathname

    root = logging.getLogger()
    root.addFilter(_quiet)
    try:
        with torch.device("meta"):
            model = open_clip.create_model(
                arch, device="meta", pretrained_image=False, pretrained_text=False
            )
        size = sum(t.numel() * 4 for t in model.state_dict().values())
    except Exception:  # only an estimate for a message
        logger.debug("cannot size CLIP %s", arch, exc_info=True)
        return ""
    finally:
        root.removeFilter(_quiet)
    return f"about {size / 1e6:.0f} MB"


def _safetensors_alternatives(filename: str) -> list[str]:
    """The ``.safetensors`` names open_clip tries before a pickled checkpoint name."""
    if filename == _HF_WEIGHTS_NAME:
        return [_HF_SAFE_WEIGHTS_NAME]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors"]
    return []


def _hf_cache_dir() -> Path:
    """The Hugging Face hub cache, from the environment as it is now.

    Same rules as ``huggingface_hub.constants.HF_HUB_CACHE`` (``$HF_HUB_CACHE``, then
    ``$HUGGINGFACE_HUB_CACHE``, then ``$HF_HOME/hub``, ``$HF_HOME`` defaulting to
    ``$XDG_CACHE_HOME/huggingface`` then ``~/.cache/huggingface``), but read at call time:
    huggingface_hub reads them once, at import.
    """
    home = os.getenv("HF_HOME") or os.path.join(
        os.getenv("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    hub = os.getenv("HF_HUB_CACHE") or os.getenv("HUGGINGFACE_HUB_CACHE") or os.path.join(
        home, "hub"
    )
    return Path(os.path.expandvars(os.path.expanduser(hub)))


def _unreachable(endpoint: str) -> str | None:
    """Why the Hub at ``endpoint`` cannot be reached, or None if a TCP connection opens.

    Skipped (None) behind a proxy (``HTTPS_PROXY``, ``ALL_PROXY``): the name may only resolve
    there.
    """
    if any(os.getenv(var) for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    url = urllib.parse.urlsplit(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"{host} is unreachable ({exc.strerror or exc})"
    return None


def _silent_tqdm() -> type:
    """A tqdm class that draws nothing, for ``hf_hub_download(tqdm_class=...)``."""
    from tqdm.std import tqdm

    class Silent(tqdm):  # type: ignore[misc, type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Silent
