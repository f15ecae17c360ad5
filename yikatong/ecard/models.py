"""The electronic social security card (电子社保卡) and the store of used QR code nonces."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from yikatong.db import Base, BigIntPK, utcnow


class ECardStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # its card is lost; back to active when the loss is withdrawn
    REVOKED = "revoked"  # its card is dead (replaced, renewed, cancelled) or the holder gave it up


class ECardLevel(enum.IntEnum):
    IDENTITY = 1  # 一级：身份凭证、信息查询
    PAYMENT = 2  # 二级：支付结算（需金融账户已激活）


LIVE_ECARD_STATUSES = (ECardStatus.ACTIVE, ECardStatus.SUSPENDED)
_LIVE_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in LIVE_ECARD_STATUSES))


class ECard(Base):
    """One e-card per physical card (签发, one to one), with its own six-digit password."""

    __tablename__ = "ecards"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    level: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    # argon2id of the six-digit password; never the digits themselves.
    password_hash: Mapped[str] = mapped_column(String(128))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    # "card:<state>" when the card's state suspended it, so only the card can lift it.
    suspended_reason: Mapped[str | None] = mapped_column(String(32))
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    # The e-card of the card this one's card replaced, when it was re-bound automatically.
    previous_ecard_id: Mapped[int | None] = mapped_column(ForeignKey("ecards.id"))
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # At most one e-card in use per resident, whatever happens to their cards.
        Index(
            "uq_ecards_one_live_per_resident",
            "resident_id",
            unique=True,
            sqlite_where=text(_LIVE_SQL),
            postgresql_where=text(_LIVE_SQL),
        ),
    )


class QrNonce(Base):
    """A QR code nonce accepted online, kept until the code could no longer verify anyway."""

    __tablename__ = "ecard_qr_nonces"

    nonce: Mapped[bytes] = mapped_column(LargeBinary(12), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
