"""The same code verified by several terminals at once is accepted exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from tests.card_factories import issued_card
from tests.ecard.conftest import PASSWORD, resident_actor
from tests.factories import make_resident, make_staff
from yikatong import migrate
from yikatong.db import transaction
from yikatong.ecard import service
from yikatong.ecard.errors import QrReplayed
from yikatong.ecard.qr import Purpose
from yikatong.kit.actor import Role

THREADS = 6


def test_concurrent_verifications_accept_a_code_once(scratch_engine: Engine) -> None:
    migrate.upgrade(scratch_engine)
    factory = sessionmaker(scratch_engine, expire_on_commit=False)
    with factory() as session, transaction(session):
        clerk = make_staff(session, Role.COUNTER_CLERK).actor()
        resident = make_resident(session)
        issued_card(session, clerk, resident.id)
        holder = resident_actor(resident)
        service.issue_ecard(session, holder, resident.id, PASSWORD)
        text = service.issue_code(session, holder, resident.id, Purpose.IDENTITY).text

    start = threading.Barrier(THREADS)

    def verify(_: int) -> str:
        start.wait()
        try:
            with factory() as session, transaction(session):
                service.verify_online(session, clerk, text, Purpose.IDENTITY)
        except QrReplayed:
            return "replayed"
        return "accepted"

    with ThreadPoolExecutor(THREADS) as pool:
        results = sorted(pool.map(verify, range(THREADS)))
    assert results == ["accepted"] + ["replayed"] * (THREADS - 1)
