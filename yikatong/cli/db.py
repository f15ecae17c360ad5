"""`yikatong db`: schema migrations."""

from __future__ import annotations

import typer

from yikatong.cli.common import console

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Migrate the database to REVISION (default: the newest)."""
    from yikatong import migrate
    from yikatong.db import get_engine

    engine = get_engine()
    migrate.upgrade(engine, revision)
    console.print(f"database at [bold]{revision}[/bold] ({engine.url.render_as_string()})")


@app.command()
def downgrade(revision: str) -> None:
    """Migrate the database back to REVISION."""
    from yikatong import migrate
    from yikatong.db import get_engine

    migrate.downgrade(get_engine(), revision)
    console.print(f"database at [bold]{revision}[/bold]")
