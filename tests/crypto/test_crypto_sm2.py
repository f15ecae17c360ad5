from __future__ import annotations

import pytest
from gmssl import sm2 as gm_sm2
from hypothesis import given, settings
from hypothesis import strategies as st

from yikatong.crypto.errors import SignatureInvalid
from yikatong.crypto.sm2 import (
    CURVE_ORDER,
    DEFAULT_SIGNER_ID,
    SM2PrivateKey,
    SM2PublicKey,
    der_to_raw,
    raw_to_der,
)
from yikatong.crypto.sm3 import sm3_hex

MESSAGE = "持卡人 441602199001011234 申领社会保障卡".encode()
PROPERTY_KEY = SM2PrivateKey.generate()


@pytest.fixture(scope="module")
def key() -> SM2PrivateKey:
    return SM2PrivateKey.generate()


def gmssl_for(key: SM2PrivateKey) -> gm_sm2.CryptSM2:
    """gmssl's pure-Python SM2 with our key pair (an independent implementation)."""
    public_hex = key.public_key().to_bytes()[1:].hex()
    crypt = gm_sm2.CryptSM2(private_key=key.to_bytes().hex(), public_key=public_hex)
    # gmssl strips a leading "04" with str.lstrip, which also eats leading 0/4 digits of X;
    # set the attribute directly so every key works.
    crypt.public_key = public_hex
    return crypt


def test_default_signer_id_is_gm_t_0009() -> None:
    assert DEFAULT_SIGNER_ID == b"1234567812345678"


def test_sign_verify_round_trip(key: SM2PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    assert signature[0] == 0x30  # DER SEQUENCE
    key.public_key().verify(signature, MESSAGE)
    assert key.public_key().is_valid(signature, MESSAGE)


def test_signatures_are_randomised(key: SM2PrivateKey) -> None:
    assert key.sign(MESSAGE) != key.sign(MESSAGE)


def test_tampered_message_is_rejected(key: SM2PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signature, MESSAGE + b"!")
    assert not key.public_key().is_valid(signature, MESSAGE[:-1])


def test_wrong_key_is_rejected(key: SM2PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    other = SM2PrivateKey.generate().public_key()
    with pytest.raises(SignatureInvalid):
        other.verify(signature, MESSAGE)


def test_tampered_signature_values_are_rejected(key: SM2PrivateKey) -> None:
    raw = der_to_raw(key.sign(MESSAGE))
    for position in (0, 31, 32, 63):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        assert not key.public_key().is_valid(raw_to_der(bytes(tampered)), MESSAGE)


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        b"garbage",
        b"\x30\x06\x02\x01\x01\x02\x01\x01",  # well-formed DER, but not a signature
        b"\x30\x44\x02\x20" + b"\xff" * 32 + b"\x02\x20" + b"\x01" * 32,  # negative r
        b"\x30\x06\x02\x01\x00\x02\x01\x01",  # r = 0
        raw_to_der((1).to_bytes(32, "big") + (CURVE_ORDER - 1).to_bytes(32, "big")),  # r+s = n
        raw_to_der(b"\x01" * 64),  # in range, wrong value
    ],
)
def test_malformed_signatures_raise_signature_invalid(key: SM2PrivateKey, signature: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signature, MESSAGE)
    assert not key.public_key().is_valid(signature, MESSAGE)


def test_trailing_bytes_after_der_are_rejected(key: SM2PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signature + b"\x00", MESSAGE)


def test_der_raw_conversion_round_trip(key: SM2PrivateKey) -> None:
    signature = key.sign(MESSAGE)
    raw = der_to_raw(signature)
    assert len(raw) == 64
    assert raw_to_der(raw) == signature


@pytest.mark.parametrize(
    "raw",
    [
        bytes(64),  # r = s = 0
        CURVE_ORDER.to_bytes(32, "big") + (1).to_bytes(32, "big"),  # r = n
        (1).to_bytes(32, "big") + CURVE_ORDER.to_bytes(32, "big"),  # s = n
        bytes(63),
        bytes(65),
    ],
)
def test_raw_to_der_refuses_out_of_range_values(raw: bytes) -> None:
    with pytest.raises(SignatureInvalid):
        raw_to_der(raw)


