"""Reading the resident registry, inside the actor's region, every read audited.

Creation, editing and death/emigration registration arrive with the cards issue; this module
already enforces what every later feature relies on: region scope, masking by default, and an
audit entry for each read of personal data (and a separate one for each unmasking).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from yikatong.audit import service as audit
from yikatong.crypto.fields import blind_index
from yikatong.crypto.masking import mask_id_number, mask_name
from yikatong.errors import InvalidInput, NotFound
from yikatong.kit.actor import Actor, Permission
from yikatong.kit.pagination import Page, clamp
from yikatong.reference.idnumber import parse_id_number
from yikatong.residents.models import Category, Resident, ResidentCategory

ELDERLY_AGE = 60
REVEALABLE_FIELDS = ("id_number", "phone", "address")


def age_on(birth_date: dt.date, day: dt.date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def born_by(day: dt.date, years: int) -> dt.date:
    """Latest birth date of someone aged at least ``years`` on ``day`` (29 Feb -> 28 Feb)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return dt.date(day.year - years, 2, 28)


def categories_on(resident: Resident, day: dt.date) -> list[Category]:
    """Categories in force on ``day``; 'elderly' follows from the birth date."""
    found = {
        Category(c.category)
        for c in resident.categories
        if c.valid_from <= day and (c.valid_to is None or c.valid_to >= day)
    }
    if age_on(resident.birth_date, day) >= ELDERLY_AGE:
        found.add(Category.ELDERLY)
    return sorted(found, key=list(Category).index)


@dataclass(frozen=True)
class ResidentQuery:
    id_number: str | None = None
    name: str | None = None
    region_code: str | None = None
    category: Category | None = None

    def masked(self) -> dict[str, str]:
        """The query as it may appear in the audit trail."""
        out: dict[str, str] = {}
        if self.id_number:
            out["id_number"] = mask_id_number(self.id_number)
        if self.name:
            out["name"] = mask_name(self.name)
        if self.region_code:
            out["region_code"] = self.region_code
        if self.category:
            out["category"] = self.category.value
        return out


def _conditions(actor: Actor, query: ResidentQuery) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [Resident.region_code.startswith(actor.scope)]
    if query.id_number:
        try:
            number = parse_id_number(query.id_number).number
        except InvalidInput:
            number = query.id_number.strip().upper()
        conds.append(Resident.id_number_index == blind_index("residents.id_number", number))
    if query.name:
        conds.append(Resident.name.startswith(query.name.strip(), autoescape=True))
    if query.region_code:
        conds.append(Resident.region_code.startswith(query.region_code, autoescape=True))
    if query.category and query.category is not Category.ELDERLY:
        today = dt.datetime.now(dt.UTC).date()
        conds.append(
            Resident.id.in_(
                select(ResidentCategory.resident_id).where(
                    ResidentCategory.category == query.category.value,
                    ResidentCategory.valid_from <= today,
                    (ResidentCategory.valid_to.is_(None)) | (ResidentCategory.valid_to >= today),
                )
            )
        )
    elif query.category is Category.ELDERLY:
        conds.append(Resident.birth_date <= born_by(dt.datetime.now(dt.UTC).date(), ELDERLY_AGE))
    return conds


def search(
    session: Session, actor: Actor, query: ResidentQuery, *, page: int = 1, per_page: int = 20
) -> Page[Resident]:
    """Residents matching ``query`` inside the actor's region (查询居民)."""
    audit.require(session, actor, Permission.RESIDENTS_READ, "resident.search")
    page, per_page = clamp(page, per_page)
    conds = _conditions(actor, query)
    total = session.scalar(select(func.count()).select_from(Resident).where(*conds)) or 0
    items = session.scalars(
        select(Resident)
        .options(selectinload(Resident.categories))
        .where(*conds)
        .order_by(Resident.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    audit.record(
        session,
        actor,
        "resident.search",
        object_type="resident",
        region_code=actor.region_code,
        detail={"query": query.masked(), "total": total},
    )
    return Page(items=items, total=total, page=page, per_page=per_page)


def get(session: Session, actor: Actor, resident_id: int) -> Resident:
    """One resident, if inside the actor's region; the read is audited."""
    audit.require(session, actor, Permission.RESIDENTS_READ, "resident.read")
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise NotFound(f"No resident {resident_id}")
    if not actor.covers(resident.region_code):
        audit.record(
            session,
            actor,
            "resident.read",
            object_type="resident",
            object_id=resident_id,
            region_code=resident.region_code,
            outcome=audit.Outcome.DENIED,
            detail={"reason": "outside region"},
        )
        # Same answer as a missing resident: another county's registry is not even confirmed.
        raise NotFound(f"No resident {resident_id}", keep_changes=True)
    audit.record(
        session,
        actor,
        "resident.read",
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
    )
    return resident


def reveal(session: Session, actor: Actor, resident_id: int, field: str) -> str | None:
    """The unmasked value of one sensitive field (查看明文), audited separately."""
    if field not in REVEALABLE_FIELDS:
        raise InvalidInput(f"Field {field} cannot be revealed", field="field")
    audit.require(session, actor, Permission.RESIDENTS_READ_SENSITIVE, "resident.reveal")
    resident = get(session, actor, resident_id)
    audit.record(
        session,
        actor,
        "resident.reveal",
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
        detail={"field": field},
    )
    value: str | None = getattr(resident, field)
    return value


@dataclass(frozen=True)
class RegionCount:
    region_code: str
    residents: int


def counts_by_region(session: Session, actor: Actor) -> list[RegionCount]:
    """Residents per county inside the actor's region (aggregate, not personal data)."""
    audit.require(session, actor, Permission.RESIDENTS_READ, "resident.count")
    rows = session.execute(
        select(Resident.region_code, func.count())
        .where(Resident.region_code.startswith(actor.scope))
        .group_by(Resident.region_code)
        .order_by(Resident.region_code)
    ).all()
    return [RegionCount(code, n) for code, n in rows]
