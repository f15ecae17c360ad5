"""Importing residents from a file (批量导入): CSV (UTF-8, BOM tolerated) or Excel .xlsx.

Columns: ``id_number, name, phone, address, region_code, town_code, categories`` (any order;
``categories`` is a ``;``-separated list of category codes). Every row goes through the same
rules as a registration at the counter (:func:`validation.check_registration`), plus
duplicates inside the file and against the registry. Row numbers are those a spreadsheet shows
(the header is row 1).

Two modes: all or nothing (the default: one bad row and nothing is written) and ``skip_bad``
(good rows are written, every bad row is reported). Either way each refused row appears in
the report with its field and reason: none is lost silently. Good rows are written in batches
of 5,000 through :func:`repository.bulk_add_residents`, inside a savepoint of the caller's
transaction, so the all-or-nothing mode can take back batches written before a bad row.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.crypto.fields import blind_index
from yikatong.errors import N_
from yikatong.jobs import service as jobs
from yikatong.kit.actor import Actor, Permission
from yikatong.residents import repository
from yikatong.residents.errors import FieldProblem, ImportFileInvalid
from yikatong.residents.repository import NewResident
from yikatong.residents.validation import (
    ResidentInput,
    check_categories,
    check_registration,
    china_today,
)

if TYPE_CHECKING:
    from yikatong.jobs.runner import JobContext

COLUMNS = ("id_number", "name", "phone", "address", "region_code", "town_code", "categories")
BATCH = 5_000
CSV_SUFFIXES = frozenset({".csv", ".txt"})
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm"})
_SCAN_CHUNK = 1 << 20

Row = Mapping[str, object]
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, order=True)
class RowError:
    """One refused field of one row; ``row`` counts as a spreadsheet does (header = 1).

    ``message`` is the English text; ``template`` and ``params`` are the msgid and its
    ``{name}`` fields, so a page can show the message in the clerk's language.
    """

    row: int
    field: str
    message: str
    template: str = dataclasses.field(default="", compare=False)
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, row: int, problem: FieldProblem) -> RowError:
        return cls(row, problem.field, problem.text, problem.message, dict(problem.params))

    def as_dict(self) -> dict[str, Any]:
        """The error as stored with a job's report."""
        return {
            "row": self.row,
            "field": self.field,
            "message": self.message,
            "template": self.template or self.message,
            "params": dict(self.params),
        }


@dataclass(frozen=True)
class Table:
    """An opened import file: its data rows (numbered) and, when known, how many there are."""

    rows: Iterator[tuple[int, Row]]
    total: int | None


def _check_header(
    cells: Sequence[object], columns: Sequence[str], required: Sequence[str]
) -> list[str]:
    names = [str(c).strip().lower() if c is not None else "" for c in cells]
    while names and not names[-1]:
        names.pop()  # spreadsheets often carry empty trailing columns
    missing = [c for c in required if c not in names]
    unknown = [n or "(empty)" for n in names if n not in columns]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append("missing column(s): " + ", ".join(missing))
        if unknown:
            parts.append("unknown column(s): " + ", ".join(unknown))
        if repeated:
            parts.append("repeated column(s): " + ", ".join(repeated))
        raise ImportFileInvalid(
            "Wrong header row (" + "; ".join(parts) + "); expected: " + ", ".join(columns),
            field="header",
        )
    return names


