"""Engine, sessions and the one rule about transactions.

The request (or CLI job) owns the transaction: :func:`transaction` commits when the block ends
normally and rolls back when it raises. Services only ``flush()``; they never commit. The single
exception is an error that records a fact which must survive the failure (a failed login, a
denied access): such an error sets ``keep_changes = True`` and the owner commits what the
service flushed before raising it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from yikatong.settings import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every engine (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store timezone-aware UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
        return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}  # noqa: RUF012


SQLITE_WRITER_TIMEOUT_S = 10


def _configure_sqlite(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, decide where transactions begin (savepoints then work).

    Transactions start with ``BEGIN IMMEDIATE``: almost every request appends to the audit
    chain, and a deferred transaction that read first would fail with SQLITE_BUSY when it
    tries to write after another writer committed. Taking the write lock up front makes
    concurrent requests queue (``busy_timeout``) instead of failing.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    # SQLite's busy handler waits with growing sleeps (up to 100 ms each), so 30 concurrent
    # requests queueing for the write lock would take seconds. An in-process lock taken at
    # BEGIN and released at COMMIT/ROLLBACK queues them instead and wakes the next one at
    # once. The lock belongs to the connection, not the thread: FastAPI may run a request's
    # query and its commit on different worker threads. (The embedded engine serves one
    # process; PostgreSQL needs none of this.)
    writer = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if not writer.acquire(timeout=SQLITE_WRITER_TIMEOUT_S):
            raise TimeoutError("the database stayed busy; try again")
        connection.info["yikatong_writer"] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            connection.info.pop("yikatong_writer", None)
            writer.release()
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection: Any) -> None:
        if connection.info.pop("yikatong_writer", False):
            writer.release()


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    url = url or get_settings().database_url
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None


def get_engine() -> Engine:
    global _engine, _session_factory  # noqa: PLW0603 - process-wide engine, created once
    if _engine is None:
        _engine = make_engine()
        _session_factory = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def session_factory() -> sessionmaker[Session]:
    get_engine()
    if _session_factory is None:  # pragma: no cover - get_engine() always sets it
        raise RuntimeError("session factory not initialised")
    return _session_factory


def use_engine(engine: Engine) -> None:
    """Point the process at another engine (tests, CLI ``--database``)."""
    global _engine, _session_factory  # noqa: PLW0603
    _engine = engine
    _session_factory = sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """Own the transaction of ``session``: commit on success, roll back on error."""
    try:
        yield session
    except BaseException as exc:
        if getattr(exc, "keep_changes", False):
            session.commit()
        else:
            session.rollback()
        raise
    else:
        session.commit()


@contextmanager
def savepoint(session: Session) -> Iterator[Session]:
    """Run part of a request in a savepoint: an error undoes that part only, except what an
    error with ``keep_changes`` must keep (a counted wrong password, an audited denial).

    Forms use it to show a refusal on the page while the request's transaction commits.
    """
    nested = session.begin_nested()
    try:
        yield session
    except BaseException as exc:
        if getattr(exc, "keep_changes", False):
            nested.commit()
        else:
            nested.rollback()
        raise
    else:
        nested.commit()


@contextmanager
def job() -> Iterator[Session]:
    """A CLI command or background job: one session, one transaction it owns."""
    with session_factory()() as session, transaction(session):
        yield session
