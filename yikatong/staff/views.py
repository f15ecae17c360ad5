"""Staff console pages: login (two steps), logout, home, staff accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from yikatong.deps import (
    CSRF_COOKIE,
    PENDING_COOKIE,
    ROLE_LABELS,
    SESSION_COOKIE,
    DbSession,
    StaffActor,
    counties_within,
    optional_staff,
    region_label,
    request_actor,
    verify_csrf,
)
from yikatong.errors import InvalidInput, YikatongError, field_errors
from yikatong.kit.actor import Actor, Permission, Role
from yikatong.kit.params import PageNumber
from yikatong.residents import service as residents_service
from yikatong.settings import get_settings
from yikatong.staff import service
from yikatong.staff.api import set_session_cookies
from yikatong.web.i18n import lazy_gettext
from yikatong.web.navigation import NavItem, register_nav
from yikatong.web.pages import safe_local_path
from yikatong.web.templating import render

router = APIRouter(prefix="/staff", include_in_schema=False)

register_nav(NavItem("home", lazy_gettext("Workbench"), "/staff", icon="home", order=0))
register_nav(
    NavItem(
        "staff",
        lazy_gettext("Staff accounts"),
        "/staff/accounts",
        permission=Permission.STAFF_READ.value,
        icon="users",
        order=80,
    )
)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    return safe_local_path(target, default="/staff")


def _login_page(
    request: Request,
    *,
    error: YikatongError | None = None,
    username: str = "",
    next_url: str = "/staff",
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "staff/login.html",
        {"error": error, "username": username, "next_url": next_url},
        status_code=status_code,
    )


@router.get("/login")
def login_form(
    request: Request,
    actor: Annotated[Actor | None, Depends(optional_staff)],
    next_url: Annotated[str | None, Query(alias="next")] = None,
) -> Response:
    if actor is not None:
        return RedirectResponse(_safe_next(next_url), status_code=303)
    return _login_page(request, next_url=_safe_next(next_url))


@router.post("/login", dependencies=[Depends(verify_csrf)])
def login_password(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next_url: Annotated[str, Form(alias="next")] = "/staff",
) -> Response:
    """First factor. A failure re-renders the form with the reason (and is kept: audited)."""
    try:
        _, token = service.start_login(
            session, username=username, password=password, actor=request_actor(request)
        )
    except YikatongError as exc:
        if exc.keep_changes:
            session.commit()
        return _login_page(
            request,
            error=exc,
            username=username,
            next_url=_safe_next(next_url),
            status_code=exc.status,
        )
    response = RedirectResponse(f"/staff/login/code?next={_safe_next(next_url)}", status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=get_settings().secure_cookies,
        max_age=300,
        path="/staff/login",
    )
    return response


@router.get("/login/code")
def code_form(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    if not request.cookies.get(PENDING_COOKIE):
        return RedirectResponse("/staff/login", status_code=303)
    return render(
        request, "staff/login_code.html", {"error": None, "next_url": _safe_next(next_url)}
    )


@router.post("/login/code", dependencies=[Depends(verify_csrf)])
def login_code(
    request: Request,
    session: DbSession,
    code: Annotated[str, Form(max_length=16)] = "",
    next_url: Annotated[str, Form(alias="next")] = "/staff",
) -> Response:
    """Second factor: the authenticator code; success replaces the half-login with a session."""
    pending = request.cookies.get(PENDING_COOKIE)
    if not pending:
        return RedirectResponse("/staff/login", status_code=303)
    try:
        _, token = service.finish_login(
            session, pending_token=pending, code=code, actor=request_actor(request)
        )
    except YikatongError as exc:
        if exc.keep_changes:
            session.commit()
        if exc.status == 401 and exc.code == "session_expired":
            return _login_page(request, error=exc, next_url=_safe_next(next_url), status_code=401)
        return render(
            request,
            "staff/login_code.html",
            {"error": exc, "next_url": _safe_next(next_url)},
            status_code=exc.status,
        )
    response = RedirectResponse(_safe_next(next_url), status_code=303)
    response.delete_cookie(PENDING_COOKIE, path="/staff/login")
    set_session_cookies(response, token)
    return response


@router.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(
    request: Request, session: DbSession, actor: Annotated[Actor | None, Depends(optional_staff)]
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and actor is not None:
        service.logout(session, token, actor)
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("")
def home(request: Request, session: DbSession, actor: StaffActor) -> Response:
    """The workbench: what this member of staff can do, and their region at a glance."""
    counts = None
    if actor.can(Permission.RESIDENTS_READ):
        counts = [
            {"code": c.region_code, "name": region_label(c.region_code), "residents": c.residents}
            for c in residents_service.counts_by_region(session, actor)
        ]
    return render(
        request,
        "console/home.html",
        {"counts": counts, "total": sum(c["residents"] for c in counts or [])},
    )


@router.get("/accounts")
def accounts(
    request: Request, session: DbSession, actor: StaffActor, page: PageNumber = 1
) -> Response:
    result = service.list_staff(session, actor, page=page, per_page=50)
    return render(request, "staff/accounts.html", _accounts_context(actor, result))


def _accounts_context(
    actor: Actor, result: object, error: YikatongError | None = None, **extra: object
) -> dict[str, object]:
    # A city-level admin may create city-level accounts as well as county ones.
    regions = [(actor.region_code, region_label(actor.region_code))]
    regions += [c for c in counties_within(actor) if c[0] != actor.region_code]
    return {
        "error": error,
        "field_errors": field_errors(error),
        "page": result,
        "role_labels": {role.value: label for role, label in ROLE_LABELS.items()},
        "regions": regions,
        "can_manage": actor.can(Permission.STAFF_MANAGE),
        "created": None,
        "form": {},
        **extra,
    }


@router.post("/accounts", dependencies=[Depends(verify_csrf)])
def create_account(
    request: Request,
    session: DbSession,
    actor: StaffActor,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=64)] = "",
    role: Annotated[str, Form(max_length=32)] = "",
    region_code: Annotated[str, Form(max_length=12)] = "",
    department: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    """Create an account; the page shows the TOTP enrolment QR code once."""
    form = {
        "username": username,
        "display_name": display_name,
        "role": role,
        "region_code": region_code,
        "department": department,
    }
    try:
        try:
            role_value = Role(role)
        except ValueError:
            raise InvalidInput("Choose a role", field="role") from None
        created = service.create_staff(
            session,
            actor,
            username=username,
            display_name=display_name,
            role=role_value,
            region_code=region_code,
            password=password,
            department=department or None,
        )
    except YikatongError as exc:
        if exc.keep_changes:
            session.commit()
        else:
            session.rollback()
        result = service.list_staff(session, actor, per_page=50)
        return render(
            request,
            "staff/accounts.html",
            _accounts_context(actor, result, error=exc, form=form),
            status_code=exc.status,
        )
    import segno

    uri = service.totp_uri(created.member)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#0b3d63")
    result = service.list_staff(session, actor, per_page=50)
    return render(
        request,
        "staff/accounts.html",
        _accounts_context(
            actor,
            result,
            created={
                "member": created.member,
                "secret": created.totp_secret,
                "uri": uri,
                "qr_svg": qr_svg,
            },
        ),
    )
