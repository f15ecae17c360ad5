"""Encrypted-field writes and blind-index lookups on a fresh SQLite database (one core).

    python -m bench.fields_bench [--residents 20000] [--lookups 20000] [--database URL]

Writes residents through the same bulk path as imports (SM4-GCM for ID number, phone and
address, SM3-HMAC blind indexes), then looks residents up by ID number the way the registry
does: blind index -> indexed probe -> row with the ID number decrypted. Target: >= 5,000
lookups/s on SQLite.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from bench.database import add_database_arguments, scratch_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    add_database_arguments(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true", help="cProfile the lookups")
    args = parser.parse_args()

    _tmp, engine = scratch_database(parser, args)

    import datetime as dt

    from yikatong.db import job
    from yikatong.demo.seed import ResidentGenerator
    from yikatong.reference.profile import load_profile
    from yikatong.residents.repository import (
        bulk_add_residents,
        find_by_id_number,
        identity_by_id_number,
    )

    generator = ResidentGenerator(load_profile("441600"), seed=7, today=dt.date(2026, 11, 25))
    people = list(generator.residents(args.residents))

    started = time.perf_counter()
    with job() as session:
        for i in range(0, len(people), 5_000):
            bulk_add_residents(session, people[i : i + 5_000])
    write_s = time.perf_counter() - started

    rng = random.Random(1)
    targets = [rng.choice(people).id_number for _ in range(args.lookups)]

    def lookups() -> float:
        """The verification path: identity facts by ID number."""
        with job() as session:
            started = time.perf_counter()
            for number in targets:
                found = identity_by_id_number(session, number)
                if found is None or found.id_number != number:
                    raise SystemExit(f"lookup failed for a known resident ({number[:6]}...)")
            return time.perf_counter() - started

    def entity_lookups() -> float:
        """The whole ORM entity (all three encrypted fields decrypted)."""
        with job() as session:
            started = time.perf_counter()
            for number in targets:
                resident = find_by_id_number(session, number)
                if resident is None or resident.id_number != number:
                    raise SystemExit(f"lookup failed for a known resident ({number[:6]}...)")
                session.expunge(resident)
            return time.perf_counter() - started

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        lookup_s = profiler.runcall(lookups)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)
    else:
        lookup_s = lookups()
    entity_s = entity_lookups()

    result = {
        "database": engine.dialect.name,
        "residents": args.residents,
        "writes_per_s": round(args.residents / write_s),
        "lookups": args.lookups,
        "lookups_per_s": round(args.lookups / lookup_s),
        "entity_lookups_per_s": round(args.lookups / entity_s),
        "target_lookups_per_s": 5_000,
    }
    _report(result, args)


def _report(result: dict[str, object], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(result))
        return
    print(f"database           {result['database']}")
    print(
        f"encrypted writes   {result['writes_per_s']:>8,} residents/s "
        f"({args.residents:,} rows, 3 SM4-GCM fields + 2 blind indexes each)"
    )
    print(
        f"blind-index lookup {result['lookups_per_s']:>8,} lookups/s "
        f"(target >= 5,000; {args.lookups:,} lookups, identity with ID number decrypted)"
    )
    print(
        f"full-row lookup    {result['entity_lookups_per_s']:>8,} lookups/s "
        "(ORM entity, all three encrypted fields decrypted)"
    )


if __name__ == "__main__":
    main()
