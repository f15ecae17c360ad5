"""The registry: region scope enforced in the service, masking, audited reads, no plaintext."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.factories import make_resident, make_staff
from yikatong.audit.models import AuditEntry
from yikatong.errors import NotFound, PermissionDenied
from yikatong.kit.actor import Role
from yikatong.residents import service
from yikatong.residents.models import Category
from yikatong.residents.service import ResidentQuery


def _last_audit(session: Session) -> AuditEntry:
    entry = session.query(AuditEntry).order_by(AuditEntry.id.desc()).first()
    assert entry is not None
    return entry


def test_county_clerk_sees_only_their_county(session: Session) -> None:
    ours = make_resident(session, region_code="441625", name="李四")
    theirs = make_resident(session, region_code="441602", name="李五")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    page = service.search(session, clerk.actor(), ResidentQuery(name="李"))
    ids = {r.id for r in page.items}
    assert ours.id in ids
    assert theirs.id not in ids
    assert service.get(session, clerk.actor(), ours.id).id == ours.id
    with pytest.raises(NotFound) as caught:
        service.get(session, clerk.actor(), theirs.id)
    assert caught.value.keep_changes  # the refused read stays in the audit trail
    entry = _last_audit(session)
    assert (entry.action, entry.outcome, entry.object_id) == (
        "resident.read",
        "denied",
        str(theirs.id),
    )


def test_city_clerk_sees_every_county(session: Session) -> None:
    a = make_resident(session, region_code="441625", name="王一")
    b = make_resident(session, region_code="441602", name="王二")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441600")
    ids = {r.id for r in service.search(session, clerk.actor(), ResidentQuery(name="王")).items}
    assert {a.id, b.id} <= ids


def test_search_by_id_number_uses_the_blind_index(session: Session) -> None:
    resident = make_resident(session, name="赵六")
    clerk = make_staff(session)
    page = service.search(
        session, clerk.actor(), ResidentQuery(id_number=resident.id_number.lower())
    )
    assert [r.id for r in page.items] == [resident.id]
    entry = _last_audit(session)
    assert entry.action == "resident.search"
    masked = entry.detail["query"]["id_number"]
    assert "********" in masked
    assert resident.id_number not in str(entry.detail)


def test_reads_are_audited_and_reveal_needs_permission(session: Session) -> None:
    resident = make_resident(session)
    clerk = make_staff(session, Role.COUNTER_CLERK)
    dept = make_staff(session, Role.DEPARTMENT_ADMIN)
    service.get(session, dept.actor(), resident.id)
    assert _last_audit(session).action == "resident.read"
    with pytest.raises(PermissionDenied):
        service.reveal(session, dept.actor(), resident.id, "id_number")
    assert (_last_audit(session).action, _last_audit(session).outcome) == (
        "resident.reveal",
        "denied",
    )
    assert service.reveal(session, clerk.actor(), resident.id, "id_number") == resident.id_number
    entry = _last_audit(session)
    assert (entry.action, entry.detail) == ("resident.reveal", {"field": "id_number"})


def test_auditor_cannot_read_residents(session: Session) -> None:
    auditor = make_staff(session, Role.AUDITOR)
    with pytest.raises(PermissionDenied):
        service.search(session, auditor.actor(), ResidentQuery())


def test_categories_include_derived_elderly(session: Session) -> None:
    today = dt.date(2026, 11, 25)
    old = make_resident(session, birth_date=dt.date(1950, 1, 1), categories=(Category.VETERAN,))
    young = make_resident(session, birth_date=dt.date(2010, 1, 1), categories=(Category.STUDENT,))
    assert service.categories_on(old, today) == [Category.ELDERLY, Category.VETERAN]
    assert service.categories_on(young, today) == [Category.STUDENT]


def test_born_by_handles_leap_day() -> None:
    assert service.born_by(dt.date(2028, 2, 29), 60) == dt.date(1968, 2, 29)
    assert service.born_by(dt.date(2028, 2, 29), 61) == dt.date(1967, 2, 28)
    assert service.born_by(dt.date(2026, 11, 25), 65) == dt.date(1961, 11, 25)


def test_raw_database_holds_no_plaintext_identity(session: Session) -> None:
    residents = [make_resident(session, name=f"测{i}", phone=f"1390000{i:04d}") for i in range(5)]
    session.flush()
    rows = session.execute(text("SELECT * FROM residents")).all()
    dump = repr(rows)
    for r in residents:
        assert r.id_number not in dump
        assert r.id_number[6:14] + r.id_number[14:] not in dump
        assert r.phone is not None
        assert r.phone not in dump
        assert "文明路" not in dump


def test_search_wildcards_are_literal(session: Session) -> None:
    make_resident(session, region_code="441625", name="钟一")
    make_resident(session, region_code="441625", name="钟二")
    clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625")
    for pattern in ("%", "_", "钟%", "%一"):
        page = service.search(session, clerk.actor(), ResidentQuery(name=pattern))
        assert page.total == 0, pattern
    assert service.search(session, clerk.actor(), ResidentQuery(name="钟")).total == 2
