"""Residents' own portal accounts and sessions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from yikatong.db import Base, BigIntPK, utcnow


class ResidentAccount(Base):
    """A resident's portal login (实名注册): opened by proving ID number, card number and the
    mobile number on record."""

    __tablename__ = "resident_accounts"

    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]


class ResidentSession(Base):
    """A portal session; only the SM3 hash of the cookie token is stored."""

    __tablename__ = "resident_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    # Set when the e-card password was given: payment-level codes until then.
    payment_verified_until: Mapped[dt.datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
