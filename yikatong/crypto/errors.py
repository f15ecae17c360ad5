"""Exceptions of the national-crypto layer.

They are deliberately plain :class:`Exception` subclasses, not
:class:`yikatong.errors.YikatongError`: a failed decryption or signature check is not a business
outcome with a user-facing message, and the edge that catches one decides what (little) to tell
the caller.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every failure raised by :mod:`yikatong.crypto`."""


class DecryptionError(CryptoError):
    """A ciphertext failed authentication: tampered, wrong key, wrong context or malformed."""


class SignatureInvalid(CryptoError):
    """An SM2 signature is malformed or does not verify for this key and message."""


class KeyStoreError(CryptoError):
    """The key ring or master key is missing, inconsistent or cannot be written."""
