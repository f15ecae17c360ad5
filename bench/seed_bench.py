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
import time

from bench.database import add_database_arguments, scratch_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=100_000)
    add_database_arguments(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    _tmp, engine = scratch_database(parser, args)

    from sqlalchemy import func, select

    from yikatong.db import job
    from yikatong.demo.seed import seed_residents
    from yikatong.residents.models import Resident

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
