"""The resident registry's rules: reads and writes inside the actor's region, all audited.

Reads mask by default and audit each access to personal data (and, separately, each
unmasking). Writes — registration, corrections, categories, death and emigration — need
``residents:write``, stay inside the actor's region (another county's resident answers 404,
as for reads), audit the names of the fields they change but never the values, and only
``flush()``: the request or job owns the transaction. Death and emigration emit
``resident.deceased`` / ``resident.emigrated`` so the card domain cancels the card in the
same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from yikatong.audit import service as audit
from yikatong.crypto.fields import blind_index
from yikatong.crypto.masking import mask_id_number, mask_name, mask_phone, mask_text
from yikatong.errors import N_, InvalidInput, NotFound
from yikatong.kit import events
from yikatong.kit.actor import Actor, Permission
from yikatong.kit.pagination import Page, clamp
from yikatong.reference import regions
from yikatong.reference.idnumber import parse_id_number
from yikatong.residents import repository
from yikatong.residents.errors import (
    CategoryAlreadyEnded,
    CategoryOverlap,
    DerivedCategory,
    FieldProblem,
    InvalidResident,
    RegionOutOfScope,
    ResidentExists,
    ResidentNotActive,
)
from yikatong.residents.models import (
    Category,
    Resident,
    ResidentCategory,
    ResidentStatus,
)
from yikatong.residents.validation import (
    ADDRESS_MAX,
    REFERENCE_MAX,
    SOURCE_MAX,
    ResidentInput,
    check_county,
    check_date_not_future,
    check_name,
    check_phone,
    check_registration,
    check_text,
    check_town,
    china_today,
    normalize_phone,
)

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
    phone: str | None = None

    def masked(self) -> dict[str, str]:
        """The query as it may appear in the audit trail."""
        out: dict[str, str] = {}
        if self.id_number:
            out["id_number"] = mask_id_number(self.id_number)
        if self.phone:
            out["phone"] = mask_phone(normalize_phone(self.phone))
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
    if query.phone:
        # Exact match through the phone's blind index: the column itself is ciphertext.
        phone = normalize_phone(query.phone)
        conds.append(Resident.phone_index == blind_index("residents.phone", phone))
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


def category_periods(session: Session, actor: Actor, resident_id: int) -> list[ResidentCategory]:
    """Every category period of one resident, oldest first (an audited read)."""
    resident = get(session, actor, resident_id)
    return sorted(resident.categories, key=lambda c: (c.valid_from, c.category, c.id))


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


# --- writes -----------------------------------------------------------------------------------

EDITABLE_FIELDS = ("name", "phone", "address", "region_code", "town_code")


def require_write(session: Session, actor: Actor, action: str) -> None:
    """Refuse (audited) a member of staff who may not change the registry, e.g. before
    showing a form they could not submit."""
    audit.require(session, actor, Permission.RESIDENTS_WRITE, action)


def _deny_region(session: Session, actor: Actor, action: str, region_code: str) -> NoReturn:
    """Audit and refuse a write whose household region lies outside the actor's area."""
    audit.record(
        session,
        actor,
        action,
        object_type="resident",
        region_code=region_code[:12],
        outcome=audit.Outcome.DENIED,
        detail={"reason": "region outside the actor's scope"},
    )
    raise RegionOutOfScope(
        N_("Region {code} is outside the area you are responsible for"),
        params={"code": region_code[:12]},
    )


def _load_for_change(session: Session, actor: Actor, resident_id: int, action: str) -> Resident:
    """The resident, locked for the change, if inside the actor's region (else 404, audited)."""
    resident = repository.lock_resident(session, resident_id)
    if resident is None:
        raise NotFound(f"No resident {resident_id}")
    if not actor.covers(resident.region_code):
        audit.record(
            session,
            actor,
            action,
            object_type="resident",
            object_id=resident_id,
            region_code=resident.region_code,
            outcome=audit.Outcome.DENIED,
            detail={"reason": "outside region"},
        )
        # As for reads: another county's registry is not even confirmed to exist.
        raise NotFound(f"No resident {resident_id}", keep_changes=True)
    return resident


