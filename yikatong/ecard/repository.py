"""Queries of the e-card domain: e-cards, the card facts a code needs, the nonce store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
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

    token: str
    card_id: int
    card_state: str
    region_code: str
    resident_name: str
    ecard_id: int | None
    ecard_status: str | None
    ecard_level: int | None


# Built once: this runs for every batch of online verifications (compare residents.repository).
_FACTS = (
    select(
        Card.token,
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
    .where(Card.token.in_(bindparam("tokens", expanding=True)))
)


def verification_facts(session: Session, tokens: Collection[str]) -> dict[str, VerificationFacts]:
    """The card, holder name and e-card behind each known token, in one statement.

    A card has at most one e-card row (one per card, re-issued in place), so each token
    appears once; unknown tokens are simply absent.
    """
    if not tokens:
        return {}
    rows = session.connection().execute(_FACTS, {"tokens": list(tokens)})
    return {row[0]: VerificationFacts(*row) for row in rows}


_NONCES = cast(Table, QrNonce.__table__)  # Core statements: plain rowcounts, no ORM bulk path


def consume_nonces(session: Session, nonces: Sequence[tuple[bytes, dt.datetime]]) -> set[bytes]:
    """Record each ``(nonce, keep_until)`` as used; return the nonces that were new.

    One multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: atomic under concurrency (a
    second verifier of the same code waits for the first transaction, then inserts nothing)
    and it never aborts the surrounding transaction, so refusals can still be audited. The
    nonces must be distinct (the caller settles repeats inside one batch itself).
    """
    if not nonces:
        return set()
    values = [{"nonce": nonce, "expires_at": keep_until} for nonce, keep_until in nonces]
    rows = session.connection().execute(_claim_statement(session), values)
    return {bytes(nonce) for (nonce,) in rows}


def _claim_statement(session: Session) -> Executable:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING nonce``, built once per dialect.

    Executed with a list of rows, SQLAlchemy renders one multi-row statement per batch
    ("insertmanyvalues") from a single cached compilation.
    """
    dialect = session.get_bind().dialect.name
    statement = _CLAIMS.get(dialect)
    if statement is None:
        if dialect == "postgresql":
            statement = postgresql.insert(_NONCES).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(_NONCES).on_conflict_do_nothing()
        else:  # pragma: no cover - the platform runs on SQLite and PostgreSQL
            raise RuntimeError(f"the replay store runs on SQLite and PostgreSQL, not {dialect}")
        statement = _CLAIMS[dialect] = statement.returning(_NONCES.c.nonce)
    return statement


_CLAIMS: dict[str, Executable] = {}


def consume_nonce(session: Session, nonce: bytes, keep_until: dt.datetime) -> bool:
    """Record one nonce as used; False when it was recorded before (a replay)."""
    return nonce in consume_nonces(session, [(nonce, keep_until)])


def prune_nonces(session: Session, now: dt.datetime) -> int:
    """Forget nonces whose codes have expired; returns how many."""
    table = _NONCES
    statement = delete(table).where(table.c.expires_at < now)
    result = cast("CursorResult[Any]", session.connection().execute(statement))
    return result.rowcount
