"""Importing card applications from a file (批量申领): a school or an employer applying for its
members, or the newborns of birth registration. CSV (UTF-8, BOM tolerated) or Excel .xlsx.

Columns (any order; only ``id_number`` and ``channel`` are required): ``id_number`` (the
resident must be in the registry; found by blind index), ``name`` (when given, it must be the
registered name: a mistyped ID number that happens to be someone else's is refused),
``channel`` (a :class:`~yikatong.cards.models.Channel` value), ``mailing_address`` and
``recipient_phone`` (cards sent by post), ``proxy_name``, ``proxy_id_number``,
``proxy_relation`` (代办), ``birth_certificate_number`` (newborns), ``outlet``, ``note``.

Every row meets exactly the rules of :func:`yikatong.cards.service.apply`, through its bulk
path :func:`~yikatong.cards.service.apply_many`: this module only reads cells and finds the
resident. A resident named twice in the file is refused on the second row. Row numbers are
those a spreadsheet shows (the header is row 1).

The import runs in two passes. The first checks every row in short read-only transactions of
:data:`BATCH` rows (so a long file neither holds the database nor hides its progress) and
writes nothing. The second writes the rows that passed in one transaction, checking each
again on the way in (someone may have applied meanwhile). All or nothing (the default): any
refused row and nothing is written. ``skip_bad``: the good rows are written, every bad one
reported. Either way nothing is half-written, and the import is audited once (mode, counts,
the file's SM3 digest) besides each application's own ``card.apply`` entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.cards import repository
from yikatong.cards import service as cards
from yikatong.cards.models import Channel
from yikatong.crypto.fields import blind_index
from yikatong.errors import N_, NotFound, YikatongError
from yikatong.jobs.service import JobKind, register_kind
from yikatong.kit.actor import Actor, Permission
from yikatong.residents.errors import FieldProblem
from yikatong.residents.importing import (
    CSV_SUFFIXES,
    EXCEL_SUFFIXES,
    ImportReport,
    Row,
    RowError,
    cell_text,
    finish_job,
    open_table,
)
from yikatong.residents.validation import check_id_number, check_name, check_text, china_today

if TYPE_CHECKING:
    from yikatong.jobs.runner import JobContext

COLUMNS = (
    "id_number",
    "name",
    "channel",
    "mailing_address",
    "recipient_phone",
    "proxy_name",
    "proxy_id_number",
    "proxy_relation",
    "birth_certificate_number",
    "outlet",
    "note",
)
REQUIRED = ("id_number", "channel")
# The bounds of the API's ApplicationCreate, so a cell is refused where a form field would be.
TEXT_LIMITS = {
    "mailing_address": 200,
    "recipient_phone": 32,
    "proxy_name": 64,
    "proxy_relation": 32,
    "birth_certificate_number": 32,
    "outlet": 64,
    "note": 500,
}
CHANNELS = tuple(c.value for c in Channel)
BATCH = 500
PROGRESS_EVERY = 500
JOB_KIND = "card_applications.import"

Progress = Callable[[int, int | None, str], None]
Transaction = Callable[[], AbstractContextManager[Session]]
Finish = Callable[[Session, ImportReport], None]


@dataclass(frozen=True)
class _Parsed:
    """A row whose cells read well: who it is for and what is asked."""

    row: int
    id_number: str
    name: str | None
    request: cards.ApplicationRequest  # resident_id is filled in once the resident is found


class _TakeBack(Exception):
    """All or nothing: a row was refused while writing, so the whole write is rolled back."""


def _parse(number: int, row: Row, today: dt.date) -> tuple[_Parsed | None, list[FieldProblem]]:
    cells: dict[str, str] = {}
    problems: list[FieldProblem] = []
    for column in COLUMNS:
        cells[column], problem = cell_text(row.get(column), column)
        if problem is not None:
            problems.append(problem)
    extra = row.get("__extra__")
    if extra is not None:
        problems.append(
            FieldProblem(
                "row",
                "too_many_cells",
                N_("The row has {cells} cells; the header has fewer"),
                {"cells": extra},
            )
        )
    unreadable = {p.field for p in problems}

    def check(found: list[FieldProblem]) -> None:
        # A cell that could not be read as text is reported once, not again as invalid.
        problems.extend(p for p in found if p.field not in unreadable)

    parsed_id, found = check_id_number(cells["id_number"], today)
    check(found)
    name: str | None = None
    if cells["name"].strip():
        name, found = check_name(cells["name"])
        check(found)
    channel_text = cells["channel"].strip().lower()
    channel: Channel | None = None
    if channel_text in CHANNELS:
        channel = Channel(channel_text)
    elif not channel_text:
        check([FieldProblem("channel", "required", N_("Required"))])
    else:
        check(
            [
                FieldProblem(
                    "channel",
                    "unknown",
                    N_("Not a channel; use one of {channels}"),
                    {"channels": ", ".join(CHANNELS)},
                )
            ]
        )
    texts: dict[str, str | None] = {}
    for column, limit in TEXT_LIMITS.items():
        texts[column], found = check_text(cells[column], column, max_length=limit)
        check(found)
    proxy: cards.Proxy | None = None
    proxy_cells = (cells["proxy_name"], cells["proxy_id_number"], cells["proxy_relation"])
    if any(c.strip() for c in proxy_cells):
        proxy_id, found = check_id_number(cells["proxy_id_number"], today, "proxy_id_number")
        check(found)
        proxy = cards.Proxy(
            name=texts["proxy_name"] or "",
            id_number=proxy_id.number if proxy_id else "",
            relation=texts["proxy_relation"] or "",
        )
    if problems or parsed_id is None or channel is None:
        return None, problems
    request = cards.ApplicationRequest(
        resident_id=0,
        channel=channel,
        mailing_address=texts["mailing_address"],
        recipient_phone=texts["recipient_phone"],
        outlet=texts["outlet"],
        proxy=proxy,
        birth_certificate_number=texts["birth_certificate_number"],
        note=texts["note"],
    )
    return _Parsed(number, parsed_id.number, name, request), []


NOT_FOUND = FieldProblem(
    "id_number", "not_found", N_("No resident with this ID number in your area")
)
NAME_MISMATCH = FieldProblem("name", "mismatch", N_("Not the name registered with this ID number"))


def _row_errors(number: int, errors: Sequence[YikatongError]) -> list[RowError]:
    """The service's refusals as rows of the report, each under the field it names."""
    found: list[RowError] = []
    for exc in errors:
        if isinstance(exc, NotFound):
            # Whether the person exists elsewhere is not this clerk's to learn.
            found.append(RowError.of(number, NOT_FOUND))
            continue
        named = [e["field"] for e in exc.extra.get("errors", []) if e.get("field")]
        for field in named or ["id_number"]:  # a refusal about the resident themself
            found.append(RowError(number, field, exc.detail, exc.detail_template, exc.params))
    return found


