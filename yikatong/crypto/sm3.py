"""SM3 hashing (GB/T 32905-2016) and HMAC-SM3 (RFC 2104 construction), via ``cryptography``."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

DIGEST_SIZE = 32

# Hash algorithm objects are immutable descriptors; one instance serves every call.
_SM3 = hashes.SM3()


def sm3(data: bytes) -> bytes:
    """Return the 32-byte SM3 digest of ``data``."""
    digest = hashes.Hash(_SM3)
    digest.update(data)
    return digest.finalize()


def sm3_hex(data: bytes) -> str:
    """Return the SM3 digest of ``data`` as 64 lower-case hex digits."""
    return sm3(data).hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """Return the 32-byte HMAC-SM3 of ``data`` under ``key``."""
    mac = hmac.HMAC(key, _SM3)
    mac.update(data)
    return mac.finalize()


def hmac_sm3_verify(key: bytes, data: bytes, mac: bytes) -> bool:
    """Check an HMAC-SM3 tag in constant time; a truncated or over-long ``mac`` is refused."""
    checker = hmac.HMAC(key, _SM3)
    checker.update(data)
    try:
        # HMAC.verify compares with a constant-time primitive and rejects any length mismatch.
        checker.verify(mac)
    except InvalidSignature:
        return False
    return True
