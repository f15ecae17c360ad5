"""Re-encrypting stored data after a data-key rotation (数据密钥轮换).

Old ciphertexts stay readable after :meth:`KeyRing.rotate`, because the key ring keeps retired
keys. This job moves every encrypted column onto the active key, in batches, so that a retired
key can eventually be destroyed. It reads raw bytes (no decryption for values already current)
and rewrites only what needs it; safe to interrupt and re-run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Column, LargeBinary, Table, func, select, type_coerce, update
from sqlalchemy.orm import Session

from yikatong.crypto.fields import EncryptedString, needs_reencryption, reencrypt_field
from yikatong.db import Base

BATCH = 1_000


def encrypted_columns() -> Iterator[tuple[Table, Column[str], str]]:
    """Every (table, column, field name) stored with :class:`EncryptedString`."""
    import yikatong.models  # noqa: F401 - registers every table on Base.metadata

    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedString):
                yield table, column, column.type.field


def reencrypt_all(
    session: Session, *, progress: Callable[[str, int, int], None] | None = None
) -> int:
    """Re-encrypt every value under a retired data key; returns how many were rewritten."""
    changed = 0
    for table, column, field in encrypted_columns():
        (pk,) = table.primary_key.columns
        raw = type_coerce(column, LargeBinary)
        label = f"{table.name}.{column.name}"
        total = session.scalar(select(func.count()).select_from(table).where(column.is_not(None)))
        done, after = 0, None
        while True:
            query = select(pk, raw).where(column.is_not(None)).order_by(pk).limit(BATCH)
            if after is not None:
                query = query.where(pk > after)
            rows = session.execute(query).all()
            if not rows:
                break
            updates = [
                {"pk": key, "blob": reencrypt_field(field, bytes(blob))}
                for key, blob in rows
                if needs_reencryption(bytes(blob))
            ]
            for item in updates:
                session.execute(
                    update(table)
                    .where(pk == item["pk"])
                    .values({column.name: type_coerce(item["blob"], LargeBinary)})
                )
            changed += len(updates)
            done += len(rows)
            after = rows[-1][0]
            if progress is not None:
                progress(label, done, total or 0)
    session.flush()
    return changed
