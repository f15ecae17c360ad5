"""Registry lookups at city scale: latency of finding a resident by ID number or mobile.

    python -m bench.registry_bench [--residents 1000000] [--lookups 5000] [--json]
                                   [--database URL --drop-schema]

Seeds the residents with the demo generator and the bulk path (``yikatong demo seed``; a
million take about three minutes on SQLite), then times one lookup at a time:

* ``identity_by_id_number`` — the verification hot path (``residents.repository``): blind
  index, one index probe, one field decrypted. Target: p99 <= 5 ms.
* the same for an ID number that is not registered (a miss);
* ``service.search`` by ID number and by mobile as a clerk's search request runs it: its own
  session and transaction, permission and scope, count + page + categories, the audit entry
  appended to the SM3 chain, commit.

With ``--database postgresql+psycopg://... --drop-schema`` the public schema of that database
is dropped and recreated first: point it at a scratch database only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.database import add_database_arguments, scratch_database

WARMUP = 200


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return {
        "n": len(ordered),
        "mean_ms": round(statistics.fmean(ordered) / 1e6, 3),
        "p50_ms": round(at(0.50), 3),
        "p95_ms": round(at(0.95), 3),
        "p99_ms": round(at(0.99), 3),
        "max_ms": round(ordered[-1] / 1e6, 3),
    }


def _time_each(items: list[Any], call: Callable[[Any], object]) -> list[int]:
    """Per-call wall time of ``call`` over ``items``, after warming caches on the first few."""
    warm = min(WARMUP, len(items) // 4)
    for item in items[:warm]:
        call(item)
    samples = []
    clock = time.perf_counter_ns
    for item in items[warm:]:
        started = clock()
        call(item)
        samples.append(clock() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=5_000, help="timed lookups per kind")
    add_database_arguments(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seed", type=int, default=441600)
    args = parser.parse_args()

    _tmp, engine = scratch_database(parser, args, "registry.db")

    from sqlalchemy import select

    import yikatong.models  # noqa: F401 - every table and event handler, as in the app
    from yikatong.db import job, session_factory
    from yikatong.demo.seed import seed_residents
    from yikatong.kit.actor import ROLE_PERMISSIONS, Actor, ActorKind, Role
    from yikatong.reference.idnumber import make_id_number
    from yikatong.residents import repository, service
    from yikatong.residents.models import Resident

    started = time.perf_counter()
    last_report = [started]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last_report[0] >= 15 or done == total:
            last_report[0] = now
            print(f"  seeded {done:,}/{total:,} ({now - started:.0f} s)", file=sys.stderr)

    with job() as session:
        seed_residents(session, args.residents, seed=args.seed, progress=progress)
    seed_seconds = time.perf_counter() - started

    rng = random.Random(args.seed)
    count = min(args.lookups + WARMUP, args.residents)
    ids = rng.sample(range(1, args.residents + 1), count)
    with job() as session:
        people = [
            (r.id_number, r.phone)
            for r in session.scalars(select(Resident).where(Resident.id.in_(ids)))
        ]
    rng.shuffle(people)
    numbers = [number for number, _phone in people]
    phones = [phone for _number, phone in people if phone]
    # Valid numbers nobody holds: sequence digits the generator never draws for that date
    # would be a guess, so test each against the registry first.
    misses: list[str] = []
    with job() as session:
        while len(misses) < len(numbers):
            candidate = make_id_number(
                "441625",
                dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(30_000)),
                rng.randrange(1000),
            )
            if repository.identity_by_id_number(session, candidate) is None:
                misses.append(candidate)

    clerk = Actor(
        kind=ActorKind.STAFF,
        id="bench",
        name="bench clerk",
        role=Role.COUNTER_CLERK.value,
        region_code="441600",
        permissions=ROLE_PERMISSIONS[Role.COUNTER_CLERK],
    )
    factory = session_factory()

    results: dict[str, dict[str, float]] = {}
    with factory() as session:
        results["identity_by_id_number (hit)"] = _percentiles(
            _time_each(numbers, lambda n: repository.identity_by_id_number(session, n))
        )
        results["identity_by_id_number (miss)"] = _percentiles(
            _time_each(misses, lambda n: repository.identity_by_id_number(session, n))
        )
        session.rollback()

    def search(query: service.ResidentQuery) -> None:
        with factory() as session, session.begin():
            page = service.search(session, clerk, query)
            if page.total != 1 and query.id_number:
                raise SystemExit(f"expected one resident, found {page.total}")

    results["service.search by ID number (request)"] = _percentiles(
        _time_each(numbers, lambda n: search(service.ResidentQuery(id_number=n)))
    )
    results["service.search by mobile (request)"] = _percentiles(
        _time_each(phones, lambda p: search(service.ResidentQuery(phone=p)))
    )

    summary = {
        "database": engine.dialect.name,
        "residents": args.residents,
        "seed_seconds": round(seed_seconds, 1),
        "target_p99_ms": 5,
        "lookups": results,
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"{summary['database']}: {args.residents:,} residents seeded in {seed_seconds:.1f} s "
        f"({args.residents / seed_seconds:,.0f}/s)"
    )
    header = f"{'lookup':<40} {'n':>6} {'mean':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(
            f"{name:<40} {int(r['n']):>6} {r['mean_ms']:>8.3f} {r['p50_ms']:>8.3f} "
            f"{r['p95_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['max_ms']:>8.3f}"
        )
    print("(milliseconds; target: identity_by_id_number p99 <= 5 ms)")


if __name__ == "__main__":
    main()
