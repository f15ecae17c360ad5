"""The verification gateway: batched online verification answers exactly as one by one."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.card_factories import issued_card
from tests.ecard.conftest import PASSWORD, MakeHolder, resident_actor
from tests.factories import make_resident, make_staff
from yikatong import migrate
from yikatong.audit import service as audit
from yikatong.audit.models import AuditEntry
from yikatong.cards import service as cards
from yikatong.cards.lifecycle import Operation
from yikatong.db import transaction, utcnow
from yikatong.ecard import service
from yikatong.ecard.errors import (
    QrCardBlocked,
    QrMalformed,
    QrReplayed,
    QrWrongPurpose,
)
from yikatong.ecard.gateway import VerificationGateway
from yikatong.ecard.qr import Purpose
from yikatong.errors import AuthenticationRequired, PermissionDenied, YikatongError
from yikatong.kit.actor import Actor, Role
from yikatong.staff import service as staff

IDENTITY = Purpose.IDENTITY


def verifications(session: Session) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.action == "ecard.verify_code")
    return list(session.scalars(query.order_by(AuditEntry.id)))


def test_record_many_continues_the_chain_like_record(session: Session) -> None:
    actor = Actor.system("test", region_code="441600")
    audit.record(session, actor, "test.one")
    last = audit.record_many(
        session,
        [
            audit.Pending(actor, "test.two", object_type="card", object_id=7, detail={"n": 2}),
            audit.Pending(actor, "test.three", outcome=audit.Outcome.FAILED),
        ],
    )
    audit.record(session, actor, "test.four")
    assert audit.record_many(session, []) == 0
    session.flush()
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert [e.action for e in entries[-4:]] == ["test.one", "test.two", "test.three", "test.four"]
    assert entries[-2].id == last
    assert entries[-3].object_id == "7"
    assert entries[-3].detail == {"n": 2}
    assert audit.verify_chain(session).ok


def test_a_batch_settles_each_code_in_order(
    session: Session, clerk: Actor, make_holder: MakeHolder
) -> None:
    holder = make_holder()
    lost = make_holder()
    now = utcnow()
    fresh = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY).text
    second = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY).text
    payment = service.issue_code(session, holder.actor, holder.resident.id, IDENTITY).text
    blocked = service.issue_code(session, lost.actor, lost.resident.id, IDENTITY).text
    cards.operate(session, clerk, lost.card.id, Operation.REPORT_TEMPORARY_LOSS)
    auditor = make_staff(session, Role.AUDITOR).actor()
    checks = [
        service.check_code(clerk, fresh, IDENTITY, now),
        service.check_code(clerk, fresh, IDENTITY, now),  # the same code twice in one batch
        service.check_code(clerk, second, Purpose.PAYMENT, now),
        service.check_code(clerk, blocked, IDENTITY, now),
        service.check_code(clerk, "YKT1:garbage", IDENTITY, now),
        service.check_code(auditor, payment, IDENTITY, now),
        service.check_code(clerk, payment, IDENTITY, now),
    ]
    before = len(verifications(session))
    results = service.settle_codes(session, checks, now)
    assert [type(r).__name__ for r in results] == [
        "OnlineVerification",
        QrReplayed.__name__,
        QrWrongPurpose.__name__,
        QrCardBlocked.__name__,
        QrMalformed.__name__,
        PermissionDenied.__name__,
        "OnlineVerification",
    ]
    assert all(r.keep_changes for r in results if isinstance(r, YikatongError))
    entries = [e for e in verifications(session)[before:] if e.outcome != "denied"]
    assert [e.detail["result"] for e in entries] == [
        "accepted",
        "qr_replayed",
        "qr_wrong_purpose",
        "qr_card_blocked",
        "qr_malformed",
        "accepted",
    ]
    denied = session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "ecard.verify_code", AuditEntry.outcome == "denied"
        )
    )
    assert denied is not None
    assert denied.actor_id == auditor.id
    assert entries[3].object_id == str(lost.card.id)
    assert entries[1].detail["token"] == holder.card.token
    assert audit.verify_chain(session).ok
    # What one batch accepted, a later one refuses as a replay.
    (again,) = service.settle_codes(session, [service.check_code(clerk, fresh, IDENTITY, now)], now)
    assert isinstance(again, QrReplayed)


# --- the gateway with its own threads, on a database of its own -----------------------------


@pytest.fixture
def world(scratch_engine: Engine) -> tuple[sessionmaker[Session], str, list[str]]:
    """A migrated database, a logged-in clerk's session token and 40 fresh codes."""
    migrate.upgrade(scratch_engine)
    factory = sessionmaker(scratch_engine, expire_on_commit=False)
    with factory() as session, transaction(session):
        clerk = make_staff(session, Role.COUNTER_CLERK)
        codes = []
        for _ in range(4):
            resident = make_resident(session)
            issued_card(session, clerk.actor(), resident.id)
            holder = resident_actor(resident)
            service.issue_ecard(session, holder, resident.id, PASSWORD)
            codes += [
                service.issue_code(session, holder, resident.id, IDENTITY).text for _ in range(10)
            ]
        _, token = staff.login(
            session,
            username=clerk.username,
            password=clerk.password,
            code=clerk.code(),
            actor=Actor.anonymous(ip="127.0.0.1"),
        )
    return factory, token, codes


