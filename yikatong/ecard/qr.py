"""The dynamic e-card QR code (亮码, R1.6): payload, signature, text form, offline verifier.

Pure functions, no database: a terminal holding only the published platform keys
(``GET /api/v1/ecard/keys``) verifies a code with :func:`verify_offline`.

Binary layout, format version 1 (big-endian, 107 bytes)::

    offset size  field
    0       1    version = 1
    1       2    key id: the platform signing key version that signed
    3       16   card token (pseudonymous, never the ID number)
    19      1    purpose: 1 identity, 2 payment, 3 medical
    20      4    issued at, Unix seconds (uint32)
    24      4    expires at, Unix seconds (uint32)
    28      12   nonce (random; the online verifier accepts each nonce once)
    40      3    issuing region, GB/T 2260 code in packed BCD (441600 -> 44 16 00)
    43      64   SM2 signature r || s

The signature is SM2 with SM3 (GM/T 0009 default signer ID) over ``SIGNING_CONTEXT`` followed
by bytes 0-42; the context keeps a QR signature from ever being valid for another document the
platform signs with the same key. The text form is ``YKT1:`` followed by base45 (RFC 9285) of
the 107 bytes: 166 characters, all in the QR alphanumeric set, so the symbol stays small (QR
version 8 at error correction level M) for a bus validator reading a phone screen.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import struct
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from yikatong.crypto.errors import SignatureInvalid
from yikatong.crypto.sm2 import SM2PrivateKey, SM2PublicKey, der_to_raw, raw_to_der
from yikatong.ecard.errors import (
    QrBadSignature,
    QrExpired,
    QrMalformed,
    QrNotYetValid,
    QrTrailingData,
    QrTruncated,
    QrUnknownKey,
    QrUnsupportedVersion,
    QrWrongPurpose,
)

VERSION = 1
PREFIX = "YKT1:"
SIGNING_CONTEXT = b"YKT-ECARD-QR"
TOKEN_SIZE = 16
NONCE_SIZE = 12
SIGNATURE_SIZE = 64
DEFAULT_LIFETIME = 60  # seconds
MAX_LIFETIME = 300  # a longer-lived code is refused as malformed
CLOCK_SKEW = 5  # seconds of terminal clock error tolerated at both ends of the validity

_HEADER = struct.Struct(">BH16sBII12s3s")
PAYLOAD_SIZE = _HEADER.size  # 43
CODE_SIZE = PAYLOAD_SIZE + SIGNATURE_SIZE  # 107

BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_VALUES = {char: value for value, char in enumerate(BASE45_ALPHABET)}


class Purpose(enum.StrEnum):
    """What a code may be used for; a verifier asks for one and refuses the others."""

    IDENTITY = "identity"  # 身份认证
    PAYMENT = "payment"  # 支付（需二级电子社保卡）
    MEDICAL = "medical"  # 就医购药


PURPOSE_CODES: dict[Purpose, int] = {Purpose.IDENTITY: 1, Purpose.PAYMENT: 2, Purpose.MEDICAL: 3}
_PURPOSES_BY_CODE = {code: purpose for purpose, code in PURPOSE_CODES.items()}


# --- base45 (RFC 9285) ------------------------------------------------------------------------


def base45_encode(data: bytes) -> str:
    """Encode bytes as base45: each two bytes become three characters, a last byte two."""
    out: list[str] = []
    alphabet = BASE45_ALPHABET
    for i in range(0, len(data) - 1, 2):
        n = (data[i] << 8) | data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (alphabet[c], alphabet[d], alphabet[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (alphabet[c], alphabet[d])
    return "".join(out)


def base45_decode(text: str) -> bytes:
    """Decode base45 strictly; raises ``ValueError`` on any character, length or value error."""
    values = _BASE45_VALUES
    try:
        digits = [values[char] for char in text]
    except KeyError:
        raise ValueError("character outside the base45 alphabet") from None
    size = len(digits)
    if size % 3 == 1:
        raise ValueError("base45 text cannot have a length of 3n + 1")
    out = bytearray()
    for i in range(0, size - 2, 3):
        n = digits[i] + digits[i + 1] * 45 + digits[i + 2] * 2025
        if n > 0xFFFF:
            raise ValueError("base45 triple above 65535")
        out += n.to_bytes(2, "big")
    if size % 3 == 2:
        n = digits[-2] + digits[-1] * 45
        if n > 0xFF:
            raise ValueError("base45 pair above 255")
        out.append(n)
    return bytes(out)


# --- regions as packed BCD ----------------------------------------------------------------------


def _region_to_bcd(region: str) -> bytes:
    if len(region) != 6 or not region.isascii() or not region.isdigit():
        raise ValueError("an issuing region is a six-digit GB/T 2260 code")
    return bytes.fromhex(region)  # "441600" -> 44 16 00: hex digits of a decimal are its BCD


def _bcd_to_region(data: bytes) -> str:
    text = data.hex()
    if not text.isdigit():
        raise QrMalformed("The issuing region is not a BCD-coded region code")
    return text


# --- the code ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodePayload:
    """The signed fields of a code."""

    key_id: int
    token: bytes  # 16 bytes: the card token
    purpose: Purpose
    issued_at: int  # Unix seconds
    expires_at: int
    nonce: bytes  # 12 bytes
    region: str  # six-digit issuing region

    def to_bytes(self) -> bytes:
        """The 43 payload bytes (what is signed, after :data:`SIGNING_CONTEXT`)."""
        return _HEADER.pack(
            VERSION,
            self.key_id,
            self.token,
            PURPOSE_CODES[self.purpose],
            self.issued_at,
            self.expires_at,
            self.nonce,
            _region_to_bcd(self.region),
        )

    @property
    def token_hex(self) -> str:
        """The card token as the cards table stores it (32 lower-case hex digits)."""
        return self.token.hex()


@dataclass(frozen=True)
class SignedCode:
    """A payload and its raw 64-byte SM2 signature."""

    payload: CodePayload
    signature: bytes

    def to_bytes(self) -> bytes:
        return self.payload.to_bytes() + self.signature


def new_payload(
    *,
    key_id: int,
    token: str | bytes,
    purpose: Purpose,
    region: str,
    now: dt.datetime,
    lifetime: int = DEFAULT_LIFETIME,
    nonce: bytes | None = None,
) -> CodePayload:
    """A payload valid from ``now`` for ``lifetime`` seconds, with a fresh random nonce."""
    if not 0 < lifetime <= MAX_LIFETIME:
        raise ValueError(f"a code lives 1 to {MAX_LIFETIME} seconds")
    if not 0 < key_id <= 0xFFFF:
        raise ValueError("a key id is 1 to 65535")
    raw_token = bytes.fromhex(token) if isinstance(token, str) else token
    if len(raw_token) != TOKEN_SIZE:
        raise ValueError(f"a card token is {TOKEN_SIZE} bytes (32 hex digits)")
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"a nonce is {NONCE_SIZE} bytes")
    issued_at = int(now.timestamp())
    _region_to_bcd(region)
    return CodePayload(
        key_id, raw_token, Purpose(purpose), issued_at, issued_at + lifetime, nonce, region
    )


def sign_code(payload: CodePayload, key: SM2PrivateKey) -> SignedCode:
    """Sign ``payload`` with the platform key whose version is ``payload.key_id``."""
    signature = der_to_raw(key.sign(SIGNING_CONTEXT + payload.to_bytes()))
    return SignedCode(payload, signature)


def encode(code: SignedCode) -> str:
    """The text a QR code carries: ``YKT1:`` + base45 of the 107 bytes."""
    return PREFIX + base45_encode(code.to_bytes())


def decode_bytes(data: bytes) -> SignedCode:
    """Parse the 107 binary bytes strictly; raises a :class:`QrMalformed` subclass."""
    if not data:
        raise QrTruncated("The code is empty")
    if data[0] != VERSION:
        raise QrUnsupportedVersion(f"Format version {data[0]} is not supported")
    if len(data) < CODE_SIZE:
        raise QrTruncated(f"The code has {len(data)} bytes; version 1 has {CODE_SIZE}")
    if len(data) > CODE_SIZE:
        raise QrTrailingData(f"The code has {len(data) - CODE_SIZE} bytes after its signature")
    _, key_id, token, purpose_code, issued_at, expires_at, nonce, region = _HEADER.unpack_from(data)
    purpose = _PURPOSES_BY_CODE.get(purpose_code)
    if purpose is None:
        raise QrMalformed(f"Unknown purpose {purpose_code}")
    if not issued_at < expires_at <= issued_at + MAX_LIFETIME:
        raise QrMalformed("The validity period is empty or longer than allowed")
    payload = CodePayload(
        key_id, token, purpose, issued_at, expires_at, nonce, _bcd_to_region(region)
    )
    return SignedCode(payload, data[PAYLOAD_SIZE:])


def decode(text: str) -> SignedCode:
    """Parse a code's text strictly (no signature check); raises a :class:`QrMalformed`."""
    if not isinstance(text, str) or not text.startswith(PREFIX):
        raise QrMalformed(f"An e-card code starts with {PREFIX}")
    try:
        data = base45_decode(text[len(PREFIX) :])
    except ValueError as exc:
        raise QrMalformed(f"The code is not valid base45: {exc}") from None
    return decode_bytes(data)


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedCode:
    """A code whose signature, validity and purpose checked out."""

    key_id: int
    token: str  # 32 hex digits
    purpose: Purpose
    issued_at: dt.datetime
    expires_at: dt.datetime
    nonce: bytes
    region: str


