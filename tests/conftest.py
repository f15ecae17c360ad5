"""Test harness: one freshly migrated database per session, each test in a rolled-back transaction.

The engine is SQLite (a temporary file) unless ``YIKATONG_TEST_DATABASE_URL`` names another
database (``make test-pg``). ``YIKATONG_TEST_REQUIRE=chromium,postgresql`` (set by CI) turns a
missing Chromium or PostgreSQL into a failure instead of a skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Settings are read once per process: point them at throw-away places before yikatong loads.
_TMP = Path(tempfile.mkdtemp(prefix="yikatong-tests-"))
TEST_DATABASE_URL = os.environ.get("YIKATONG_TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'test.db'}"
os.environ["YIKATONG_ENV"] = "test"
os.environ["YIKATONG_DATABASE_URL"] = TEST_DATABASE_URL
os.environ["YIKATONG_KEYSTORE_PATH"] = str(_TMP / "keys")
os.environ.pop("YIKATONG_MASTER_KEY", None)
os.environ.pop("YIKATONG_SECRET_KEY", None)

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Connection, Engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

import yikatong.models  # noqa: E402, F401 - every table and event handler registered

REQUIRED = {r.strip() for r in os.environ.get("YIKATONG_TEST_REQUIRE", "").split(",") if r.strip()}
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
IS_POSTGRESQL = TEST_DATABASE_URL.startswith("postgresql")


def _postgresql_reachable(url: str) -> str | None:
    """None when reachable, else the reason."""
    from sqlalchemy import create_engine

    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL unreachable at {url}: {exc.__class__.__name__}"
    return None


PG_PROBLEM = _postgresql_reachable(TEST_DATABASE_URL) if IS_POSTGRESQL else None


def pytest_sessionstart(session: pytest.Session) -> None:
    if "chromium" in REQUIRED and CHROMIUM is None:
        pytest.exit("Chromium is required here (YIKATONG_TEST_REQUIRE) but not installed", 1)
    if "postgresql" in REQUIRED and IS_POSTGRESQL and PG_PROBLEM:
        pytest.exit(f"PostgreSQL is required here (YIKATONG_TEST_REQUIRE): {PG_PROBLEM}", 1)


def pytest_report_header() -> list[str]:
    engine = "PostgreSQL" if IS_POSTGRESQL else "SQLite"
    lines = [f"yikatong test database: {engine} ({TEST_DATABASE_URL})"]
    if PG_PROBLEM:
        lines.append(f"database tests will be skipped: {PG_PROBLEM}")
    if CHROMIUM is None:
        lines.append("browser tests will be skipped: Chromium is not installed")
    return lines


def _reset_postgresql(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The session's database, migrated to head once."""
    if PG_PROBLEM:
        pytest.skip(PG_PROBLEM)
    from yikatong import migrate
    from yikatong.db import make_engine, use_engine

    eng = make_engine(TEST_DATABASE_URL)
    if IS_POSTGRESQL:
        _reset_postgresql(eng)
    migrate.upgrade(eng)
    use_engine(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def scratch_engine(engine: Engine) -> Iterator[Engine]:
    """An empty database of the engine under test (its own schema on PostgreSQL), for tests
    that must really commit: migrations, concurrency."""
    from yikatong.db import make_engine

    if IS_POSTGRESQL:
        schema = f"scratch_{uuid.uuid4().hex[:8]}"
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        scratch = make_engine(
            TEST_DATABASE_URL, connect_args={"options": f"-csearch_path={schema}"}
        )
        yield scratch
        scratch.dispose()
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    else:
        scratch = make_engine(f"sqlite:///{tempfile.mkdtemp(dir=_TMP)}/scratch.db")
        yield scratch
        scratch.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> Iterator[sessionmaker[Session]]:
    """Sessions whose commits become savepoints of the test's transaction."""
    from yikatong import db

    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    previous = db._session_factory
    db._session_factory = factory
    yield factory
    db._session_factory = previous


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.fixture(scope="session")
def app() -> object:
    from yikatong.app import create_app

    return create_app()


@pytest.fixture
def client(app: object, session_factory: sessionmaker[Session]) -> Iterator[TestClient]:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)
    app.state.session_factory = session_factory
    with TestClient(app, base_url="http://testserver") as c:
        yield c
    app.state.session_factory = None


@pytest.fixture
def browser_path() -> str:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return CHROMIUM
