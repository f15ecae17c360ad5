"""The scratch database every benchmark starts from: a temporary SQLite file by default, or a
PostgreSQL database whose public schema is recreated (only when asked with ``--drop-schema``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument(
        "--drop-schema",
        action="store_true",
        help="required with a PostgreSQL URL: its public schema is dropped and recreated",
    )


def scratch_database(
    parser: argparse.ArgumentParser, args: argparse.Namespace, filename: str = "bench.db"
) -> tuple[Path, Engine]:
    """A temporary folder (keys, files) and a migrated engine the process now uses.

    Settles the environment before the platform is imported, so its settings read the
    benchmark's database and key ring, never the developer's own.
    """
    tmp = Path(tempfile.mkdtemp(prefix="yikatong-bench-"))
    os.environ.setdefault("YIKATONG_KEYSTORE_PATH", str(tmp / "keys"))
    url = args.database or f"sqlite:///{tmp / filename}"
    os.environ["YIKATONG_DATABASE_URL"] = url
    if not url.startswith("sqlite") and not args.drop_schema:
        parser.error("this benchmark recreates the database schema: add --drop-schema")

    from sqlalchemy import text

    import yikatong.models  # noqa: F401 - every table and event handler, as in the app
    from yikatong import migrate
    from yikatong.db import make_engine, use_engine

    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(engine)
    use_engine(engine)
    return tmp, engine