def _refuse_duplicate(session: Session, actor: Actor, id_number: str, region_code: str) -> NoReturn:
    """Audit the attempt (repeated tries can be probing) and raise ``resident_exists``."""
    existing = repository.registered_id_number(
        session, blind_index("residents.id_number", id_number)
    )
    audit.record(
        session,
        actor,
        "resident.register",
        object_type="resident",
        region_code=region_code,
        outcome=audit.Outcome.FAILED,
        detail={"reason": "already registered", "id_number": mask_id_number(id_number)},
    )
    # Only someone who may see the existing record learns which one it is.
    extra = {"resident_id": existing[0]} if existing and actor.covers(existing[1]) else {}
    raise ResidentExists(
        N_("A resident with this ID number is already registered"), keep_changes=True, **extra
    )


def register(session: Session, actor: Actor, data: ResidentInput) -> Resident:
    """Register a resident (居民登记). The birth date and sex are read from the ID number."""
    audit.require(session, actor, Permission.RESIDENTS_WRITE, "resident.register")
    new, problems = check_registration(data, actor, china_today())
    if any(p.reason == "out_of_scope" for p in problems):
        _deny_region(session, actor, "resident.register", data.region_code.strip())
    if problems or new is None:
        raise InvalidResident(problems)
    index = blind_index("residents.id_number", new.id_number)
    if repository.registered_id_number(session, index) is not None:
        _refuse_duplicate(session, actor, new.id_number, new.region_code)
    try:
        # A savepoint: if a concurrent request registered the same number between the check
        # and the insert, the unique index refuses it and the transaction stays usable.
        with session.begin_nested():
            resident = repository.add_resident(session, new)
    except IntegrityError:
        _refuse_duplicate(session, actor, new.id_number, new.region_code)
    audit.record(
        session,
        actor,
        "resident.register",
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
        detail={
            "id_number": mask_id_number(resident.id_number),
            "fields": [f for f in ("phone", "address", "town_code") if getattr(resident, f)],
        },
    )
    return resident


def _checked_changes(
    session: Session, actor: Actor, resident: Resident, changes: Mapping[str, str | None]
) -> tuple[dict[str, str | None], list[FieldProblem]]:
    """The clean new values of ``changes`` and the rules they break."""
    wanted: dict[str, str | None] = {}
    problems: list[FieldProblem] = []
    if "name" in changes:
        wanted["name"], found = check_name(changes["name"])
        problems += found
    if "phone" in changes:
        wanted["phone"], found = check_phone(changes["phone"])
        problems += found
    if "address" in changes:
        wanted["address"], found = check_text(changes["address"], "address", max_length=ADDRESS_MAX)
        problems += found
    county: str | None = resident.region_code
    if "region_code" in changes:
        county, found = check_county(changes["region_code"], actor)
        if any(p.reason == "out_of_scope" for p in found):
            _deny_region(session, actor, "resident.update", str(changes["region_code"]))
        wanted["region_code"] = county
        problems += found
    if "town_code" in changes:
        wanted["town_code"], found = check_town(changes["town_code"], county)
        problems += found
    elif county != resident.region_code and resident.town_code is not None:
        town = regions.find_region(resident.town_code)
        if town is None or town.parent != county:
            wanted["town_code"] = None
    return wanted, problems


def update(
    session: Session, actor: Actor, resident_id: int, changes: Mapping[str, str | None]
) -> Resident:
    """Correct a resident's name, phone, address or household region/town (信息变更).

    ``changes`` holds only the fields to change; ``None`` clears the phone, address or town.
    A move between counties stays inside the actor's region; a town that is not in the new
    county is cleared. The audit entry lists the changed field names, never their values.
    """
    audit.require(session, actor, Permission.RESIDENTS_WRITE, "resident.update")
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise InvalidResident(
            [
                FieldProblem(f, "not_editable", N_("This field cannot be changed here"))
                for f in unknown
            ]
        )
    resident = _load_for_change(session, actor, resident_id, "resident.update")
    wanted, problems = _checked_changes(session, actor, resident, changes)
    if problems:
        raise InvalidResident(problems)
    changed = sorted(f for f, value in wanted.items() if getattr(resident, f) != value)
    if not changed:
        return resident
    for name in changed:
        setattr(resident, name, wanted[name])
    if "phone" in changed:
        phone = resident.phone
        resident.phone_index = blind_index("residents.phone", phone) if phone else None
    session.flush()
    audit.record(
        session,
        actor,
        "resident.update",
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
        detail={"fields": changed},
    )
    return resident