def test_the_gateway_batches_concurrent_requests(
    world: tuple[sessionmaker[Session], str, list[str]],
) -> None:
    factory, token, codes = world
    gateway = VerificationGateway(factory)
    caller = Actor.anonymous(ip="10.1.2.3", user_agent="validator", request_id="req-gateway-1")

    async def run() -> list[object]:
        requests = [gateway.verify(token, caller, text, IDENTITY) for text in codes]
        requests.append(gateway.verify(token, caller, codes[0], IDENTITY))  # a replay
        requests.append(gateway.verify("not-a-session", caller, codes[1], IDENTITY))
        return await asyncio.gather(*requests, return_exceptions=True)

    try:
        results = asyncio.run(run())
    finally:
        gateway.close()
    accepted = [r for r in results if isinstance(r, service.OnlineVerification)]
    assert len(accepted) == len(codes)
    assert isinstance(results[-2], QrReplayed)
    assert isinstance(results[-1], AuthenticationRequired)
    assert gateway.settled == len(codes) + 2
    assert gateway.batches < gateway.settled  # requests waiting together were settled together
    with factory() as session:
        entries = verifications(session)
        assert len(entries) == len(codes) + 1  # the unauthenticated request is not anybody's
        assert {e.ip for e in entries} == {"10.1.2.3"}
        assert {e.request_id for e in entries} == {"req-gateway-1"}
        assert {e.actor_kind for e in entries} == {"staff"}
        assert audit.verify_chain(session).ok


def test_a_failed_batch_fails_its_requests_and_keeps_nothing(
    world: tuple[sessionmaker[Session], str, list[str]],
) -> None:
    factory, token, codes = world

    class Broken(Exception):
        pass

    def failing_factory() -> Session:
        session = factory()

        def refuse(*_: object) -> None:
            raise Broken("disk full")

        session.commit = refuse  # type: ignore[method-assign]
        return session

    gateway = VerificationGateway(failing_factory)
    caller = Actor.anonymous(ip="10.1.2.3")
    try:
        with pytest.raises(Broken):
            asyncio.run(gateway.verify(token, caller, codes[0], IDENTITY))
    finally:
        gateway.close()
    with factory() as session:
        assert verifications(session) == []
        assert session.scalar(select(func.count()).select_from(AuditEntry)) > 0
    # Nothing was kept: the same code still verifies once the database works.
    healthy = VerificationGateway(factory)
    try:
        result = asyncio.run(healthy.verify(token, caller, codes[0], IDENTITY))
    finally:
        healthy.close()
    assert isinstance(result, service.OnlineVerification)
