"""Data-key rotation: old rows stay readable, and re-encryption moves them to the new key."""

from __future__ import annotations

from sqlalchemy import LargeBinary, select, type_coerce
from sqlalchemy.orm import Session

from tests.factories import make_resident
from yikatong.crypto.fields import needs_reencryption
from yikatong.crypto.keystore import get_keyring
from yikatong.crypto.rotation import encrypted_columns, reencrypt_all
from yikatong.residents.models import Resident
from yikatong.residents.repository import find_by_id_number


def _raw(session: Session, resident_id: int) -> bytes:
    return bytes(
        session.execute(
            select(type_coerce(Resident.__table__.c.id_number, LargeBinary)).where(
                Resident.__table__.c.id == resident_id
            )
        ).scalar_one()
    )


def test_every_sensitive_column_is_known() -> None:
    found = {f"{t.name}.{c.name}" for t, c, _ in encrypted_columns()}
    assert {
        "residents.id_number",
        "residents.phone",
        "residents.address",
        "staff.totp_secret",
    } <= found


def test_rotation_then_reencryption(session: Session) -> None:
    # tests/crypto/conftest.py gives this test its own key ring, so rotating it is harmless.
    resident = make_resident(session)
    number = resident.id_number
    session.flush()
    before = _raw(session, resident.id)
    old_version = get_keyring().active_version
    new_version = get_keyring().rotate()
    assert new_version != old_version
    assert needs_reencryption(before)
    session.expire_all()
    # Old ciphertext still decrypts, and the blind index did not change with the data key.
    found = find_by_id_number(session, number)
    assert found is not None
    assert found.id_number == number
    changed = reencrypt_all(session)
    assert changed >= 1
    after = _raw(session, resident.id)
    assert after != before
    assert not needs_reencryption(after)
    session.expire_all()
    assert session.get(Resident, resident.id).id_number == number  # type: ignore[union-attr]
    assert reencrypt_all(session) == 0  # idempotent
