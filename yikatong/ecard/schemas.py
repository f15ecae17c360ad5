"""API shapes of the e-card: published keys, verification results, e-card status.

Nothing here carries an ID number: a verification answers with the card token and, where the
purpose needs it, a masked name.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from yikatong.crypto.sm2 import DEFAULT_SIGNER_ID
from yikatong.ecard import qr
from yikatong.ecard.models import ECard
from yikatong.ecard.qr import PublishedKey, Purpose
from yikatong.ecard.service import OnlineVerification

PASSWORD_PATTERN = r"^[0-9]{6}$"  # noqa: S105 - a pattern, not a password


class PublishedKeyOut(BaseModel):
    """One platform verification key for offline terminals."""

    key_id: int = Field(description="The key id a QR code carries (bytes 1-2)")
    algorithm: Literal["SM2"] = "SM2"
    public_key: str = Field(description="Uncompressed point 04 || X || Y, 130 hex digits")
    fingerprint: str = Field(description="SM3 of the 65-byte point, hex")
    valid_from: dt.datetime = Field(description="Codes signed by this key are valid from then")
    valid_until: dt.datetime | None = Field(
        description="Stop trusting the key at this time; null while it is in force"
    )
    state: Literal["pending", "active", "retired"]

    @classmethod
    def of(cls, key: PublishedKey) -> PublishedKeyOut:
        return cls(
            key_id=key.key_id,
            public_key=key.public_key.to_bytes().hex(),
            fingerprint=key.public_key.fingerprint(),
            valid_from=key.valid_from,
            valid_until=key.valid_until,
            state=key.state,
        )


class KeysOut(BaseModel):
    """Everything an offline terminal needs to verify e-card QR codes."""

    keys: list[PublishedKeyOut]
    code_prefix: str = Field(default=qr.PREFIX, description="Text prefix before the base45")
    code_version: int = Field(default=qr.VERSION, description="Binary format version (byte 0)")
    signing_context: str = Field(
        default=qr.SIGNING_CONTEXT.decode("ascii"),
        description="ASCII bytes signed before the 43 payload bytes",
    )
    signer_id: str = Field(
        default=DEFAULT_SIGNER_ID.decode("ascii"), description="SM2 signer ID entering Z_A"
    )
    max_lifetime_seconds: int = qr.MAX_LIFETIME
    clock_skew_seconds: int = qr.CLOCK_SKEW
    generated_at: dt.datetime


class VerifyIn(BaseModel):
    code: str = Field(min_length=1, max_length=512, description="The scanned QR text (YKT1:...)")
    purpose: Purpose = Field(description="What the code is being accepted for")


class VerificationOut(BaseModel):
    """An accepted code: the pseudonymous card token and only what the purpose needs."""

    token: str = Field(description="The card's pseudonymous token (32 hex digits)")
    purpose: Purpose
    key_id: int
    issued_at: dt.datetime
    expires_at: dt.datetime
    issuing_region: str
    ecard_level: int
    holder_name: str | None = Field(description="Masked name; null for payment codes")
    region_code: str | None = Field(description="The holder's county; null for payment codes")

    @classmethod
    def of(cls, result: OnlineVerification) -> VerificationOut:
        return cls(
            token=result.token,
            purpose=result.purpose,
            key_id=result.key_id,
            issued_at=result.issued_at,
            expires_at=result.expires_at,
            issuing_region=result.issuing_region,
            ecard_level=result.ecard_level,
            holder_name=result.holder_name,
            region_code=result.region_code,
        )


class ECardOut(BaseModel):
    """An e-card's state (no password material)."""

    id: int
    resident_id: int
    card_id: int
    level: int = Field(description="1 identity and queries, 2 payment")
    status: Literal["active", "suspended", "revoked"]
    suspended_reason: str | None
    issued_at: dt.datetime
    locked_until: dt.datetime | None = Field(description="Set while the password is locked")

    @classmethod
    def of(cls, ecard: ECard, now: dt.datetime) -> ECardOut:
        locked = ecard.locked_until if ecard.locked_until and ecard.locked_until > now else None
        return cls(
            id=ecard.id,
            resident_id=ecard.resident_id,
            card_id=ecard.card_id,
            level=ecard.level,
            status=ecard.status,
            suspended_reason=ecard.suspended_reason,
            issued_at=ecard.issued_at,
            locked_until=locked,
        )


class ECardIssueIn(BaseModel):
    password: str = Field(pattern=PASSWORD_PATTERN, description="The holder's six-digit password")
    level: Literal[1, 2] = Field(default=1, description="2 needs an activated bank account")