def verify_offline(
    code_text: str,
    public_keys: Mapping[int, SM2PublicKey],
    now: dt.datetime,
    purpose: Purpose | Collection[Purpose],
    *,
    skew: int = CLOCK_SKEW,
) -> VerifiedCode:
    """Verify a code with only the platform's public keys, as an offline terminal does.

    Checks, in this order (each failure has its own error): the format (:class:`QrMalformed`),
    the key id (:class:`QrUnknownKey`), the signature (:class:`QrBadSignature`), the validity
    with ``skew`` seconds of clock tolerance (:class:`QrNotYetValid`, :class:`QrExpired`) and
    the purpose (:class:`QrWrongPurpose`). Nothing but the format is reported before the
    signature is known to be the platform's. Replay and blacklist checks are the caller's: an
    offline terminal keeps the nonces it has seen and applies the blacklist it downloaded.
    """
    code = decode(code_text)
    payload = code.payload
    key = public_keys.get(payload.key_id)
    if key is None:
        raise QrUnknownKey("Key {key_id} is not trusted", params={"key_id": payload.key_id})
    try:
        key.verify(raw_to_der(code.signature), SIGNING_CONTEXT + payload.to_bytes())
    except SignatureInvalid:
        raise QrBadSignature() from None
    moment = now.timestamp()
    if moment + skew < payload.issued_at:
        raise QrNotYetValid()
    if moment - skew >= payload.expires_at:
        raise QrExpired()
    accepted = (purpose,) if isinstance(purpose, Purpose) else purpose
    if payload.purpose not in accepted:
        raise QrWrongPurpose("The code is for {purpose}", params={"purpose": payload.purpose.value})
    return VerifiedCode(
        key_id=payload.key_id,
        token=payload.token_hex,
        purpose=payload.purpose,
        issued_at=dt.datetime.fromtimestamp(payload.issued_at, dt.UTC),
        expires_at=dt.datetime.fromtimestamp(payload.expires_at, dt.UTC),
        nonce=payload.nonce,
        region=payload.region,
    )


# --- published keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedKey:
    """A platform verification key as ``GET /api/v1/ecard/keys`` publishes it."""

    key_id: int
    public_key: SM2PublicKey
    valid_from: dt.datetime
    valid_until: dt.datetime | None  # None while the key is in force
    state: str  # "pending" | "active" | "retired"

    def trusted_at(self, now: dt.datetime, skew: int = CLOCK_SKEW) -> bool:
        """Whether a verifier should accept codes signed by this key at ``now``."""
        margin = dt.timedelta(seconds=skew)
        return self.valid_from <= now + margin and (
            self.valid_until is None or now - margin < self.valid_until
        )


def trusted_keys(
    published: Iterable[PublishedKey], now: dt.datetime, skew: int = CLOCK_SKEW
) -> dict[int, SM2PublicKey]:
    """The ``public_keys`` mapping :func:`verify_offline` needs, from the published list."""
    return {key.key_id: key.public_key for key in published if key.trusted_at(now, skew)}
