"""Resident registry API (/api/v1/residents): scoped to the caller's region, masked, audited."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from yikatong.deps import DbSession, StaffActor, region_label, verify_csrf_if_cookie_session
from yikatong.kit.params import PageNumber, PerPage, RowId
from yikatong.residents import service
from yikatong.residents.models import Category
from yikatong.residents.schemas import RegionCountOut, ResidentOut, ResidentPage, RevealedField

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
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> ResidentPage:
    """Search residents in the caller's region by ID number (exact), name prefix, region."""
    query = service.ResidentQuery(
        id_number=id_number, name=name, region_code=region_code, category=category
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