@dataclass
class _Run:
    transaction: Transaction
    actor: Actor
    report: ImportReport
    skip_bad: bool
    progress: Progress | None
    source_digest: str | None
    finish: Finish | None
    accepted: list[tuple[int, cards.ApplicationRequest]] = dataclasses.field(default_factory=list)

    def check(self, batch: list[_Parsed]) -> None:
        """Find each row's resident and apply the rules without writing (one transaction)."""
        with self.transaction() as session:
            registered = repository.residents_by_id_number(session, [p.id_number for p in batch])
            found: list[tuple[_Parsed, cards.ApplicationRequest, bool]] = []
            for parsed in batch:
                resident = registered.get(parsed.id_number)
                if resident is None:
                    self.report.errors.append(RowError.of(parsed.row, NOT_FOUND))
                    continue
                request = dataclasses.replace(parsed.request, resident_id=resident.id)
                other_name = parsed.name is not None and parsed.name != resident.name
                found.append((parsed, request, other_name))
            outcome = cards.apply_many(
                session, self.actor, [request for _p, request, _n in found], write=False
            )
        for position, (parsed, request, other_name) in enumerate(found):
            refused = outcome.refused.get(position, [])
            if any(isinstance(e, NotFound) for e in refused):
                # Outside the clerk's area: said exactly as for an unknown ID number.
                self.report.errors.append(RowError.of(parsed.row, NOT_FOUND))
                continue
            errors = _row_errors(parsed.row, refused)
            if other_name:
                errors.insert(0, RowError.of(parsed.row, NAME_MISMATCH))
            if errors:
                self.report.errors.extend(errors)
            else:
                self.accepted.append((parsed.row, request))

    def write(self) -> None:
        """Write the rows that passed, checking each again; all or nothing takes every row
        back if one is refused now."""
        report = self.report
        try:
            with self.transaction() as session:
                for start in range(0, len(self.accepted), BATCH):
                    chunk = self.accepted[start : start + BATCH]
                    outcome = cards.apply_many(session, self.actor, [q for _r, q in chunk])
                    for position, errors in outcome.refused.items():
                        report.errors.extend(_row_errors(chunk[position][0], errors))
                    if outcome.refused and not self.skip_bad:
                        raise _TakeBack
                    report.imported += len(outcome.created)
                    if self.progress is not None:
                        self.progress(report.imported, len(self.accepted), "writing")
                report.written = True
                self.conclude(session)
        except _TakeBack:
            report.imported = 0
            report.written = False
            with self.transaction() as session:
                self.conclude(session)

    def conclude(self, session: Session) -> None:
        """Audit the import and record its outcome, in the transaction of its writes."""
        report = self.report
        report.errors.sort()
        audit.record(
            session,
            self.actor,
            "card_application.import",
            object_type="card_application",
            region_code=self.actor.region_code,
            outcome=audit.Outcome.SUCCESS if report.written else audit.Outcome.FAILED,
            detail={
                "mode": "skip_bad" if self.skip_bad else "all_or_nothing",
                "rows": report.rows,
                "imported": report.imported,
                "rejected_rows": report.rejected_rows,
                "file_sm3": self.source_digest,
            },
        )
        if self.finish is not None:
            self.finish(session, report)


