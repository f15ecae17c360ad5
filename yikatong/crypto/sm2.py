"""SM2 signatures (GB/T 32918-2016, GM/T 0003) over ``tongsuopy`` (Tongsuo, native speed).

Conventions, per GM/T 0009-2012:

* signatures are SM2 with SM3 over ``Z_A || M``, where ``Z_A`` binds the signer's public key and
  the signer ID; the ID is always the default ``1234567812345678`` (:data:`DEFAULT_SIGNER_ID`),
  which is what Tongsuo, GmSSL and gmssl use when none is given. ``tongsuopy`` exposes no way to
  set another ID, so this module does not pretend to accept one;
* signatures are DER ``SEQUENCE { r INTEGER, s INTEGER }``; :func:`der_to_raw` and
  :func:`raw_to_der` convert to and from the 64-byte ``r || s`` form used by cards and gmssl;
* public keys are uncompressed points ``04 || X || Y`` (65 bytes).

The wrappers keep the parsed ``tongsuopy`` key objects and one signature-algorithm instance, so a
verification costs one native call and nothing is re-parsed per message.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from tongsuopy.crypto import hashes, serialization
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature

from yikatong.crypto.errors import SignatureInvalid
from yikatong.crypto.sm3 import sm3_hex

DEFAULT_SIGNER_ID = b"1234567812345678"
"""The GM/T 0009 default user ID that enters ``Z_A``; every signature here uses it."""

CURVE_ORDER = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
"""Order ``n`` of the SM2 recommended curve (GB/T 32918.5)."""

PRIVATE_KEY_SIZE = 32
PUBLIC_KEY_SIZE = 65
RAW_SIGNATURE_SIZE = 64

_CURVE = ec.SM2()
_SIGNATURE_ALGORITHM = ec.ECDSA(hashes.SM3())  # "ECDSA" is tongsuopy's name for SM2-with-SM3


def _scalar_in_range(value: int) -> bool:
    return 0 < value < CURVE_ORDER


def der_to_raw(signature: bytes) -> bytes:
    """Convert a DER signature to 64 bytes ``r || s``; raises :class:`SignatureInvalid`."""
    try:
        r, s = decode_dss_signature(signature)  # strict DER: rejects trailing or BER data
    except ValueError:
        raise SignatureInvalid("malformed SM2 signature") from None
    if not (_scalar_in_range(r) and _scalar_in_range(s)):
        raise SignatureInvalid("SM2 signature value out of range")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_to_der(signature: bytes) -> bytes:
    """Convert 64 bytes ``r || s`` to a DER signature; raises :class:`SignatureInvalid`."""
    if len(signature) != RAW_SIGNATURE_SIZE:
        raise SignatureInvalid(f"a raw SM2 signature is {RAW_SIGNATURE_SIZE} bytes")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (_scalar_in_range(r) and _scalar_in_range(s)):
        raise SignatureInvalid("SM2 signature value out of range")
    return encode_dss_signature(r, s)


def _require_sm2(key: Any, kind: type) -> None:
    curve_name = getattr(getattr(key, "curve", None), "name", None)
    if not isinstance(key, kind) or curve_name != _CURVE.name:
        raise ValueError("not an SM2 key")


class SM2PublicKey:
    """An SM2 public key that verifies signatures made with the default signer ID."""

    __slots__ = ("_key", "_point")

    def __init__(self, key: Any) -> None:
        """Wrap a ``tongsuopy`` SM2 public key; prefer the ``from_*`` constructors."""
        _require_sm2(key, ec.EllipticCurvePublicKey)
        self._key = key
        point: bytes = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self._point = point

    @classmethod
    def from_bytes(cls, data: bytes) -> SM2PublicKey:
        """Load an uncompressed point ``04 || X || Y``; off-curve points raise ``ValueError``."""
        if len(data) != PUBLIC_KEY_SIZE or data[0] != 0x04:
            raise ValueError("an SM2 public key is 65 bytes starting with 0x04")
        # Tongsuo decodes with EC_POINT_oct2point, which refuses points not on the curve.
        return cls(ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, data))

    @classmethod
    def from_pem(cls, pem: bytes) -> SM2PublicKey:
        """Load a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo)."""
        return cls(serialization.load_pem_public_key(pem))

    def to_bytes(self) -> bytes:
        """Return the uncompressed point ``04 || X || Y`` (65 bytes)."""
        return self._point

    def to_pem(self) -> bytes:
        """Return a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo)."""
        pem: bytes = self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem

    def fingerprint(self) -> str:
        """SM3 of the 65-byte point, hex: a stable identifier safe to log and display."""
        return sm3_hex(self._point)

    def verify(self, signature: bytes, data: bytes) -> None:
        """Verify a DER signature over ``data``; raises :class:`SignatureInvalid` if it fails."""
        # Tongsuo reports malformed DER as an internal error rather than a failed signature, so
        # the encoding is checked strictly first (cheap next to the curve arithmetic). Anything
        # the library still raises is a genuine malfunction and propagates as such.
        der_to_raw(signature)
        try:
            self._key.verify(signature, data, _SIGNATURE_ALGORITHM)
        except InvalidSignature:
            raise SignatureInvalid("SM2 signature does not verify") from None

    def is_valid(self, signature: bytes, data: bytes) -> bool:
        """Return whether ``signature`` is a valid DER signature over ``data``."""
        try:
            self.verify(signature, data)
        except SignatureInvalid:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SM2PublicKey):
            return NotImplemented
        return self._point == other._point

    def __hash__(self) -> int:
        return hash(self._point)

    def __repr__(self) -> str:
        return f"<SM2PublicKey {self.fingerprint()[:16]}>"


class SM2PrivateKey:
    """An SM2 private key that signs with SM3 and the default signer ID."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: Any) -> None:
        """Wrap a ``tongsuopy`` SM2 private key; prefer the ``generate``/``from_*`` constructors."""
        _require_sm2(key, ec.EllipticCurvePrivateKey)
        self._key = key
        self._public = SM2PublicKey(key.public_key())

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        """Generate a fresh key from the library's CSPRNG."""
        return cls(ec.generate_private_key(_CURVE))

    @classmethod
    def from_bytes(cls, data: bytes) -> SM2PrivateKey:
        """Load a 32-byte big-endian private scalar ``d``; SM2 requires ``1 <= d <= n - 2``."""
        if len(data) != PRIVATE_KEY_SIZE:
            raise ValueError(f"an SM2 private key is {PRIVATE_KEY_SIZE} bytes")
        scalar = int.from_bytes(data, "big")
        # d = n - 1 has no (1 + d)^-1 mod n, and Tongsuo silently reduces larger values.
        if not 0 < scalar < CURVE_ORDER - 1:
            raise ValueError("SM2 private scalar out of range")
        return cls(ec.derive_private_key(scalar, _CURVE))

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None) -> SM2PrivateKey:
        """Load a PKCS#8 PEM private key, encrypted when ``password`` is given."""
        return cls(serialization.load_pem_private_key(pem, password=password))

    def to_bytes(self) -> bytes:
        """Return the 32-byte private scalar. Handle as key material: never log or store plain."""
        scalar: int = self._key.private_numbers().private_value
        return scalar.to_bytes(PRIVATE_KEY_SIZE, "big")

    def to_pem(self, password: bytes | None = None) -> bytes:
        """Return PKCS#8 PEM, encrypted with the library's best scheme when ``password`` is set."""
        encryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        pem: bytes = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        return pem

    def public_key(self) -> SM2PublicKey:
        """Return the matching public key (computed once)."""
        return self._public

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (SM3 over ``Z_A || data``, default signer ID); returns DER."""
        signature: bytes = self._key.sign(data, _SIGNATURE_ALGORITHM)
        return signature

    def __repr__(self) -> str:
        return f"<SM2PrivateKey for {self._public.fingerprint()[:16]}>"
