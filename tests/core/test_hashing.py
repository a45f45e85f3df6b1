"""Tests of photosim.core.scan.hashing: content hashes, signed 64-bit perceptual hashes, Hamming."""

from __future__ import annotations

import sqlite3

import imagehash
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from photosim.core.scan import hashing
from photosim.core.scan.hashing import (
    HASH_BASE_SIDE,
    ORIENTATIONS,
    content_hash,
    file_content_hash,
    hamming,
    hamming_many,
    orientation_hashes,
    perceptual_hashes,
    to_signed64,
    to_unsigned64,
)

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
u64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
i64 = st.integers(min_value=INT64_MIN, max_value=INT64_MAX)


def _texture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8))
    return small.resize(size, Image.Resampling.BICUBIC)


# --------------------------------------------------------------------------- content hash


def test_content_hash_is_xxh3_128_lowercase_hex() -> None:
    assert content_hash(b"") == "99aa06d3014798d86001c324468d497f"
    assert content_hash(b"photosim") == "b2cc437ad750766735615e33617bd184"
    h = content_hash(bytes(range(256)) * 10)
    assert len(h) == 32 and h == h.lower() and int(h, 16) >= 0


def test_content_hash_accepts_buffers() -> None:
    data = b"abc" * 1000
    assert content_hash(bytearray(data)) == content_hash(memoryview(data)) == content_hash(data)


@pytest.mark.parametrize("size", [0, 1, 7, 4096, 100_003])
def test_file_content_hash_streams_like_content_hash(tmp_path, size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert file_content_hash(path, chunk=1000) == (content_hash(data), size)
    assert file_content_hash(str(path)) == (content_hash(data), size)


def test_file_content_hash_missing_file_raises_oserror(tmp_path) -> None:
    with pytest.raises(OSError):
        file_content_hash(tmp_path / "nope")


# --------------------------------------------------------------------------- int64 helpers


@pytest.mark.parametrize(
    ("unsigned", "signed"),
    [(0, 0), (1, 1), ((1 << 63) - 1, INT64_MAX), (1 << 63, INT64_MIN), ((1 << 64) - 1, -1)],
)
def test_signed_unsigned_edges(unsigned: int, signed: int) -> None:
    assert to_signed64(unsigned) == signed
    assert to_unsigned64(signed) == unsigned


@given(u64)
def test_signed_round_trip(value: int) -> None:
    s = to_signed64(value)
    assert INT64_MIN <= s <= INT64_MAX
    assert to_unsigned64(s) == value


@given(i64)
def test_signed_values_fit_sqlite_integer(value: int) -> None:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (h INTEGER)")
    con.execute("INSERT INTO t VALUES (?)", (value,))
    assert con.execute("SELECT h FROM t").fetchone()[0] == value


# --------------------------------------------------------------------------- Hamming


def test_hamming_examples() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0, -1) == 64  # all 64 bits differ
    assert hamming(INT64_MIN, 0) == 1  # the sign bit only
    assert hamming(0b1011, 0b0001) == 2


@given(u64, u64)
def test_hamming_signed_equals_unsigned(a: int, b: int) -> None:
    d = hamming(a, b)
    assert d == bin(a ^ b).count("1")
    assert d == hamming(to_signed64(a), to_signed64(b)) == hamming(b, a)
    assert 0 <= d <= 64


@given(i64, st.lists(i64, max_size=40))
def test_hamming_many_matches_scalar(a: int, bs: list[int]) -> None:
    arr = np.array(bs, dtype=np.int64)
    out = hamming_many(a, arr)
    assert out.dtype == np.int64 and out.shape == arr.shape
    assert out.tolist() == [hamming(a, b) for b in bs]
    assert hamming_many(to_unsigned64(a), arr.view(np.uint64)).tolist() == out.tolist()


def test_hamming_many_byte_table_fallback(monkeypatch) -> None:
    """numpy < 2 has no bitwise_count: the byte-table path must agree, for any shape."""
    rng = np.random.default_rng(1)
    b = rng.integers(INT64_MIN, INT64_MAX, size=(5, 7), dtype=np.int64, endpoint=True)
    a = int(rng.integers(INT64_MIN, INT64_MAX, dtype=np.int64))
    expected = np.vectorize(lambda x: hamming(a, int(x)))(b)
    if hasattr(np, "bitwise_count"):
        np.testing.assert_array_equal(hamming_many(a, b), expected)
        monkeypatch.delattr(np, "bitwise_count")
    out = hamming_many(a, b)
    assert out.dtype == np.int64 and out.shape == (5, 7)
    np.testing.assert_array_equal(out, expected)
    assert hamming_many(0, np.array([], dtype=np.int64)).shape == (0,)
    # Non-contiguous input (a column slice) must work too.
    np.testing.assert_array_equal(hamming_many(a, b[:, 2]), expected[:, 2])


# --------------------------------------------------------------------------- perceptual


def test_perceptual_hashes_match_imagehash_bit_order() -> None:
    # A 64x64 input is the hash base itself, so imagehash sees the very same pixels.
    img = _texture(3).convert("L").resize((HASH_BASE_SIDE, HASH_BASE_SIDE))
    ph, dh = perceptual_hashes(img)
    assert ph == to_signed64(int(str(imagehash.phash(img)), 16))
    assert dh == to_signed64(int(str(imagehash.dhash(img)), 16))
    assert INT64_MIN <= ph <= INT64_MAX and INT64_MIN <= dh <= INT64_MAX


def test_perceptual_hashes_same_for_rgb_and_grey() -> None:
    img = _texture(4)
    assert perceptual_hashes(img) == perceptual_hashes(img.convert("L"))


def test_perceptual_hashes_resized_close_different_far() -> None:
    a = perceptual_hashes(_texture(5, (640, 480)))
    small = perceptual_hashes(_texture(5, (640, 480)).resize((160, 120), Image.Resampling.LANCZOS))
    other = perceptual_hashes(_texture(6, (640, 480)))
    assert hamming(a[0], small[0]) <= 4
    assert hamming(a[1], small[1]) <= 6
    assert hamming(a[0], other[0]) > 20


def test_hash_size_is_64_bits() -> None:
    assert hashing.HASH_SIZE**2 == 64


@pytest.mark.parametrize("index", range(1, 8))
def test_orientation_hashes_find_turned_copies(index: int) -> None:
    img = _texture(7, (640, 480))
    transform = [None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM,
                 Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                 Image.Transpose.ROTATE_270, Image.Transpose.TRANSPOSE,
                 Image.Transpose.TRANSVERSE][index]
    variants = orientation_hashes(img)
    turned = perceptual_hashes(img.transpose(transform))
    assert len(variants) == len(ORIENTATIONS) == 8
    assert variants[0] == perceptual_hashes(img)
    # The turned copy hashes (almost) like the original's variant, and unlike its upright hash.
    assert hamming(variants[index][0], turned[0]) <= 2
    assert hamming(variants[index][1], turned[1]) <= 2
    assert hamming(variants[0][0], turned[0]) + hamming(variants[0][1], turned[1]) > 16