def _overlaps(
    start: dt.date, end: dt.date | None, other_start: dt.date, other_end: dt.date | None
) -> bool:
    """Whether two closed date periods (``None`` = open-ended) share at least one day."""
    return (end is None or other_start <= end) and (other_end is None or start <= other_end)


def _category(value: Category | str) -> Category:
    try:
        category = Category(value)
    except ValueError:
        raise InvalidResident(
            [
                FieldProblem(
                    "category",
                    "unknown_category",
                    N_("Unknown category {value}"),
                    {"value": str(value)[:32]},
                )
            ]
        ) from None
    if category is Category.ELDERLY:
        raise DerivedCategory("'elderly' follows from the birth date and is never stored")
    return category


def grant_category(
    session: Session,
    actor: Actor,
    resident_id: int,
    category: Category | str,
    valid_from: dt.date,
    valid_to: dt.date | None,
    source: str,
) -> ResidentCategory:
    """Record that a resident holds a category over a period (优待对象认定), e.g. a student
    until graduation; periods of the same category may not overlap."""
    audit.require(session, actor, Permission.RESIDENTS_WRITE, "resident.category.grant")
    chosen = _category(category)
    resident = _load_for_change(session, actor, resident_id, "resident.category.grant")
    if resident.status != ResidentStatus.ACTIVE.value:
        raise ResidentNotActive(
            N_("Categories are granted only to active residents"),
            resident_status=resident.status,
        )
    clean_source, problems = check_text(source, "source", max_length=SOURCE_MAX, required=True)
    if valid_from < resident.birth_date:
        problems.append(
            FieldProblem("valid_from", "before_birth", N_("Cannot be before the date of birth"))
        )
    if valid_to is not None and valid_to < valid_from:
        problems.append(
            FieldProblem("valid_to", "before_start", N_("Must not be before the start date"))
        )
    if problems or clean_source is None:
        raise InvalidResident(problems)
    for held in resident.categories:
        if held.category == chosen.value and _overlaps(
            valid_from, valid_to, held.valid_from, held.valid_to
        ):
            raise CategoryOverlap(chosen.value, held.valid_from, held.valid_to)
    period = ResidentCategory(
        category=chosen.value, valid_from=valid_from, valid_to=valid_to, source=clean_source
    )
    resident.categories.append(period)
    session.flush()
    audit.record(
        session,
        actor,
        "resident.category.grant",
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
        detail={
            "category_id": period.id,
            "category": chosen.value,
            "valid_from": valid_from.isoformat(),
            "valid_to": valid_to.isoformat() if valid_to else None,
        },
    )
    return period


def end_category(
    session: Session, actor: Actor, resident_id: int, category_id: int, valid_to: dt.date
) -> ResidentCategory:
    """End (or shorten) a category period on ``valid_to``, the last day it applies."""
    audit.require(session, actor, Permission.RESIDENTS_WRITE, "resident.category.end")
    resident = _load_for_change(session, actor, resident_id, "resident.category.end")
    period = next((c for c in resident.categories if c.id == category_id), None)
    if period is None:
        raise NotFound(f"No category {category_id} for resident {resident_id}")
    if period.valid_to is not None and period.valid_to <= valid_to:
        raise CategoryAlreadyEnded(
            N_("This period already ends on {date}"), params={"date": period.valid_to.isoformat()}
        )
    if valid_to < period.valid_from:
        raise InvalidResident(
            [FieldProblem("valid_to", "before_start", N_("Must not be before the start date"))]
        )
    period.valid_to = valid_to
    session.flush()
    audit.record(
        session,
        actor,
        "resident.category.end",
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
        detail={
            "category_id": period.id,
            "category": period.category,
            "valid_to": valid_to.isoformat(),
        },
    )
    return period


# What each departure changes, audits and announces.
_DEPARTURES = {
    ResidentStatus.DECEASED: ("resident.death", "resident.deceased"),
    ResidentStatus.EMIGRATED: ("resident.emigration", "resident.emigrated"),
}


def _check_departure(resident: Resident, day: dt.date, reference: str) -> str:
    """The cleaned reference, or the error that refuses the departure."""
    if resident.status != ResidentStatus.ACTIVE.value:
        raise ResidentNotActive(
            N_("The resident is already registered as {status}"),
            params={"status": resident.status},
            resident_status=resident.status,
        )
    clean, problems = check_text(reference, "reference", max_length=REFERENCE_MAX, required=True)
    problems += check_date_not_future(day, china_today())
    if day < resident.birth_date:
        problems.append(
            FieldProblem("date", "before_birth", N_("Cannot be before the date of birth"))
        )
    if problems or clean is None:
        raise InvalidResident(problems)
    return clean


