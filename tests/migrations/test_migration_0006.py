"""Migration 0006 (background jobs, recipient phone): up and down, and back down it leaves
the applications table with its one-open-application index."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from yikatong import migrate


def _indexes(engine: Engine, table: str) -> set[str]:
    return {str(index["name"]) for index in inspect(engine).get_indexes(table)}


def _partial(engine: Engine, name: str) -> str:
    """The WHERE clause of a partial index (SQLite or PostgreSQL), as text."""
    [index] = [i for i in inspect(engine).get_indexes("card_applications") if i["name"] == name]
    options = index.get("dialect_options", {})
    where = options.get("sqlite_where", options.get("postgresql_where"))
    return str(where)


def test_0006_up_and_down(scratch_engine: Engine) -> None:
    migrate.upgrade(scratch_engine, "0005")
    assert "jobs" not in inspect(scratch_engine).get_table_names()
    before = _indexes(scratch_engine, "card_applications")
    migrate.upgrade(scratch_engine, "0006")
    assert "jobs" in inspect(scratch_engine).get_table_names()
    assert {"ix_jobs_status", "ix_jobs_region_created"} <= _indexes(scratch_engine, "jobs")
    columns = {c["name"] for c in inspect(scratch_engine).get_columns("card_applications")}
    assert "recipient_phone" in columns
    with scratch_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (kind, status, params, created_by_id, created_by, region_code,"
                " done, created_at) VALUES ('residents.import', 'queued', '{}', '1', 'clerk',"
                " '441600', 0, CURRENT_TIMESTAMP)"
            )
        )
    migrate.downgrade(scratch_engine, "0005")
    assert "jobs" not in inspect(scratch_engine).get_table_names()
    columns = {c["name"] for c in inspect(scratch_engine).get_columns("card_applications")}
    assert "recipient_phone" not in columns
    assert _indexes(scratch_engine, "card_applications") == before
    # SQLite rebuilds the table to drop a column: the index must stay partial.
    assert "submitted" in _partial(scratch_engine, "uq_card_applications_one_open")
    migrate.upgrade(scratch_engine)
    assert "jobs" in inspect(scratch_engine).get_table_names()
