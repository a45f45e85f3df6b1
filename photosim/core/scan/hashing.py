"""Content hashes (exact copies) and perceptual hashes (near copies).

* Content hash: xxh3-128 of the file bytes (32 lowercase hex chars). Not cryptographic, but
  128 bits make an accidental collision between two photos practically impossible, and it
  hashes at several GB/s so it never dominates a scan.
* Perceptual hashes, 64 bits each, stored as *signed* int64 so they fit an SQLite INTEGER:

  - pHash: DCT of a 32x32 greyscale image, the 8x8 lowest frequencies thresholded at their
    median (Zauner, "Implementation and Benchmarking of Perceptual Image Hash Functions",
    2010; computed with ``imagehash.phash``).
  - dHash: sign of the horizontal gradient of a 9x8 greyscale image (Krawetz, "Kind of like
    that", hackerfactor.com, 2013; computed with ``imagehash.dhash``).

  Bit order: the hash's 8x8 boolean matrix flattened row-major, first bit most significant
  (the same as ``int(str(imagehash_value), 16)``).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

import imagehash
import numpy as np
import xxhash

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20  # streaming read size for file_content_hash
HASH_SIZE = 8  # 8x8 = 64-bit perceptual hashes
HASH_BASE_SIDE = 64  # greyscale base every perceptual hash is computed from
# Names of the 8 orientations of orientation_hashes(), in order; SWAPS_AXES: those that swap
# width and height (so aspect ratios compare inverted).
ORIENTATIONS = ("as is", "mirrored", "flipped upside down", "rotated 90°", "rotated 180°",
                "rotated 270°", "transposed", "transversed")
SWAPS_AXES = frozenset({3, 5, 6, 7})
_MASK64 = (1 << 64) - 1
_SIGN64 = 1 << 63
# Popcount of every byte value, for numpy < 2 (no np.bitwise_count).
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def content_hash(data: bytes | bytearray | memoryview) -> str:
    """Hash file content.

    Args:
        data: The whole file content.

    Returns:
        xxh3-128 hex digest, 32 lowercase hex chars.
    """
    return xxhash.xxh3_128_hexdigest(data)


_buffers = threading.local()


def file_content_hash(path: str | os.PathLike[str], chunk: int = CHUNK_BYTES) -> tuple[str, int]:
    """Hash a file without holding it in memory.

    Args:
        path: File to read.
        chunk: Read size in bytes.

    Returns:
        ``(hex_digest, bytes_read)``; the digest equals ``content_hash(whole_content)``.

    Raises:
        OSError: If the file cannot be opened or read.
    """
    h = xxhash.xxh3_128()
    n = 0
    # One reused buffer per thread: reading into fresh 1 MB bytes objects cost twice the CPU
    # (allocation and page faults), and this runs on the scan's main thread for every file.
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) != chunk:
        buffer = _buffers.buffer = bytearray(chunk)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while count := f.readinto(buffer):
            h.update(view[:count])
            n += count
    return h.hexdigest(), n


def to_signed64(value: int) -> int:
    """Reinterpret the low 64 bits of ``value`` as a two's-complement int64."""
    value &= _MASK64
    return value - (1 << 64) if value & _SIGN64 else value


def to_unsigned64(value: int) -> int:
    """Reinterpret ``value`` (signed or not) as an unsigned 64-bit int in ``[0, 2**64)``."""
    return value & _MASK64


def _bits_to_int(bits: np.ndarray) -> int:
    # packbits is big-endian per byte: the first flattened bit becomes the most significant.
    return to_signed64(int.from_bytes(np.packbits(bits.reshape(-1)).tobytes(), "big"))


def _hash_base(img: Image.Image) -> Image.Image:
    from PIL import Image as PILImage

    grey = img if img.mode == "L" else img.convert("L")
    # Both hashes squash to 32x32 / 9x8 anyway; a box-filtered 64x64 base gives the same bits
    # as hashing the full working image and makes the 8 orientations ~16x cheaper.
    if grey.size != (HASH_BASE_SIDE, HASH_BASE_SIDE):
        grey = grey.resize((HASH_BASE_SIDE, HASH_BASE_SIDE), PILImage.Resampling.BOX)
    return grey


def _hashes(grey: Image.Image) -> tuple[int, int]:
    ph = imagehash.phash(grey, hash_size=HASH_SIZE)
    dh = imagehash.dhash(grey, hash_size=HASH_SIZE)
    return _bits_to_int(ph.hash), _bits_to_int(dh.hash)


def perceptual_hashes(img: Image.Image) -> tuple[int, int]:
    """Compute pHash and dHash of an image.

    Pass an already reduced image (a few hundred pixels): it is box-reduced to a 64x64
    greyscale base first, and both hashes shrink that to 32x32 / 9x8.

    Args:
        img: Any-mode Pillow image (converted to greyscale "L" internally).

    Returns:
        ``(phash, dhash)``, each a 64-bit hash as a signed int64 Python int.
    """
    return _hashes(_hash_base(img))


def orientation_hashes(img: Image.Image) -> list[tuple[int, int]]:
    """pHash and dHash of the image in all 8 orientations (the dihedral group D4).

    Mirrored and rotated copies (pixels turned, not only an EXIF tag) then match by comparing
    one photo's variant hashes with another's upright hashes. Cost: about 1 ms per photo.

    Args:
        img: Any-mode Pillow image, upright.

    Returns:
        8 ``(phash, dhash)`` pairs (signed int64): index 0 the image as is, then index ``i``
        the image transformed by ``ORIENTATIONS[i]``.
    """
    base = _hash_base(img)
    return [_hashes(base)] + [_hashes(base.transpose(t)) for t in _transposes()[1:]]


def _transposes() -> list:
    from PIL import Image as PILImage

    t = PILImage.Transpose
    return [None, t.FLIP_LEFT_RIGHT, t.FLIP_TOP_BOTTOM, t.ROTATE_90, t.ROTATE_180,
            t.ROTATE_270, t.TRANSPOSE, t.TRANSVERSE]


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes (signed or unsigned ints).

    Returns:
        Hamming distance in ``[0, 64]``.
    """
    return ((a ^ b) & _MASK64).bit_count()


def hamming_many(a: int, b: np.ndarray) -> np.ndarray:
    """Hamming distances from one hash to many, vectorised.

    Args:
        a: One 64-bit hash (signed or unsigned int).
        b: Hashes, any shape, dtype int64 (signed, as stored) or uint64.

    Returns:
        Array of ``b``'s shape, dtype int64, values in ``[0, 64]``.
    """
    b = np.asarray(b)
    if b.dtype != np.uint64:
        b = b.astype(np.int64, copy=False).view(np.uint64)
    x = np.bitwise_xor(b, np.uint64(to_unsigned64(a)))
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(x).astype(np.int64)
    x = np.ascontiguousarray(x)
    per_byte = _POPCOUNT8[x.view(np.uint8).reshape(*x.shape, 8)]
    return per_byte.sum(axis=-1, dtype=np.int64)