def import_applications(
    transaction: Transaction,
    actor: Actor,
    rows: Iterable[tuple[int, Row]],
    *,
    skip_bad: bool = False,
    total: int | None = None,
    progress: Progress | None = None,
    source_digest: str | None = None,
    finish: Finish | None = None,
) -> ImportReport:
    """Check and write applications from numbered rows (see the module docstring).

    ``transaction`` opens a session in a transaction of its own (``yikatong.db.job`` for the
    command line, ``JobContext.transaction`` for a background job); ``progress`` receives
    (rows done, total, stage); ``finish`` runs in the last transaction, the one that writes.
    """
    report = ImportReport()
    with transaction() as session:
        audit.require(session, actor, Permission.CARDS_OPERATE, "card_application.import")
    run = _Run(transaction, actor, report, skip_bad, progress, source_digest, finish)
    today = china_today()
    seen: dict[bytes, int] = {}
    batch: list[_Parsed] = []
    for number, row in rows:
        if all(value in (None, "") for value in row.values()):
            continue  # blank lines between blocks of data are not rows
        report.rows += 1
        parsed, problems = _parse(number, row, today)
        if parsed is None:
            report.errors.extend(RowError.of(number, p) for p in problems)
        else:
            index = blind_index("residents.id_number", parsed.id_number)
            first = seen.setdefault(index, number)
            if first != number:
                report.errors.append(
                    RowError.of(
                        number,
                        FieldProblem(
                            "id_number",
                            "repeated",
                            N_("Same ID number as row {first} of this file"),
                            {"first": first},
                        ),
                    )
                )
            else:
                batch.append(parsed)
        if len(batch) >= BATCH:
            run.check(batch)
            batch = []
        if progress is not None and report.rows % PROGRESS_EVERY == 0:
            progress(report.rows, total, "checking")
    if batch:
        run.check(batch)
    if progress is not None:
        progress(report.rows, report.rows, "checking")
    if report.errors and not skip_bad:
        with transaction() as session:
            run.conclude(session)
    else:
        run.write()
    return report


def run_job(context: JobContext) -> None:
    """The background job of an upload from the console or the API."""
    skip_bad = bool(context.params.get("skip_bad"))
    table = open_table(context.path, COLUMNS, REQUIRED)
    context.progress(0, table.total, "checking")
    import_applications(
        context.transaction,
        context.actor,
        table.rows,
        skip_bad=skip_bad,
        total=table.total,
        progress=context.progress,
        source_digest=context.file_sm3,
        finish=lambda session, report: finish_job(context, session, report, skip_bad=skip_bad),
    )


register_kind(
    JobKind(
        JOB_KIND,
        N_("Card applications"),
        Permission.CARDS_OPERATE,
        run_job,
        CSV_SUFFIXES | EXCEL_SUFFIXES,
        columns=COLUMNS,
        required=REQUIRED,
    )
)
