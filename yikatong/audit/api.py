"""Audit trail API (/api/v1/audit)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from yikatong.audit import service
from yikatong.audit.repository import AuditFilters
from yikatong.audit.schemas import AuditEntryOut, AuditPage, ChainProblemOut, ChainReportOut
from yikatong.deps import DbSession, StaffActor, verify_csrf_if_cookie_session
from yikatong.kit.params import PageNumber, PerPage

router = APIRouter(tags=["audit"])


@router.get("", response_model=AuditPage)
def browse(
    session: DbSession,
    actor: StaffActor,
    actor_name: Annotated[str | None, Query(alias="actor", max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=32)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    outcome: Literal["success", "denied", "failed"] | None = None,
    since: Annotated[AwareDatetime | None, Query(description="ISO 8601 with time zone")] = None,
    until: Annotated[AwareDatetime | None, Query(description="ISO 8601 with time zone")] = None,
    page: PageNumber = 1,
    per_page: PerPage = 50,
) -> AuditPage:
    """Audit entries in the caller's region, newest first (auditors)."""
    filters = AuditFilters(
        actor=actor_name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    result = service.browse(session, actor, filters, page=page, per_page=per_page)
    return AuditPage(
        items=[AuditEntryOut.model_validate(e) for e in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
    )


@router.post(
    "/verify", response_model=ChainReportOut, dependencies=[Depends(verify_csrf_if_cookie_session)]
)
def verify(session: DbSession, actor: StaffActor) -> ChainReportOut:
    """Recompute the SM3 hash chain and report every edited, deleted or reordered entry."""
    report = service.verify_for(session, actor)
    return ChainReportOut(
        ok=report.ok,
        checked=report.checked,
        last_id=report.last_id,
        problems=[
            ChainProblemOut(entry_id=p.entry_id, kind=p.kind, message=p.message)
            for p in report.problems
        ],
    )
