"""Resident portal pages (mobile first): my card, applications, e-card QR code, loss report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from yikatong.cards import repository as cards_repository
from yikatong.cards import service as cards
from yikatong.cards.lifecycle import Operation
from yikatong.cards.models import LIVE_STATES, CardState, Channel
from yikatong.deps import (
    CSRF_COOKIE,
    PORTAL_COOKIE,
    DbSession,
    ResidentActor,
    new_csrf_nonce,
    optional_resident,
    request_actor,
    verify_csrf,
)
from yikatong.ecard import service as ecard
from yikatong.ecard.qr import Purpose
from yikatong.errors import YikatongError, field_errors
from yikatong.kit.actor import Actor
from yikatong.kit.params import RowId
from yikatong.portal import service
from yikatong.portal.models import ResidentSession
from yikatong.residents.models import Resident
from yikatong.settings import get_settings
from yikatong.web.pages import safe_local_path
from yikatong.web.templating import render

router = APIRouter(prefix="/portal", include_in_schema=False)
# Refresh the QR code this long before it expires, so the screen never shows a dead code.
REFRESH_MARGIN_S = 10


def _set_session_cookie(response: Response, token: str) -> None:
    secure = get_settings().secure_cookies
    response.set_cookie(
        PORTAL_COOKIE,
        token,
        httponly=True,
        secure=secure,
        samesite="lax",
        max_age=int(service.SESSION_LIFETIME.total_seconds()),
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE, new_csrf_nonce(), httponly=True, secure=secure, samesite="lax", path="/"
    )


def _form_page(
    request: Request,
    template: str,
    error: YikatongError | None = None,
    status_code: int = 200,
    **context: object,
) -> Response:
    return render(
        request,
        template,
        {"error": error, "field_errors": field_errors(error), **context},
        status_code=status_code,
    )


@router.get("/login")
def login_form(
    request: Request,
    actor: Annotated[Actor | None, Depends(optional_resident)],
    next_url: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    if actor is not None:
        return RedirectResponse(safe_local_path(next_url, "/portal"), status_code=303)
    return _form_page(request, "portal/login.html", next_url=safe_local_path(next_url, "/portal"))


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request,
    session: DbSession,
    id_number: Annotated[str, Form(max_length=32)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next_url: Annotated[str, Form(alias="next")] = "/portal",
) -> Response:
    """ID number and password. The ID number is posted, never put in a URL."""
    try:
        _, token = service.login(
            session, request_actor(request), id_number=id_number, password=password
        )
    except YikatongError as exc:
        if exc.keep_changes:
            session.commit()
        return _form_page(
            request,
            "portal/login.html",
            exc,
            exc.status,
            next_url=safe_local_path(next_url, "/portal"),
        )
    response = RedirectResponse(safe_local_path(next_url, "/portal"), status_code=303)
    _set_session_cookie(response, token)
    return response


@router.get("/register")
def register_form(request: Request) -> Response:
    return _form_page(request, "portal/register.html")


@router.post("/register", dependencies=[Depends(verify_csrf)])
def register(
    request: Request,
    session: DbSession,
    id_number: Annotated[str, Form(max_length=32)] = "",
    card_number: Annotated[str, Form(max_length=16)] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Real-name registration (or password reset) with three facts only the holder has."""
    try:
        service.register(
            session,
            request_actor(request),
            id_number=id_number,
            card_number=card_number,
            phone=phone,
            password=password,
        )
    except YikatongError as exc:
        if exc.keep_changes:
            session.commit()
        return _form_page(request, "portal/register.html", exc, exc.status)
    return RedirectResponse("/portal/login?registered=1", status_code=303)


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(
    request: Request, session: DbSession, actor: Annotated[Actor | None, Depends(optional_resident)]
) -> Response:
    token = request.cookies.get(PORTAL_COOKIE)
    if token and actor is not None:
        service.logout(session, token, actor)
    response = RedirectResponse("/portal/login", status_code=303)
    response.delete_cookie(PORTAL_COOKIE, path="/")
    return response


def _home(
    request: Request,
    session: Session,
    actor: Actor,
    error: YikatongError | None = None,
    status_code: int = 200,
) -> Response:
    resident_id = int(actor.id)
    resident = session.get(Resident, resident_id)
    card_list = cards_repository.cards_of(session, resident_id)
    live = next((c for c in card_list if c.state in LIVE_STATES), None)
    applications = cards_repository.applications_of(session, resident_id)
    trails = {a.id: cards_repository.application_trail(session, a.id) for a in applications}
    events = cards_repository.card_events(session, [c.id for c in card_list])
    lost_or_usable = live is not None and live.state in (
        CardState.ISSUED,
        CardState.ACTIVE,
        CardState.TEMPORARY_LOSS,
    )
    return _form_page(
        request,
        "portal/home.html",
        error,
        status_code,
        resident=resident,
        live=live,
        applications=applications,
        trails=trails,
        events=events,
        can_report_loss=live is not None and live.state in (CardState.ISSUED, CardState.ACTIVE),
        can_replace=lost_or_usable,
    )


@router.get("")
def home(request: Request, session: DbSession, actor: ResidentActor) -> Response:
    """My card, its state and history, my applications and their progress."""
    return _home(request, session, actor)


def _act(
    request: Request, session: Session, actor: Actor, action: Callable[[], object]
) -> Response:
    try:
        with session.begin_nested():
            action()
    except YikatongError as exc:
        if exc.keep_changes:
            session.commit()
        return _home(request, session, actor, exc, exc.status)
    return RedirectResponse("/portal", status_code=303)


