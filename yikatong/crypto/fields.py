"""Encryption of sensitive database fields (ID numbers, phone numbers, bank accounts ...).

A stored value is ``0x01 || data-key version (2 bytes, big-endian) || SM4-GCM blob`` with the
field name as associated data, so a ciphertext copied into another column (or another field of
the same column) fails to decrypt. Equality search goes through :func:`blind_index`, a keyed
HMAC-SM3 of the normalised value kept in a separate column; the ciphertext itself is randomised
and can never be compared in SQL.
"""

from __future__ import annotations

import operator
import struct
import unicodedata
from typing import Any

from sqlalchemy import LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.types import TypeDecorator

from yikatong.crypto.errors import DecryptionError, KeyStoreError
from yikatong.crypto.keystore import get_keyring
from yikatong.crypto.sm3 import hmac_sm3
from yikatong.crypto.sm4 import OVERHEAD

FORMAT_V1 = 0x01
BLIND_INDEX_SIZE = 16

_HEADER = struct.Struct(">BH")
_MIN_SIZE = _HEADER.size + OVERHEAD


def _aad(field: str) -> bytes:
    if not field:
        raise ValueError("a field name is required")
    return field.encode("utf-8")


def _parse_header(blob: bytes) -> int:
    if len(blob) < _MIN_SIZE:
        raise DecryptionError("encrypted field too short")
    fmt, version = _HEADER.unpack_from(blob)
    if fmt != FORMAT_V1:
        raise DecryptionError(f"unknown encrypted field format 0x{fmt:02x}")
    return int(version)


def encrypt_field(field: str, value: str) -> bytes:
    """Encrypt ``value`` for column ``field`` under the active data key."""
    version, aead = get_keyring().active_aead
    return _HEADER.pack(FORMAT_V1, version) + aead.encrypt(value.encode("utf-8"), _aad(field))


def decrypt_field(field: str, blob: bytes) -> str:
    """Decrypt a value of :func:`encrypt_field`; raises :class:`DecryptionError` on any failure."""
    version = _parse_header(blob)
    try:
        aead = get_keyring().aead(version)
    except KeyStoreError:
        raise DecryptionError(f"no data key version {version} in the key ring") from None
    plaintext = aead.decrypt(blob[_HEADER.size :], _aad(field))
    return plaintext.decode("utf-8")


def needs_reencryption(blob: bytes) -> bool:
    """Whether ``blob`` was encrypted under a data key other than the active one."""
    return _parse_header(blob) != get_keyring().active_version


def reencrypt_field(field: str, blob: bytes) -> bytes:
    """Re-encrypt ``blob`` under the active data key (after :meth:`KeyRing.rotate`)."""
    if not needs_reencryption(blob):
        return blob
    return encrypt_field(field, decrypt_field(field, blob))


def normalize_for_index(value: str) -> str:
    """The form that is indexed: NFKC (full-width digits from Chinese IMEs become ASCII),
    all whitespace removed, upper case (an ID number's check character ``x`` equals ``X``)."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def blind_index(field: str, value: str) -> bytes:
    """16-byte keyed index of ``value`` for exact-match search on encrypted column ``field``.

    Deterministic for a given field and normalised value, unrelated across fields (a phone
    number's index cannot be matched against another column's), and stable across data-key
    rotation.
    """
    key = get_keyring().index_key_for(field)
    return hmac_sm3(key, normalize_for_index(value).encode("utf-8"))[:BLIND_INDEX_SIZE]


# Operators that would compare ciphertexts in SQL. With random nonces they can never match, so
# using one is always a bug (search with the blind index instead); failing loudly beats a query
# that silently returns nothing.
_REFUSED_OPERATORS = frozenset(
    {
        operator.eq,
        operator.ne,
        operator.lt,
        operator.le,
        operator.gt,
        operator.ge,
        operators.in_op,
        operators.not_in_op,
        operators.like_op,
        operators.not_like_op,
        operators.ilike_op,
        operators.not_ilike_op,
        operators.between_op,
        operators.not_between_op,
        operators.contains_op,
        operators.startswith_op,
        operators.endswith_op,
    }
)


def _is_value(operand: Any) -> bool:
    """Whether ``operand`` is a value (or bound parameter) rather than NULL or a SQL expression.

    SQLAlchemy itself compares column objects with ``==`` (ORM bookkeeping), so column-to-column
    expressions must stay possible; only comparisons against data are refused.
    """
    if operand is None:
        return False
    if isinstance(operand, BindParameter):
        return True
    # ORM attributes are not ClauseElements themselves but expose one.
    return not (isinstance(operand, ClauseElement) or hasattr(operand, "__clause_element__"))


class EncryptedString(TypeDecorator[str]):
    """A ``str`` attribute stored encrypted by :func:`encrypt_field` in a binary column.

    ``field`` is the associated data and must stay fixed for the column's lifetime (use the
    ``table.column`` name). ``None`` is stored as SQL NULL.
    """

    impl = LargeBinary
    cache_ok = True

    class Comparator(TypeDecorator.Comparator[str]):
        """Refuses comparing the column with data in SQL; ``IS [NOT] NULL`` stays allowed."""

        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in _REFUSED_OPERATORS and any(map(_is_value, other)):
                raise TypeError(
                    "encrypted columns cannot be compared in SQL; query the blind index instead"
                )
            return super().operate(op, *other, **kwargs)

    comparator_factory = Comparator

    def __init__(self, field: str) -> None:
        """Bind the column to ``field``, the associated data of every ciphertext it stores."""
        super().__init__()
        _aad(field)
        self.field = field

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        """Encrypt on the way into the database."""
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"{self.field} takes str, got {type(value).__name__}")
        return encrypt_field(self.field, value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        """Decrypt on the way out; a row that fails authentication raises, never yields junk."""
        if value is None:
            return None
        return decrypt_field(self.field, bytes(value))

    def process_literal_param(self, value: str | None, dialect: Dialect) -> str:
        """Refuse to inline values into SQL text, where the plaintext would be logged."""
        raise TypeError("encrypted values cannot be rendered as SQL literals")
