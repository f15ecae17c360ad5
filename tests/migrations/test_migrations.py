"""Migrations run both ways and leave the schema the models describe."""

from __future__ import annotations

import os
import tempfile
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from tests.conftest import IS_POSTGRESQL, TEST_DATABASE_URL
from yikatong import migrate
from yikatong.db import make_engine
from yikatong.models import Base


@pytest.fixture
def scratch_engine(engine: Engine) -> Engine:
    """An empty database of the engine under test (a schema on PostgreSQL)."""
    if IS_POSTGRESQL:
        schema = f"mig_{uuid.uuid4().hex[:8]}"
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
        path = os.path.join(tempfile.mkdtemp(), "scratch.db")
        scratch = make_engine(f"sqlite:///{path}")
        yield scratch
        scratch.dispose()


def test_upgrade_downgrade_upgrade(scratch_engine: Engine) -> None:
    migrate.upgrade(scratch_engine)
    assert "audit_log" in inspect(scratch_engine).get_table_names()
    migrate.downgrade(scratch_engine, "base")
    assert "audit_log" not in inspect(scratch_engine).get_table_names()
    migrate.upgrade(scratch_engine)
    with scratch_engine.connect() as conn:
        head = conn.execute(text("SELECT last_id FROM audit_head WHERE id = 1")).scalar_one()
    assert head == 0


def test_models_match_migrations(scratch_engine: Engine) -> None:
    migrate.upgrade(scratch_engine)
    with scratch_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"
