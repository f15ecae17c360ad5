"""`yikatong cards`: card production with the factory, scheduled sweeps, status reports."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from yikatong.cli.common import console, domain_errors, err_console, progress_bar

app = typer.Typer(
    help="Cards (社会保障卡): bulk applications, production, sweeps, reports.",
    no_args_is_help=True,
)
production = typer.Typer(help="Card production with the card factory (制卡).", no_args_is_help=True)
app.add_typer(production, name="production")


def _operator(region: str):  # type: ignore[no-untyped-def]
    from yikatong.kit.actor import Actor

    return Actor.system("cli:cards", region_code=region)


@production.command("export")
def production_export(
    out: Path = typer.Argument(..., help="Instruction file to write for the factory (CSV)"),
    region: str = typer.Option("000000", help="Only applications inside this region"),
    limit: int = typer.Option(10_000, min=1, help="At most this many applications"),
) -> None:
    """Start production of every checked application; write the factory instruction file."""
    from yikatong.cards import production as prod
    from yikatong.db import job

    if out.exists():
        err_console.print(f"[red]error[/red] {out} exists; refusing to overwrite it")
        raise typer.Exit(1)
    with domain_errors(), job() as session, progress_bar() as bar:
        task = bar.add_task("starting production", total=None)
        batch, rows = prod.export_batch(
            session,
            _operator(region),
            limit=limit,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        # The file carries names and ID numbers for the card face: owner-only permissions.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(prod.write_csv(rows, prod.INSTRUCTION_COLUMNS))
    console.print(f"batch [bold]{batch}[/bold]: {len(rows)} card(s) in production → {out}")


@production.command("import")
def production_import(
    result_file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    region: str = typer.Option("000000", help="Only cards inside this region"),
    errors_out: Path | None = typer.Option(None, "--errors", help="Write bad rows to this CSV"),
) -> None:
    """Apply the factory's result file: ready, mailed or failed per card; bad rows reported."""
    from yikatong.cards import production as prod
    from yikatong.db import job

    text = result_file.read_text(encoding="utf-8")
    lines = max(0, len(text.strip().splitlines()) - 1)
    with domain_errors(), job() as session, progress_bar() as bar:
        task = bar.add_task("applying results", total=lines)
        report = prod.import_results(
            session,
            _operator(region),
            prod.parse_result_file(text),
            progress=lambda done: bar.update(task, completed=done),
        )
    console.print(
        f"ready {report.ready}, mailed {report.mailed}, failed {report.rejected}, "
        f"bad rows {len(report.errors)}"
    )
    if report.errors:
        table = Table("line", "card", "problem", title="rows not applied")
        for e in report.errors:
            table.add_row(str(e.line), e.card_number, e.message)
        err_console.print(table)
        if errors_out is not None:
            with errors_out.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["line", "card_number", "problem"])
                writer.writerows([e.line, e.card_number, e.message] for e in report.errors)
        raise typer.Exit(2)


@app.command("import")
def import_(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="A .csv (UTF-8) or .xlsx file"
    ),
    skip_bad: bool = typer.Option(
        False,
        "--skip-bad",
        help="Write the good rows and report the bad ones (default: nothing is written if any "
        "row is bad)",
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Also write the refused rows (row, field, message) to this CSV"
    ),
) -> None:
    """Apply for cards in bulk (批量申领) from FILE: columns id_number and channel, and as
    needed name, mailing_address, recipient_phone, proxy_name, proxy_id_number,
    proxy_relation, birth_certificate_number, outlet, note.

    Every row meets the rules of an application at the counter. Exit status: 0 all rows
    imported, 1 nothing imported (a bad row without --skip-bad, or an unreadable file), 2 some
    rows refused with --skip-bad.
    """
    from yikatong.cards import importing
    from yikatong.cli.residents import conclude_import, refuse_file
    from yikatong.crypto.sm3 import sm3_hex
    from yikatong.db import job
    from yikatong.kit.actor import Actor
    from yikatong.residents.errors import ImportFileInvalid
    from yikatong.residents.importing import open_table
    from yikatong.settings import get_settings

    # Scoped to the deployment's city: an import cannot apply for people elsewhere.
    actor = Actor.system("cli:cards import", region_code=get_settings().region_code)
    try:
        table = open_table(file, importing.COLUMNS, importing.REQUIRED)
    except ImportFileInvalid as exc:
        refuse_file(exc, report)
    digest = sm3_hex(file.read_bytes())
    with domain_errors(), progress_bar() as bar:
        task = bar.add_task("checking", total=table.total)

        def progress(done: int, total: int | None, stage: str) -> None:
            bar.update(task, completed=done, total=total, description=stage)

        try:
            result = importing.import_applications(
                job,
                actor,
                table.rows,
                skip_bad=skip_bad,
                total=table.total,
                progress=progress,
                source_digest=digest,
            )
        except ImportFileInvalid as exc:  # found unreadable part-way; nothing was written
            bar.stop()
            refuse_file(exc, report)
    conclude_import(result, report)


@app.command("sweep")
def sweep() -> None:
    """Let lapsed temporary loss reports expire (run it from a scheduler, e.g. hourly)."""
    from yikatong.cards import service
    from yikatong.db import job

    with domain_errors(), job() as session:
        count = service.sweep_temporary_losses(session)
    console.print(f"{count} temporary loss report(s) lapsed")


@app.command("receipt")
def receipt(
    card_id: int = typer.Argument(..., min=1, help="The card's id"),
    kind: Literal["issue", "replacement"] = typer.Option(
        ..., "--kind", help="issue (领卡回执) or replacement (补换卡受理回执, of the old card)"
    ),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="PDF file to write"),
    region: str = typer.Option("000000", help="Only cards inside this region"),
) -> None:
    """Write a counter receipt as PDF, rebuilt from the card's records (an audited read)."""
    from yikatong.cards import receipts
    from yikatong.db import job

    if out.exists():
        err_console.print(f"[red]error[/red] {out} exists; refusing to overwrite it")
        raise typer.Exit(1)
    with domain_errors(), job() as session:
        made = receipts.receipt(session, _operator(region), card_id, receipts.ReceiptKind(kind))
        # Written inside the job: when the file cannot be written, the audited read is undone.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(made.pdf)
    console.print(f"{made.title} {made.details.reference} → {out}")


@app.command("report")
def report(
    out: Path | None = typer.Option(None, help="Also write the report as CSV"),
    region: str = typer.Option("000000", help="Only cards inside this region"),
) -> None:
    """Card counts by county and state."""
    from sqlalchemy import func, select

    from yikatong.cards.models import Card, CardState
    from yikatong.db import job
    from yikatong.deps import region_label
    from yikatong.kit.actor import scope_prefix

    prefix = "" if region == "000000" else scope_prefix(region)
    with job() as session:
        rows = session.execute(
            select(Card.region_code, Card.state, func.count())
            .where(Card.region_code.startswith(prefix))
            .group_by(Card.region_code, Card.state)
            .order_by(Card.region_code)
        ).all()
    counts: dict[str, dict[str, int]] = {}
    for code, state, n in rows:
        counts.setdefault(code, {})[state] = n
    states = [s.value for s in CardState]
    table = Table("county", *states, "total")
    for code, by_state in counts.items():
        table.add_row(
            region_label(code),
            *(str(by_state.get(s, 0)) for s in states),
            str(sum(by_state.values())),
        )
    console.print(table)
    if out is not None:
        with out.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["region_code", *states, "total"])
            for code, by_state in counts.items():
                writer.writerow(
                    [code, *(by_state.get(s, 0) for s in states), sum(by_state.values())]
                )
