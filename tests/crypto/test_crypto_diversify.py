from __future__ import annotations

import pytest
from gmssl import sm4 as gm_sm4
from hypothesis import given
from hypothesis import strategies as st

from yikatong.crypto.diversify import (
    card_cryptogram,
    card_diversification_data,
    diversify,
    verify_card_cryptogram,
)
from yikatong.crypto.keystore import get_keyring
from yikatong.crypto.sm3 import sm3

MASTER = bytes.fromhex("0123456789abcdeffedcba9876543210")
CARD_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


def reference_sm4_block(key: bytes, block: bytes) -> bytes:
    """SM4 of one block by gmssl's pure-Python code, an implementation independent of OpenSSL."""
    cipher = gm_sm4.CryptSM4()
    cipher.set_key(key, gm_sm4.SM4_ENCRYPT)
    return bytes(cipher.crypt_ecb(block)[:16])  # crypt_ecb appends a PKCS#7 block; drop it


def reference_cbc_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 1, padding method 2, written out block by block."""
    padded = data + b"\x80"
    while len(padded) % 16:
        padded += b"\x00"
    state = bytes(16)
    for start in range(0, len(padded), 16):
        block = bytes(a ^ b for a, b in zip(state, padded[start : start + 16], strict=True))
        state = reference_sm4_block(key, block)
    return state


def test_numeric_card_number_is_bcd_of_rightmost_16_digits() -> None:
    assert card_diversification_data("6222021234567890123") == bytes.fromhex("2021234567890123")
    assert card_diversification_data("1234567890123456") == bytes.fromhex("1234567890123456")


def test_short_numeric_card_number_is_left_padded_with_zeros() -> None:
    assert card_diversification_data("123456789") == bytes.fromhex("0000000123456789")


def test_alphanumeric_card_number_uses_sm3() -> None:
    assert card_diversification_data("A12345678") == sm3(b"A12345678")[:8]
    assert card_diversification_data("a1234 5678") == card_diversification_data("A12345678")
    assert card_diversification_data("A12345678") != card_diversification_data("B12345678")


@pytest.mark.parametrize("card_number", ["", "   ", "A1234-5678", "卡12345678", "１２３"])
def test_invalid_card_numbers_are_refused(card_number: str) -> None:
    with pytest.raises(ValueError, match="card number"):
        card_diversification_data(card_number)


def test_diversify_is_sm4_of_data_and_its_complement() -> None:
    card_id = bytes.fromhex("0123456789abcdef")
    expected = reference_sm4_block(MASTER, card_id + bytes.fromhex("fedcba9876543210"))
    assert diversify(MASTER, card_id) == expected
    assert diversify(MASTER, bytes(8)) == reference_sm4_block(MASTER, bytes(8) + b"\xff" * 8)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=8, max_size=8))
def test_diversify_agrees_with_independent_sm4(master: bytes, card_id: bytes) -> None:
    complement = bytes(b ^ 0xFF for b in card_id)
    assert diversify(master, card_id) == reference_sm4_block(master, card_id + complement)


def test_different_cards_and_masters_give_different_keys() -> None:
    a = card_diversification_data("A12345678")
    b = card_diversification_data("A12345679")
    assert diversify(MASTER, a) != diversify(MASTER, b)
    assert diversify(MASTER, a) != diversify(CARD_KEY, a)


@pytest.mark.parametrize(("master", "card_id"), [(bytes(15), bytes(8)), (bytes(16), bytes(9))])
def test_diversify_refuses_wrong_sizes(master: bytes, card_id: bytes) -> None:
    with pytest.raises(ValueError, match="bytes"):
        diversify(master, card_id)


def test_diversify_with_the_key_ring_card_master_key() -> None:
    card_key = diversify(get_keyring().card_master_key, card_diversification_data("A12345678"))
    assert len(card_key) == 16
    assert card_key == diversify(
        get_keyring().card_master_key, card_diversification_data("a12345678")
    )


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 100])
def test_cryptogram_is_iso9797_algorithm_1_padding_2(size: int) -> None:
    data = bytes((i * 13) % 256 for i in range(size))
    full = reference_cbc_mac(CARD_KEY, data)
    assert card_cryptogram(CARD_KEY, data, length=16) == full
    assert card_cryptogram(CARD_KEY, data) == full[:8]


def test_block_aligned_data_gets_a_full_padding_block() -> None:
    data = bytes(16)
    two_blocks = reference_sm4_block(
        CARD_KEY,
        bytes(
            a ^ b
            for a, b in zip(reference_sm4_block(CARD_KEY, data), b"\x80" + bytes(15), strict=True)
        ),
    )
    assert card_cryptogram(CARD_KEY, data, length=16) == two_blocks
    # Method 2 keeps messages that differ only by trailing zeros apart.
    assert card_cryptogram(CARD_KEY, b"ab") != card_cryptogram(CARD_KEY, b"ab\x00")


@given(st.binary(max_size=200))
def test_cryptogram_agrees_with_reference(data: bytes) -> None:
    assert card_cryptogram(CARD_KEY, data, length=16) == reference_cbc_mac(CARD_KEY, data)


def test_cryptogram_length_is_8_or_16() -> None:
    with pytest.raises(ValueError, match="length"):
        card_cryptogram(CARD_KEY, b"x", length=4)


def test_verify_cryptogram() -> None:
    data = b"\x00\x00\x00\x01\x00\x00" + b"tap:20250101T080000"
    for length in (8, 16):
        tag = card_cryptogram(CARD_KEY, data, length=length)
        assert verify_card_cryptogram(CARD_KEY, data, tag)
        assert not verify_card_cryptogram(CARD_KEY, data + b"\x00", tag)
        assert not verify_card_cryptogram(MASTER, data, tag)
        flipped = bytes([tag[0] ^ 1]) + tag[1:]
        assert not verify_card_cryptogram(CARD_KEY, data, flipped)
    assert not verify_card_cryptogram(CARD_KEY, data, card_cryptogram(CARD_KEY, data)[:4])
    assert not verify_card_cryptogram(CARD_KEY, data, b"")
