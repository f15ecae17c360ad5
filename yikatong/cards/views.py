"""The counter workbench for cards (卡务): worklist, card file, applications, operations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from yikatong.cards import receipts, repository, service
from yikatong.cards.banks import COOPERATING_BANKS
from yikatong.cards.lifecycle import COUNTER_OPERATIONS, Operation, allowed_operations
from yikatong.cards.models import (
    LIVE_STATES,
    ApplicationStatus,
    Card,
    CardEvent,
    CardState,
    Channel,
)
from yikatong.crypto.masking import mask_bank_account
from yikatong.db import savepoint
from yikatong.deps import DbSession, StaffActor, verify_csrf
from yikatong.errors import N_, InvalidInput, YikatongError, field_errors
from yikatong.kit.actor import Actor, Permission
from yikatong.kit.params import MAX_ROW_ID, RowId
from yikatong.kit.pdf import pdf_response
from yikatong.residents import service as residents_service
from yikatong.residents.schemas import ResidentOut
from yikatong.residents.validation import china_today
from yikatong.web.i18n import lazy_gettext
from yikatong.web.navigation import NavItem, register_nav
from yikatong.web.templating import render

router = APIRouter(prefix="/staff/cards", include_in_schema=False)

register_nav(
    NavItem(
        "cards",
        lazy_gettext("Card services"),
        "/staff/cards",
        permission=Permission.CARDS_READ.value,
        icon="card",
        order=20,
    )
)

WAITING = (
    ApplicationStatus.SUBMITTED,
    ApplicationStatus.CHECKED,
    ApplicationStatus.IN_PRODUCTION,
    ApplicationStatus.READY,
)
# Operations whose consequences cannot be undone at the counter: the form asks to confirm.
IRREVERSIBLE = frozenset(
    {Operation.REPORT_FORMAL_LOSS, Operation.REPLACE, Operation.RENEW, Operation.CANCEL}
)
# After a hand-over or a replacement the card file offers the receipt at once
# (?done=<key>&card=<id>): key -> (receipt, the events that make it exist, message).
RECEIPT_OFFERS = {
    "issued": (
        receipts.ReceiptKind.ISSUE,
        frozenset({Operation.ISSUE.value}),
        lazy_gettext("The card has been handed over."),
    ),
    "replaced": (
        receipts.ReceiptKind.REPLACEMENT,
        frozenset({Operation.REPLACE.value, Operation.RENEW.value}),
        lazy_gettext(
            "The replacement or renewal has been accepted and the new application opened."
        ),
    ),
}
T = TypeVar("T")


def _today() -> dt.date:
    return china_today()


def _proxy_form(
    proxy_name: Annotated[str, Form(max_length=64)] = "",
    proxy_id_number: Annotated[str, Form(max_length=32)] = "",
    proxy_relation: Annotated[str, Form(max_length=32)] = "",
) -> service.Proxy | None:
    """The optional 代办 fields every counter form carries; all empty means no proxy."""
    if not (proxy_name or proxy_id_number or proxy_relation):
        return None
    return service.Proxy(proxy_name, proxy_id_number, proxy_relation)


@dataclass(frozen=True)
class BankDetails:
    code: str
    account: str


def _bank_form(
    bank_code: Annotated[str, Form(max_length=16)] = "",
    bank_account: Annotated[str, Form(max_length=32)] = "",
) -> BankDetails:
    return BankDetails(bank_code, bank_account)


ProxyForm = Annotated[service.Proxy | None, Depends(_proxy_form)]
BankForm = Annotated[BankDetails, Depends(_bank_form)]


@router.get("")
def worklist(request: Request, session: DbSession, actor: StaffActor) -> Response:
    """Applications waiting for the next step in the clerk's region."""
    applications = service.worklist(session, actor, WAITING)
    return render(request, "cards/worklist.html", {"applications": applications})