@router.post("/card/loss", dependencies=[Depends(verify_csrf)])
def report_loss(request: Request, session: DbSession, actor: ResidentActor) -> Response:
    """Report my card lost (临时挂失): it stops working at once, here and at every terminal."""
    live = cards_repository.live_card_of(session, int(actor.id))
    return _act(
        request,
        session,
        actor,
        lambda: cards.operate(
            session,
            actor,
            live.id if live else 0,
            Operation.REPORT_TEMPORARY_LOSS,
            reason="reported by the holder in the portal",
        ),
    )


@router.post("/card/replacement", dependencies=[Depends(verify_csrf)])
def replacement(
    request: Request,
    session: DbSession,
    actor: ResidentActor,
    mailing_address: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Apply for a replacement card by post (补卡邮寄)."""
    live = cards_repository.live_card_of(session, int(actor.id))
    return _act(
        request,
        session,
        actor,
        lambda: cards.operate(
            session,
            actor,
            live.id if live else 0,
            Operation.REPLACE,
            channel=Channel.ONLINE,
            mailing_address=mailing_address,
            reason="replacement applied for in the portal",
        ),
    )


@router.post("/applications/{application_id}/address", dependencies=[Depends(verify_csrf)])
def mailing_address(
    request: Request,
    session: DbSession,
    actor: ResidentActor,
    application_id: RowId,
    address: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return _act(
        request,
        session,
        actor,
        lambda: cards.update_mailing_address(session, actor, application_id, address),
    )


def _session_row(session: Session, request: Request) -> ResidentSession | None:
    user = getattr(request.state, "portal_user", None)
    return session.get(ResidentSession, user.session_row_id) if user else None


@router.get("/ecard")
def ecard_page(
    request: Request,
    session: DbSession,
    actor: ResidentActor,
    purpose: Annotated[str, Query(max_length=16)] = "identity",
) -> Response:
    """My electronic card: issue it, or show its QR code (亮码)."""
    from yikatong.ecard import repository as ecard_repository

    resident_id = int(actor.id)
    card = ecard_repository.live_ecard_of(session, resident_id)
    chosen = Purpose(purpose) if purpose in {p.value for p in Purpose} else Purpose.IDENTITY
    row = _session_row(session, request)
    needs_unlock = chosen is Purpose.PAYMENT and not (row and service.payment_unlocked(row))
    return _form_page(
        request,
        "portal/ecard.html",
        ecard=card,
        purpose=chosen,
        purposes=list(Purpose),
        needs_unlock=needs_unlock,
        resident=session.get(Resident, resident_id),
    )


@router.post("/ecard", dependencies=[Depends(verify_csrf)])
def issue_ecard(
    request: Request,
    session: DbSession,
    actor: ResidentActor,
    password: Annotated[str, Form(max_length=16)] = "",
    password_again: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """签发: the e-card of my card, with its own six-digit password."""
    try:
        if password != password_again:
            from yikatong.errors import InvalidInput

            raise InvalidInput("The two passwords differ", field="password_again")
        with session.begin_nested():
            ecard.issue_ecard(session, actor, int(actor.id), password)
    except YikatongError as exc:
        return _form_page(
            request,
            "portal/ecard.html",
            exc,
            exc.status,
            ecard=None,
            purpose=Purpose.IDENTITY,
            purposes=list(Purpose),
            needs_unlock=False,
            resident=session.get(Resident, int(actor.id)),
        )
    return RedirectResponse("/portal/ecard", status_code=303)


@router.post("/ecard/unlock", dependencies=[Depends(verify_csrf)])
def unlock_payment(
    request: Request,
    session: DbSession,
    actor: ResidentActor,
    password: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """The e-card password before payment codes are shown (counted; locks after 5)."""
    try:
        ecard.verify_password(session, actor, int(actor.id), password)
    except YikatongError as exc:
        if exc.keep_changes:
            session.commit()
        return _form_page(
            request,
            "portal/ecard.html",
            exc,
            exc.status,
            ecard=None,
            purpose=Purpose.PAYMENT,
            purposes=list(Purpose),
            needs_unlock=True,
            resident=session.get(Resident, int(actor.id)),
        )
    row = _session_row(session, request)
    if row is not None:
        service.unlock_payment(session, row)
    return RedirectResponse("/portal/ecard?purpose=payment", status_code=303)


@router.get("/ecard/code")
def ecard_code(
    request: Request,
    session: DbSession,
    actor: ResidentActor,
    purpose: Annotated[str, Query(max_length=16)] = "identity",
) -> Response:
    """A fresh signed QR code (htmx fragment); the page asks again before it expires."""
    chosen = Purpose(purpose) if purpose in {p.value for p in Purpose} else Purpose.IDENTITY
    row = _session_row(session, request)
    if chosen is Purpose.PAYMENT and not (row and service.payment_unlocked(row)):
        return render(request, "portal/_code.html", {"code": None, "locked": True})
    try:
        issued = ecard.issue_code(session, actor, int(actor.id), chosen)
    except YikatongError as exc:
        # E.g. the card was just reported lost: say so where the code would have been. A 200,
        # because htmx does not swap error answers and the dead code must leave the screen.
        return render(request, "portal/_code.html", {"code": None, "locked": False, "error": exc})
    qr = segno.make(issued.text, error="m")
    seconds = max(5, int((issued.expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    return render(
        request,
        "portal/_code.html",
        {
            "code": issued,
            "locked": False,
            "qr_svg": qr.svg_inline(scale=6, border=2, dark="#0b2545"),
            "refresh_in": max(5, seconds - REFRESH_MARGIN_S),
            "purpose": chosen,
        },
    )
