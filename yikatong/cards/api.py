"""Card applications, cards and the offline blacklist (/api/v1/cards, /api/v1/blacklist)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from yikatong.cards import importing, receipts, repository, service
from yikatong.cards.lifecycle import RESTORE, TRANSITIONS
from yikatong.cards.schemas import (
    ApplicationCreate,
    ApplicationOut,
    ApplicationStep,
    BlacklistOut,
    CardOut,
    IssueIn,
    OperationIn,
    OperationOut,
    ProxyIn,
    TransitionOut,
)
from yikatong.deps import DbSession, StaffActor, verify_csrf_if_cookie_session
from yikatong.jobs.api import UPLOAD_RESPONSES, SkipBad, UploadedFile, UploadRoute, accept_upload
from yikatong.jobs.schemas import JobOut
from yikatong.jobs.service import UPLOAD_BODY_LIMIT
from yikatong.kit.params import RowId
from yikatong.kit.pdf import PDF_OPENAPI_RESPONSE, PdfResponse, pdf_response

router = APIRouter(tags=["cards"])
blacklist_router = APIRouter(tags=["cards"])
CSRF = [Depends(verify_csrf_if_cookie_session)]


def _proxy(proxy: ProxyIn | None) -> service.Proxy | None:
    return service.Proxy(proxy.name, proxy.id_number, proxy.relation) if proxy else None


def _application_out(session: DbSession, application_id: int, actor: StaffActor) -> ApplicationOut:
    application = service.get_application(session, actor, application_id)
    return ApplicationOut.of(application, repository.application_trail(session, application.id))


def _card_out(session: DbSession, card_id: int, actor: StaffActor) -> CardOut:
    card = service.get_card(session, actor, card_id)
    return CardOut.of(card, repository.card_events(session, [card.id]))


@router.post("/applications", response_model=ApplicationOut, status_code=201, dependencies=CSRF)
def apply(body: ApplicationCreate, session: DbSession, actor: StaffActor) -> ApplicationOut:
    """Take a card application through any channel (申领)."""
    application = service.apply(
        session,
        actor,
        resident_id=body.resident_id,
        channel=body.channel,
        reason=body.reason,
        mailing_address=body.mailing_address,
        outlet=body.outlet,
        proxy=_proxy(body.proxy),
        birth_certificate_number=body.birth_certificate_number,
        note=body.note,
    )
    return _application_out(session, application.id, actor)


def import_applications(
    request: Request,
    response: Response,
    session: DbSession,
    actor: StaffActor,
    file: UploadedFile,
    skip_bad: SkipBad = False,
) -> JobOut:
    """Apply for cards in bulk (批量申领) from a .csv or .xlsx file: answers 202 with the job;
    follow it at /api/v1/jobs/{id}, its refused rows at /api/v1/jobs/{id}/errors."""
    return accept_upload(
        request, response, session, actor, importing.JOB_KIND, file, {"skip_bad": skip_bad}
    )


router.add_api_route(
    "/applications/import",
    import_applications,
    methods=["POST"],
    response_model=JobOut,
    status_code=202,
    dependencies=CSRF,
    responses=UPLOAD_RESPONSES,
    route_class_override=UploadRoute,
    max_body_size=UPLOAD_BODY_LIMIT,
)


@router.get("/applications/{application_id:int}", response_model=ApplicationOut)
def read_application(
    application_id: RowId, session: DbSession, actor: StaffActor
) -> ApplicationOut:
    """One application with its progress trail."""
    return _application_out(session, application_id, actor)


@router.get("/residents/{resident_id:int}", response_model=list[CardOut])
def cards_of_resident(resident_id: RowId, session: DbSession, actor: StaffActor) -> list[CardOut]:
    """Every card a resident has had, newest first, with their event trails."""
    return [
        _card_out(session, card.id, actor)
        for card in repository.cards_of(session, resident_id)
        if actor.covers(card.region_code)
    ]


@router.post(
    "/applications/{application_id:int}/steps", response_model=ApplicationOut, dependencies=CSRF
)
def advance(
    application_id: RowId, body: ApplicationStep, session: DbSession, actor: StaffActor
) -> ApplicationOut:
    """Move an application one step (checked, in production, ready, mailed, rejected...)."""
    service.advance(
        session,
        actor,
        application_id,
        body.to,
        tracking_number=body.tracking_number,
        outlet=body.outlet,
        note=body.note,
    )
    return _application_out(session, application_id, actor)


@router.get("/lifecycle", response_model=list[TransitionOut])
def lifecycle() -> list[TransitionOut]:
    """The card lifecycle: every allowed (state, operation) and where it leads."""
    return [
        TransitionOut(
            state=state, operation=operation, to="previous" if target is RESTORE else str(target)
        )
        for (state, operation), target in TRANSITIONS.items()
    ]


@router.get("/{card_id:int}", response_model=CardOut)
def read_card(card_id: RowId, session: DbSession, actor: StaffActor) -> CardOut:
    """One card with its state, allowed operations and event trail."""
    return _card_out(session, card_id, actor)


@router.post("/{card_id:int}/issue", response_model=CardOut, dependencies=CSRF)
def issue(card_id: RowId, body: IssueIn, session: DbSession, actor: StaffActor) -> CardOut:
    """Hand a ready card to its holder (发卡), recording the bank account."""
    service.issue_card(
        session,
        actor,
        card_id,
        bank_code=body.bank_code,
        bank_account=body.bank_account,
        outlet=body.outlet,
        proxy=_proxy(body.proxy),
    )
    return _card_out(session, card_id, actor)


@router.post("/{card_id:int}/operations", response_model=OperationOut, dependencies=CSRF)
def operate(
    card_id: RowId, body: OperationIn, session: DbSession, actor: StaffActor
) -> OperationOut:
    """Run a lifecycle operation; an illegal one answers 409 with the allowed operations."""
    result = service.operate(
        session,
        actor,
        card_id,
        body.operation,
        reason=body.reason,
        outlet=body.outlet,
        channel=body.channel,
        mailing_address=body.mailing_address,
    )
    new = result.new_application
    return OperationOut(
        card=_card_out(session, card_id, actor),
        new_application=_application_out(session, new.id, actor) if new else None,
    )


@router.get(
    "/{card_id:int}/receipts/issue",
    response_class=PdfResponse,
    responses=PDF_OPENAPI_RESPONSE,
)
def issue_receipt(card_id: RowId, session: DbSession, actor: StaffActor) -> PdfResponse:
    """The card's issue receipt (领卡回执) as PDF; 409 `receipt_unavailable` if never issued."""
    receipt = receipts.receipt(session, actor, card_id, receipts.ReceiptKind.ISSUE)
    return pdf_response(receipt.pdf, receipt.filename)


@router.get(
    "/{card_id:int}/receipts/replacement",
    response_class=PdfResponse,
    responses=PDF_OPENAPI_RESPONSE,
)
def replacement_receipt(card_id: RowId, session: DbSession, actor: StaffActor) -> PdfResponse:
    """The replacement or renewal receipt (补换卡受理回执) of an old card as PDF; 409
    `receipt_unavailable` if the card was never replaced or renewed."""
    receipt = receipts.receipt(session, actor, card_id, receipts.ReceiptKind.REPLACEMENT)
    return pdf_response(receipt.pdf, receipt.filename)


@blacklist_router.get("", response_model=BlacklistOut)
def blacklist(
    session: DbSession,
    since: Annotated[int, Query(ge=0, le=2**62, description="The version you hold; 0 for all")] = 0,
) -> BlacklistOut:
    """Signed changes to the offline blacklist after version `since` (for terminals)."""
    signed = service.signed_blacklist(session, since)
    return BlacklistOut(
        since=signed.since,
        version=signed.version,
        added=signed.added,
        removed=signed.removed,
        issued_at=signed.issued_at,
        key_fingerprint=signed.key_fingerprint,
        signature=signed.signature,
    )