def _scan_csv(path: Path) -> int:
    """Count the lines, and refuse a file that is not UTF-8 before anything is written."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    complete = True  # whether the last line ends with a newline
    with path.open("rb") as fh:
        while chunk := fh.read(_SCAN_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk.count(b"\n", 0, max(0, exc.start)) + 1
                raise ImportFileInvalid(
                    f"The file is not UTF-8 text (line {line}); save it as 'CSV UTF-8'",
                    row=line,
                ) from None
            lines += chunk.count(b"\n")
            complete = chunk.endswith(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ImportFileInvalid(
            "The file is not UTF-8 text (it ends inside a character)", row=lines + 1
        ) from None
    return lines if complete else lines + 1


def _csv_rows(path: Path, header: list[str]) -> Iterator[tuple[int, Row]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        number = 1
        try:
            for number, cells in enumerate(reader, start=2):
                yield number, _as_row(header, cells)
        except csv.Error as exc:
            # E.g. a field beyond the csv module's size limit: the rest cannot be trusted.
            raise ImportFileInvalid(
                f"The CSV file cannot be read after row {number} ({exc})", row=number + 1
            ) from None


def _as_row(header: list[str], cells: Sequence[object]) -> dict[str, object]:
    row: dict[str, object] = dict(zip(header, cells, strict=False))
    extra = [c for c in cells[len(header) :] if c not in (None, "")]
    if extra:
        row["__extra__"] = len(cells)
    return row


def _open_csv(path: Path, columns: Sequence[str], required: Sequence[str]) -> Table:
    lines = _scan_csv(path)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        first = next(csv.reader(fh), None)
    if first is None:
        raise ImportFileInvalid("The file is empty", field="header")
    header = _check_header(first, columns, required)
    return Table(rows=_csv_rows(path, header), total=max(0, lines - 1))


def _open_excel(path: Path, columns: Sequence[str], required: Sequence[str]) -> Table:
    from zipfile import BadZipFile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise ImportFileInvalid(f"Not a readable .xlsx workbook ({type(exc).__name__})") from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    first = next(rows, None)
    if first is None:
        book.close()
        raise ImportFileInvalid("The first worksheet is empty", field="header")
    header = _check_header(first, columns, required)
    total = (sheet.max_row - 1) if sheet.max_row else None

    def numbered() -> Iterator[tuple[int, Row]]:
        try:
            for number, cells in enumerate(rows, start=2):
                yield number, _as_row(header, cells)
        finally:
            book.close()

    return Table(rows=numbered(), total=total)


def open_table(
    path: Path, columns: Sequence[str] = COLUMNS, required: Sequence[str] | None = None
) -> Table:
    """Open ``path`` by its suffix; :class:`ImportFileInvalid` names what is wrong.

    The header must name every ``required`` column (all of ``columns`` by default) and
    nothing outside ``columns``; other imports (card applications) pass their own.
    """
    suffix = path.suffix.lower()
    needed = columns if required is None else required
    if suffix in CSV_SUFFIXES:
        return _open_csv(path, columns, needed)
    if suffix in EXCEL_SUFFIXES:
        return _open_excel(path, columns, needed)
    if suffix == ".xls":
        raise ImportFileInvalid("The old .xls format is not read: save the workbook as .xlsx")
    raise ImportFileInvalid(f"Unsupported file type {suffix or '(none)'}: use .csv or .xlsx")


def cell_text(value: object, name: str) -> tuple[str, FieldProblem | None]:
    """A cell as text. Excel keeps only 15 significant digits of a number, so an ID number
    typed into a number cell has already lost its last digits: it is refused, not guessed."""
    problem: FieldProblem | None = None
    text = ""
    if value is None or isinstance(value, str):
        text = value or ""
    elif isinstance(value, bool | dt.date | dt.time):
        problem = FieldProblem(name, "not_text", "Expected text, found a date or a yes/no cell")
    elif isinstance(value, float) and (name == "id_number" or not value.is_integer()):
        problem = FieldProblem(
            name,
            "number_cell",
            "The cell is a number (Excel keeps 15 digits); format the column as text",
        )
    elif isinstance(value, float):
        text = str(int(value))
    else:
        text = str(value)
    return text, problem


@dataclass
class ImportReport:
    """What an import did: rows read, rows written, and every refused field."""

    rows: int = 0
    imported: int = 0
    written: bool = False
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({e.row for e in self.errors})


@dataclass
class _Run:
    session: Session
    skip_bad: bool
    report: ImportReport
    seen: dict[bytes, int] = field(default_factory=dict)
    batch: list[tuple[int, bytes, NewResident]] = field(default_factory=list)

    @property
    def writing(self) -> bool:
        # All or nothing: once a row is refused nothing more is written (it would be undone).
        return self.skip_bad or not self.report.errors

    def refuse(self, row: int, problems: Iterable[FieldProblem]) -> None:
        self.report.errors.extend(RowError.of(row, p) for p in problems)

    def add(self, row: int, new: NewResident) -> None:
        index = blind_index("residents.id_number", new.id_number)
        first = self.seen.get(index)
        if first is not None:
            self.report.errors.append(
                RowError.of(
                    row,
                    FieldProblem(
                        "id_number",
                        "repeated",
                        N_("Same ID number as row {first} of this file"),
                        {"first": first},
                    ),
                )
            )
            return
        self.seen[index] = row
        self.batch.append((row, index, new))
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Refuse rows already in the registry; write the rest of the batch if still writing."""
        batch, self.batch = self.batch, []
        # Two attempts: a row registered by someone else between the check and the insert
        # makes the unique index refuse the batch; the second check finds it.
        for _attempt in range(2):
            found = repository.existing_id_number_indexes(
                self.session, [index for _row, index, _new in batch]
            )
            for row, _index, _new in (b for b in batch if b[1] in found):
                self.report.errors.append(
                    RowError.of(row, FieldProblem("id_number", "exists", N_("Already registered")))
                )
            batch = [b for b in batch if b[1] not in found]
            if not (self.writing and batch):
                return
            try:
                with self.session.begin_nested():
                    self.report.imported += repository.bulk_add_residents(
                        self.session, [new for _row, _index, new in batch]
                    )
            except IntegrityError:
                continue
            return
        raise RuntimeError("import batch refused twice by the unique index")  # pragma: no cover


