"""Queries over cards, applications and the blacklist."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, func, select
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
from yikatong.crypto.fields import blind_index
from yikatong.residents.models import Resident

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


# --- the bulk path of applications (批量申领): one query per batch instead of one per row ---


@dataclass(frozen=True, slots=True)
class ApplicantRow:
    """The facts of a resident the application rules read, without loading the entity."""

    id: int
    id_number: str
    birth_date: dt.date
    region_code: str
    status: str


_RESIDENTS = cast(Table, Resident.__table__)
_APPLICANT_COLUMNS = (
    _RESIDENTS.c.id,
    _RESIDENTS.c.id_number,
    _RESIDENTS.c.birth_date,
    _RESIDENTS.c.region_code,
    _RESIDENTS.c.status,
)
_CHUNK = 1_000  # bound the IN lists whatever the caller's batch


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    items = sorted(set(ids))
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def applicants(session: Session, resident_ids: Iterable[int]) -> dict[int, ApplicantRow]:
    """The residents among ``resident_ids`` that exist, by id (any region: callers scope)."""
    found: dict[int, ApplicantRow] = {}
    for chunk in _chunks(resident_ids):
        rows = session.execute(select(*_APPLICANT_COLUMNS).where(_RESIDENTS.c.id.in_(chunk)))
        for row in rows:
            found[row.id] = ApplicantRow(*row)
    return found


@dataclass(frozen=True, slots=True)
class Found:
    """A resident found by ID number: their id and registered name."""

    id: int
    name: str


def residents_by_id_number(session: Session, id_numbers: Iterable[str]) -> dict[str, Found]:
    """{ID number: resident} for the registered ones among ``id_numbers`` (normalised, as
    :func:`yikatong.reference.idnumber.parse_id_number` returns them), through the blind
    index like ``residents.repository.identity_by_id_number``, one query per thousand
    instead of one per number. Any region: callers apply the actor's scope."""
    wanted = {blind_index("residents.id_number", number): number for number in id_numbers}
    found: dict[str, Found] = {}
    indexes = list(wanted)
    for start in range(0, len(indexes), _CHUNK):
        rows = session.execute(
            select(_RESIDENTS.c.id_number_index, _RESIDENTS.c.id, _RESIDENTS.c.name).where(
                _RESIDENTS.c.id_number_index.in_(indexes[start : start + _CHUNK])
            )
        )
        for index, resident_id, name in rows:
            found[wanted[index]] = Found(resident_id, name)
    return found


def residents_with_open_application(session: Session, resident_ids: Iterable[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(resident_ids):
        found.update(
            session.scalars(
                select(CardApplication.resident_id).where(
                    CardApplication.resident_id.in_(chunk),
                    CardApplication.status.in_(OPEN_APPLICATION_STATUSES),
                )
            )
        )
    return found


def residents_with_live_card(session: Session, resident_ids: Iterable[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(resident_ids):
        found.update(
            session.scalars(
                select(Card.resident_id).where(
                    Card.resident_id.in_(chunk), Card.state.in_(LIVE_STATES)
                )
            )
        )
    return found


def open_application_ids(session: Session, resident_ids: Iterable[int]) -> dict[int, int]:
    """{resident id: id of their one open application} (at most one each, by the index)."""
    found: dict[int, int] = {}
    for chunk in _chunks(resident_ids):
        rows = session.execute(
            select(CardApplication.resident_id, CardApplication.id).where(
                CardApplication.resident_id.in_(chunk),
                CardApplication.status.in_(OPEN_APPLICATION_STATUSES),
            )
        )
        for resident_id, application_id in rows:
            found[resident_id] = application_id
    return found
