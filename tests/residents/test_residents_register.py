"""Registering residents: every rule names its field and changes nothing; duplicates; scope."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy.orm import Session

from tests.residents.helpers import (
    audit_entries,
    audit_text,
    clerk,
    last_audit_id,
    new_id_number,
    resident_count,
)
from yikatong.errors import PermissionDenied
from yikatong.kit.actor import Role
from yikatong.residents import repository, service
from yikatong.residents.errors import InvalidResident, RegionOutOfScope, ResidentExists
from yikatong.residents.validation import ResidentInput, check_name, normalize_phone


def _input(**overrides: str | None) -> ResidentInput:
    base = ResidentInput(
        id_number=new_id_number("441625", dt.date(1990, 1, 1)),
        name="张小三",
        region_code="441625",
        phone="13812345678",
        address="广东省河源市东源县仙塘镇人民路1号",
        town_code="441625100",
    )
    return dataclasses.replace(base, **overrides)


def test_register_reads_birth_date_and_sex_from_the_id_number(session: Session) -> None:
    actor = clerk(session)
    number = new_id_number("441625", dt.date(1968, 2, 29))
    resident = service.register(
        session, actor, _input(id_number=" " + number.lower() + " ", phone="+86 138-1234-5678")
    )
    assert resident.birth_date == dt.date(1968, 2, 29)
    assert resident.sex == "male"
    assert resident.id_number == number.upper()
    assert resident.phone == "13812345678"
    assert resident.status == "active"
    assert resident.status_date is None
    assert repository.identity_by_id_number(session, number) is not None


def test_register_accepts_minority_names_and_full_width_input(session: Session) -> None:
    resident = service.register(
        session, clerk(session), _input(name="买买提・艾力", phone="１３８１２３４５６７８")
    )
    assert resident.name == "买买提·艾力"
    assert resident.phone == "13812345678"


BAD_FIELDS = [
    ("id_number", "", "required"),
    ("id_number", "44162519900101123", "length"),
    ("id_number", "44162519900101123A", "characters"),
    ("id_number", "991625199001011234", "region"),
    ("id_number", "441625199002301234", "birth_date"),
    ("id_number", "CHECK", "check_digit"),
    ("name", "", "required"),
    ("name", "张3", "characters"),
    ("name", "·张三", "characters"),
    ("name", "张" * 33, "too_long"),
    ("name", "张\x00三", "characters"),
    ("phone", "12812345678", "not_a_mobile"),
    ("phone", "1381234567", "not_a_mobile"),
    ("region_code", "", "required"),
    ("region_code", "441699", "unknown_region"),
    ("region_code", "441600", "not_a_county"),
    ("region_code", "abc", "unknown_region"),
    ("town_code", "441602001", "not_in_county"),
    ("town_code", "441625999", "unknown_region"),
    ("address", "x" * 129, "too_long"),
    ("address", "人民路\n1号", "characters"),
]


@pytest.mark.parametrize(("field", "value", "reason"), BAD_FIELDS)
def test_each_invalid_field_is_named_and_nothing_changes(
    session: Session, field: str, value: str, reason: str
) -> None:
    actor = clerk(session)
    if value == "CHECK":
        good = new_id_number()
        value = good[:17] + ("0" if good[17] != "0" else "1")
    before, audited = resident_count(session), last_audit_id(session)
    with pytest.raises(InvalidResident) as caught:
        service.register(session, actor, _input(**{field: value}))
    errors = caught.value.extra["errors"]
    assert [(e["field"], e["reason"]) for e in errors] == [(field, reason)]
    assert caught.value.code == "invalid_resident"
    assert caught.value.status == 422
    assert resident_count(session) == before
    assert audit_entries(session, audited) == []


def test_every_bad_field_is_reported_at_once(session: Session) -> None:
    with pytest.raises(InvalidResident) as caught:
        service.register(
            session,
            clerk(session),
            _input(id_number="123", name="", phone="1", region_code="441699"),
        )
    assert {e["field"] for e in caught.value.extra["errors"]} == {
        "id_number",
        "name",
        "phone",
        "region_code",
    }
    assert caught.value.detail == "Check these fields: id_number, name, region_code, phone"


def test_duplicate_id_number_is_a_409_whatever_its_spelling(session: Session) -> None:
    actor = clerk(session)
    number = new_id_number()
    first = service.register(session, actor, _input(id_number=number))
    with pytest.raises(ResidentExists) as caught:
        service.register(session, actor, _input(id_number=number.lower(), name="李四"))
    assert caught.value.code == "resident_exists"
    assert caught.value.status == 409
    assert caught.value.extra["resident_id"] == first.id
    assert caught.value.keep_changes  # the refused attempt stays in the audit trail
    entry = audit_entries(session)[-1]
    assert (entry.action, entry.outcome) == ("resident.register", "failed")
    assert number not in str(entry.detail)


def test_duplicate_in_another_county_does_not_say_where(session: Session) -> None:
    number = new_id_number()
    service.register(
        session,
        clerk(session, "441602"),
        _input(id_number=number, region_code="441602", town_code=None),
    )
    with pytest.raises(ResidentExists) as caught:
        service.register(session, clerk(session, "441625"), _input(id_number=number))
    assert "resident_id" not in caught.value.extra


def test_a_concurrent_duplicate_is_caught_by_the_unique_index(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clerks register the same person at once: both pass the blind-index check, the
    unique index refuses the second insert, and it becomes the same 409."""
    actor = clerk(session)
    number = new_id_number()
    service.register(session, actor, _input(id_number=number))
    before = resident_count(session)
    real = repository.registered_id_number
    calls: list[bytes] = []

    def not_seen_the_first_time(s: Session, index: bytes) -> tuple[int, str] | None:
        calls.append(index)
        return None if len(calls) == 1 else real(s, index)

    monkeypatch.setattr(repository, "registered_id_number", not_seen_the_first_time)
    with pytest.raises(ResidentExists):
        service.register(session, actor, _input(id_number=number))
    monkeypatch.undo()
    # The savepoint kept the transaction usable: the session still works and nothing leaked.
    assert resident_count(session) == before
    service.register(session, actor, _input())
    assert resident_count(session) == before + 1


