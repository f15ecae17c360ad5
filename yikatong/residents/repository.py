"""Writing resident rows: one at a time (ORM) or in bulk (seeding, imports)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session, selectinload

from yikatong.crypto.fields import blind_index
from yikatong.db import utcnow
from yikatong.residents.models import Category, Resident, ResidentCategory, ResidentStatus


@dataclass(frozen=True)
class NewResident:
    id_number: str
    name: str
    sex: str
    birth_date: dt.date
    region_code: str
    town_code: str | None = None
    phone: str | None = None
    address: str | None = None
    categories: Sequence[tuple[Category, dt.date, dt.date | None]] = field(default_factory=tuple)
    source: str = "registry"


def add_resident(session: Session, new: NewResident) -> Resident:
    """Insert one resident with blind indexes set from the clear values."""
    resident = Resident(
        id_number=new.id_number,
        id_number_index=blind_index("residents.id_number", new.id_number),
        name=new.name,
        sex=new.sex,
        birth_date=new.birth_date,
        region_code=new.region_code,
        town_code=new.town_code,
        phone=new.phone,
        phone_index=blind_index("residents.phone", new.phone) if new.phone else None,
        address=new.address,
        status=ResidentStatus.ACTIVE.value,
        categories=[
            ResidentCategory(category=c.value, valid_from=start, valid_to=end, source=new.source)
            for c, start, end in new.categories
        ],
    )
    session.add(resident)
    session.flush()
    return resident


def bulk_add_residents(session: Session, new_rows: Iterable[NewResident]) -> int:
    """Insert many residents with two batched statements (far faster than the ORM unit of work)."""
    batch = list(new_rows)
    if not batch:
        return 0
    now = utcnow()
    indexes = [blind_index("residents.id_number", r.id_number) for r in batch]
    rows = [
        {
            "id_number": r.id_number,
            "id_number_index": index,
            "name": r.name,
            "sex": r.sex,
            "birth_date": r.birth_date,
            "region_code": r.region_code,
            "town_code": r.town_code,
            "phone": r.phone,
            "phone_index": blind_index("residents.phone", r.phone) if r.phone else None,
            "address": r.address,
            "status": ResidentStatus.ACTIVE.value,
            "created_at": now,
            "updated_at": now,
        }
        for r, index in zip(batch, indexes, strict=True)
    ]
    session.execute(insert(Resident), rows)
    with_categories = [(index, r) for index, r in zip(indexes, batch, strict=True) if r.categories]
    if not with_categories:
        return len(batch)
    # Plain executemany is the fast path on every driver; the new ids come back by blind index
    # (RETURNING with parameter order is quadratic in SQLAlchemy for large batches).
    found = session.execute(
        select(Resident.id_number_index, Resident.id).where(
            Resident.id_number_index.in_([index for index, _ in with_categories])
        )
    )
    # Not dict(found): a Result has .keys(), so dict() would treat it as a mapping.
    ids = {index: resident_id for index, resident_id in found}  # noqa: C416
    category_rows = [
        {
            "resident_id": ids[index],
            "category": c.value,
            "valid_from": start,
            "valid_to": end,
            "source": r.source,
        }
        for index, r in with_categories
        for c, start, end in r.categories
    ]
    session.execute(insert(ResidentCategory), category_rows)
    return len(batch)


@dataclass(frozen=True, slots=True)
class ResidentIdentity:
    """The few facts a verification needs (核验): who, where registered, whether alive."""

    id: int
    id_number: str
    name: str
    birth_date: dt.date
    region_code: str
    status: str


# Built once: the hot path of every verification pays neither statement construction nor
# cache-key generation, and loads no ORM entity.
_IDENTITY_BY_INDEX = select(
    Resident.__table__.c.id,
    Resident.__table__.c.id_number,
    Resident.__table__.c.name,
    Resident.__table__.c.birth_date,
    Resident.__table__.c.region_code,
    Resident.__table__.c.status,
).where(Resident.__table__.c.id_number_index == bindparam("index"))


def identity_by_id_number(session: Session, id_number: str) -> ResidentIdentity | None:
    """Exact lookup through the blind index: one index probe, one field decrypted."""
    row = session.execute(
        _IDENTITY_BY_INDEX, {"index": blind_index("residents.id_number", id_number)}
    ).one_or_none()
    return None if row is None else ResidentIdentity(*row)


def find_by_id_number(session: Session, id_number: str) -> Resident | None:
    """Exact lookup through the blind index: no decryption of other rows, one index probe."""
    return session.scalars(
        select(Resident).where(
            Resident.id_number_index == blind_index("residents.id_number", id_number)
        )
    ).one_or_none()


def exists_any(session: Session) -> bool:
    return session.scalar(select(Resident.id).limit(1)) is not None


def registered_id_number(session: Session, index: bytes) -> tuple[int, str] | None:
    """(id, county) of the resident whose ID number has blind index ``index``, if any."""
    row = session.execute(
        select(Resident.id, Resident.region_code).where(Resident.id_number_index == index)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def existing_id_number_indexes(session: Session, indexes: Sequence[bytes]) -> set[bytes]:
    """Which of ``indexes`` are already registered (one query per call; callers batch)."""
    if not indexes:
        return set()
    found = session.scalars(
        select(Resident.id_number_index).where(Resident.id_number_index.in_(indexes))
    )
    return set(found)


def lock_resident(session: Session, resident_id: int) -> Resident | None:
    """The resident row, locked until the transaction ends (PostgreSQL ``FOR UPDATE``; SQLite
    transactions already hold the write lock), so checks and changes cannot interleave."""
    return session.get(Resident, resident_id, with_for_update=True)


def residents_after(
    session: Session,
    *,
    scope: str,
    status: ResidentStatus | None,
    after_id: int,
    limit: int,
) -> list[Resident]:
    """Up to ``limit`` residents with an id above ``after_id``, in id order (keyset paging
    stays fast at any depth, unlike OFFSET)."""
    query = (
        select(Resident)
        .options(selectinload(Resident.categories))
        .where(Resident.id > after_id, Resident.region_code.startswith(scope, autoescape=True))
        .order_by(Resident.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(Resident.status == status.value)
    return list(session.scalars(query))


def count_residents(session: Session, *, scope: str, status: ResidentStatus | None) -> int:
    query = (
        select(func.count())
        .select_from(Resident)
        .where(Resident.region_code.startswith(scope, autoescape=True))
    )
    if status is not None:
        query = query.where(Resident.status == status.value)
    return session.scalar(query) or 0
