"""Correcting a resident: only the fields asked for, inside the clerk's region, audited by
field name only."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_resident
from tests.residents.helpers import audit_entries, audit_text, clerk, last_audit_id
from yikatong.errors import NotFound
from yikatong.residents import service
from yikatong.residents.errors import InvalidResident, RegionOutOfScope
from yikatong.residents.service import ResidentQuery


def test_update_changes_the_given_fields_and_audits_their_names(session: Session) -> None:
    resident = make_resident(session, region_code="441625", name="王小明", phone="13800000001")
    actor = clerk(session, "441625")
    after = last_audit_id(session)
    service.update(
        session,
        actor,
        resident.id,
        {"name": "王晓明", "phone": "139 0000 0002", "address": "东源县仙塘镇新风路8号"},
    )
    assert (resident.name, resident.phone) == ("王晓明", "13900000002")
    [entry] = audit_entries(session, after)
    assert (entry.action, entry.object_id) == ("resident.update", str(resident.id))
    assert entry.detail == {"fields": ["address", "name", "phone"]}
    text = audit_text(session, after)
    for value in ("王晓明", "13900000002", "13800000001", "新风路"):
        assert value not in text
    # The phone's blind index follows the new number.
    found = service.search(session, actor, ResidentQuery(phone="13900000002"))
    assert [r.id for r in found.items] == [resident.id]
    assert service.search(session, actor, ResidentQuery(phone="13800000001")).total == 0


def test_nothing_to_change_writes_no_audit_entry(session: Session) -> None:
    resident = make_resident(session, region_code="441625", name="王小明")
    actor = clerk(session, "441625")
    after = last_audit_id(session)
    service.update(session, actor, resident.id, {"name": "王小明", "region_code": "441625"})
    assert audit_entries(session, after) == []


def test_phone_and_address_can_be_cleared(session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    service.update(session, clerk(session), resident.id, {"phone": None, "address": ""})
    assert (resident.phone, resident.phone_index, resident.address) == (None, None, None)


def test_invalid_changes_name_their_fields_and_change_nothing(session: Session) -> None:
    resident = make_resident(session, region_code="441625", name="王小明", phone="13800000001")
    actor = clerk(session)
    after = last_audit_id(session)
    with pytest.raises(InvalidResident) as caught:
        service.update(
            session, actor, resident.id, {"name": "王1", "phone": "10086", "town_code": "441602001"}
        )
    assert {e["field"] for e in caught.value.extra["errors"]} == {"name", "phone", "town_code"}
    session.refresh(resident)
    assert (resident.name, resident.phone) == ("王小明", "13800000001")
    assert audit_entries(session, after) == []


def test_fields_outside_the_list_cannot_be_changed(session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    with pytest.raises(InvalidResident) as caught:
        service.update(session, clerk(session), resident.id, {"id_number": "x", "sex": "female"})
    assert [e["field"] for e in caught.value.extra["errors"]] == ["id_number", "sex"]


def test_moving_between_counties_clears_a_town_of_the_old_county(session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    actor = clerk(session, "441600")
    service.update(session, actor, resident.id, {"town_code": "441625100"})
    assert resident.town_code == "441625100"
    service.update(session, actor, resident.id, {"region_code": "441602"})
    assert (resident.region_code, resident.town_code) == ("441602", None)
    assert audit_entries(session)[-1].detail == {"fields": ["region_code", "town_code"]}


def test_county_clerk_cannot_move_a_resident_out_of_their_county(session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    actor = clerk(session, "441625")
    with pytest.raises(RegionOutOfScope):
        service.update(session, actor, resident.id, {"region_code": "441602"})
    assert audit_entries(session)[-1].outcome == "denied"
    session.refresh(resident)
    assert resident.region_code == "441625"


def test_another_countys_resident_is_not_found(session: Session) -> None:
    theirs = make_resident(session, region_code="441602", name="李五")
    actor = clerk(session, "441625")
    with pytest.raises(NotFound) as caught:
        service.update(session, actor, theirs.id, {"name": "李六"})
    assert caught.value.keep_changes
    entry = audit_entries(session)[-1]
    assert (entry.action, entry.outcome, entry.object_id) == (
        "resident.update",
        "denied",
        str(theirs.id),
    )
    session.refresh(theirs)
    assert theirs.name == "李五"
    with pytest.raises(NotFound):
        service.update(session, actor, 10**12, {"name": "李六"})
