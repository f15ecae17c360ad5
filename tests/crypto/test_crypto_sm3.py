from __future__ import annotations

import pytest
from gmssl import sm3 as gm_sm3
from hypothesis import given
from hypothesis import strategies as st

from yikatong.crypto.sm3 import hmac_sm3, hmac_sm3_verify, sm3, sm3_hex

# GB/T 32905-2016 appendix A.
ABC_DIGEST = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_standard_vector_abc() -> None:
    assert sm3(b"abc").hex() == ABC_DIGEST
    assert sm3_hex(b"abc") == ABC_DIGEST


def test_standard_vector_abcd_times_16() -> None:
    digest = sm3_hex(b"abcd" * 16)
    assert digest.startswith("debe9ff9")
    assert digest.endswith("293dcba39c0c5732")
    assert len(digest) == 64


def test_empty_message() -> None:
    assert sm3_hex(b"") == "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"


@given(st.binary(max_size=300))
def test_agrees_with_independent_pure_python_sm3(data: bytes) -> None:
    assert sm3_hex(data) == gm_sm3.sm3_hash(list(data))


def reference_hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC exactly as RFC 2104 writes it, over our SM3 (block size 64 bytes)."""
    block = 64
    if len(key) > block:
        key = sm3(key)
    key = key.ljust(block, b"\x00")
    inner = bytes(k ^ 0x36 for k in key)
    outer = bytes(k ^ 0x5C for k in key)
    return sm3(outer + sm3(inner + data))


@pytest.mark.parametrize("key_size", [0, 1, 16, 32, 63, 64, 65, 200])
def test_hmac_matches_rfc_2104_construction(key_size: int) -> None:
    key = bytes((i * 7 + 3) % 256 for i in range(key_size))
    for data in (b"", b"abc", b"x" * 1000):
        assert hmac_sm3(key, data) == reference_hmac_sm3(key, data)


@given(st.binary(max_size=100), st.binary(max_size=300))
def test_hmac_matches_rfc_2104_construction_for_any_input(key: bytes, data: bytes) -> None:
    assert hmac_sm3(key, data) == reference_hmac_sm3(key, data)


def test_hmac_verify_accepts_only_the_exact_tag() -> None:
    key, data = b"k" * 16, b"payload"
    tag = hmac_sm3(key, data)
    assert len(tag) == 32
    assert hmac_sm3_verify(key, data, tag)
    assert not hmac_sm3_verify(key, data + b"!", tag)
    assert not hmac_sm3_verify(b"K" * 16, data, tag)
    assert not hmac_sm3_verify(key, data, tag[:16])  # truncation is not accepted
    assert not hmac_sm3_verify(key, data, tag + b"\x00")
    assert not hmac_sm3_verify(key, data, b"")
    for position in range(len(tag)):
        flipped = bytearray(tag)
        flipped[position] ^= 0x01
        assert not hmac_sm3_verify(key, data, bytes(flipped))