def _card_file(
    request: Request,
    session: DbSession,
    actor: Actor,
    resident_id: int,
    error: YikatongError | None = None,
    status_code: int = 200,
    notice: str | None = None,
    done: tuple[str, int] | None = None,
) -> Response:
    resident = residents_service.get(session, actor, resident_id)
    cards = repository.cards_of(session, resident.id)
    live = next((c for c in cards if CardState(c.state) in LIVE_STATES), None)
    applications = repository.applications_of(session, resident.id)
    trails = {a.id: repository.application_trail(session, a.id) for a in applications}
    events = repository.card_events(session, [c.id for c in cards])
    counter_ops = (
        [
            op
            for op in allowed_operations(CardState(live.state))
            if op in COUNTER_OPERATIONS and op is not Operation.ISSUE
        ]
        if live
        else []
    )
    return render(
        request,
        "cards/file.html",
        {
            "resident": ResidentOut.masked(resident, _today()),
            "cards": cards,
            "live": live,
            "applications": applications,
            "trails": trails,
            "events": events,
            "operations": counter_ops,
            "irreversible": IRREVERSIBLE,
            "channel_options": [(c.value, lazy_gettext(c.value)) for c in Channel],
            "operation_options": [(op.value, lazy_gettext(op.value)) for op in counter_ops],
            "bank_options": [(b.code, b.name) for b in COOPERATING_BANKS],
            "live_bank_account": mask_bank_account(live.bank_account)
            if live is not None and live.bank_account
            else None,
            "error": error,
            "field_errors": field_errors(error),
            "can_operate": actor.can(Permission.CARDS_OPERATE),
            "notice": notice,
            "receipt_offer": _receipt_offer(done, events),
        },
        status_code=status_code,
    )


def _receipt_offer(
    done: tuple[str, int] | None, events: list[CardEvent]
) -> dict[str, object] | None:
    """The receipt the card file offers after an action, when the card has its event."""
    if done is None or done[0] not in RECEIPT_OFFERS:
        return None
    key, card_id = done
    kind, operations, message = RECEIPT_OFFERS[key]
    if not any(e.card_id == card_id and e.operation in operations for e in events):
        return None
    return {"message": message, "url": _receipt_url(card_id, kind)}


