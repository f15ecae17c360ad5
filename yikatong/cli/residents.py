"""`yikatong residents`: bulk import from CSV/Excel and export to CSV (居民批量导入、导出)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from yikatong.cli.common import console, domain_errors, err_console, progress_bar
from yikatong.kit.actor import Actor
from yikatong.residents.errors import ImportFileInvalid
from yikatong.residents.importing import ImportReport, error_rows
from yikatong.residents.models import ResidentStatus

app = typer.Typer(help="The resident registry (居民信息): import and export.", no_args_is_help=True)

# Printing a million refusals helps nobody: the rest are in the --report file.
SHOWN_ERRORS = 200
EXIT_REJECTED = 1
EXIT_PARTIAL = 2


def _system_actor(command: str) -> Actor:
    from yikatong.settings import get_settings

    # Scoped to the deployment's city: an import cannot register people elsewhere.
    return Actor.system(f"cli:residents {command}", region_code=get_settings().region_code)


def write_report(path: Path, rows: list[dict[str, object]]) -> None:
    # UTF-8 with BOM so Excel shows the Chinese messages and names of fields correctly.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["row", "field", "message"])
        writer.writeheader()
        writer.writerows(rows)


def print_errors(rows: list[dict[str, object]], report: Path | None) -> None:
    table = Table("row", "field", "message", title="refused rows")
    for row in rows[:SHOWN_ERRORS]:
        table.add_row(str(row["row"]), escape(str(row["field"])), escape(str(row["message"])))
    err_console.print(table)
    if len(rows) > SHOWN_ERRORS:
        hint = f"see {report}" if report else "write them all with --report FILE"
        err_console.print(f"... and {len(rows) - SHOWN_ERRORS:,} more ({hint})")


def refuse_file(exc: ImportFileInvalid, report: Path | None) -> NoReturn:
    """The whole file is refused: reported like a bad row, nothing imported."""
    refused: list[dict[str, object]] = [{"row": exc.row, "field": exc.field, "message": exc.detail}]
    print_errors(refused, report)
    if report is not None:
        write_report(report, refused)
    err_console.print(f"[red]refused[/red] {escape(exc.detail)}; nothing was imported")
    raise typer.Exit(EXIT_REJECTED)


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
    """Import residents from FILE with columns id_number, name, phone, address, region_code,
    town_code, categories (';'-separated codes).

    Every row is checked like a registration at the counter. Exit status: 0 all rows imported,
    1 nothing imported (a bad row without --skip-bad, or an unreadable file), 2 some rows
    refused with --skip-bad.
    """
    from yikatong.crypto.sm3 import sm3_hex
    from yikatong.db import job
    from yikatong.residents import importing

    actor = _system_actor("import")
    try:
        table = importing.open_table(file)
    except ImportFileInvalid as exc:
        refuse_file(exc, report)
    digest = sm3_hex(file.read_bytes())
    with domain_errors(), progress_bar() as bar:
        task = bar.add_task("checking and importing", total=table.total)
        try:
            with job() as session:
                result = importing.import_residents(
                    session,
                    actor,
                    table.rows,
                    skip_bad=skip_bad,
                    total=table.total,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    source_digest=digest,
                )
        except ImportFileInvalid as exc:  # found unreadable part-way; the job rolled back
            bar.stop()
            refuse_file(exc, report)
    conclude_import(result, report)


def conclude_import(result: ImportReport, report: Path | None) -> None:
    """Show what an import did (and write its report); exit 1 if nothing was imported, 2 if
    some rows were refused with --skip-bad."""
    errors = error_rows(result)
    if errors:
        print_errors(errors, report)
    if report is not None:
        write_report(report, errors)
        console.print(f"report: {report} ({len(errors):,} refused fields)")
    console.print(
        f"{result.rows:,} rows read, {result.imported:,} imported, {result.rejected_rows:,} refused"
    )
    if not result.written:
        err_console.print(
            "[red]nothing was imported[/red]: fix the rows above, or run with --skip-bad to "
            "import the good rows"
        )
        raise typer.Exit(EXIT_REJECTED)
    if result.rejected_rows:
        raise typer.Exit(EXIT_PARTIAL)


@app.command("export")
def export(
    file: Path = typer.Argument(..., dir_okay=False, help="The CSV file to write"),
    status: str = typer.Option(
        "active", help="active, deceased, emigrated or all", case_sensitive=False
    ),
    region: str | None = typer.Option(None, help="Only this county or city (GB/T 2260 code)"),
    full_id: bool = typer.Option(
        False,
        "--full-id",
        help="Write ID numbers, names, phones and addresses in full (audited as such); "
        "masked otherwise",
    ),
) -> None:
    """Export residents to a CSV file (UTF-8 with BOM for Excel); masked by default."""
    from yikatong.db import job
    from yikatong.residents import service
    from yikatong.residents.schemas import EXPORT_COLUMNS, export_record
    from yikatong.residents.validation import china_today

    chosen = status.lower()
    if chosen != "all" and chosen not in {s.value for s in ResidentStatus}:
        raise typer.BadParameter(f"unknown status {status!r}", param_hint="--status")
    actor = _system_actor("export")
    today = china_today()
    with domain_errors(), job() as session:
        selection = service.export(
            session,
            actor,
            status=None if chosen == "all" else ResidentStatus(chosen),
            region_code=region,
            full=full_id,
        )
        with (
            progress_bar() as bar,
            file.open("w", encoding="utf-8-sig", newline="") as fh,
        ):
            task = bar.add_task("exporting", total=selection.total)
            writer = csv.DictWriter(fh, fieldnames=list(EXPORT_COLUMNS))
            writer.writeheader()
            for done, resident in enumerate(selection.residents, start=1):
                writer.writerow(export_record(resident, today, full=full_id))
                if done % 1000 == 0:
                    bar.update(task, completed=done)
            bar.update(task, completed=selection.total)
    kind = "in full" if full_id else "masked"
    console.print(f"{selection.total:,} residents exported to {file} ({kind})")
