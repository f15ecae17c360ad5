from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import sm4 as gm_sm4
from hypothesis import given
from hypothesis import strategies as st

from yikatong.crypto.errors import DecryptionError
from yikatong.crypto.sm4 import (
    NONCE_SIZE,
    OVERHEAD,
    SM4GCM,
    TAG_SIZE,
    cbc_mac,
    ecb_encrypt_block,
    gcm_decrypt,
    gcm_encrypt,
)

# GB/T 32907-2016 appendix A.
STANDARD_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")
STANDARD_ONCE = bytes.fromhex("681edf34d206965e86b3e94f536e4246")
STANDARD_MILLION = bytes.fromhex("595298c7c6fd271f0402f804c33d3f66")

KEY = bytes(range(16))
OTHER_KEY = bytes(range(1, 17))


def reference_sm4_block(key: bytes, block: bytes) -> bytes:
    """SM4 of one block by gmssl's pure-Python code, an implementation independent of OpenSSL."""
    cipher = gm_sm4.CryptSM4()
    cipher.set_key(key, gm_sm4.SM4_ENCRYPT)
    return bytes(cipher.crypt_ecb(block)[:16])  # crypt_ecb appends a PKCS#7 block; drop it


def test_standard_block_vector() -> None:
    assert ecb_encrypt_block(STANDARD_KEY, STANDARD_KEY) == STANDARD_ONCE


def test_standard_million_iterations_vector() -> None:
    # The library cipher our module uses, driven through one encryptor: about 0.5 s.
    encryptor = Cipher(algorithms.SM4(STANDARD_KEY), modes.ECB()).encryptor()  # noqa: S305
    block = STANDARD_KEY
    for _ in range(1_000_000):
        block = encryptor.update(block)
    assert block == STANDARD_MILLION


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16))
def test_block_agrees_with_independent_pure_python_sm4(key: bytes, block: bytes) -> None:
    assert ecb_encrypt_block(key, block) == reference_sm4_block(key, block)


@pytest.mark.parametrize(("key", "block"), [(bytes(15), bytes(16)), (bytes(16), bytes(17))])
def test_block_refuses_wrong_sizes(key: bytes, block: bytes) -> None:
    with pytest.raises(ValueError, match="bytes"):
        ecb_encrypt_block(key, block)


def test_gcm_rfc_8998_vector() -> None:
    # RFC 8998 appendix A.1 (SM4-GCM), fed through our blob layout nonce || ciphertext || tag.
    nonce = bytes.fromhex("00001234567800000000ABCD")
    plaintext = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    ciphertext = bytes.fromhex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    )
    tag = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")
    assert gcm_decrypt(STANDARD_KEY, nonce + ciphertext + tag, aad) == plaintext
    with pytest.raises(DecryptionError):
        gcm_decrypt(STANDARD_KEY, nonce + ciphertext + tag, aad[:-1])


def test_gcm_round_trip_and_layout() -> None:
    blob = gcm_encrypt(KEY, b"441602199001011234", b"ctx")
    assert len(blob) == NONCE_SIZE + 18 + TAG_SIZE
    assert gcm_decrypt(KEY, blob, b"ctx") == b"441602199001011234"
    assert b"441602" not in blob


def test_gcm_empty_plaintext() -> None:
    blob = gcm_encrypt(KEY, b"")
    assert len(blob) == OVERHEAD
    assert gcm_decrypt(KEY, blob) == b""


def test_gcm_nonces_are_fresh() -> None:
    blobs = {gcm_encrypt(KEY, b"same") for _ in range(50)}
    assert len(blobs) == 50
    assert len({blob[:NONCE_SIZE] for blob in blobs}) == 50


def test_gcm_every_flipped_bit_region_is_rejected() -> None:
    plaintext = b"sensitive value 13812345678"
    blob = gcm_encrypt(KEY, plaintext, b"aad")
    regions = {
        "nonce": range(NONCE_SIZE),
        "ciphertext": range(NONCE_SIZE, len(blob) - TAG_SIZE),
        "tag": range(len(blob) - TAG_SIZE, len(blob)),
    }
    for name, positions in regions.items():
        assert positions, name
        for position in positions:
            for bit in (0x01, 0x80):
                tampered = bytearray(blob)
                tampered[position] ^= bit
                with pytest.raises(DecryptionError):
                    gcm_decrypt(KEY, bytes(tampered), b"aad")


def test_gcm_wrong_key_aad_or_length_is_rejected() -> None:
    blob = gcm_encrypt(KEY, b"payload", b"field:a")
    with pytest.raises(DecryptionError):
        gcm_decrypt(OTHER_KEY, blob, b"field:a")
    with pytest.raises(DecryptionError):
        gcm_decrypt(KEY, blob, b"field:b")
    with pytest.raises(DecryptionError):
        gcm_decrypt(KEY, blob)  # aad omitted
    with pytest.raises(DecryptionError):
        gcm_decrypt(KEY, blob[:-1], b"field:a")
    with pytest.raises(DecryptionError):
        gcm_decrypt(KEY, blob + b"\x00", b"field:a")
    with pytest.raises(DecryptionError, match="too short"):
        gcm_decrypt(KEY, blob[: OVERHEAD - 1], b"field:a")


def test_gcm_without_aad_refuses_any_aad() -> None:
    blob = gcm_encrypt(KEY, b"payload")
    with pytest.raises(DecryptionError):
        gcm_decrypt(KEY, blob, b"x")


def test_gcm_refuses_bad_key_size() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        gcm_encrypt(bytes(32), b"x")


def test_cipher_object_hides_its_key() -> None:
    assert KEY.hex() not in repr(SM4GCM(KEY))


@given(st.binary(max_size=2048), st.binary(max_size=64))
def test_gcm_round_trip_property(plaintext: bytes, aad: bytes) -> None:
    cipher = SM4GCM(KEY)
    blob = cipher.encrypt(plaintext, aad)
    assert len(blob) == len(plaintext) + OVERHEAD
    assert cipher.decrypt(blob, aad) == plaintext
    assert gcm_decrypt(KEY, blob, aad) == plaintext
    with pytest.raises(DecryptionError):
        SM4GCM(OTHER_KEY).decrypt(blob, aad)


def test_cbc_mac_chains_blocks() -> None:
    data = bytes(range(48))
    expected = bytes(16)
    for start in range(0, 48, 16):
        chained = bytes(a ^ b for a, b in zip(expected, data[start : start + 16], strict=True))
        expected = reference_sm4_block(KEY, chained)
    assert cbc_mac(KEY, data) == expected


@pytest.mark.parametrize("size", [0, 15, 17])
def test_cbc_mac_needs_whole_blocks(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        cbc_mac(KEY, bytes(size))
