"""Queries over the audit trail."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from yikatong.audit.models import AuditEntry
from yikatong.kit.pagination import Page, clamp

__all__ = ["AuditFilters", "Page", "search_entries"]


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    action: str | None = None  # prefix: "resident." matches every resident action
    object_type: str | None = None
    object_id: str | None = None
    outcome: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (v.isoformat() if isinstance(v, dt.datetime) else v)
            for k, v in asdict(self).items()
            if v not in (None, "")
        }


def _conditions(filters: AuditFilters, scope: str) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if scope:
        # An auditor sees what happened in their region and what their region's staff did.
        conds.append(
            or_(AuditEntry.region_code.startswith(scope), AuditEntry.actor_region.startswith(scope))
        )
    if filters.actor:
        conds.append(AuditEntry.actor_name == filters.actor)
    if filters.action:
        conds.append(AuditEntry.action.startswith(filters.action, autoescape=True))
    if filters.object_type:
        conds.append(AuditEntry.object_type == filters.object_type)
    if filters.object_id:
        conds.append(AuditEntry.object_id == filters.object_id)
    if filters.outcome:
        conds.append(AuditEntry.outcome == filters.outcome)
    if filters.since:
        conds.append(AuditEntry.occurred_at >= filters.since)
    if filters.until:
        conds.append(AuditEntry.occurred_at < filters.until)
    return conds


def search_entries(
    session: Session, filters: AuditFilters, *, scope: str, page: int, per_page: int
) -> Page[AuditEntry]:
    page, per_page = clamp(page, per_page)
    conds = _conditions(filters, scope)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conds)) or 0
    items = session.scalars(
        select(AuditEntry)
        .where(*conds)
        .order_by(AuditEntry.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return Page(items=items, total=total, page=page, per_page=per_page)
