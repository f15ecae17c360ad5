"""Migrations run both ways and leave the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from yikatong import migrate
from yikatong.models import Base


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
