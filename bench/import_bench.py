"""Batch import of card applications (批量申领): rows per second from a file to the database.

    python -m bench.import_bench [--rows 10000] [--database URL --drop-schema] [--json]

Seeds residents with the demo generator, writes a CSV of ``--rows`` applications for them
(three in five at the counter, the rest online with a mailing address and a recipient phone,
one in ten with a name to cross-check), then imports it exactly as ``yikatong cards import``
does: both passes (checking, then writing), every rule of ``cards.service.apply``, the audit
entries, the commit. Target: 10,000 rows at no less than 1,000 rows/s on SQLite. For
comparison it also times ``cards.service.apply`` called once per row, the path a form takes.

With ``--database postgresql+psycopg://... --drop-schema`` the public schema of that database
is dropped and recreated first: point it at a scratch database only.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from typing import Any

from bench.database import add_database_arguments, scratch_database

TARGET_ROWS_PER_S = 1_000.0
PER_ROW_SAMPLE = 1_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    add_database_arguments(parser)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp, engine = scratch_database(parser, args)

    from sqlalchemy import func, select

    import yikatong.models  # noqa: F401 - every table, handler and job kind
    from yikatong.audit.models import AuditEntry
    from yikatong.cards import importing
    from yikatong.cards import service as cards
    from yikatong.cards.models import CardApplication, Channel
    from yikatong.db import job
    from yikatong.demo.seed import seed_residents
    from yikatong.kit.actor import Actor
    from yikatong.residents.importing import open_table
    from yikatong.residents.models import Resident, ResidentStatus
    from yikatong.residents.service import age_on
    from yikatong.residents.validation import china_today

    # Enough adults for the file and the per-row sample (the demo city has children too).
    wanted = args.rows + PER_ROW_SAMPLE
    today = china_today()
    with job() as session:
        seed_residents(session, int(wanted * 1.4) + 1000)
    with job() as session:
        people = [
            (resident.id, resident.id_number, resident.name)
            for resident in session.scalars(
                select(Resident).where(Resident.status == ResidentStatus.ACTIVE.value)
            )
            if age_on(resident.birth_date, today) >= 1
        ]
    if len(people) < wanted:
        raise SystemExit(f"only {len(people)} residents for {wanted} applications")
    in_file, for_apply = people[: args.rows], people[args.rows : wanted]

    path = tmp / "applications.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id_number", "name", "channel", "mailing_address", "recipient_phone"])
        for n, (_id, number, name) in enumerate(in_file):
            online = n % 5 >= 3
            writer.writerow(
                [
                    number,
                    name if n % 10 == 0 else "",
                    "online" if online else "counter",
                    "广东省河源市源城区文明路1号" if online else "",
                    "13812345678" if online else "",
                ]
            )

    actor = Actor.system("bench:import", region_code="441600")
    table = open_table(path, importing.COLUMNS, importing.REQUIRED)
    started = time.perf_counter()
    report = importing.import_applications(job, actor, table.rows, total=table.total)
    elapsed = time.perf_counter() - started
    with job() as session:
        stored = session.scalar(select(func.count()).select_from(CardApplication))
        audited = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "card.apply")
        )
    if report.errors or stored != args.rows or audited != args.rows:
        raise SystemExit(
            f"import incomplete: {len(report.errors)} errors, {stored} stored, {audited} audited"
        )

    started = time.perf_counter()
    with job() as session:
        for resident_id, _number, _name in for_apply:
            cards.apply(session, actor, resident_id=resident_id, channel=Channel.COUNTER)
    per_row = len(for_apply) / (time.perf_counter() - started)

    result: dict[str, Any] = {
        "database": engine.dialect.name,
        "rows": args.rows,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(args.rows / elapsed),
        "target_rows_per_s": TARGET_ROWS_PER_S,
        "apply_per_row_per_s": round(per_row),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['database']}: {args.rows:,} applications imported in {result['seconds']} s "
        f"({result['rows_per_s']:,} rows/s; target >= {TARGET_ROWS_PER_S:,.0f}); "
        f"cards.service.apply one row at a time: {result['apply_per_row_per_s']:,}/s"
    )


if __name__ == "__main__":
    main()
