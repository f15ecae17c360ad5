"""Queries over cards, applications and the blacklist."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yikatong.cards.lifecycle import BLOCKED_STATES
from yikatong.cards.models import (
    LIVE_STATES,
    OPEN_APPLICATION_STATUSES,
    ApplicationEvent,
    BlacklistChange,
    BlacklistHead,
    Card,
    CardApplication,
    CardEvent,
)

BLACKLIST_HEAD_ID = 1


def card_by_token(session: Session, token: str) -> Card | None:
    return session.scalar(select(Card).where(Card.token == token))


def card_by_number(session: Session, card_number: str) -> Card | None:
    return session.scalar(select(Card).where(Card.card_number == card_number.strip().upper()))


def live_card_of(session: Session, resident_id: int) -> Card | None:
    """The resident's one live card (in production, ready, issued, active or temporarily lost)."""
    return session.scalar(
        select(Card).where(Card.resident_id == resident_id, Card.state.in_(LIVE_STATES))
    )


def cards_of(session: Session, resident_id: int) -> list[Card]:
    """Every card the resident ever had, newest first."""
    return list(
        session.scalars(
            select(Card).where(Card.resident_id == resident_id).order_by(Card.id.desc())
        )
    )


def open_application_of(session: Session, resident_id: int) -> CardApplication | None:
    return session.scalar(
        select(CardApplication).where(
            CardApplication.resident_id == resident_id,
            CardApplication.status.in_(OPEN_APPLICATION_STATUSES),
        )
    )


def applications_of(session: Session, resident_id: int) -> list[CardApplication]:
    return list(
        session.scalars(
            select(CardApplication)
            .where(CardApplication.resident_id == resident_id)
            .order_by(CardApplication.id.desc())
        )
    )


def application_trail(session: Session, application_id: int) -> list[ApplicationEvent]:
    return list(
        session.scalars(
            select(ApplicationEvent)
            .where(ApplicationEvent.application_id == application_id)
            .order_by(ApplicationEvent.id)
        )
    )


def card_events(session: Session, card_ids: list[int]) -> list[CardEvent]:
    if not card_ids:
        return []
    return list(
        session.scalars(
            select(CardEvent).where(CardEvent.card_id.in_(card_ids)).order_by(CardEvent.id)
        )
    )


def is_blacklisted(session: Session, token: str) -> bool:
    """Whether terminals must refuse this token (the card is lost, replaced or cancelled)."""
    state = session.scalar(select(Card.state).where(Card.token == token))
    return state is not None and state in BLOCKED_STATES


@dataclass(frozen=True)
class BlacklistDelta:
    since: int
    version: int
    added: list[str]
    removed: list[str]


def blacklist_since(session: Session, since: int) -> BlacklistDelta:
    """Net changes after version ``since``: a token added then removed again is in neither."""
    head = session.get(BlacklistHead, BLACKLIST_HEAD_ID)
    version = head.version if head else 0
    latest: dict[str, str] = {}
    rows = session.execute(
        select(BlacklistChange.token, BlacklistChange.action)
        .where(BlacklistChange.version > since)
        .order_by(BlacklistChange.version)
    )
    for token, action in rows:
        latest[token] = action
    added = sorted(t for t, a in latest.items() if a == "add")
    removed = sorted(t for t, a in latest.items() if a == "remove")
    return BlacklistDelta(since=since, version=version, added=added, removed=removed)


def count_by_state(session: Session, scope: str) -> dict[str, int]:
    rows = session.execute(
        select(Card.state, func.count())
        .where(Card.region_code.startswith(scope))
        .group_by(Card.state)
    )
    return {state: n for state, n in rows}  # noqa: C416 - dict(Result) would call .keys()
