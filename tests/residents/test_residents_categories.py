"""Category periods: granted and ended with dates, never overlapping, 'elderly' never stored."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_resident
from tests.residents.helpers import audit_entries, clerk, last_audit_id
from yikatong.errors import NotFound
from yikatong.residents import service
from yikatong.residents.errors import (
    CategoryAlreadyEnded,
    CategoryOverlap,
    DerivedCategory,
    InvalidResident,
    ResidentNotActive,
)
from yikatong.residents.models import Category

D = dt.date


def test_grant_and_end_a_period(session: Session) -> None:
    resident = make_resident(session, region_code="441625", birth_date=D(2010, 3, 1))
    actor = clerk(session)
    period = service.grant_category(
        session, actor, resident.id, Category.STUDENT, D(2024, 9, 1), None, "东源县教育局"
    )
    assert service.categories_on(resident, D(2025, 1, 1)) == [Category.STUDENT]
    entry = audit_entries(session)[-1]
    assert (entry.action, entry.detail["category"], entry.detail["valid_to"]) == (
        "resident.category.grant",
        "student",
        None,
    )
    service.end_category(session, actor, resident.id, period.id, D(2025, 8, 31))
    assert period.valid_to == D(2025, 8, 31)
    assert service.categories_on(resident, D(2025, 9, 1)) == []
    assert audit_entries(session)[-1].action == "resident.category.end"
    # Shortening an end date is allowed; extending it is a new grant.
    service.end_category(session, actor, resident.id, period.id, D(2025, 6, 30))
    with pytest.raises(CategoryAlreadyEnded):
        service.end_category(session, actor, resident.id, period.id, D(2025, 7, 31))


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (D(2020, 1, 1), None),  # open-ended over an open-ended one
        (D(2023, 12, 31), D(2024, 1, 1)),  # touches the first day
        (D(2024, 6, 30), D(2024, 7, 1)),  # touches the last day
        (D(2024, 3, 1), D(2024, 4, 1)),  # inside
        (D(2019, 1, 1), D(2030, 1, 1)),  # around
    ],
)
def test_overlapping_periods_of_one_category_are_refused(
    session: Session, start: D, end: D | None
) -> None:
    resident = make_resident(session, region_code="441625")
    actor = clerk(session)
    service.grant_category(
        session, actor, resident.id, "low_income", D(2024, 1, 1), D(2024, 6, 30), "民政局"
    )
    after = last_audit_id(session)
    with pytest.raises(CategoryOverlap) as caught:
        service.grant_category(session, actor, resident.id, "low_income", start, end, "民政局")
    assert caught.value.status == 409
    assert caught.value.extra["errors"][0]["field"] == "valid_from"
    assert len(resident.categories) == 1
    assert audit_entries(session, after) == []


def test_adjacent_periods_and_other_categories_are_fine(session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    actor = clerk(session)
    service.grant_category(
        session, actor, resident.id, "low_income", D(2024, 1, 1), D(2024, 6, 30), "民政局"
    )
    service.grant_category(session, actor, resident.id, "low_income", D(2024, 7, 1), None, "民政局")
    service.grant_category(session, actor, resident.id, "disabled", D(2024, 1, 1), None, "残联")
    assert len(resident.categories) == 3
    with pytest.raises(CategoryOverlap):
        service.grant_category(session, actor, resident.id, "low_income", D(2030, 1, 1), None, "x")


def test_elderly_is_derived_and_never_stored(session: Session) -> None:
    resident = make_resident(session, region_code="441625", birth_date=D(1950, 1, 1))
    with pytest.raises(DerivedCategory) as caught:
        service.grant_category(
            session, clerk(session), resident.id, Category.ELDERLY, D(2024, 1, 1), None, "x"
        )
    assert caught.value.code == "category_derived"
    assert resident.categories == []


@pytest.mark.parametrize(
    ("category", "start", "end", "source", "field"),
    [
        ("astronaut", D(2024, 1, 1), None, "x", "category"),
        ("student", D(2024, 1, 1), D(2023, 12, 31), "x", "valid_to"),
        ("student", D(1984, 1, 1), None, "x", "valid_from"),  # before the birth date
        ("student", D(2024, 1, 1), None, "", "source"),
        ("student", D(2024, 1, 1), None, "x" * 65, "source"),
    ],
)
def test_invalid_grants_name_their_field(
    session: Session, category: str, start: D, end: D | None, source: str, field: str
) -> None:
    resident = make_resident(session, region_code="441625", birth_date=D(1985, 6, 15))
    with pytest.raises(InvalidResident) as caught:
        service.grant_category(session, clerk(session), resident.id, category, start, end, source)
    assert [e["field"] for e in caught.value.extra["errors"]] == [field]
    assert resident.categories == []


def test_end_before_the_start_is_refused(session: Session) -> None:
    resident = make_resident(session, region_code="441625")
    actor = clerk(session)
    period = service.grant_category(
        session, actor, resident.id, "veteran", D(2024, 1, 1), None, "x"
    )
    with pytest.raises(InvalidResident):
        service.end_category(session, actor, resident.id, period.id, D(2023, 1, 1))
    assert period.valid_to is None


def test_categories_are_scoped_and_need_an_active_resident(session: Session) -> None:
    theirs = make_resident(session, region_code="441602")
    ours = make_resident(session, region_code="441625")
    actor = clerk(session, "441625")
    with pytest.raises(NotFound):
        service.grant_category(session, actor, theirs.id, "veteran", D(2024, 1, 1), None, "x")
    other = service.grant_category(
        session, clerk(session, "441602"), theirs.id, "veteran", D(2024, 1, 1), None, "x"
    )
    with pytest.raises(NotFound):
        service.end_category(session, actor, theirs.id, other.id, D(2024, 2, 1))
    with pytest.raises(NotFound):  # a period of someone else, through one's own resident
        service.end_category(session, actor, ours.id, other.id, D(2024, 2, 1))
    service.register_death(session, actor, ours.id, D(2025, 1, 1), "死证001")
    with pytest.raises(ResidentNotActive):
        service.grant_category(session, actor, ours.id, "veteran", D(2024, 1, 1), None, "x")
