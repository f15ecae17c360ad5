"""Per-card key diversification and card cryptograms with SM4 (PBOC 3.0 style, GM algorithms).

Each card holds its own key ``K_card = SM4_ECB(MK, D || NOT D)``, where ``MK`` is the card master
key from the key ring and ``D`` the card's 8-byte diversification data. This is the PBOC 3.0
scheme (JR/T 0025) with SM4's 16-byte block taking the place of the two 3DES halves: one
block yields the whole 16-byte card key, so a leaked card key never reveals ``MK``.
"""

from __future__ import annotations

import hmac

from yikatong.crypto.sm3 import sm3
from yikatong.crypto.sm4 import BLOCK_SIZE, KEY_SIZE, cbc_mac, ecb_encrypt_block

DIVERSIFICATION_DATA_SIZE = 8
CRYPTOGRAM_SIZES = (8, 16)

_MASK_64 = (1 << 64) - 1


def card_diversification_data(card_number: str) -> bytes:
    """The 8-byte diversification data ``D`` of a card, from its card number.

    * all-digit numbers (bank-style PANs, numeric card identifiers): as PBOC does, left-pad with
      ``0`` to 16 digits and take the right-most 16 digits, packed as BCD (8 bytes);
    * anything else (the 9-character social security card number such as ``A12345678``, or a
      card identification code with letters): no BCD form exists, so ``D`` is the first 8 bytes
      of SM3 over the upper-case ASCII card number. The hash keeps every character significant,
      where truncating or dropping letters would make two cards share a key.

    Whitespace is ignored and letters are case-insensitive, matching how numbers are printed.
    """
    normalised = "".join(card_number.split()).upper()
    if not normalised or not normalised.isascii() or not normalised.isalnum():
        raise ValueError("a card number is one or more ASCII letters and digits")
    if normalised.isdigit():
        return bytes.fromhex(normalised.rjust(16, "0")[-16:])  # hex of decimal digits is BCD
    return sm3(normalised.encode("ascii"))[:DIVERSIFICATION_DATA_SIZE]


def diversify(master_key: bytes, card_id: bytes) -> bytes:
    """Derive the 16-byte card key ``SM4_ECB(master_key, card_id || NOT card_id)``."""
    if len(master_key) != KEY_SIZE:
        raise ValueError(f"the card master key is {KEY_SIZE} bytes")
    if len(card_id) != DIVERSIFICATION_DATA_SIZE:
        raise ValueError(f"diversification data is {DIVERSIFICATION_DATA_SIZE} bytes")
    inverted = (int.from_bytes(card_id, "big") ^ _MASK_64).to_bytes(8, "big")
    return ecb_encrypt_block(master_key, card_id + inverted)


def _pad_iso9797_method2(data: bytes) -> bytes:
    # Method 2: always append 0x80, then zeros up to the block boundary, so that no two distinct
    # messages pad to the same blocks (method 1's zero padding would make "ab" and "ab\0" equal).
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % BLOCK_SIZE)


def card_cryptogram(card_key: bytes, data: bytes, *, length: int = 8) -> bytes:
    """MAC over ``data`` with a card key: SM4 CBC-MAC, ISO/IEC 9797-1 algorithm 1, padding 2.

    Zero IV, padding method 2, the last cipher block truncated to its left-most ``length`` bytes
    (8, the size of a PBOC application cryptogram, or 16 for the full block). Plain CBC-MAC is
    only sound for messages of one fixed layout per purpose (as card transaction data is); do not
    feed it free-form variable-length data.
    """
    if length not in CRYPTOGRAM_SIZES:
        raise ValueError(f"cryptogram length must be one of {CRYPTOGRAM_SIZES}")
    return cbc_mac(card_key, _pad_iso9797_method2(data))[:length]


def verify_card_cryptogram(card_key: bytes, data: bytes, cryptogram: bytes) -> bool:
    """Check a cryptogram from :func:`card_cryptogram` in constant time (length 8 or 16)."""
    if len(cryptogram) not in CRYPTOGRAM_SIZES:
        return False
    expected = card_cryptogram(card_key, data, length=len(cryptogram))
    return hmac.compare_digest(expected, cryptogram)
