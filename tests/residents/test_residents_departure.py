"""Death and emigration: status and date, refused for non-active residents, and the events
the card domain listens to (resident.deceased / resident.emigrated)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_resident
from tests.residents.helpers import audit_entries, audit_text, clerk, last_audit_id
from yikatong.errors import NotFound, PermissionDenied
from yikatong.kit import events
from yikatong.kit.actor import Role
from yikatong.residents import service
from yikatong.residents.errors import InvalidResident, ResidentNotActive
from yikatong.residents.validation import china_today

D = dt.date


@pytest.fixture
def heard(monkeypatch: pytest.MonkeyPatch) -> list[events.Event]:
    """Events the registry emits, heard by a test handler next to the real subscribers."""
    received: list[events.Event] = []

    def handler(_session: Session, event: events.Event) -> None:
        received.append(event)

    for name in ("resident.deceased", "resident.emigrated"):
        monkeypatch.setitem(events._handlers, name, [*events.handlers_of(name), handler])
    return received


def test_death_sets_status_and_date_and_emits_the_event(
    session: Session, heard: list[events.Event]
) -> None:
    resident = make_resident(session, region_code="441625", phone="13800000009")
    actor = clerk(session)
    after = last_audit_id(session)
    service.register_death(
        session, actor, resident.id, D(2026, 1, 5), "死亡证明 441625198506151234"
    )
    assert (resident.status, resident.status_date) == ("deceased", D(2026, 1, 5))
    [event] = heard
    assert event.name == "resident.deceased"
    assert event.actor == actor
    assert event.payload == {
        "resident_id": resident.id,
        "region_code": "441625",
        "date": D(2026, 1, 5),
    }
    entry = next(e for e in audit_entries(session, after) if e.action == "resident.death")
    assert entry.detail["date"] == "2026-01-05"
    # An ID number typed into the reference is masked in the trail.
    assert entry.detail["reference"] == "死亡证明 441625********1234"
    assert resident.id_number not in audit_text(session, after)


def test_a_second_death_registration_is_refused_and_emits_nothing(
    session: Session, heard: list[events.Event]
) -> None:
    resident = make_resident(session, region_code="441625")
    actor = clerk(session)
    service.register_death(session, actor, resident.id, D(2026, 1, 5), "死证001")
    with pytest.raises(ResidentNotActive) as caught:
        service.register_death(session, actor, resident.id, D(2026, 1, 6), "死证002")
    assert (caught.value.code, caught.value.status) == ("resident_not_active", 409)
    with pytest.raises(ResidentNotActive):
        service.register_emigration(session, actor, resident.id, D(2026, 1, 6), "迁出001")
    assert len(heard) == 1
    assert resident.status_date == D(2026, 1, 5)


def test_emigration_emits_its_own_event(session: Session, heard: list[events.Event]) -> None:
    resident = make_resident(session, region_code="441625")
    service.register_emigration(session, clerk(session), resident.id, D(2026, 2, 1), "迁出001")
    assert resident.status == "emigrated"
    assert [e.name for e in heard] == ["resident.emigrated"]
    assert audit_entries(session)[-1].action == "resident.emigration"


@pytest.mark.parametrize(
    ("day", "reference", "field"),
    [
        (china_today() + dt.timedelta(days=1), "死证001", "date"),
        (D(1985, 6, 14), "死证001", "date"),  # the day before birth
        (D(2026, 1, 5), "", "reference"),
        (D(2026, 1, 5), "x" * 65, "reference"),
        (D(2026, 1, 5), "死证\x00", "reference"),
    ],
)
def test_invalid_departures_name_their_field_and_change_nothing(
    session: Session, heard: list[events.Event], day: D, reference: str, field: str
) -> None:
    resident = make_resident(session, region_code="441625", birth_date=D(1985, 6, 15))
    with pytest.raises(InvalidResident) as caught:
        service.register_death(session, clerk(session), resident.id, day, reference)
    assert [e["field"] for e in caught.value.extra["errors"]] == [field]
    assert (resident.status, resident.status_date) == ("active", None)
    assert heard == []


def test_departures_are_scoped_and_need_write_permission(
    session: Session, heard: list[events.Event]
) -> None:
    theirs = make_resident(session, region_code="441602")
    with pytest.raises(NotFound):
        service.register_death(session, clerk(session, "441625"), theirs.id, D(2026, 1, 5), "x")
    with pytest.raises(PermissionDenied):
        service.register_death(
            session, clerk(session, "441600", Role.DEPARTMENT_ADMIN), theirs.id, D(2026, 1, 5), "x"
        )
    assert theirs.status == "active"
    assert heard == []


def test_a_failing_subscriber_undoes_the_registration(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subscribers run in the same transaction: if the card cannot be cancelled, the death is
    not registered either (the request rolls back as a whole)."""
    resident = make_resident(session, region_code="441625")

    def broken(_session: Session, _event: events.Event) -> None:
        raise RuntimeError("card service down")

    monkeypatch.setitem(events._handlers, "resident.deceased", [broken])
    savepoint = session.begin_nested()
    with pytest.raises(RuntimeError):
        service.register_death(session, clerk(session), resident.id, D(2026, 1, 5), "x")
    savepoint.rollback()
    session.refresh(resident)
    assert resident.status == "active"


def test_preview_checks_everything_and_changes_nothing(
    session: Session, heard: list[events.Event]
) -> None:
    resident = make_resident(session, region_code="441625")
    actor = clerk(session)
    shown = service.preview_departure(
        session, actor, resident.id, service.ResidentStatus.DECEASED, D(2026, 1, 5), "x"
    )
    assert shown.id == resident.id
    assert resident.status == "active"
    assert heard == []
    with pytest.raises(InvalidResident):
        service.preview_departure(
            session, actor, resident.id, service.ResidentStatus.DECEASED, D(2026, 1, 5), ""
        )