def preview_departure(
    session: Session,
    actor: Actor,
    resident_id: int,
    status: ResidentStatus,
    day: dt.date,
    reference: str,
) -> Resident:
    """Every check of :func:`register_death` / :func:`register_emigration` without the change,
    for the confirmation step; the resident shown is an audited read."""
    action, _event = _DEPARTURES[status]
    audit.require(session, actor, Permission.RESIDENTS_WRITE, action)
    resident = get(session, actor, resident_id)
    _check_departure(resident, day, reference)
    return resident


def _register_departure(
    session: Session,
    actor: Actor,
    resident_id: int,
    status: ResidentStatus,
    day: dt.date,
    reference: str,
) -> Resident:
    action, event = _DEPARTURES[status]
    audit.require(session, actor, Permission.RESIDENTS_WRITE, action)
    resident = _load_for_change(session, actor, resident_id, action)
    clean = _check_departure(resident, day, reference)
    resident.status = status.value
    resident.status_date = day
    session.flush()
    audit.record(
        session,
        actor,
        action,
        object_type="resident",
        object_id=resident.id,
        region_code=resident.region_code,
        # The reference cites the document (death certificate, household deregistration);
        # any ID or phone number typed into it is masked.
        detail={"date": day.isoformat(), "reference": mask_text(clean)},
    )
    # Subscribers (the card domain) run now, in this transaction: all or nothing.
    events.emit(
        session,
        event,
        actor,
        resident_id=resident.id,
        region_code=resident.region_code,
        date=day,
    )
    return resident


def register_death(
    session: Session, actor: Actor, resident_id: int, date: dt.date, reference: str
) -> Resident:
    """Register a death (死亡登记): status ``deceased`` from ``date``; the card is cancelled by
    the ``resident.deceased`` subscribers."""
    return _register_departure(
        session, actor, resident_id, ResidentStatus.DECEASED, date, reference
    )


def register_emigration(
    session: Session, actor: Actor, resident_id: int, date: dt.date, reference: str
) -> Resident:
    """Register a move of the household registration out of the city (户籍迁出): status
    ``emigrated``; the card is cancelled by the ``resident.emigrated`` subscribers."""
    return _register_departure(
        session, actor, resident_id, ResidentStatus.EMIGRATED, date, reference
    )


# --- export -----------------------------------------------------------------------------------

EXPORT_BATCH = 5_000


@dataclass(frozen=True)
class Export:
    """An audited export: how many rows, and the residents in id order (streamed)."""

    total: int
    full: bool
    residents: Iterator[Resident]


def export(
    session: Session,
    actor: Actor,
    *,
    status: ResidentStatus | None = None,
    region_code: str | None = None,
    full: bool = False,
) -> Export:
    """Residents of a region for a file (数据导出); masked unless ``full``, which needs the
    sensitive-read permission. Audited once, with the selection and the row count."""
    audit.require(session, actor, Permission.RESIDENTS_READ, "resident.export")
    if full:
        audit.require(session, actor, Permission.RESIDENTS_READ_SENSITIVE, "resident.export")
    scope = actor.scope
    if region_code:
        if regions.find_region(region_code) is None:
            raise InvalidInput(f"Unknown region code {region_code}", field="region")
        if not actor.covers(region_code):
            _deny_region(session, actor, "resident.export", region_code)
        scope = regions.scope_prefix(region_code)
    total = repository.count_residents(session, scope=scope, status=status)
    audit.record(
        session,
        actor,
        "resident.export",
        object_type="resident",
        region_code=region_code or actor.region_code,
        detail={
            "status": status.value if status else "all",
            "scope": scope,
            "rows": total,
            "full": full,
        },
    )

    def stream() -> Iterator[Resident]:
        after = 0
        while True:
            batch = repository.residents_after(
                session, scope=scope, status=status, after_id=after, limit=EXPORT_BATCH
            )
            if not batch:
                return
            yield from batch
            after = batch[-1].id
            # Keep memory flat over a whole city without touching the caller's other objects.
            for resident in batch:
                session.expunge(resident)

    return Export(total=total, full=full, residents=stream())
