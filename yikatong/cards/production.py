"""Card production with the card factory (制卡): instruction files out, result files in.

``export_batch`` moves every checked application of a region into production and returns the
rows of the factory's instruction file. ``import_results`` applies the factory's result file:
each good row moves its application to ready (or mailed, with the tracking number); a failed
row rejects the application and cancels the card. Every bad row (unknown card, wrong state,
malformed line) is reported with its line number and the reason; it never stops the good rows
and is never silently dropped.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from yikatong.audit import service as audit
from yikatong.cards import repository, service
from yikatong.cards.models import ApplicationStatus, Card, CardApplication, CardState, Channel
from yikatong.errors import InvalidInput, YikatongError
from yikatong.kit.actor import Actor, Permission
from yikatong.residents.models import Resident

INSTRUCTION_COLUMNS = (
    "batch",
    "application_id",
    "card_number",
    "identification_code",
    "name",
    "id_number",
    "region_code",
    "delivery",
    "mailing_address",
)
RESULT_COLUMNS = ("card_number", "result", "reason", "tracking_number")


@dataclass(frozen=True)
class RowError:
    line: int
    card_number: str
    message: str


@dataclass
class ImportReport:
    ready: int = 0
    mailed: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.ready + self.mailed + self.rejected


def export_batch(
    session: Session,
    actor: Actor,
    *,
    limit: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[str, list[dict[str, str]]]:
    """Start production of the checked applications in the actor's region; returns the batch
    id and the factory's instruction rows (they carry the data printed on the card)."""
    audit.require(session, actor, Permission.CARDS_PRODUCTION, "card.production_export")
    batch = f"B{secrets.token_hex(4).upper()}"
    applications = list(
        session.scalars(
            select(CardApplication)
            .where(
                CardApplication.region_code.startswith(actor.scope),
                CardApplication.status == ApplicationStatus.CHECKED.value,
            )
            .order_by(CardApplication.id)
            .limit(limit)
        )
    )
    rows: list[dict[str, str]] = []
    for done, application in enumerate(applications, start=1):
        service.advance(
            session,
            actor,
            application.id,
            ApplicationStatus.IN_PRODUCTION,
            note=f"factory batch {batch}",
        )
        application.factory_batch = batch
        card = session.get(Card, application.card_id)
        resident = session.get(Resident, application.resident_id)
        if card is None or resident is None:  # pragma: no cover - created just above
            raise RuntimeError("production row without card or resident")
        mailed = Channel(application.channel) in service.MAILED_CHANNELS
        rows.append(
            {
                "batch": batch,
                "application_id": str(application.id),
                "card_number": card.card_number,
                "identification_code": card.identification_code,
                "name": resident.name,
                "id_number": resident.id_number,
                "region_code": resident.region_code,
                "delivery": "mail" if mailed else "counter",
                "mailing_address": application.mailing_address or "",
            }
        )
        if progress is not None:
            progress(done, len(applications))
    audit.record(
        session,
        actor,
        "card.production_export",
        object_type="factory_batch",
        object_id=batch,
        region_code=actor.region_code,
        detail={"applications": len(rows)},
    )
    return batch, rows


def write_csv(rows: Iterable[dict[str, str]], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def parse_result_file(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data line; a wrong header is an error for the whole file."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(reader.fieldnames or ())
    missing = [c for c in ("card_number", "result") if c not in header]
    if missing:
        raise InvalidInput(
            "The result file lacks the column(s) {columns}",
            params={"columns": ", ".join(missing)},
            field="file",
        )
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def import_results(
    session: Session,
    actor: Actor,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Apply the factory's results; each row in its own savepoint, bad rows reported."""
    audit.require(session, actor, Permission.CARDS_PRODUCTION, "card.production_import")
    report = ImportReport()
    seen: set[str] = set()
    for count, (line, row) in enumerate(rows, start=1):
        number = row.get("card_number", "").upper()
        try:
            with session.begin_nested():
                _apply_row(session, actor, row, number, seen, report)
        except YikatongError as exc:
            report.errors.append(RowError(line, number, exc.detail))
        if progress is not None:
            progress(count)
    audit.record(
        session,
        actor,
        "card.production_import",
        object_type="factory_batch",
        region_code=actor.region_code,
        detail={
            "ready": report.ready,
            "mailed": report.mailed,
            "rejected": report.rejected,
            "errors": len(report.errors),
        },
    )
    return report


def _apply_row(
    session: Session,
    actor: Actor,
    row: dict[str, str],
    number: str,
    seen: set[str],
    report: ImportReport,
) -> None:
    if not number:
        raise InvalidInput("The card number is empty", field="card_number")
    if number in seen:
        raise InvalidInput("The card appears twice in this file", field="card_number")
    seen.add(number)
    card = repository.card_by_number(session, number)
    if card is None or not actor.covers(card.region_code):
        raise InvalidInput(
            "No card {number} in production", params={"number": number}, field="card_number"
        )
    if card.state != CardState.IN_PRODUCTION:
        raise InvalidInput(
            "Card {number} is {state}, not in production",
            params={"number": number, "state": card.state},
            field="card_number",
        )
    application = session.scalar(select(CardApplication).where(CardApplication.card_id == card.id))
    if application is None:  # pragma: no cover - every card comes from an application
        raise InvalidInput("Card {number} has no application", params={"number": number})
    result = row.get("result", "").lower()
    if result == "ok":
        if Channel(application.channel) in service.MAILED_CHANNELS:
            service.advance(
                session,
                actor,
                application.id,
                ApplicationStatus.MAILED,
                tracking_number=row.get("tracking_number") or None,
            )
            report.mailed += 1
        else:
            service.advance(session, actor, application.id, ApplicationStatus.READY)
            report.ready += 1
    elif result == "failed":
        service.advance(
            session,
            actor,
            application.id,
            ApplicationStatus.REJECTED,
            note=row.get("reason") or "factory reported a failure",
        )
        report.rejected += 1
    else:
        raise InvalidInput(
            "Result must be ok or failed, not {result!r}", params={"result": result}, field="result"
        )
