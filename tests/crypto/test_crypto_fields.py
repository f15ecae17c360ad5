from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Engine,
    Integer,
    String,
    bindparam,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from yikatong.crypto.errors import DecryptionError
from yikatong.crypto.fields import (
    BLIND_INDEX_SIZE,
    EncryptedString,
    blind_index,
    decrypt_field,
    encrypt_field,
    needs_reencryption,
    normalize_for_index,
    reencrypt_field,
)
from yikatong.crypto.keystore import get_keyring
from yikatong.crypto.sm4 import OVERHEAD

ID_NUMBER = "441602199001011234"
ID_FIELD = "resident.id_number"


def test_round_trip() -> None:
    blob = encrypt_field(ID_FIELD, ID_NUMBER)
    assert decrypt_field(ID_FIELD, blob) == ID_NUMBER


def test_round_trip_of_chinese_text_and_empty_string() -> None:
    for value in ("欧阳小明", "广东省河源市源城区越王大道1号", ""):
        assert decrypt_field("resident.address", encrypt_field("resident.address", value)) == value


def test_layout_is_format_version_then_gcm_blob() -> None:
    blob = encrypt_field(ID_FIELD, ID_NUMBER)
    assert blob[0] == 0x01
    assert int.from_bytes(blob[1:3], "big") == get_keyring().active_version
    assert len(blob) == 3 + OVERHEAD + len(ID_NUMBER)


def test_ciphertext_contains_no_plaintext_digits() -> None:
    blob = encrypt_field(ID_FIELD, ID_NUMBER)
    assert ID_NUMBER.encode() not in blob
    for start in range(len(ID_NUMBER) - 5):
        assert ID_NUMBER[start : start + 6].encode() not in blob


def test_encryption_is_randomised() -> None:
    assert encrypt_field(ID_FIELD, ID_NUMBER) != encrypt_field(ID_FIELD, ID_NUMBER)


def test_ciphertext_of_another_field_is_rejected() -> None:
    blob = encrypt_field("resident.phone", "13812345678")
    with pytest.raises(DecryptionError):
        decrypt_field("resident.bank_account", blob)


def test_tampered_or_malformed_ciphertext_is_rejected() -> None:
    blob = encrypt_field(ID_FIELD, ID_NUMBER)
    for position in range(3, len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x04
        with pytest.raises(DecryptionError):
            decrypt_field(ID_FIELD, bytes(tampered))
    with pytest.raises(DecryptionError, match="format"):
        decrypt_field(ID_FIELD, b"\x02" + blob[1:])
    with pytest.raises(DecryptionError, match="too short"):
        decrypt_field(ID_FIELD, blob[: 3 + OVERHEAD - 1])
    with pytest.raises(DecryptionError):
        decrypt_field(ID_FIELD, ID_NUMBER.encode())


def test_field_name_is_required() -> None:
    with pytest.raises(ValueError, match="field name"):
        encrypt_field("", ID_NUMBER)
    with pytest.raises(ValueError, match="field name"):
        EncryptedString("")


def test_reencryption_after_rotation() -> None:
    old = encrypt_field(ID_FIELD, ID_NUMBER)
    assert not needs_reencryption(old)
    assert reencrypt_field(ID_FIELD, old) is old
    get_keyring().rotate()
    assert needs_reencryption(old)
    fresh = reencrypt_field(ID_FIELD, old)
    assert not needs_reencryption(fresh)
    assert int.from_bytes(fresh[1:3], "big") == 2
    assert decrypt_field(ID_FIELD, fresh) == ID_NUMBER


def test_blind_index_is_deterministic_and_sized() -> None:
    first = blind_index(ID_FIELD, ID_NUMBER)
    assert len(first) == BLIND_INDEX_SIZE
    assert blind_index(ID_FIELD, ID_NUMBER) == first
    assert blind_index(ID_FIELD, "441602199001011235") != first


def test_blind_index_normalises_input() -> None:
    canonical = blind_index(ID_FIELD, "44160219900101123X")
    assert blind_index(ID_FIELD, "44160219900101123x") == canonical
    assert blind_index(ID_FIELD, " 441602 19900101 123x ") == canonical
    assert blind_index(ID_FIELD, "４４１６０２１９９００１０１１２３Ｘ") == canonical  # full width
    assert blind_index(ID_FIELD, "441602\u300019900101123X") == canonical  # ideographic space
    assert normalize_for_index(" 44160219900101123x\t") == "44160219900101123X"


def test_blind_index_differs_by_field() -> None:
    assert blind_index("resident.phone", "13812345678") != blind_index("staff.phone", "13812345678")


def test_blind_index_is_stable_across_rotation_and_reload() -> None:
    before = blind_index(ID_FIELD, ID_NUMBER)
    get_keyring().rotate()
    assert blind_index(ID_FIELD, ID_NUMBER) == before


def test_blind_index_depends_on_the_key_ring(keystore_dir: Path) -> None:
    from yikatong.crypto.keystore import KeyRing, reset_keyring_cache

    before = blind_index(ID_FIELD, ID_NUMBER)
    KeyRing.init(force=True)
    reset_keyring_cache()
    assert blind_index(ID_FIELD, ID_NUMBER) != before


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.text(max_size=200), st.sampled_from(["resident.name", "resident.address", "x"]))
def test_round_trip_property(value: str, field: str) -> None:
    blob = encrypt_field(field, value)
    assert decrypt_field(field, blob) == value
    with pytest.raises(DecryptionError):
        decrypt_field(field + ".other", blob)