def _row_input(row: Row) -> tuple[ResidentInput, list[str], list[FieldProblem]]:
    cells: dict[str, str] = {}
    problems: list[FieldProblem] = []
    for name in COLUMNS:
        cells[name], problem = cell_text(row.get(name), name)
        if problem is not None:
            problems.append(problem)
    extra = row.get("__extra__")
    if extra is not None:
        problems.append(
            FieldProblem(
                "row",
                "too_many_cells",
                "The row has {cells} cells; the header has {columns}",
                {"cells": extra, "columns": len(COLUMNS)},
            )
        )
    categories = cells["categories"].replace("；", ";").replace(",", ";").split(";")
    data = ResidentInput(
        id_number=cells["id_number"],
        name=cells["name"],
        region_code=cells["region_code"],
        phone=cells["phone"],
        address=cells["address"],
        town_code=cells["town_code"],
    )
    return data, categories, problems


def import_residents(
    session: Session,
    actor: Actor,
    rows: Iterable[tuple[int, Row]],
    *,
    skip_bad: bool = False,
    total: int | None = None,
    progress: Progress | None = None,
    source_digest: str | None = None,
) -> ImportReport:
    """Validate and write residents from numbered rows; see the module docstring for modes.

    Audited once with the counts and, when given, the file's SM3 digest (which ties the
    entry to the exact file without copying personal data into the trail).
    """
    audit.require(session, actor, Permission.RESIDENTS_WRITE, "resident.import")
    report = ImportReport()
    run = _Run(session, skip_bad, report)
    today = china_today()
    savepoint = session.begin_nested()
    try:
        for number, row in rows:
            if all(value in (None, "") for value in row.values()):
                continue  # blank lines between blocks of data are not rows
            report.rows += 1
            data, categories, problems = _row_input(row)
            chosen, found = check_categories(categories)
            new, invalid = check_registration(
                data, actor, today, categories=chosen, source="import"
            )
            # A cell that could not be read as text is reported once, not again as empty.
            unreadable = {p.field for p in problems}
            problems += [p for p in invalid + found if p.field not in unreadable]
            if problems or new is None:
                run.refuse(number, problems)
            else:
                run.add(number, new)
            if progress is not None and report.rows % 500 == 0:
                progress(report.rows, total)
        run.flush()
    except BaseException:
        savepoint.rollback()
        raise
    report.errors.sort()
    if report.errors and not skip_bad:
        savepoint.rollback()
        report.imported = 0
    else:
        savepoint.commit()
        report.written = True
    if progress is not None:
        progress(report.rows, report.rows)
    audit.record(
        session,
        actor,
        "resident.import",
        object_type="resident",
        region_code=actor.region_code,
        outcome=audit.Outcome.SUCCESS if report.written else audit.Outcome.FAILED,
        detail={
            "mode": "skip_bad" if skip_bad else "all_or_nothing",
            "rows": report.rows,
            "imported": report.imported,
            "rejected_rows": report.rejected_rows,
            "file_sm3": source_digest,
        },
    )
    return report


def error_rows(report: ImportReport) -> list[dict[str, Any]]:
    """The report as rows for a CSV file (row, field, message)."""
    return [{"row": e.row, "field": e.field, "message": e.message} for e in report.errors]


# --- imports as background jobs (uploaded on the console or through the API) ---------------


def finish_job(
    context: JobContext, session: Session, report: ImportReport, *, skip_bad: bool
) -> None:
    """Record an import's outcome on its job, in the transaction of the import's writes:
    succeeded when rows were written, failed (with every refused row) when nothing was."""
    context.finish(
        session,
        succeeded=report.written,
        result={
            "mode": "skip_bad" if skip_bad else "all_or_nothing",
            "rows": report.rows,
            "imported": report.imported,
            "rejected_rows": report.rejected_rows,
        },
        errors=[e.as_dict() for e in sorted(report.errors)],
        failure=None
        if report.written
        else jobs.failure(
            "rows_refused",
            N_("{count} row(s) refused, so nothing was imported"),
            {"count": report.rejected_rows},
        ),
        done=report.rows,
    )


def run_job(context: JobContext) -> None:
    """The background job of a resident file uploaded on the console or through the API."""
    skip_bad = bool(context.params.get("skip_bad"))
    table = open_table(context.path)
    context.progress(0, table.total, "importing")
    with context.transaction() as session:
        report = import_residents(
            session,
            context.actor,
            table.rows,
            skip_bad=skip_bad,
            total=table.total,
            progress=lambda done, total: context.progress(done, total, "importing"),
            source_digest=context.file_sm3,
        )
        finish_job(context, session, report, skip_bad=skip_bad)


JOB_KIND = jobs.register_kind(
    jobs.JobKind(
        "residents.import",
        N_("Residents"),
        Permission.RESIDENTS_WRITE,
        run_job,
        CSV_SUFFIXES | EXCEL_SUFFIXES,
        columns=COLUMNS,
        required=COLUMNS,
    )
)
