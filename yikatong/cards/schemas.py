"""API shapes of applications, cards and the blacklist (bank accounts masked)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from yikatong.cards.lifecycle import Operation, allowed_operations
from yikatong.cards.models import (
    ApplicationEvent,
    ApplicationReason,
    ApplicationStatus,
    Card,
    CardApplication,
    CardEvent,
    CardState,
    Channel,
)
from yikatong.crypto.masking import mask_bank_account, mask_id_number


class ProxyIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=15, max_length=32)
    relation: str = Field(min_length=1, max_length=32, description="e.g. 子女、配偶、监护人")


class ApplicationCreate(BaseModel):
    resident_id: int = Field(ge=1)
    channel: Channel
    reason: ApplicationReason = ApplicationReason.FIRST
    mailing_address: str | None = Field(default=None, max_length=200)
    outlet: str | None = Field(default=None, max_length=64)
    birth_certificate_number: str | None = Field(default=None, max_length=32)
    proxy: ProxyIn | None = None
    note: str | None = Field(default=None, max_length=500)


class ApplicationStep(BaseModel):
    to: ApplicationStatus
    tracking_number: str | None = Field(default=None, max_length=32)
    outlet: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=500)


class TrailStep(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: ApplicationStatus | None
    to_status: ApplicationStatus
    actor: str
    outlet: str | None
    note: str | None
    occurred_at: dt.datetime


class ApplicationOut(BaseModel):
    id: int
    resident_id: int
    channel: Channel
    reason: ApplicationReason
    status: ApplicationStatus
    outlet: str | None
    tracking_number: str | None
    card_id: int | None
    replaces_card_id: int | None
    proxy_name: str | None
    proxy_id_number: str | None = Field(description="Masked")
    proxy_relation: str | None
    created_at: dt.datetime
    trail: list[TrailStep]

    @classmethod
    def of(cls, application: CardApplication, trail: list[ApplicationEvent]) -> ApplicationOut:
        return cls(
            id=application.id,
            resident_id=application.resident_id,
            channel=Channel(application.channel),
            reason=ApplicationReason(application.reason),
            status=ApplicationStatus(application.status),
            outlet=application.outlet,
            tracking_number=application.tracking_number,
            card_id=application.card_id,
            replaces_card_id=application.replaces_card_id,
            proxy_name=application.proxy_name,
            proxy_id_number=mask_id_number(application.proxy_id_number)
            if application.proxy_id_number
            else None,
            proxy_relation=application.proxy_relation,
            created_at=application.created_at,
            trail=[TrailStep.model_validate(step) for step in trail],
        )


class CardEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    operation: str
    from_state: str | None
    to_state: str
    actor: str
    outlet: str | None
    reason: str | None
    occurred_at: dt.datetime


class CardOut(BaseModel):
    id: int
    resident_id: int
    card_number: str
    identification_code: str
    state: CardState
    allowed_operations: list[Operation]
    issue_date: dt.date | None
    expiry_date: dt.date | None
    bank_code: str | None
    bank_account: str | None = Field(description="Masked")
    social_security_activated: bool
    bank_activated: bool
    temporary_loss_until: dt.datetime | None
    events: list[CardEventOut]

    @classmethod
    def of(cls, card: Card, events: list[CardEvent]) -> CardOut:
        return cls(
            id=card.id,
            resident_id=card.resident_id,
            card_number=card.card_number,
            identification_code=card.identification_code,
            state=CardState(card.state),
            allowed_operations=allowed_operations(CardState(card.state)),
            issue_date=card.issue_date,
            expiry_date=card.expiry_date,
            bank_code=card.bank_code,
            bank_account=mask_bank_account(card.bank_account) if card.bank_account else None,
            social_security_activated=card.social_security_activated_at is not None,
            bank_activated=card.bank_activated_at is not None,
            temporary_loss_until=card.temporary_loss_until,
            events=[CardEventOut.model_validate(e) for e in events],
        )


class IssueIn(BaseModel):
    bank_code: str = Field(min_length=3, max_length=16)
    bank_account: str = Field(min_length=19, max_length=23, description="19 digits, Luhn")
    outlet: str | None = Field(default=None, max_length=64)
    proxy: ProxyIn | None = None


class OperationIn(BaseModel):
    operation: Operation
    reason: str | None = Field(default=None, max_length=500)
    outlet: str | None = Field(default=None, max_length=64)
    channel: Channel = Channel.COUNTER
    mailing_address: str | None = Field(default=None, max_length=200)


class OperationOut(BaseModel):
    card: CardOut
    new_application: ApplicationOut | None


class TransitionOut(BaseModel):
    state: CardState
    operation: Operation
    to: str = Field(description="Target state, or 'previous' (back to the state before loss)")


class BlacklistOut(BaseModel):
    since: int
    version: int = Field(description="Ask for ?since=<version> next time")
    added: list[str] = Field(description="Card tokens to refuse")
    removed: list[str] = Field(description="Card tokens to accept again")
    issued_at: str
    key_fingerprint: str = Field(description="SM3 of the platform public key (04||X||Y)")
    signature: str = Field(
        description="SM2 (DER, hex, default signer ID) over the lines YKT-BLACKLIST-1, since, "
        "version, issued_at, added (comma-joined), removed (comma-joined), joined by \\n"
    )