@router.get("/residents/{resident_id}")
def card_file(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    done: Annotated[str, Query(max_length=16)] = "",
    card: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> Response:
    """Everything about one resident's cards: the live card, history, applications."""
    return _card_file(request, session, actor, resident_id, done=(done, card) if done else None)


def _after(
    request: Request,
    session: DbSession,
    actor: Actor,
    resident_id: int,
    action: Callable[[], T],
    done: Callable[[T], str | None] | None = None,
) -> Response:
    """Run a form's action; on a business error show the card file again with the reason.
    A refused action changes nothing: it runs in a savepoint. ``done`` turns the action's
    result into the card file's ``?done=`` query (what to offer next, e.g. the receipt)."""
    try:
        with savepoint(session):
            result = action()
    except YikatongError as exc:
        return _card_file(request, session, actor, resident_id, error=exc, status_code=exc.status)
    query = done(result) if done else None
    return RedirectResponse(
        f"/staff/cards/residents/{resident_id}{'?' + query if query else ''}", status_code=303
    )


def _issued(card: Card) -> str:
    return f"done=issued&card={card.id}"


@router.post("/residents/{resident_id}/applications", dependencies=[Depends(verify_csrf)])
def apply(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    proxy: ProxyForm,
    channel: Annotated[str, Form(max_length=16)] = "counter",
    mailing_address: Annotated[str, Form(max_length=200)] = "",
    birth_certificate_number: Annotated[str, Form(max_length=32)] = "",
    outlet: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Take an application at the counter (also online/newborn/cross-province on their behalf)."""

    def run() -> None:
        try:
            chosen = Channel(channel)
        except ValueError:
            raise InvalidInput("Choose a channel", field="channel") from None
        service.apply(
            session,
            actor,
            resident_id=resident_id,
            channel=chosen,
            mailing_address=mailing_address or None,
            outlet=outlet or None,
            birth_certificate_number=birth_certificate_number or None,
            proxy=proxy,
        )

    return _after(request, session, actor, resident_id, run)


@router.post("/residents/{resident_id}/instant", dependencies=[Depends(verify_csrf)])
def instant(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    resident_id: RowId,
    bank: BankForm,
    proxy: ProxyForm,
    outlet: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """立等可取: the card is made and handed over in this visit."""
    return _after(
        request,
        session,
        actor,
        resident_id,
        lambda: service.instant_issue(
            session,
            actor,
            resident_id,
            bank_code=bank.code,
            bank_account=bank.account,
            outlet=outlet or None,
            proxy=proxy,
        ),
        _issued,
    )


@router.post("/applications/{application_id}/steps", dependencies=[Depends(verify_csrf)])
def advance(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    application_id: RowId,
    to: Annotated[str, Form(max_length=16)],
    tracking_number: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    application = service.get_application(session, actor, application_id)

    def run() -> None:
        try:
            target = ApplicationStatus(to)
        except ValueError:
            raise InvalidInput("Unknown step", field="to") from None
        service.advance(
            session,
            actor,
            application.id,
            target,
            tracking_number=tracking_number or None,
            note=note or None,
        )

    return _after(request, session, actor, application.resident_id, run)


@router.post("/{card_id}/issue", dependencies=[Depends(verify_csrf)])
def issue(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    card_id: RowId,
    bank: BankForm,
    proxy: ProxyForm,
    outlet: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    card = service.get_card(session, actor, card_id)
    return _after(
        request,
        session,
        actor,
        card.resident_id,
        lambda: service.issue_card(
            session,
            actor,
            card.id,
            bank_code=bank.code,
            bank_account=bank.account,
            outlet=outlet or None,
            proxy=proxy,
        ),
        _issued,
    )


@router.post("/{card_id}/operations", dependencies=[Depends(verify_csrf)])
def operate(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    card_id: RowId,
    operation: Annotated[str, Form(max_length=32)],
    reason: Annotated[str, Form(max_length=500)] = "",
    outlet: Annotated[str, Form(max_length=64)] = "",
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """One lifecycle operation; irreversible ones need the confirmation box ticked."""
    card = service.get_card(session, actor, card_id)

    def run() -> service.OperationResult:
        try:
            chosen = Operation(operation)
        except ValueError:
            raise InvalidInput(N_("Unknown operation"), field="operation") from None
        if chosen in IRREVERSIBLE and confirm != "1":
            raise InvalidInput(
                N_("Tick the box to confirm this operation cannot be undone"), field="confirm"
            )
        return service.operate(
            session, actor, card.id, chosen, reason=reason or None, outlet=outlet or None
        )

    def done(result: service.OperationResult) -> str | None:
        # Replacement and renewal open an application: the old card's receipt records it.
        return f"done=replaced&card={card.id}" if result.new_application else None

    return _after(request, session, actor, card.resident_id, run, done)


def _receipt_url(card_id: int, kind: receipts.ReceiptKind) -> str:
    return f"/staff/cards/{card_id}/receipts/{kind.value}.pdf"


def _receipt(
    session: DbSession, actor: Actor, card_id: int, kind: receipts.ReceiptKind
) -> Response:
    receipt = receipts.receipt(session, actor, card_id, kind)
    return pdf_response(receipt.pdf, receipt.filename)


@router.get("/{card_id}/receipts/issue.pdf")
def issue_receipt(session: DbSession, actor: StaffActor, card_id: RowId) -> Response:
    """The issue receipt (领卡回执) to print at the counter."""
    return _receipt(session, actor, card_id, receipts.ReceiptKind.ISSUE)


@router.get("/{card_id}/receipts/replacement.pdf")
def replacement_receipt(session: DbSession, actor: StaffActor, card_id: RowId) -> Response:
    """The replacement or renewal receipt (补换卡受理回执) to print at the counter."""
    return _receipt(session, actor, card_id, receipts.ReceiptKind.REPLACEMENT)
