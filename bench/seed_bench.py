"""Demo seeding on a fresh database: how long 100,000 residents take.

    python -m bench.seed_bench [--residents 100000] [--database URL]

Runs the same code as ``yikatong demo seed`` (generation, SM4-GCM encryption of three fields,
two blind indexes, categories, one transaction). Target: 100,000 residents <= 60 s on SQLite.
With ``--database postgresql+psycopg://... --drop-schema`` the public schema of that database is
dropped and recreated first: point it at a scratch database only.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--drop-schema",
        action="store_true",
        help="required with a PostgreSQL URL: its public schema is dropped and recreated",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="yikatong-bench-"))
    os.environ.setdefault("YIKATONG_KEYSTORE_PATH", str(tmp / "keys"))
    url = args.database or f"sqlite:///{tmp / 'bench.db'}"
    os.environ["YIKATONG_DATABASE_URL"] = url

    from sqlalchemy import func, select, text

    from yikatong import migrate
    from yikatong.db import job, make_engine, use_engine
    from yikatong.demo.seed import seed_residents
    from yikatong.residents.models import Resident

    if not url.startswith("sqlite") and not args.drop_schema:
        parser.error("this benchmark recreates the database schema: add --drop-schema")
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(engine)
    use_engine(engine)

    started = time.perf_counter()
    with job() as session:
        seed_residents(session, args.residents)
    elapsed = time.perf_counter() - started
    with job() as session:
        stored = session.scalar(select(func.count()).select_from(Resident))
    if stored != args.residents:
        raise SystemExit(f"expected {args.residents} residents, found {stored}")

    result = {
        "database": engine.dialect.name,
        "residents": args.residents,
        "seconds": round(elapsed, 1),
        "residents_per_s": round(args.residents / elapsed),
        "target_seconds_for_100k": 60,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['database']}: {args.residents:,} residents in {result['seconds']} s "
        f"({result['residents_per_s']:,}/s; target: 100,000 in <= 60 s)"
    )


if __name__ == "__main__":
    main()
