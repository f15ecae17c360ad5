"""API shapes of the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: dt.datetime
    actor_kind: str
    actor_name: str
    actor_role: str | None
    actor_region: str
    action: str
    object_type: str | None
    object_id: str | None
    region_code: str | None
    outcome: str
    ip: str | None
    request_id: str | None
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    page: int
    per_page: int


class ChainProblemOut(BaseModel):
    entry_id: int
    kind: str
    message: str


class ChainReportOut(BaseModel):
    ok: bool
    checked: int
    last_id: int
    problems: list[ChainProblemOut]