def test_county_clerk_cannot_register_in_another_county(session: Session) -> None:
    actor = clerk(session, "441625")
    before = resident_count(session)
    with pytest.raises(RegionOutOfScope) as caught:
        service.register(session, actor, _input(region_code="441602", town_code=None))
    assert caught.value.status == 403
    assert caught.value.keep_changes
    assert caught.value.extra["errors"][0]["field"] == "region_code"
    assert resident_count(session) == before
    entry = audit_entries(session)[-1]
    assert (entry.action, entry.outcome, entry.region_code) == (
        "resident.register",
        "denied",
        "441602",
    )


def test_city_clerk_registers_in_any_county_of_the_city(session: Session) -> None:
    actor = clerk(session, "441600")
    resident = service.register(session, actor, _input(region_code="441602", town_code=None))
    assert resident.region_code == "441602"
    with pytest.raises(RegionOutOfScope):
        service.register(session, actor, _input(region_code="441302", town_code=None))


@pytest.mark.parametrize("role", [Role.DEPARTMENT_ADMIN, Role.PLATFORM_ADMIN, Role.AUDITOR])
def test_only_roles_with_write_permission_register(session: Session, role: Role) -> None:
    actor = clerk(session, "441600", role)
    with pytest.raises(PermissionDenied):
        service.register(session, actor, _input())
    entry = audit_entries(session)[-1]
    assert (entry.action, entry.outcome) == ("resident.register", "denied")


def test_audit_of_a_registration_holds_no_plaintext(session: Session) -> None:
    after = last_audit_id(session)
    data = _input()
    resident = service.register(session, clerk(session), data)
    text = audit_text(session, after)
    assert "resident.register" in text
    for secret in (resident.id_number, "13812345678", "张小三", "人民路"):
        assert secret not in text
    assert resident.id_number[:6] + "********" + resident.id_number[-4:] in text


def test_name_and_phone_normalisation() -> None:
    assert check_name(" 阿依古丽•买买提 ")[0] == "阿依古丽·买买提"
    assert check_name("𠈌小明")[1] == []  # extension B characters occur in real names
    assert check_name("John Smith")[1][0].reason == "characters"
    assert normalize_phone("0086 139-0000-1111") == "13900001111"
    assert normalize_phone("8613900001111") == "13900001111"
