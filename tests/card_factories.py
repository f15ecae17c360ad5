"""Cards made through the real flow: apply → check → produce → ready → issue."""

from __future__ import annotations

import random

from sqlalchemy.orm import Session

from yikatong.cards import service as cards
from yikatong.cards.banks import COOPERATING_BANKS, demo_account_number
from yikatong.cards.models import ApplicationStatus, Card, Channel
from yikatong.kit.actor import Actor

_rng = random.Random(2026)


def issued_card(
    session: Session,
    clerk: Actor,
    resident_id: int,
    *,
    active: bool = False,
    bank_activated: bool = False,
) -> Card:
    application = cards.apply(session, clerk, resident_id=resident_id, channel=Channel.COUNTER)
    for step in (
        ApplicationStatus.CHECKED,
        ApplicationStatus.IN_PRODUCTION,
        ApplicationStatus.READY,
    ):
        cards.advance(session, clerk, application.id, step)
    assert application.card_id is not None
    bank = COOPERATING_BANKS[0]
    card = cards.issue_card(
        session,
        clerk,
        application.card_id,
        bank_code=bank.code,
        bank_account=demo_account_number(bank, _rng),
    )
    if active:
        cards.operate(session, clerk, card.id, cards.Operation.ACTIVATE_SOCIAL_SECURITY)
    if bank_activated:
        cards.operate(session, clerk, card.id, cards.Operation.ACTIVATE_BANK)
    return card
