"""The resident registry (居民信息): one row per person, sensitive fields SM4-encrypted."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Date, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from yikatong.crypto.fields import EncryptedString
from yikatong.db import Base, BigIntPK, utcnow


class Category(enum.StrEnum):
    """Resident categories that drive services (优待对象)."""

    ELDERLY = "elderly"  # derived from the birth date (60+), never stored
    STUDENT = "student"
    DISABLED = "disabled"
    VETERAN = "veteran"
    LOW_INCOME = "low_income"
    MIGRANT_WORKER = "migrant_worker"


STORED_CATEGORIES = tuple(c for c in Category if c is not Category.ELDERLY)


class ResidentStatus(enum.StrEnum):
    ACTIVE = "active"
    DECEASED = "deceased"
    EMIGRATED = "emigrated"


class Resident(Base):
    """A resident. The ID number, phone and address are stored encrypted; the ID number and
    phone have blind indexes (SM3-HMAC) for exact lookup without decrypting."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    id_number: Mapped[str] = mapped_column(EncryptedString("residents.id_number"))
    id_number_index: Mapped[bytes] = mapped_column(LargeBinary(16), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    sex: Mapped[str] = mapped_column(String(8))
    # Kept in clear (as on the card face) because age rules and statistics query it.
    birth_date: Mapped[dt.date] = mapped_column(Date)
    # Household registration (户籍) county code, GB/T 2260; scopes what staff may see.
    region_code: Mapped[str] = mapped_column(String(6))
    town_code: Mapped[str | None] = mapped_column(String(9))
    phone: Mapped[str | None] = mapped_column(EncryptedString("residents.phone"))
    phone_index: Mapped[bytes | None] = mapped_column(LargeBinary(16), index=True)
    address: Mapped[str | None] = mapped_column(EncryptedString("residents.address"))
    status: Mapped[str] = mapped_column(String(16), default=ResidentStatus.ACTIVE.value)
    # Date of death or emigration, as registered (status other than active).
    status_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    categories: Mapped[list[ResidentCategory]] = relationship(
        back_populates="resident", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_residents_region_birth", "region_code", "birth_date"),
        Index("ix_residents_name", "name"),
    )


class ResidentCategory(Base):
    """A category held by a resident over a period (e.g. student until graduation)."""

    __tablename__ = "resident_categories"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(64))

    resident: Mapped[Resident] = relationship(back_populates="categories")

    __table_args__ = (
        UniqueConstraint("resident_id", "category", "valid_from"),
        Index("ix_resident_categories_category", "category"),
    )
