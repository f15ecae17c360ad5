"""Card applications, cards, their event trails and the offline blacklist."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from yikatong.crypto.fields import EncryptedString
from yikatong.db import Base, BigIntPK, utcnow


class Channel(enum.StrEnum):
    """Where an application was made (R1.2)."""

    COUNTER = "counter"  # 窗口申领
    ONLINE = "online"  # 网上申领，邮寄
    INSTANT = "instant"  # 立等可取：网点即时制卡
    NEWBORN = "newborn"  # 出生一件事
    CROSS_PROVINCE = "cross_province"  # 跨省通办


class ApplicationReason(enum.StrEnum):
    FIRST = "first"  # 首次申领
    REPLACEMENT = "replacement"  # 补卡（挂失、损坏）
    RENEWAL = "renewal"  # 换卡（到期、信息变更、升级三代卡）


class ApplicationStatus(enum.StrEnum):
    """The progress trail a resident sees: submitted → checked → in production → ready or
    mailed → issued. Rejected and withdrawn end an application early."""

    SUBMITTED = "submitted"
    CHECKED = "checked"
    IN_PRODUCTION = "in_production"
    READY = "ready"
    MAILED = "mailed"
    ISSUED = "issued"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


OPEN_APPLICATION_STATUSES = (
    ApplicationStatus.SUBMITTED,
    ApplicationStatus.CHECKED,
    ApplicationStatus.IN_PRODUCTION,
    ApplicationStatus.READY,
    ApplicationStatus.MAILED,
)


class CardState(enum.StrEnum):
    """The lifecycle of one physical card (R1.3)."""

    IN_PRODUCTION = "in_production"  # 制卡中
    READY = "ready"  # 待领取 / 已邮寄
    ISSUED = "issued"  # 已发放（社保功能未启用）
    ACTIVE = "active"  # 社保功能已启用
    TEMPORARY_LOSS = "temporary_loss"  # 临时挂失
    FORMAL_LOSS = "formal_loss"  # 正式挂失
    REPLACED = "replaced"  # 已补卡（旧卡作废）
    RENEWED = "renewed"  # 已换卡（旧卡作废）
    CANCELLED = "cancelled"  # 已注销


# At most one of these per resident: enforced by a partial unique index, not only by code.
LIVE_STATES = (
    CardState.IN_PRODUCTION,
    CardState.READY,
    CardState.ISSUED,
    CardState.ACTIVE,
    CardState.TEMPORARY_LOSS,
)
_LIVE_SQL = "state IN ({})".format(", ".join(f"'{s.value}'" for s in LIVE_STATES))
_OPEN_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in OPEN_APPLICATION_STATUSES))


class CardApplication(Base):
    """An application for a card (申领), with its channel and progress."""

    __tablename__ = "card_applications"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(6))  # the applicant's county, for scope
    outlet: Mapped[str | None] = mapped_column(String(64))
    mailing_address: Mapped[str | None] = mapped_column(
        EncryptedString("card_applications.mailing_address")
    )
    # Who the courier calls on delivery, when not the resident's phone on record.
    recipient_phone: Mapped[str | None] = mapped_column(
        EncryptedString("card_applications.recipient_phone")
    )
    tracking_number: Mapped[str | None] = mapped_column(String(32))
    replaces_card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    # The card this application produced (applications point at cards, never the reverse).
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"), index=True)
    # 代办: who applied for the resident, with what authority.
    proxy_name: Mapped[str | None] = mapped_column(String(64))
    proxy_id_number: Mapped[str | None] = mapped_column(
        EncryptedString("card_applications.proxy_id_number")
    )
    proxy_relation: Mapped[str | None] = mapped_column(String(32))
    # 出生一件事: the birth registration the newborn's application rests on.
    birth_certificate_number: Mapped[str | None] = mapped_column(String(32))
    factory_batch: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # One open application per resident: a second is a duplicate, refused by the database.
        Index(
            "uq_card_applications_one_open",
            "resident_id",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
        Index("ix_card_applications_status", "status", "region_code"),
    )


class ApplicationEvent(Base):
    """One step of an application's progress trail."""

    __tablename__ = "card_application_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("card_applications.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    outlet: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Card(Base):
    """A third-generation social security card (第三代社会保障卡)."""

    __tablename__ = "cards"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(6))  # the holder's county, for scope
    card_number: Mapped[str] = mapped_column(String(9), unique=True)
    identification_code: Mapped[str] = mapped_column(String(32), unique=True)
    # Pseudonymous token shown to terminals (QR codes, blacklist); never the ID number.
    token: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    state_before_loss: Mapped[str | None] = mapped_column(String(16))
    temporary_loss_until: Mapped[dt.datetime | None]
    issuing_region: Mapped[str] = mapped_column(String(6))
    issue_date: Mapped[dt.date | None] = mapped_column(Date)
    expiry_date: Mapped[dt.date | None] = mapped_column(Date)
    bank_code: Mapped[str | None] = mapped_column(String(16))
    bank_account: Mapped[str | None] = mapped_column(EncryptedString("cards.bank_account"))
    bank_account_index: Mapped[bytes | None] = mapped_column(LargeBinary(16), index=True)
    social_security_activated_at: Mapped[dt.datetime | None]
    bank_activated_at: Mapped[dt.datetime | None]
    # "card-mk:v<version>": which issuer master key the card's SM4 keys are diversified from.
    key_ref: Mapped[str] = mapped_column(String(32))
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index(
            "uq_cards_one_live_per_resident",
            "resident_id",
            unique=True,
            sqlite_where=text(_LIVE_SQL),
            postgresql_where=text(_LIVE_SQL),
        ),
        Index("ix_cards_state", "state", "region_code"),
    )


class CardEvent(Base):
    """One lifecycle transition of a card: who, where, when, why."""

    __tablename__ = "card_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    operation: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    outlet: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CardCounter(Base):
    """Per-issuing-region serial for card numbers; locked while a number is drawn."""

    __tablename__ = "card_counters"

    region_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    last_serial: Mapped[int] = mapped_column(BigInteger, default=0)


class BlacklistChange(Base):
    """One change of the offline blacklist; ``version`` is contiguous, so a terminal asks for
    everything after the last version it holds."""

    __tablename__ = "blacklist_changes"

    version: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(8))  # "add" | "remove"
    reason: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BlacklistHead(Base):
    """The newest blacklist version; locked while a change is appended."""

    __tablename__ = "blacklist_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
