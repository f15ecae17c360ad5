"""Concurrent writers never fork or break the audit chain (head row lock / SQLite write lock)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from yikatong import migrate
from yikatong.audit import service as audit
from yikatong.db import transaction
from yikatong.kit.actor import Actor

THREADS = 6
PER_THREAD = 15


def test_parallel_appends_keep_one_chain(scratch_engine: Engine) -> None:
    migrate.upgrade(scratch_engine)
    factory = sessionmaker(scratch_engine, expire_on_commit=False)

    def worker(n: int) -> int:
        actor = Actor.system(f"worker-{n}")
        for i in range(PER_THREAD):
            with factory() as session, transaction(session):
                audit.record(session, actor, "test.parallel", object_id=f"{n}-{i}")
        return n

    with ThreadPoolExecutor(THREADS) as pool:
        assert sorted(pool.map(worker, range(THREADS))) == list(range(THREADS))

    with factory() as session:
        report = audit.verify_chain(session)
    assert report.ok, report.problems
    assert report.checked == THREADS * PER_THREAD
