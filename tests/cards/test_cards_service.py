"""Applications, issuance and counter operations through the service, on a real database."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.card_factories import issued_card
from tests.factories import make_resident, make_staff
from yikatong.audit.models import AuditEntry
from yikatong.cards import repository
from yikatong.cards import service as cards
from yikatong.cards.lifecycle import IllegalTransition, Operation
from yikatong.cards.models import (
    ApplicationStatus,
    Card,
    CardEvent,
    CardState,
    Channel,
)
from yikatong.errors import InvalidInput, NotFound, PermissionDenied
from yikatong.kit import events
from yikatong.kit.actor import Role
from yikatong.reference.idnumber import make_id_number


@pytest.fixture
def clerk(session: Session):  # type: ignore[no-untyped-def]
    return make_staff(session, Role.COUNTER_CLERK, region_code="441625").actor()


def test_counter_application_to_issued_card(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    card = issued_card(session, clerk, resident.id)
    assert card.state == CardState.ISSUED
    assert re.fullmatch(r"[A-Z]\d{8}", card.card_number)
    assert re.fullmatch(r"441600D156000005[0-9A-F]{16}", card.identification_code)
    assert len(card.identification_code) == 32
    assert card.expiry_date is not None
    assert card.issue_date is not None
    assert card.expiry_date.year == card.issue_date.year + 10
    assert card.key_ref == "card-mk:v1"
    application = repository.applications_of(session, resident.id)[0]
    trail = [e.to_status for e in repository.application_trail(session, application.id)]
    assert trail == ["submitted", "checked", "in_production", "ready", "issued"]
    # The account is stored encrypted: the raw column holds no digits of it.
    raw = session.execute(
        text("SELECT bank_account FROM cards WHERE id = :i"), {"i": card.id}
    ).scalar_one()
    assert card.bank_account is not None
    assert card.bank_account.encode() not in bytes(raw)


def test_duplicate_application_is_refused(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    cards.apply(session, clerk, resident_id=resident.id, channel=Channel.COUNTER)
    with pytest.raises(cards.DuplicateApplication):
        cards.apply(session, clerk, resident_id=resident.id, channel=Channel.INSTANT)


def test_first_card_refused_when_one_is_live(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    issued_card(session, clerk, resident.id)
    with pytest.raises(cards.CardExists):
        cards.apply(session, clerk, resident_id=resident.id, channel=Channel.COUNTER)


def test_database_allows_one_live_card(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    card = issued_card(session, clerk, resident.id)
    clone = Card(
        resident_id=resident.id,
        region_code="441625",
        card_number="Z99999999",
        identification_code="441600D156000005FFFFFFFFFFFFFFFF",
        token="f" * 32,
        state=CardState.ACTIVE.value,
        issuing_region="441600",
        key_ref="card-mk:v1",
    )
    with session.begin_nested() as savepoint:
        session.add(clone)
        with pytest.raises(IntegrityError):
            session.flush()
        savepoint.rollback()
    assert card.state == CardState.ISSUED


def test_online_application_needs_an_address_and_is_mailed(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    with pytest.raises(InvalidInput) as caught:
        cards.apply(session, clerk, resident_id=resident.id, channel=Channel.ONLINE)
    assert caught.value.extra["errors"][0]["field"] == "mailing_address"
    application = cards.apply(
        session,
        clerk,
        resident_id=resident.id,
        channel=Channel.ONLINE,
        mailing_address="广东省河源市东源县仙塘镇1号",
    )
    cards.advance(session, clerk, application.id, ApplicationStatus.CHECKED)
    cards.advance(session, clerk, application.id, ApplicationStatus.IN_PRODUCTION)
    with pytest.raises(InvalidInput):
        cards.advance(session, clerk, application.id, ApplicationStatus.MAILED)
    cards.advance(
        session, clerk, application.id, ApplicationStatus.MAILED, tracking_number="SF1234567890"
    )
    assert application.tracking_number == "SF1234567890"


def test_newborn_channel_rules(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    adult = make_resident(session, region_code="441625")
    with pytest.raises(InvalidInput):
        cards.apply(
            session,
            clerk,
            resident_id=adult.id,
            channel=Channel.NEWBORN,
            birth_certificate_number="R441625000123",
        )
    baby = make_resident(
        session,
        region_code="441625",
        birth_date=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=20),
        phone=None,
    )
    with pytest.raises(InvalidInput):
        cards.apply(session, clerk, resident_id=baby.id, channel=Channel.NEWBORN)
    application = cards.apply(
        session,
        clerk,
        resident_id=baby.id,
        channel=Channel.NEWBORN,
        birth_certificate_number="R441625000123",
        proxy=cards.Proxy("张大山", make_id_number("441625", dt.date(1990, 1, 1), 11), "father"),
    )
    assert application.proxy_relation == "father"


def test_illegal_application_step(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    application = cards.apply(session, clerk, resident_id=resident.id, channel=Channel.COUNTER)
    with pytest.raises(cards.IllegalApplicationStep) as caught:
        cards.advance(session, clerk, application.id, ApplicationStatus.READY)
    assert caught.value.extra["allowed"] == ["checked", "rejected", "withdrawn"]


def test_loss_replacement_and_blacklist(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    card = issued_card(session, clerk, resident.id, active=True)
    start = repository.blacklist_since(session, 0).version
    cards.operate(session, clerk, card.id, Operation.REPORT_TEMPORARY_LOSS, outlet="东源县社保大厅")
    assert card.state == CardState.TEMPORARY_LOSS
    assert repository.is_blacklisted(session, card.token)
    assert repository.blacklist_since(session, start).added == [card.token]
    cards.operate(session, clerk, card.id, Operation.CANCEL_TEMPORARY_LOSS)
    assert card.state == CardState.ACTIVE  # back where it was
    delta = repository.blacklist_since(session, start)
    assert (delta.added, delta.removed) == ([], [card.token])
    result = cards.operate(session, clerk, card.id, Operation.REPLACE, reason="lost")
    assert card.state == CardState.REPLACED
    assert result.new_application is not None
    assert result.new_application.replaces_card_id == card.id
    with pytest.raises(IllegalTransition):
        cards.operate(session, clerk, card.id, Operation.ACTIVATE_BANK)
    events_ = session.scalars(select(CardEvent).where(CardEvent.card_id == card.id)).all()
    assert [e.operation for e in events_][-3:] == [
        "report_temporary_loss",
        "cancel_temporary_loss",
        "replace",
    ]
    assert events_[-3].outlet == "东源县社保大厅"
    assert all(e.actor for e in events_)


def test_temporary_loss_lapses_by_the_sweep(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    card = issued_card(session, clerk, resident.id)
    cards.operate(session, clerk, card.id, Operation.REPORT_TEMPORARY_LOSS)
    assert card.temporary_loss_until is not None
    assert cards.sweep_temporary_losses(session, card.temporary_loss_until - dt.timedelta(1)) == 0
    assert cards.sweep_temporary_losses(session, card.temporary_loss_until) == 1
    assert card.state == CardState.ISSUED


def test_state_changes_are_emitted_and_audited(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    seen: list[events.Event] = []

    @events.subscribe("card.state_changed")
    def listen(_session: Session, event: events.Event) -> None:
        seen.append(event)

    try:
        resident = make_resident(session, region_code="441625")
        card = issued_card(session, clerk, resident.id)
        cards.operate(session, clerk, card.id, Operation.REPORT_FORMAL_LOSS, reason="stolen")
    finally:
        events._handlers["card.state_changed"].remove(listen)
    assert seen[-1].payload["to_state"] == "formal_loss"
    assert seen[-1].payload["token"] == card.token
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry is not None
    assert entry.action == "card.report_formal_loss"


def test_cancel_needs_a_reason_and_scope_is_enforced(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    card = issued_card(session, clerk, resident.id)
    with pytest.raises(InvalidInput):
        cards.operate(session, clerk, card.id, Operation.CANCEL)
    other = make_staff(session, Role.COUNTER_CLERK, region_code="441602").actor()
    with pytest.raises(NotFound):
        cards.operate(session, other, card.id, Operation.CANCEL, reason="x")
    auditor = make_staff(session, Role.AUDITOR).actor()
    with pytest.raises(PermissionDenied):
        cards.operate(session, auditor, card.id, Operation.CANCEL, reason="x")


def test_bank_details_are_validated_at_issue(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    application = cards.apply(session, clerk, resident_id=resident.id, channel=Channel.COUNTER)
    for step in (
        ApplicationStatus.CHECKED,
        ApplicationStatus.IN_PRODUCTION,
        ApplicationStatus.READY,
    ):
        cards.advance(session, clerk, application.id, step)
    assert application.card_id is not None
    with pytest.raises(InvalidInput, match="check digit"):
        cards.issue_card(
            session, clerk, application.card_id, bank_code="102", bank_account="6212261234567890123"
        )
    with pytest.raises(InvalidInput, match="bank"):
        cards.issue_card(
            session, clerk, application.card_id, bank_code="999", bank_account="6212261234567890128"
        )
    assert session.get(Card, application.card_id).state == CardState.READY  # type: ignore[union-attr]


def test_death_registration_cancels_the_card(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    resident = make_resident(session, region_code="441625")
    card = issued_card(session, clerk, resident.id)
    events.emit(
        session,
        "resident.deceased",
        clerk,
        resident_id=resident.id,
        region_code=resident.region_code,
        date=dt.date(2026, 11, 1),
    )
    assert card.state == CardState.CANCELLED
    assert repository.is_blacklisted(session, card.token)


def test_residents_act_on_their_own_card_only(session: Session, clerk) -> None:  # type: ignore[no-untyped-def]
    from yikatong.kit.actor import Actor

    mine = make_resident(session, region_code="441625", name="自助甲")
    theirs = make_resident(session, region_code="441625", name="自助乙")
    my_card = issued_card(session, clerk, mine.id)
    their_card = issued_card(session, clerk, theirs.id)
    me = Actor.resident(mine.id, "自*甲", mine.region_code)
    with pytest.raises(NotFound):
        cards.get_card(session, me, their_card.id)
    with pytest.raises(PermissionDenied):
        cards.operate(session, me, my_card.id, Operation.CANCEL, reason="mine")
    with pytest.raises(PermissionDenied):
        cards.advance(session, me, 1, ApplicationStatus.CHECKED)
    cards.operate(session, me, my_card.id, Operation.REPORT_TEMPORARY_LOSS)
    with pytest.raises(InvalidInput):  # a replacement by post needs the address
        cards.operate(session, me, my_card.id, Operation.REPLACE, channel=Channel.ONLINE)
    result = cards.operate(
        session,
        me,
        my_card.id,
        Operation.REPLACE,
        channel=Channel.ONLINE,
        mailing_address="广东省河源市东源县仙塘镇1号",
    )
    assert result.new_application is not None
    updated = cards.update_mailing_address(
        session, me, result.new_application.id, "广东省河源市源城区文明路2号"
    )
    assert updated.mailing_address == "广东省河源市源城区文明路2号"
    with pytest.raises(InvalidInput):
        cards.apply(
            session,
            Actor.resident(theirs.id, "x", "441625"),
            resident_id=theirs.id,
            channel=Channel.COUNTER,
        )
