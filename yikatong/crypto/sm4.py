"""SM4 (GB/T 32907-2016) block cipher: authenticated GCM mode and the bare block operation.

GCM blobs are laid out as ``nonce (12) || ciphertext || tag (16)``. Nonces are 96 random bits
from the operating system CSPRNG; NIST SP 800-38D bounds random-nonce GCM to 2**32 messages per
key, which is why the key ring rotates data keys rather than using one key forever.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from yikatong.crypto.errors import DecryptionError

KEY_SIZE = 16
BLOCK_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise ValueError(f"an SM4 key is {KEY_SIZE} bytes, got {len(key)}")


class SM4GCM:
    """SM4-GCM under one key, holding the key schedule object for repeated use.

    Hot paths (field encryption) keep one instance per data key instead of rebuilding the
    algorithm object for every value.
    """

    __slots__ = ("_algorithm",)

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._algorithm = algorithms.SM4(key)

    def __repr__(self) -> str:
        return "<SM4GCM>"  # never show key material

    def encrypt(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Encrypt and authenticate; returns ``nonce || ciphertext || tag``."""
        nonce = os.urandom(NONCE_SIZE)
        encryptor = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        if aad:
            encryptor.authenticate_additional_data(aad)
        ciphertext = encryptor.update(plaintext) + encryptor.finalize()
        return nonce + ciphertext + encryptor.tag

    def decrypt(self, blob: bytes, aad: bytes = b"") -> bytes:
        """Authenticate and decrypt a blob from :meth:`encrypt`; raises :class:`DecryptionError`."""
        if len(blob) < OVERHEAD:
            raise DecryptionError("ciphertext too short")
        nonce = blob[:NONCE_SIZE]
        tag = blob[-TAG_SIZE:]
        decryptor = Cipher(self._algorithm, modes.GCM(nonce, tag)).decryptor()
        if aad:
            decryptor.authenticate_additional_data(aad)
        try:
            return decryptor.update(blob[NONCE_SIZE:-TAG_SIZE]) + decryptor.finalize()
        except InvalidTag:
            # One message for every cause: telling tampering from a wrong key helps only attackers.
            raise DecryptionError("ciphertext failed authentication") from None


def gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """SM4-GCM encrypt with a random nonce; returns ``nonce(12) || ciphertext || tag(16)``."""
    return SM4GCM(key).encrypt(plaintext, aad)


def gcm_decrypt(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    """Reverse :func:`gcm_encrypt`; raises :class:`DecryptionError` if authentication fails."""
    return SM4GCM(key).decrypt(blob, aad)


def ecb_encrypt_block(key: bytes, block: bytes) -> bytes:
    """Encrypt exactly one 16-byte block with SM4 (no mode, no padding)."""
    _check_key(key)
    if len(block) != BLOCK_SIZE:
        raise ValueError(f"an SM4 block is {BLOCK_SIZE} bytes, got {len(block)}")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()  # noqa: S305 - one block
    return encryptor.update(block) + encryptor.finalize()


def cbc_mac(key: bytes, data: bytes) -> bytes:
    """Raw SM4 CBC-MAC (zero IV) over ``data``, whose length must be a multiple of 16.

    Returns the last cipher block. Padding and truncation are the caller's policy
    (see :func:`yikatong.crypto.diversify.card_cryptogram`).
    """
    _check_key(key)
    if not data or len(data) % BLOCK_SIZE:
        raise ValueError("CBC-MAC input must be a non-empty multiple of 16 bytes")
    encryptor = Cipher(algorithms.SM4(key), modes.CBC(bytes(BLOCK_SIZE))).encryptor()
    return (encryptor.update(data) + encryptor.finalize())[-BLOCK_SIZE:]
