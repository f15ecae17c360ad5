"""Resident registry API (/api/v1/residents): scoped to the caller's region, masked, audited.

Reads need ``residents:read``; registration, corrections, categories, death and emigration
need ``residents:write`` (counter clerks). A resident of another county answers 404 as if it
did not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from starlette.convertors import Convertor, register_url_convertor

from yikatong.deps import DbSession, StaffActor, region_label, verify_csrf_if_cookie_session
from yikatong.kit.params import PageNumber, PerPage, RowId
from yikatong.residents import service
from yikatong.residents.models import Category
from yikatong.residents.schemas import (
    CategoryEnd,
    CategoryGrant,
    CategoryOut,
    DepartureIn,
    RegionCountOut,
    ResidentChanges,
    ResidentCreate,
    ResidentOut,
    ResidentPage,
    RevealedField,
)
from yikatong.residents.validation import PHONE_PATTERN, ResidentInput

router = APIRouter(tags=["residents"])


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@router.get("", response_model=ResidentPage)
def search(
    session: DbSession,
    actor: StaffActor,
    id_number: Annotated[str | None, Query(max_length=32)] = None,
    name: Annotated[str | None, Query(max_length=64)] = None,
    region_code: Annotated[str | None, Query(pattern=r"^\d{2,9}$")] = None,
    category: Category | None = None,
    phone: Annotated[str | None, Query(pattern=PHONE_PATTERN, description="Exact")] = None,
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> ResidentPage:
    """Search residents in the caller's region by ID number or mobile (exact), name prefix,
    region and category."""
    query = service.ResidentQuery(
        id_number=id_number, name=name, region_code=region_code, category=category, phone=phone
    )
    result = service.search(session, actor, query, page=page, per_page=per_page)
    today = _today()
    return ResidentPage(
        items=[ResidentOut.masked(r, today) for r in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
    )


@router.get("/counts", response_model=list[RegionCountOut])
def counts(session: DbSession, actor: StaffActor) -> list[RegionCountOut]:
    """Resident counts per county in the caller's region."""
    return [
        RegionCountOut(
            region_code=c.region_code,
            region_name=region_label(c.region_code),
            residents=c.residents,
        )
        for c in service.counts_by_region(session, actor)
    ]


@router.get("/{resident_id}", response_model=ResidentOut)
def read(resident_id: RowId, session: DbSession, actor: StaffActor) -> ResidentOut:
    """One resident, masked."""
    return ResidentOut.masked(service.get(session, actor, resident_id), _today())


@router.post(
    "/{resident_id}/reveal",
    response_model=RevealedField,
    dependencies=[Depends(verify_csrf_if_cookie_session)],
)
def reveal(
    resident_id: RowId,
    field: Literal["id_number", "phone", "address"],
    session: DbSession,
    actor: StaffActor,
) -> RevealedField:
    """Unmask one sensitive field; needs the sensitive-read permission and is audited."""
    return RevealedField(field=field, value=service.reveal(session, actor, resident_id, field))


WRITE = [Depends(verify_csrf_if_cookie_session)]


@router.post("", response_model=ResidentOut, status_code=201, dependencies=WRITE)
def register(body: ResidentCreate, session: DbSession, actor: StaffActor) -> ResidentOut:
    """Register a resident in the caller's region; birth date and sex come from the ID number."""
    resident = service.register(
        session,
        actor,
        ResidentInput(
            id_number=body.id_number,
            name=body.name,
            region_code=body.region_code,
            phone=body.phone,
            address=body.address,
            town_code=body.town_code,
        ),
    )
    return ResidentOut.masked(resident, _today())


class _NotCounts(Convertor[str]):
    """A path segment other than the word ``counts``: ``PATCH /counts`` must answer 405 (that
    path has no PATCH) instead of being taken for a resident called "counts", while any other
    segment still reaches the endpoint, which checks the login before the id."""

    regex = "(?!counts$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("resident_ref", _NotCounts())


@router.patch("/{resident_id:resident_ref}", response_model=ResidentOut, dependencies=WRITE)
def update(
    resident_id: RowId, body: ResidentChanges, session: DbSession, actor: StaffActor
) -> ResidentOut:
    """Correct name, phone, address, county or town; only the fields sent change."""
    changes = body.model_dump(exclude_unset=True)
    resident = service.update(session, actor, resident_id, changes)
    return ResidentOut.masked(resident, _today())


@router.get("/{resident_id}/categories", response_model=list[CategoryOut])
def categories(resident_id: RowId, session: DbSession, actor: StaffActor) -> list[CategoryOut]:
    """Every category period of a resident (past, current and future), oldest first."""
    return [CategoryOut.of(p) for p in service.category_periods(session, actor, resident_id)]


@router.post(
    "/{resident_id}/categories", response_model=CategoryOut, status_code=201, dependencies=WRITE
)
def grant_category(
    resident_id: RowId, body: CategoryGrant, session: DbSession, actor: StaffActor
) -> CategoryOut:
    """Grant a category for a period; periods of one category may not overlap."""
    period = service.grant_category(
        session,
        actor,
        resident_id,
        body.category,
        body.valid_from,
        body.valid_to,
        body.source,
    )
    return CategoryOut.of(period)


@router.post(
    "/{resident_id}/categories/{category_id}/end",
    response_model=CategoryOut,
    dependencies=WRITE,
)
def end_category(
    resident_id: RowId,
    category_id: RowId,
    body: CategoryEnd,
    session: DbSession,
    actor: StaffActor,
) -> CategoryOut:
    """End a category period on the given day (its last day)."""
    period = service.end_category(session, actor, resident_id, category_id, body.valid_to)
    return CategoryOut.of(period)


@router.post("/{resident_id}/death", response_model=ResidentOut, dependencies=WRITE)
def register_death(
    resident_id: RowId, body: DepartureIn, session: DbSession, actor: StaffActor
) -> ResidentOut:
    """Register a death; the resident's card is cancelled in the same transaction."""
    resident = service.register_death(session, actor, resident_id, body.date, body.reference)
    return ResidentOut.masked(resident, _today())


@router.post("/{resident_id}/emigration", response_model=ResidentOut, dependencies=WRITE)
def register_emigration(
    resident_id: RowId, body: DepartureIn, session: DbSession, actor: StaffActor
) -> ResidentOut:
    """Register a move out of the city; the resident's card is cancelled likewise."""
    resident = service.register_emigration(session, actor, resident_id, body.date, body.reference)
    return ResidentOut.masked(resident, _today())
