"""Issuing QR codes and verifying them online: card state, e-card state, replay, audit."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.ecard.conftest import Holder, MakeHolder
from yikatong.audit.models import AuditEntry
from yikatong.cards import service as cards
from yikatong.cards.lifecycle import Operation
from yikatong.crypto.keystore import get_keyring
from yikatong.db import transaction, utcnow
from yikatong.ecard import qr, repository, service
from yikatong.ecard.errors import (
    EcardLevelInsufficient,
    EcardLocked,
    EcardNotActive,
    EcardNotFound,
    EcardPasswordWrong,
    QrBadSignature,
    QrCardBlocked,
    QrError,
    QrExpired,
    QrMalformed,
    QrNotYetValid,
    QrReplayed,
    QrUnknownKey,
    QrWrongPurpose,
)
from yikatong.ecard.models import ECardLevel, QrNonce
from yikatong.ecard.qr import Purpose
from yikatong.errors import PermissionDenied, YikatongError
from yikatong.kit.actor import Actor

IDENTITY = Purpose.IDENTITY


def verifications(session: Session) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "ecard.verify_code")
            .order_by(AuditEntry.id)
        )
    )


def test_issue_and_verify(session: Session, holder: Holder, clerk: Actor) -> None:
    issued = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY)
    assert issued.text.startswith("YKT1:")
    assert issued.expires_at - issued.issued_at == dt.timedelta(seconds=60)
    assert issued.key_id == service.published_keys()[-1].key_id
    result = service.verify_online(session, clerk, issued.text, IDENTITY)
    assert result.token == holder.card.token
    assert result.purpose is IDENTITY
    assert result.holder_name == "张*三"
    assert result.region_code == holder.resident.region_code
    assert result.issuing_region == holder.card.issuing_region
    assert result.ecard_level == ECardLevel.IDENTITY
    # Neither the code nor the audit trail carries the ID number.
    id_number = holder.resident.id_number
    decoded = qr.decode(issued.text).payload
    assert decoded.token_hex == holder.card.token
    assert id_number not in issued.text
    entries = verifications(session)
    assert len(entries) == 1
    assert entries[0].outcome == "success"
    assert entries[0].detail == {
        "token": holder.card.token,
        "purpose": "identity",
        "result": "accepted",
    }
    trail = json.dumps([e.detail for e in session.scalars(select(AuditEntry))], ensure_ascii=False)
    assert id_number not in trail
    assert id_number[-6:] not in trail


def test_payment_codes_need_level_two(
    session: Session, make_holder: MakeHolder, clerk: Actor
) -> None:
    basic = make_holder(bank_activated=True)
    with pytest.raises(EcardLevelInsufficient) as caught:
        service.issue_code(session, basic.actor, basic.resident.id, Purpose.PAYMENT)
    assert caught.value.status == 409
    payer = make_holder(bank_activated=True, level=ECardLevel.PAYMENT)
    issued = service.issue_code(session, payer.actor, payer.resident.id, Purpose.PAYMENT)
    result = service.verify_online(session, clerk, issued.text, Purpose.PAYMENT)
    assert result.token == payer.card.token
    assert result.ecard_level == ECardLevel.PAYMENT
    # A payment verifier learns nothing about the person.
    assert result.holder_name is None
    assert result.region_code is None


def test_payment_level_given_up_after_issue_refuses_the_code(
    session: Session, make_holder: MakeHolder, clerk: Actor
) -> None:
    payer = make_holder(bank_activated=True, level=ECardLevel.PAYMENT)
    issued = service.issue_code(session, payer.actor, payer.resident.id, Purpose.PAYMENT)
    service.downgrade_level(session, payer.actor, payer.resident.id)
    with pytest.raises(EcardLevelInsufficient):
        service.verify_online(session, clerk, issued.text, Purpose.PAYMENT)


def test_no_payment_code_while_the_password_is_locked(
    session: Session, make_holder: MakeHolder
) -> None:
    payer = make_holder(bank_activated=True, level=ECardLevel.PAYMENT)
    for _ in range(4):
        with pytest.raises(EcardPasswordWrong):
            service.verify_password(session, payer.actor, payer.resident.id, "480263")
    with pytest.raises(EcardLocked):
        service.verify_password(session, payer.actor, payer.resident.id, "480263")
    with pytest.raises(EcardLocked):
        service.issue_code(session, payer.actor, payer.resident.id, Purpose.PAYMENT)
    service.issue_code(session, payer.actor, payer.resident.id, IDENTITY)  # identity still works


def test_replayed_code_is_refused_and_audited(
    session_factory: sessionmaker[Session], holder: Holder, clerk: Actor
) -> None:
    with session_factory() as s:
        text = service.issue_code(s, holder.actor, holder.resident.id, IDENTITY).text
        s.commit()

    def request() -> None:
        with session_factory() as s, transaction(s):
            service.verify_online(s, clerk, text, IDENTITY)

    request()
    with pytest.raises(QrReplayed) as caught:
        request()
    assert caught.value.status == 409
    with session_factory() as s:
        entries = verifications(s)
        assert [(e.outcome, e.detail["result"]) for e in entries] == [
            ("success", "accepted"),
            ("failed", "qr_replayed"),
        ]
        assert entries[1].detail["token"] == holder.card.token
        assert entries[1].object_id == str(holder.card.id)


def test_old_codes_stop_verifying_the_moment_the_card_is_reported_lost(
    session: Session, holder: Holder, clerk: Actor
) -> None:
    before_loss = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY)
    offline_keys = qr.trusted_keys(service.published_keys(), utcnow())
    cards.operate(session, clerk, holder.card.id, Operation.REPORT_TEMPORARY_LOSS)
    with pytest.raises(QrCardBlocked) as caught:
        service.verify_online(session, clerk, before_loss.text, IDENTITY)
    assert caught.value.status == 409
    with pytest.raises(EcardNotActive):
        service.issue_code(session, holder.actor, holder.resident.id, IDENTITY)
    # An offline terminal still sees a valid signature; its downloaded blacklist refuses it.
    verified = qr.verify_offline(before_loss.text, offline_keys, utcnow(), IDENTITY)
    delta = cards.signed_blacklist(session, 0)
    assert verified.token in delta.added
    # Withdrawing the loss brings the e-card back.
    cards.operate(session, clerk, holder.card.id, Operation.CANCEL_TEMPORARY_LOSS)
    fresh = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY)
    assert service.verify_online(session, clerk, fresh.text, IDENTITY).token == holder.card.token


@pytest.mark.parametrize(
    "operation", [Operation.REPORT_FORMAL_LOSS, Operation.RENEW, Operation.CANCEL]
)
def test_codes_die_with_the_card(
    session: Session, holder: Holder, clerk: Actor, operation: Operation
) -> None:
    text = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY).text
    cards.operate(session, clerk, holder.card.id, operation, reason="test")
    with pytest.raises(QrCardBlocked):
        service.verify_online(session, clerk, text, IDENTITY)


def test_codes_of_an_ecard_given_up_are_refused(
    session: Session, holder: Holder, clerk: Actor
) -> None:
    text = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY).text
    service.revoke_ecard(session, holder.actor, holder.resident.id)
    with pytest.raises(EcardNotActive):
        service.verify_online(session, clerk, text, IDENTITY)
    with pytest.raises(EcardNotFound):
        service.issue_code(session, holder.actor, holder.resident.id, IDENTITY)


@pytest.mark.parametrize(
    ("offset", "error"),
    [(-10, QrNotYetValid), (60 + qr.CLOCK_SKEW, QrExpired), (3600, QrExpired)],
)
def test_validity_online(
    session: Session, holder: Holder, clerk: Actor, offset: int, error: type[QrError]
) -> None:
    # Issued 30 s from now, verified ``offset`` seconds after that.
    issued_at = utcnow() + dt.timedelta(seconds=30)
    text = service.issue_code(
        session, holder.actor, holder.resident.id, IDENTITY, now=issued_at
    ).text
    verify_at = issued_at + dt.timedelta(seconds=offset)
    with pytest.raises(error):
        service.verify_online(session, clerk, text, IDENTITY, now=verify_at)


def test_each_online_refusal_has_its_code(
    session_factory: sessionmaker[Session], holder: Holder, clerk: Actor
) -> None:
    with session_factory() as s:
        text = service.issue_code(s, holder.actor, holder.resident.id, IDENTITY).text
        s.commit()
    raw = qr.decode(text)
    forged = bytearray(raw.to_bytes())
    forged[-1] ^= 1
    unknown = qr.sign_code(
        qr.new_payload(
            key_id=999,
            token=holder.card.token,
            purpose=IDENTITY,
            region="441600",
            now=utcnow(),
        ),
        get_keyring().platform_signing_key,
    )
    cases: list[tuple[str, Purpose, type[YikatongError], str]] = [
        ("YKT1:???", IDENTITY, QrMalformed, "qr_malformed"),
        (qr.PREFIX + qr.base45_encode(bytes(forged)), IDENTITY, QrBadSignature, "qr_bad_signature"),
        (qr.encode(unknown), IDENTITY, QrUnknownKey, "qr_unknown_key"),
        (text, Purpose.MEDICAL, QrWrongPurpose, "qr_wrong_purpose"),
    ]
    for code_text, purpose, error, code in cases:
        with pytest.raises(error) as caught, session_factory() as s, transaction(s):
            service.verify_online(s, clerk, code_text, purpose)
        assert caught.value.code == code
        assert caught.value.keep_changes  # the refusal's audit entry is kept
    with session_factory() as s:
        entries = verifications(s)
    assert [e.detail["result"] for e in entries] == [case[3] for case in cases]
    # Only an authentic code's token is recorded (wrong purpose: signed by the platform).
    assert [e.detail["token"] for e in entries] == ["", "", "", holder.card.token]
    # None of those consumed the nonce: the genuine code still verifies once.
    with session_factory() as s, transaction(s):
        service.verify_online(s, clerk, text, IDENTITY)


def test_verification_needs_cards_read(session: Session, holder: Holder) -> None:
    text = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY).text
    with pytest.raises(PermissionDenied):
        service.verify_online(session, holder.actor, text, IDENTITY)  # a resident cannot


def test_unknown_token_is_blocked(session: Session, clerk: Actor) -> None:
    version, key = get_keyring().active_signing_key()
    payload = qr.new_payload(
        key_id=version, token="00" * 16, purpose=IDENTITY, region="441600", now=utcnow()
    )
    with pytest.raises(QrCardBlocked):
        service.verify_online(session, clerk, qr.encode(qr.sign_code(payload, key)), IDENTITY)


def test_nonce_store_and_pruning(session: Session, holder: Holder, clerk: Actor) -> None:
    now = utcnow()
    for _ in range(3):
        text = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY, now=now).text
        service.verify_online(session, clerk, text, IDENTITY, now=now)
    count = select(func.count()).select_from(QrNonce)
    assert session.scalar(count) == 3
    assert repository.consume_nonce(session, b"n" * 12, now) is True
    assert repository.consume_nonce(session, b"n" * 12, now) is False
    assert service.prune_nonces(session, now + dt.timedelta(seconds=30)) == 1
    assert service.prune_nonces(session, now + dt.timedelta(seconds=120)) == 3
    assert session.scalar(count) == 0


def test_online_verification_prunes_now_and_then(
    session: Session, holder: Holder, clerk: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "PRUNE_EVERY", 1)
    past = utcnow() - dt.timedelta(hours=1)
    repository.consume_nonce(session, b"o" * 12, past)
    text = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY).text
    service.verify_online(session, clerk, text, IDENTITY)
    assert session.get(QrNonce, b"o" * 12) is None