def test_our_signature_verifies_under_gmssl(key: SM2PrivateKey) -> None:
    raw = der_to_raw(key.sign(MESSAGE))
    assert gmssl_for(key).verify_with_sm3(raw.hex(), MESSAGE)
    assert not gmssl_for(key).verify_with_sm3(raw.hex(), MESSAGE + b"x")


def test_gmssl_signature_verifies_under_ours(key: SM2PrivateKey) -> None:
    raw_hex = gmssl_for(key).sign_with_sm3(MESSAGE)
    signature = raw_to_der(bytes.fromhex(raw_hex))
    key.public_key().verify(signature, MESSAGE)
    with pytest.raises(SignatureInvalid):
        key.public_key().verify(signature, MESSAGE + b"x")


def test_public_key_derivation_agrees_with_gmssl() -> None:
    private = SM2PrivateKey.generate()
    crypt = gmssl_for(private)
    expected = crypt._kg(int(private.to_bytes().hex(), 16), crypt.ecc_table["g"])
    assert private.public_key().to_bytes() == bytes.fromhex("04" + expected)


def test_raw_private_key_round_trip(key: SM2PrivateKey) -> None:
    loaded = SM2PrivateKey.from_bytes(key.to_bytes())
    assert loaded.to_bytes() == key.to_bytes()
    assert loaded.public_key() == key.public_key()
    loaded.public_key().verify(key.sign(MESSAGE), MESSAGE)
    key.public_key().verify(loaded.sign(MESSAGE), MESSAGE)


@pytest.mark.parametrize("scalar", [0, CURVE_ORDER - 1, CURVE_ORDER, 2**256 - 1])
def test_private_scalar_out_of_range_is_refused(scalar: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        SM2PrivateKey.from_bytes(scalar.to_bytes(32, "big"))


def test_private_scalar_edges_in_range_are_accepted() -> None:
    for scalar in (1, CURVE_ORDER - 2):
        private = SM2PrivateKey.from_bytes(scalar.to_bytes(32, "big"))
        private.public_key().verify(private.sign(b"m"), b"m")


def test_private_key_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SM2PrivateKey.from_bytes(bytes(31))


def test_private_pem_round_trip(key: SM2PrivateKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert SM2PrivateKey.from_pem(pem).to_bytes() == key.to_bytes()


def test_encrypted_private_pem_round_trip(key: SM2PrivateKey) -> None:
    pem = key.to_pem(password=b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert SM2PrivateKey.from_pem(pem, password=b"correct horse").to_bytes() == key.to_bytes()
    with pytest.raises(ValueError):  # noqa: PT011 - the library's message varies by version
        SM2PrivateKey.from_pem(pem, password=b"wrong")


def test_public_key_bytes_and_pem_round_trip(key: SM2PrivateKey) -> None:
    public = key.public_key()
    point = public.to_bytes()
    assert len(point) == 65
    assert point[0] == 0x04
    assert SM2PublicKey.from_bytes(point) == public
    assert SM2PublicKey.from_pem(public.to_pem()) == public
    assert public.to_pem().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert hash(SM2PublicKey.from_bytes(point)) == hash(public)


def test_point_not_on_curve_is_refused(key: SM2PrivateKey) -> None:
    point = bytearray(key.public_key().to_bytes())
    point[-1] ^= 0x01
    with pytest.raises(ValueError):  # noqa: PT011 - raised by the library's point decoder
        SM2PublicKey.from_bytes(bytes(point))


@pytest.mark.parametrize("point", [b"", bytes(65), b"\x02" + bytes(32), b"\x04" + bytes(63)])
def test_malformed_public_key_is_refused(point: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        SM2PublicKey.from_bytes(point)


def test_fingerprint_is_sm3_of_the_point(key: SM2PrivateKey) -> None:
    public = key.public_key()
    assert public.fingerprint() == sm3_hex(public.to_bytes())
    assert len(public.fingerprint()) == 64


def test_repr_does_not_reveal_the_private_key(key: SM2PrivateKey) -> None:
    text = repr(key)
    assert key.to_bytes().hex() not in text
    assert key.public_key().fingerprint()[:16] in text


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=512))
def test_sign_verify_property(data: bytes) -> None:
    private = SM2PrivateKey.from_bytes(
        bytes.fromhex("3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8")
    )
    public = private.public_key()
    signature = private.sign(data)
    public.verify(signature, data)
    assert not public.is_valid(signature, data + b"\x00")
