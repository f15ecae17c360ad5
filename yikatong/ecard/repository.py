"""Queries of the e-card domain: e-cards, the card facts a code needs, the nonce store."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yikatong.cards.models import Card
from yikatong.ecard.models import LIVE_ECARD_STATUSES, ECard, ECardStatus, QrNonce
from yikatong.residents.models import Resident


def ecard_of_card(session: Session, card_id: int) -> ECard | None:
    """The e-card issued from ``card_id``, whatever its status."""
    return session.scalar(select(ECard).where(ECard.card_id == card_id))


def live_ecard_of(session: Session, resident_id: int, *, for_update: bool = False) -> ECard | None:
    """The resident's e-card in use (active or suspended); locked when ``for_update``."""
    query = select(ECard).where(
        ECard.resident_id == resident_id, ECard.status.in_(LIVE_ECARD_STATUSES)
    )
    if for_update:
        # Concurrent wrong passwords must each be counted, not overwrite one another.
        query = query.with_for_update()
    return session.scalar(query)


@dataclass(frozen=True)
class CodeContext:
    """What issuing a code needs about the e-card and its card, read in one statement."""

    ecard_id: int
    ecard_status: str
    ecard_level: int
    locked_until: dt.datetime | None
    suspended_reason: str | None
    card_id: int
    card_token: str
    card_state: str
    issuing_region: str
    region_code: str
    bank_activated: bool


# Built once and read as plain columns: code issuance is the hottest path of the portal.
_CODE_CONTEXT = (
    select(
        ECard.id,
        ECard.status,
        ECard.level,
        ECard.locked_until,
        ECard.suspended_reason,
        Card.id,
        Card.token,
        Card.state,
        Card.issuing_region,
        Card.region_code,
        Card.bank_activated_at.is_not(None),
    )
    .join(Card, Card.id == ECard.card_id)
    # "Not revoked" is "active or suspended", without an expanding IN rendered per execution.
    .where(
        ECard.resident_id == bindparam("resident_id"),
        ECard.status != ECardStatus.REVOKED.value,
    )
)


def code_context(session: Session, resident_id: int) -> CodeContext | None:
    """The resident's live e-card with its card's facts, or None."""
    # The session's connection, not Session.execute: a third of the cost for a Core statement.
    row = session.connection().execute(_CODE_CONTEXT, {"resident_id": resident_id}).one_or_none()
    return None if row is None else CodeContext(*row)


@dataclass(frozen=True)
class VerificationFacts:
    """What online verification learns about a token (never the ID number)."""

    card_id: int
    card_state: str
    region_code: str
    resident_name: str
    ecard_id: int | None
    ecard_status: str | None
    ecard_level: int | None


# Built once: this runs for every online verification (compare residents.repository).
_FACTS = (
    select(
        Card.id,
        Card.state,
        Card.region_code,
        Resident.name,
        ECard.id,
        ECard.status,
        ECard.level,
    )
    .join(Resident, Resident.id == Card.resident_id)
    .outerjoin(ECard, ECard.card_id == Card.id)
    .where(Card.token == bindparam("token"))
)


def verification_facts(session: Session, token: str) -> VerificationFacts | None:
    """The card, holder name and e-card behind a card token, or None for an unknown token."""
    row = session.connection().execute(_FACTS, {"token": token}).one_or_none()
    if row is None:
        return None
    return VerificationFacts(*row)


_NONCES = cast(Table, QrNonce.__table__)  # Core statements: plain rowcounts, no ORM bulk path


def consume_nonce(session: Session, nonce: bytes, keep_until: dt.datetime) -> bool:
    """Record ``nonce`` as used; False when it was recorded before (a replay).

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: atomic under concurrency (a second
    verifier of the same code waits for the first transaction, then inserts nothing) and it
    never aborts the surrounding transaction, so the refusal can still be audited.
    """
    table = _NONCES
    values = {"nonce": nonce, "expires_at": keep_until}
    dialect = session.get_bind().dialect.name
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - the platform runs on SQLite and PostgreSQL
        try:
            with session.begin_nested():
                session.execute(insert(table).values(values))
        except IntegrityError:
            return False
        return True
    return session.connection().execute(statement.returning(table.c.nonce)).first() is not None


def prune_nonces(session: Session, now: dt.datetime) -> int:
    """Forget nonces whose codes have expired; returns how many."""
    table = _NONCES
    statement = delete(table).where(table.c.expires_at < now)
    result = cast("CursorResult[Any]", session.connection().execute(statement))
    return result.rowcount