# --- the SQLAlchemy column type -------------------------------------------------------------


class FieldsTestBase(DeclarativeBase):
    pass


class Resident(FieldsTestBase):
    __tablename__ = "crypto_test_resident"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    id_number: Mapped[str | None] = mapped_column(EncryptedString("resident.id_number"))
    phone: Mapped[str | None] = mapped_column(EncryptedString("resident.phone"))


@pytest.fixture
def sqlite_engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    FieldsTestBase.metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_column_encrypts_on_write_and_decrypts_on_read(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session:
        session.add(Resident(id=1, name="张三", id_number=ID_NUMBER, phone="13812345678"))
        session.commit()
    with sqlite_engine.connect() as connection:
        raw_id, raw_phone = connection.execute(
            text("SELECT id_number, phone FROM crypto_test_resident WHERE id = 1")
        ).one()
    assert isinstance(raw_id, bytes)
    assert ID_NUMBER.encode() not in raw_id
    assert b"13812345678" not in raw_phone
    assert decrypt_field("resident.id_number", raw_id) == ID_NUMBER
    with Session(sqlite_engine) as session:
        resident = session.get_one(Resident, 1)
        assert resident.id_number == ID_NUMBER
        assert resident.phone == "13812345678"


def test_column_stores_none_as_null(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session:
        session.add(Resident(id=2, name="李四", id_number=None, phone=None))
        session.commit()
    with sqlite_engine.connect() as connection:
        assert (
            connection.execute(text("SELECT id_number FROM crypto_test_resident")).scalar_one()
            is None
        )
    with Session(sqlite_engine) as session:
        assert session.get_one(Resident, 2).id_number is None
        assert session.scalars(select(Resident.id).where(Resident.phone.is_(None))).all() == [2]
        assert session.scalars(select(Resident.id).where(Resident.phone == None)).all() == [2]  # noqa: E711


def test_ciphertext_moved_between_columns_is_rejected(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session:
        session.add(Resident(id=3, name="王五", id_number=ID_NUMBER, phone="13812345678"))
        session.commit()
    with sqlite_engine.begin() as connection:
        connection.execute(text("UPDATE crypto_test_resident SET phone = id_number WHERE id = 3"))
    with Session(sqlite_engine) as session, pytest.raises(DecryptionError):
        session.get_one(Resident, 3)


def test_column_refuses_sql_comparisons() -> None:
    with pytest.raises(TypeError, match="blind index"):
        select(Resident).where(Resident.id_number == ID_NUMBER)
    with pytest.raises(TypeError, match="blind index"):
        select(Resident).where(Resident.phone.in_(["13812345678"]))
    with pytest.raises(TypeError, match="blind index"):
        select(Resident).where(Resident.phone.like("138%"))
    with pytest.raises(TypeError, match="blind index"):
        select(Resident).where(Resident.phone != bindparam("phone"))
    # Column-to-column and NULL tests remain expressible (SQLAlchemy relies on them itself).
    select(Resident).where(Resident.phone == Resident.id_number)
    select(Resident).where(Resident.phone != None)  # noqa: E711


def test_column_refuses_non_strings(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection, pytest.raises(StatementError, match="takes str"):
        connection.execute(insert(Resident), {"id": 4, "name": "赵六", "phone": 13812345678})


def test_bulk_update_encrypts(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session:
        session.add(Resident(id=5, name="钱七", phone="13812345678"))
        session.commit()
        session.execute(update(Resident).where(Resident.id == 5).values(phone="13900000000"))
        session.commit()
        session.expire_all()
        assert session.get_one(Resident, 5).phone == "13900000000"


def test_type_is_cacheable_per_field() -> None:
    a1 = EncryptedString("a")
    a2 = EncryptedString("a")
    b = EncryptedString("b")
    assert a1._static_cache_key == a2._static_cache_key
    assert a1._static_cache_key != b._static_cache_key
