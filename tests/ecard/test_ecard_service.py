"""Issuing the e-card, its password and lockout, and how it follows its card."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tests.card_factories import issued_card
from tests.ecard.conftest import PASSWORD, Holder, MakeHolder, resident_actor
from tests.factories import make_resident, make_staff
from yikatong.audit.models import AuditEntry
from yikatong.cards import service as cards
from yikatong.cards.banks import COOPERATING_BANKS, demo_account_number
from yikatong.cards.lifecycle import Operation
from yikatong.cards.models import ApplicationStatus, Card, CardApplication, CardState, Channel
from yikatong.db import transaction, utcnow
from yikatong.ecard import repository, service
from yikatong.ecard.errors import (
    EcardCardNotUsable,
    EcardExists,
    EcardLevelRefused,
    EcardLocked,
    EcardNotActive,
    EcardNotFound,
    EcardPasswordWrong,
    EcardWeakPassword,
)
from yikatong.ecard.models import ECard, ECardLevel, ECardStatus
from yikatong.errors import NotFound, PermissionDenied
from yikatong.kit.actor import Actor, Role
from yikatong.residents.models import Resident


def hand_over(session: Session, clerk: Actor, application: CardApplication) -> Card:
    """Produce the card of ``application`` and issue it (a replacement or renewal)."""
    for step in (
        ApplicationStatus.CHECKED,
        ApplicationStatus.IN_PRODUCTION,
        ApplicationStatus.READY,
    ):
        cards.advance(session, clerk, application.id, step)
    assert application.card_id is not None
    bank = COOPERATING_BANKS[0]
    return cards.issue_card(
        session,
        clerk,
        application.card_id,
        bank_code=bank.code,
        bank_account=demo_account_number(bank, random.Random(application.id)),
    )


def audit_actions(session: Session, object_id: int) -> list[tuple[str, str]]:
    return [
        (entry.action, entry.outcome)
        for entry in session.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_type == "ecard", AuditEntry.object_id == str(object_id))
            .order_by(AuditEntry.id)
        )
    ]


# --- issuing ----------------------------------------------------------------------------------


def test_resident_issues_own_ecard(session: Session, holder: Holder) -> None:
    ecard = holder.ecard
    assert ecard is not None
    assert ecard.status == ECardStatus.ACTIVE
    assert ecard.level == ECardLevel.IDENTITY
    assert ecard.card_id == holder.card.id
    assert ecard.resident_id == holder.resident.id
    assert ecard.password_hash.startswith("$argon2id$")
    assert PASSWORD not in ecard.password_hash
    assert ecard.failed_attempts == 0
    assert audit_actions(session, ecard.id) == [("ecard.issue", "success")]


def test_clerk_issues_at_the_counter(
    session: Session, make_holder: MakeHolder, clerk: Actor
) -> None:
    holder = make_holder(level=None)
    ecard = service.issue_ecard(session, clerk, holder.resident.id, "480263")
    assert service.get_ecard(session, clerk, holder.resident.id) is ecard


def test_out_of_region_clerk_and_other_roles_are_refused(
    session: Session, make_holder: MakeHolder
) -> None:
    holder = make_holder(level=None, region_code="441602")
    county_clerk = make_staff(session, Role.COUNTER_CLERK, region_code="441625").actor()
    with pytest.raises(NotFound):
        service.issue_ecard(session, county_clerk, holder.resident.id, "480263")
    auditor = make_staff(session, Role.AUDITOR).actor()
    with pytest.raises(PermissionDenied):
        service.issue_ecard(session, auditor, holder.resident.id, "480263")


def test_a_resident_cannot_act_on_anothers_ecard(
    session: Session, holder: Holder, make_holder: MakeHolder
) -> None:
    other = make_holder()
    with pytest.raises(PermissionDenied):
        service.verify_password(session, other.actor, holder.resident.id, PASSWORD)
    denied = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "ecard.verify_password", AuditEntry.outcome == "denied"
        )
    ).all()
    assert len(denied) == 1


def test_duplicate_issue_is_a_conflict(session: Session, holder: Holder) -> None:
    with pytest.raises(EcardExists) as caught:
        service.issue_ecard(session, holder.actor, holder.resident.id, "480263")
    assert caught.value.status == 409
    assert caught.value.code == "ecard_exists"


def test_the_database_allows_one_ecard_in_use_per_resident(
    session: Session, holder: Holder, clerk: Actor
) -> None:
    assert holder.ecard is not None
    # Another row for the same resident (a second card, as a bug might write it).
    second = issued_card(session, clerk, make_resident(session).id)
    session.add(
        ECard(
            resident_id=holder.resident.id,
            card_id=second.id,
            level=1,
            status="active",
            password_hash="x",
            failed_attempts=0,
        )
    )
    with pytest.raises(IntegrityError), session.begin_nested():
        session.flush()


def test_needs_a_card_in_use(session: Session, clerk: Actor) -> None:
    resident = make_resident(session)
    actor = resident_actor(resident)
    with pytest.raises(EcardCardNotUsable):
        service.issue_ecard(session, actor, resident.id, "480263")  # no card at all
    application = cards.apply(session, clerk, resident_id=resident.id, channel=Channel.COUNTER)
    assert application.id
    with pytest.raises(EcardCardNotUsable) as caught:
        service.issue_ecard(session, actor, resident.id, "480263")  # applied, not issued
    assert caught.value.status == 409


def test_no_ecard_while_the_card_is_lost(
    session: Session, make_holder: MakeHolder, clerk: Actor
) -> None:
    holder = make_holder(level=None)
    cards.operate(session, clerk, holder.card.id, Operation.REPORT_TEMPORARY_LOSS)
    with pytest.raises(EcardCardNotUsable):
        service.issue_ecard(session, holder.actor, holder.resident.id, "480263")


def test_payment_level_needs_an_activated_bank_account(
    session: Session, make_holder: MakeHolder, clerk: Actor
) -> None:
    holder = make_holder(level=None)
    with pytest.raises(EcardLevelRefused) as caught:
        service.issue_ecard(session, holder.actor, holder.resident.id, "480263", ECardLevel.PAYMENT)
    assert caught.value.status == 409
    assert repository.live_ecard_of(session, holder.resident.id) is None

    service.issue_ecard(session, holder.actor, holder.resident.id, "480263")
    with pytest.raises(EcardLevelRefused):
        service.upgrade_level(session, holder.actor, holder.resident.id, "480263")
    cards.operate(session, clerk, holder.card.id, Operation.ACTIVATE_BANK)
    ecard = service.upgrade_level(session, holder.actor, holder.resident.id, "480263")
    assert ecard.level == ECardLevel.PAYMENT
    assert service.downgrade_level(session, holder.actor, holder.resident.id).level == 1


def test_payment_level_at_issue_with_an_activated_account(make_holder: MakeHolder) -> None:
    holder = make_holder(bank_activated=True, level=ECardLevel.PAYMENT)
    assert holder.ecard is not None
    assert holder.ecard.level == ECardLevel.PAYMENT


# --- the password -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "12345",
        "1234567",
        "12345a",
        " 739514",
        "１２３４５６",  # full-width digits are not ASCII digits
        "000000",
        "111222",
        "121212",
        "123456",
        "234567",
        "654321",
        "012345",
        "258258",
        "850615",  # YYMMDD of the birth date 1985-06-15
        "198506",  # YYYYMM
        "061585",  # MMDDYY
        "150685",  # DDMMYY
    ],
)
def test_weak_passwords_are_refused(
    session: Session, make_holder: MakeHolder, password: str
) -> None:
    holder = make_holder(level=None)
    with pytest.raises(EcardWeakPassword) as caught:
        service.issue_ecard(session, holder.actor, holder.resident.id, password)
    assert caught.value.status == 422
    assert caught.value.code == "ecard_weak_password"
    assert caught.value.extra["errors"][0]["field"] == "password"


def test_the_end_of_the_id_number_is_refused() -> None:
    resident = Resident(id_number="441602198506150137", birth_date=dt.date(1985, 6, 15))
    with pytest.raises(EcardWeakPassword, match="ID number"):
        service.check_password_policy("150137", resident)
    with pytest.raises(EcardWeakPassword, match="birth date"):
        service.check_password_policy("061985", resident)
    service.check_password_policy("739514", resident)


def test_verify_password(session: Session, holder: Holder) -> None:
    ecard = service.verify_password(session, holder.actor, holder.resident.id, PASSWORD)
    assert ecard.failed_attempts == 0
    with pytest.raises(EcardPasswordWrong) as caught:
        service.verify_password(session, holder.actor, holder.resident.id, "480263")
    assert caught.value.status == 403
    assert caught.value.keep_changes
    assert caught.value.extra["attempts_left"] == 4
    service.verify_password(session, holder.actor, holder.resident.id, PASSWORD)
    assert ecard.failed_attempts == 0  # a success clears the count


def test_lockout_after_five_failures_persists_across_requests(
    session_factory: sessionmaker[Session], holder: Holder
) -> None:
    resident_id = holder.resident.id
    actor = holder.actor

    def request(password: str) -> None:
        with session_factory() as s, transaction(s):
            service.verify_password(s, actor, resident_id, password)

    for attempt in range(1, 5):
        with pytest.raises(EcardPasswordWrong) as wrong:
            request("480263")
        assert wrong.value.extra["attempts_left"] == 5 - attempt
    with pytest.raises(EcardLocked) as locked:
        request("480263")
    assert locked.value.status == 429
    assert locked.value.code == "ecard_locked"
    # Locked: even the right password is refused, without being checked.
    with pytest.raises(EcardLocked):
        request(PASSWORD)

    with session_factory() as fresh:
        ecard = repository.live_ecard_of(fresh, resident_id)
        assert ecard is not None
        assert ecard.locked_until is not None
        assert ecard.locked_until > utcnow() + dt.timedelta(hours=23)
        outcomes = [outcome for action, outcome in audit_actions(fresh, ecard.id)]
        assert outcomes.count("failed") == 5
        assert outcomes.count("denied") == 1
        # The lock lapses after its time; then the right password works again.
        ecard.locked_until = utcnow() - dt.timedelta(seconds=1)
        fresh.commit()
    request(PASSWORD)


def test_change_password(session: Session, holder: Holder) -> None:
    rid = holder.resident.id
    with pytest.raises(EcardWeakPassword):
        service.change_password(session, holder.actor, rid, PASSWORD, "123456")
    with pytest.raises(EcardWeakPassword, match="differ"):
        service.change_password(session, holder.actor, rid, PASSWORD, PASSWORD)
    with pytest.raises(EcardPasswordWrong):
        service.change_password(session, holder.actor, rid, "480263", "592740")
    service.change_password(session, holder.actor, rid, PASSWORD, "592740")
    with pytest.raises(EcardPasswordWrong):
        service.verify_password(session, holder.actor, rid, PASSWORD)
    service.verify_password(session, holder.actor, rid, "592740")


def test_clerk_resets_a_locked_password(session: Session, holder: Holder, clerk: Actor) -> None:
    rid = holder.resident.id
    for _ in range(4):
        with pytest.raises(EcardPasswordWrong):
            service.verify_password(session, holder.actor, rid, "480263")
    with pytest.raises(EcardLocked):
        service.verify_password(session, holder.actor, rid, "480263")
    with pytest.raises(PermissionDenied):
        service.reset_password(session, holder.actor, rid, "592740")  # not by the resident
    service.reset_password(session, clerk, rid, "592740")
    service.verify_password(session, holder.actor, rid, "592740")


def test_giving_up_and_reissuing_keeps_a_lockout(session: Session, holder: Holder) -> None:
    rid = holder.resident.id
    for _ in range(4):
        with pytest.raises(EcardPasswordWrong):
            service.verify_password(session, holder.actor, rid, "480263")
    with pytest.raises(EcardLocked):
        service.verify_password(session, holder.actor, rid, "480263")
    revoked = service.revoke_ecard(session, holder.actor, rid)
    assert revoked.status == ECardStatus.REVOKED
    with pytest.raises(EcardNotFound):
        service.verify_password(session, holder.actor, rid, PASSWORD)
    again = service.issue_ecard(session, holder.actor, rid, "592740")
    assert again.id == revoked.id  # one row per card, issued again in place
    assert again.status == ECardStatus.ACTIVE
    with pytest.raises(EcardLocked):
        service.verify_password(session, holder.actor, rid, "592740")


# --- following the card -----------------------------------------------------------------------


def test_suspended_at_once_on_loss_and_back_when_withdrawn(
    session: Session, holder: Holder, clerk: Actor
) -> None:
    ecard = holder.ecard
    assert ecard is not None
    cards.operate(session, clerk, holder.card.id, Operation.REPORT_TEMPORARY_LOSS)
    assert ecard.status == ECardStatus.SUSPENDED
    assert ecard.suspended_reason == "card:temporary_loss"
    with pytest.raises(EcardNotActive):
        service.verify_password(session, holder.actor, holder.resident.id, PASSWORD)
    cards.operate(session, clerk, holder.card.id, Operation.CANCEL_TEMPORARY_LOSS)
    assert ecard.status == ECardStatus.ACTIVE
    assert ecard.suspended_reason is None
    actions = [action for action, _ in audit_actions(session, ecard.id)]
    assert actions[-2:] == ["ecard.suspend", "ecard.reactivate"]


def test_lapsed_temporary_loss_reactivates(session: Session, holder: Holder, clerk: Actor) -> None:
    cards.operate(session, clerk, holder.card.id, Operation.REPORT_TEMPORARY_LOSS)
    assert holder.card.temporary_loss_until is not None
    cards.sweep_temporary_losses(session, holder.card.temporary_loss_until + dt.timedelta(1))
    assert holder.card.state == CardState.ISSUED
    assert holder.ecard is not None
    assert holder.ecard.status == ECardStatus.ACTIVE


@pytest.mark.parametrize("operation", [Operation.RENEW, Operation.CANCEL])
def test_revoked_when_the_card_dies(
    session: Session, holder: Holder, clerk: Actor, operation: Operation
) -> None:
    cards.operate(session, clerk, holder.card.id, operation, reason="test")
    assert holder.ecard is not None
    assert holder.ecard.status == ECardStatus.REVOKED
    assert holder.ecard.revoked_reason == f"card:{holder.card.state}"
    assert repository.live_ecard_of(session, holder.resident.id) is None


def test_formal_loss_then_replacement_rebinds_on_the_new_card(
    session: Session, make_holder: MakeHolder, clerk: Actor
) -> None:
    holder = make_holder(bank_activated=True, level=ECardLevel.PAYMENT)
    old = holder.ecard
    assert old is not None
    cards.operate(session, clerk, holder.card.id, Operation.REPORT_FORMAL_LOSS)
    assert old.status == ECardStatus.SUSPENDED
    assert old.suspended_reason == "card:formal_loss"
    result = cards.operate(session, clerk, holder.card.id, Operation.REPLACE, reason="lost")
    assert old.status == ECardStatus.REVOKED
    assert result.new_application is not None

    new_card = hand_over(session, clerk, result.new_application)
    rebound = repository.live_ecard_of(session, holder.resident.id)
    assert rebound is not None
    assert rebound.card_id == new_card.id
    assert rebound.previous_ecard_id == old.id
    assert rebound.status == ECardStatus.ACTIVE
    # The new card's bank account is not activated yet: payment level waits for it.
    assert rebound.level == ECardLevel.IDENTITY
    # The holder keeps their password.
    service.verify_password(session, holder.actor, holder.resident.id, PASSWORD)
    assert audit_actions(session, rebound.id)[0] == ("ecard.rebind", "success")


def test_a_replacement_does_not_revive_an_ecard_the_holder_gave_up(
    session: Session, holder: Holder, clerk: Actor
) -> None:
    service.revoke_ecard(session, holder.actor, holder.resident.id)
    cards.operate(session, clerk, holder.card.id, Operation.REPORT_FORMAL_LOSS)
    result = cards.operate(session, clerk, holder.card.id, Operation.REPLACE, reason="lost")
    assert result.new_application is not None
    hand_over(session, clerk, result.new_application)
    assert repository.live_ecard_of(session, holder.resident.id) is None


def test_cards_without_ecard_are_left_alone(session: Session, clerk: Actor) -> None:
    resident = make_resident(session)
    card = issued_card(session, clerk, resident.id)
    cards.operate(session, clerk, card.id, Operation.REPORT_TEMPORARY_LOSS)
    assert repository.ecard_of_card(session, card.id) is None


def test_password_hash_is_peppered(session: Session, holder: Holder) -> None:
    assert holder.ecard is not None
    stored = session.execute(
        text("SELECT password_hash FROM ecards WHERE id = :i"), {"i": holder.ecard.id}
    ).scalar_one()
    # The argon2 hash is not of the bare digits: the database alone cannot be brute-forced.
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(stored, PASSWORD)
