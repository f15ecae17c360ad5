"""Helpers shared by the registry tests: ID numbers, actors by role and region, audit."""

from __future__ import annotations

import datetime as dt
import itertools
import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import make_staff
from yikatong.audit.models import AuditEntry
from yikatong.kit.actor import Actor, Role
from yikatong.reference.idnumber import make_id_number
from yikatong.residents.models import Resident

_sequence = itertools.count(101)


def new_id_number(region: str = "441625", birth: dt.date = dt.date(1990, 1, 1)) -> str:
    """A valid ID number no other test uses (odd sequence: a man)."""
    return make_id_number(region, birth, next(_sequence) % 500 * 2 + 1)


def clerk(session: Session, region: str = "441625", role: Role = Role.COUNTER_CLERK) -> Actor:
    return make_staff(session, role, region_code=region).actor()


def resident_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Resident)) or 0


def audit_entries(session: Session, after: int = 0) -> list[AuditEntry]:
    return list(
        session.scalars(select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id))
    )


def last_audit_id(session: Session) -> int:
    return session.scalar(select(func.max(AuditEntry.id))) or 0


def audit_text(session: Session, after: int = 0) -> str:
    """Everything the audit entries since ``after`` say, as one string to search."""
    return "\n".join(
        json.dumps([e.action, e.object_id, e.region_code, e.outcome, e.detail], ensure_ascii=False)
        for e in audit_entries(session, after)
    )
